"""The inventory workbook written: the empty template, or the store's inventory (as .xlsx, or as
one CSV file per sheet), in the shape the import reads back unchanged.

openpyxl (write-only mode) writes the workbook around the data: the README sheet, each sheet's
header row (frozen), column widths and the dropdowns of the closed lists. It writes a row of cells
at about 40,000 cells a second, and an inventory of 10,000 services is a million cells; so the
data rows are made by DuckDB as SpreadsheetML text, one string per row, and put in place of a
placeholder row that openpyxl wrote (which also tells the date cells' style). Text cells are
neutralised against formula injection by itscm/export.py's rule, as the CSV exports are.

References are written as the import reads them best: a service by its name when that name
identifies it alone (no other service has it as a name, an alias or an id), else by its id; a
unit or a supplier by its name; a plan or a drill by its id.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from itscm.export import FORMULA_TRIGGERS, csv_for_spreadsheets, neutralise_cell
from itscm.store import Store
from itscm.workbook.plan import KEY_MACRO
from itscm.workbook.sheets import CHOICE, DATE, DURATION, README_SHEET, SHEETS, YESNO, Column, Sheet

LAST_ROW = 1_048_576                # a dropdown covers the whole column below the header
_PLACEHOLDER_DATE = pd.Timestamp("2000-01-01").date()

# Per sheet: SELECT of its columns in order (named as the sheet's fields), sorted as written.
_SERVICE_LABELS = """
    SELECT s.service_id, CASE WHEN s.name IS NOT NULL AND trim(s.name) <> '' AND (
        SELECT count(DISTINCT o.service_id) FROM (
            SELECT service_id, inv_key(name) AS k FROM services
            UNION ALL SELECT service_id, inv_key(alias) FROM service_aliases
            UNION ALL SELECT service_id, inv_key(service_id) FROM services) o
        WHERE o.k = inv_key(s.name)) = 1 THEN s.name ELSE s.service_id END AS label
    FROM services s
"""
# Per sheet: its columns in order (named as the sheet's fields) and sort_key, the order written.
EXPORT_SQL = {
    "business_units": """
        SELECT u.name, p.name AS parent, u.head, (u.name, u.unit_id) AS sort_key FROM business_units u
        LEFT JOIN business_units p ON p.unit_id = u.parent_unit_id""",
    "services": """
        SELECT s.service_id, s.name, u.name AS unit, s.tier, s.owner, s.rto_minutes, s.rpo_minutes, s.mtpd_minutes,
               s.impact_cost_per_hour, s.recovery_strategy, s.lifecycle,
               (SELECT string_agg(a.alias, '; ' ORDER BY a.alias) FROM service_aliases a
                WHERE a.service_id = s.service_id) AS aliases, s.service_id AS sort_key
        FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id""",
    "dependencies": """
        SELECT a.label AS service, b.label AS depends_on,
               CASE d.has_alternative WHEN TRUE THEN 'yes' WHEN FALSE THEN 'no' END AS has_alternative,
               (d.service_id, d.depends_on_id) AS sort_key
        FROM dependencies d JOIN labels a ON a.service_id = d.service_id
        JOIN labels b ON b.service_id = d.depends_on_id""",
    "suppliers": """
        SELECT name, contracted_recovery_minutes, substitutability, contract_end, (name, supplier_id) AS sort_key
        FROM suppliers""",
    "service_suppliers": """
        SELECT a.label AS service, p.name AS supplier, (l.service_id, p.name, l.supplier_id) AS sort_key
        FROM service_suppliers l
        JOIN labels a ON a.service_id = l.service_id JOIN suppliers p ON p.supplier_id = l.supplier_id""",
    "plans": """
        SELECT p.plan_id, a.label AS service, p.title, p.owner, p.status, p.approved_on, p.document_link,
               p.plan_id AS sort_key
        FROM plans p LEFT JOIN labels a ON a.service_id = p.service_id""",
    "plan_reviews": """
        SELECT plan_id AS plan, reviewed_on, reviewed_by, outcome, notes,
               (plan_id, reviewed_on, reviewed_by, outcome, notes) AS sort_key FROM plan_reviews""",
    "drills": """
        SELECT d.drill_id, d.plan_id AS plan, a.label AS service, d.held_on, d.drill_type, d.outcome, d.rta_minutes,
               d.data_loss_minutes, d.drill_id AS sort_key
        FROM drills d LEFT JOIN labels a ON a.service_id = d.service_id""",
    "findings": """
        SELECT finding_id, drill_id AS drill, what, owner, due_on, state, finding_id AS sort_key
        FROM drill_findings""",
    "assets": """
        SELECT a.asset_id, a.name, a.asset_class, a.class_raw, a.location, a.owner, p.name AS supplier, a.lifecycle,
               a.status_raw, a.last_verified, a.verified_by, a.asset_id AS sort_key
        FROM assets a LEFT JOIN suppliers p ON p.supplier_id = a.supplier_id""",
    "service_assets": """
        SELECT a.label AS service, l.asset_id AS asset, l.relation, (l.service_id, l.asset_id) AS sort_key
        FROM service_assets l JOIN labels a ON a.service_id = l.service_id""",
}


# -- the workbook around the data -------------------------------------------------------------------


def _readme(book: Workbook) -> None:
    sheet = book.create_sheet(README_SHEET)
    sheet.column_dimensions["A"].width = 20
    sheet.column_dimensions["B"].width = 34
    sheet.column_dimensions["C"].width = 90
    sheet.column_dimensions["D"].width = 40
    bold = Font(bold=True)

    def row(*values, font=None):
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=neutralise_cell(value))
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if font:
                cell.font = font
            cells.append(cell)
        sheet.append(cells)

    row("The continuity inventory", font=Font(bold=True, size=14))
    for line in (
        "Fill in or edit the sheets, then import the workbook: python -m itscm inventory import FILE --store PATH "
        "(add --dry-run to see what it would change first). Each sheet can also be a CSV file named after it "
        "(services.csv).",
        "A file changes only the columns it has: delete a column and the store keeps what it holds for it; an "
        "empty cell in a column that is there empties the value. Rows the store holds that the file lacks are "
        "reported; with --retire-missing, services, plans and assets are retired and other rows removed (a sheet "
        "without rows, or with a rejected row, retires nothing).",
        "Durations (RTO, RPO, MTPD, contracted recovery time, RTA, data loss) are minutes as numbers, or text such "
        "as 4h, 4 hours, 30 minutes, 1 week, 2 weeks, Immediately, PT4H (ISO 8601) or 04:00. A header such as "
        "'RTO (hours)' makes its numbers hours (or minutes, days, weeks).",
        "Dates are date cells or YYYY-MM-DD. Names are matched in any case and spacing. A formula's saved value is "
        "read; a formula never calculated is refused. Every import can be undone: python -m itscm inventory undo ID.",
    ):
        row(line)
    row()
    row("sheet", "column", "what it holds", "accepted values", font=bold)
    for sheet_spec in SHEETS:
        row(sheet_spec.name, "", f"{sheet_spec.help} With --retire-missing, a stored row the files lack is "
                                 f"{sheet_spec.absent}.", "", font=None)
        for column in sheet_spec.columns:
            row("", column.header + (" (required)" if column.required else ""), column.help, _accepted(column))


def _accepted(column: Column) -> str:
    if column.kind in (CHOICE, YESNO):
        values = ", ".join(column.choices)
        return values + (f" (empty means {column.blank})" if column.blank else "")
    return {DURATION: "minutes, or 4h, 2 days, 1 week, PT4H, Immediately", DATE: "a date, or YYYY-MM-DD",
            "money": "an amount, zero or more", "list": "names separated by ;"}.get(column.kind, "text")


def _data_sheet(book: Workbook, sheet_spec: Sheet) -> None:
    sheet = book.create_sheet(sheet_spec.name)
    sheet.freeze_panes = "A2"
    header_font, header_fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for position, column in enumerate(sheet_spec.columns, start=1):
        letter = get_column_letter(position)
        sheet.column_dimensions[letter].width = column.width
        if column.kind in (CHOICE, YESNO):
            dropdown = DataValidation(type="list", formula1='"' + ",".join(column.choices) + '"', allow_blank=True,
                                      showErrorMessage=True, errorTitle=column.header,
                                      error="Choose one of: " + ", ".join(column.choices))
            dropdown.add(f"{letter}2:{letter}{LAST_ROW}")
            sheet.data_validations.append(dropdown)
    header = []
    for column in sheet_spec.columns:
        cell = WriteOnlyCell(sheet, value=column.header)
        cell.font, cell.fill = header_font, header_fill
        header.append(cell)
    sheet.append(header)
    placeholder = WriteOnlyCell(sheet, value=_PLACEHOLDER_DATE)
    placeholder.number_format = "yyyy-mm-dd"
    sheet.append([placeholder])   # replaced by the data rows; its style is the date cells' style


def _skeleton() -> bytes:
    book = Workbook(write_only=True)
    _readme(book)
    for sheet_spec in SHEETS:
        _data_sheet(book, sheet_spec)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_PLACEHOLDER_ROW = re.compile(r'<row r="2"[^>]*><c r="A2" s="(\d+)"[^>]*><v>[^<]*</v></c></row>')


# -- the data rows ---------------------------------------------------------------------------------------

_XML_TEXT = ("replace(replace(replace(replace(regexp_replace({v}, '[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F]', '', 'g'), "
             "'&', '&amp;'), '<', '&lt;'), '>', '&gt;'), chr(13), '&#13;')")


def _cell_sql(column: Column, position: int, date_style: str) -> str:
    """SpreadsheetML for one cell of the column, '' when empty. Constant SQL over the export row e
    and its row number rn; text goes through wb_safe (neutralised text) when it needs it."""
    ref = f"'<c r=\"{get_column_letter(position)}' || rn || '\""
    value = f"e.{column.field}"
    if column.kind == DATE:
        body = f"{ref} s=\"{date_style}\"><v>' || date_diff('day', DATE '1899-12-30', {value}) || '</v></c>'"
    elif column.store_type in ("INTEGER", "DOUBLE"):
        body = f"{ref}><v>' || CAST({value} AS VARCHAR) || '</v></c>'"
    else:
        text = f"coalesce((SELECT w.safe FROM wb_safe w WHERE w.text = {value}), {value})"
        body = f"{ref} t=\"inlineStr\"><is><t xml:space=\"preserve\">' || {_XML_TEXT.format(v=text)} || '</t></is></c>'"
    return f"CASE WHEN {value} IS NULL THEN '' ELSE {body} END"


def _rows_xml(cur, sheet_spec: Sheet, date_style: str) -> tuple[str, int]:
    """The sheet's data rows as SpreadsheetML, and how many."""
    sql = EXPORT_SQL[sheet_spec.name]
    texts = [c.field for c in sheet_spec.columns if c.store_type == "VARCHAR" and c.kind != DATE]
    # Text starting like a formula goes through itscm/export.py's rule (few rows: looked up, not scanned).
    risky = cur.execute(
        f"SELECT DISTINCT v FROM (SELECT unnest([{', '.join(texts)}]) AS v FROM ({sql})) "
        "WHERE list_contains($triggers, left(v, 1))", {"triggers": list(FORMULA_TRIGGERS)}).fetchall() if texts else []
    cur.register("wb_safe_arrow", pa.table({"text": pa.array([v for (v,) in risky], pa.string()),
                                            "safe": pa.array([neutralise_cell(v) for (v,) in risky], pa.string())}))
    cur.execute("CREATE OR REPLACE TEMP TABLE wb_safe AS SELECT * FROM wb_safe_arrow")
    cur.unregister("wb_safe_arrow")
    cells = " || ".join(_cell_sql(column, position, date_style)
                        for position, column in enumerate(sheet_spec.columns, start=1))
    rows = cur.execute(f"""
        SELECT count(*), coalesce(string_agg('<row r="' || rn || '">' || {cells} || '</row>', '' ORDER BY rn), '')
        FROM (SELECT e.*, row_number() OVER (ORDER BY e.sort_key) + 1 AS rn FROM ({sql}) e) e
    """).fetchall()[0]
    cur.execute("DROP TABLE wb_safe")
    return rows[1], rows[0]


def _sheet_paths(package: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its part, from the skeleton openpyxl wrote (sheets in order, sheet1.xml ...)."""
    names = re.findall(r'<sheet [^>]*name="([^"]+)"', package.read("xl/workbook.xml").decode())
    return {name: f"xl/worksheets/sheet{index}.xml" for index, name in enumerate(names, start=1)}


def _assemble(skeleton: bytes, rows_by_sheet: dict[str, str]) -> bytes:
    """The skeleton with each sheet's placeholder row replaced by its data rows."""
    source = zipfile.ZipFile(io.BytesIO(skeleton))
    paths = _sheet_paths(source)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for member in source.infolist():
            data = source.read(member.filename)
            sheet = next((name for name, path in paths.items() if path == member.filename), None)
            if sheet is not None and sheet != README_SHEET:
                rows = rows_by_sheet.get(sheet, "")
                text = _PLACEHOLDER_ROW.sub(lambda _match, rows=rows: rows, data.decode("utf-8"), count=1)
                data = text.encode("utf-8")
            book.writestr(member.filename, data)
    return out.getvalue()


def _date_style(skeleton: bytes) -> str:
    source = zipfile.ZipFile(io.BytesIO(skeleton))
    return _PLACEHOLDER_ROW.search(source.read(_sheet_paths(source)[SHEETS[0].name]).decode("utf-8"))[1]


# -- the public calls ----------------------------------------------------------------------------------


def template_bytes() -> bytes:
    """The empty workbook: README, every sheet's header, dropdowns."""
    return _assemble(_skeleton(), {})


def write_template(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(template_bytes())
    return path


def export_bytes(store: Store) -> tuple[bytes, dict[str, int]]:
    """The store's inventory as a workbook, and the rows written per sheet."""
    skeleton = _skeleton()
    date_style = _date_style(skeleton)
    rows_by_sheet, counts = {}, {}
    with store.read_transaction() as cur:
        cur.execute(KEY_MACRO)
        cur.execute(f"CREATE OR REPLACE TEMP VIEW labels AS {_SERVICE_LABELS}")
        for sheet_spec in SHEETS:
            rows_by_sheet[sheet_spec.name], counts[sheet_spec.name] = _rows_xml(cur, sheet_spec, date_style)
        cur.execute("DROP VIEW labels")
    return _assemble(skeleton, rows_by_sheet), counts


def export_frames(store: Store) -> dict[str, pd.DataFrame]:
    """The store's inventory, one frame per sheet, headed as the workbook's columns."""
    frames = {}
    with store.read_transaction() as cur:
        cur.execute(KEY_MACRO)
        cur.execute(f"CREATE OR REPLACE TEMP VIEW labels AS {_SERVICE_LABELS}")
        for sheet_spec in SHEETS:
            frame = cur.execute(f"SELECT * EXCLUDE (sort_key) FROM ({EXPORT_SQL[sheet_spec.name]}) "
                                "ORDER BY sort_key").df()
            frame.columns = [column.header for column in sheet_spec.columns]
            frames[sheet_spec.name] = frame
        cur.execute("DROP VIEW labels")
    return frames


def export_inventory(store: Store, to: str | Path) -> dict[str, int]:
    """Write the inventory to `to`: an .xlsx file, or a folder (made if needed) of one CSV file
    per sheet. Returns the rows written per sheet."""
    target = Path(to)
    if target.suffix.lower() in (".xlsx", ".xlsm"):
        data, counts = export_bytes(store)
        target.write_bytes(data)
        return counts
    target.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, frame in export_frames(store).items():
        (target / f"{name}.csv").write_bytes(csv_for_spreadsheets(frame))
        counts[name] = len(frame)
    return counts
