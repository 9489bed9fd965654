"""The inventory workbook round trip: the template, the export, and reading it back: an export
imported again changes nothing, three cells edited are exactly three changes, through .xlsx (as
written, and as Excel saves it, with shared strings) and through a folder of CSV files."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import duckdb
import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook

from itscm.store import Store
from itscm.workbook import export_bytes, export_inventory, preview_inventory, read, template_bytes
from itscm.workbook import xlsx as xlsx_reader
from itscm.workbook.sheets import CHOICE, SHEETS, YESNO
from tests.inventory_workbooks import edited, imported, inventory, with_shared_strings, workbook


@pytest.fixture
def store(store_path):
    with Store(store_path) as opened:
        yield opened


def row_of(data: bytes, sheet: str, first_cell: str) -> int:
    """The spreadsheet row whose first cell holds `first_cell`."""
    rows = load_workbook(io.BytesIO(data), read_only=True)[sheet].iter_rows(values_only=True)
    return next(n for n, row in enumerate(rows, start=1) if row and row[0] == first_cell)


def test_the_template_explains_every_column_and_offers_the_closed_lists():
    book = load_workbook(io.BytesIO(template_bytes()))
    assert book.sheetnames == ["README", *[sheet.name for sheet in SHEETS]]
    readme = [cell for row in book["README"].iter_rows(values_only=True) for cell in row if cell]
    for sheet in SHEETS:
        tab = book[sheet.name]
        assert [cell.value for cell in tab[1]] == [column.header for column in sheet.columns]
        assert tab.freeze_panes == "A2"
        assert tab.max_row == 1                                   # no placeholder left behind
        dropdowns = {str(v.sqref).split(":")[0]: v.formula1 for v in tab.data_validations.dataValidation}
        for position, column in enumerate(sheet.columns, start=1):
            assert column.header in readme or column.header + " (required)" in readme
            letter = tab.cell(row=1, column=position).column_letter
            if column.kind in (CHOICE, YESNO):
                assert dropdowns[f"{letter}2"] == '"' + ",".join(column.choices) + '"', (sheet.name, column.header)
            else:
                assert f"{letter}2" not in dropdowns


def test_the_template_reads_as_an_empty_inventory(store):
    before = inventory(store)
    preview = preview_inventory(store, [("template.xlsx", template_bytes())])
    assert preview.problems[preview.problems.severity == "error"].empty
    assert all(counts["inserted"] == counts["updated"] == counts["retired"] == 0 for counts in preview.tables.values())
    assert inventory(store) == before


def test_an_exported_workbook_imports_back_unchanged(store):
    before = inventory(store)
    data, counts = export_bytes(store)
    assert counts["services"] == 6 and counts["drills"] == 5 and counts["plan_reviews"] == 3
    preview, result = imported(store, [("inventory.xlsx", data)])
    assert preview.problems[preview.problems.severity == "error"].empty, preview.problems
    assert preview.plan.changes.empty
    assert all(counts["inserted"] == counts["updated"] == counts["retired"] == counts["rejected"] == 0
               for counts in preview.tables.values()), preview.tables
    assert preview.tables["services"]["unchanged"] == 6
    assert [source.reader for source in preview.read.sources] == ["fastexcel"] * len(SHEETS)
    assert result.import_id is None                              # nothing written, not even a record
    assert inventory(store) == before
    assert store.scalar("SELECT count(*) FROM inventory_imports") == 0


def test_three_cells_edited_are_exactly_three_changes(store):
    data, _ = export_bytes(store)
    draft_plan = store.scalar("SELECT plan_id FROM plans WHERE status = 'draft'")          # Branch Teller's
    passed_drill = store.scalar("SELECT min(drill_id) FROM drills WHERE outcome = 'passed'")
    changed = edited(data, {
        ("services", f"F{row_of(data, 'services', 'svc1')}"): "2h",           # RTO 60 -> 120 minutes
        ("plans", f"E{row_of(data, 'plans', draft_plan)}"): "approved",
        ("drills", f"F{row_of(data, 'drills', passed_drill)}"): "failed",
    })
    before = inventory(store)
    preview, result = imported(store, [("inventory.xlsx", changed)])
    changes = preview.plan.changes[["sheet", "row_key", "field", "old", "new"]].to_dict("records")
    assert changes == [
        {"sheet": "drills", "row_key": passed_drill, "field": "outcome", "old": "passed", "new": "failed"},
        {"sheet": "plans", "row_key": draft_plan, "field": "status", "old": "draft", "new": "approved"},
        {"sheet": "services", "row_key": "svc1", "field": "RTO (minutes)", "old": "60", "new": "120"},
    ]
    assert result.import_id is not None
    after = inventory(store)
    differing = {table: (set(before[table]) ^ set(after[table])) for table in before if before[table] != after[table]}
    assert set(differing) == {"services", "plans", "drills"}
    assert all(len(rows) == 2 for rows in differing.values())  # one row out, its new version in
    assert store.scalar("SELECT rto_minutes FROM services WHERE service_id = 'svc1'") == 120


def test_an_excel_saved_workbook_with_shared_strings_reads_the_same(store):
    data, _ = export_bytes(store)
    excel_like = with_shared_strings(data)
    preview = preview_inventory(store, [("inventory.xlsx", excel_like)])
    assert preview.plan.changes.empty and preview.rejected == 0
    assert all(counts["inserted"] == 0 for counts in preview.tables.values())
    assert [source.reader for source in preview.read.sources] == ["fastexcel"] * len(SHEETS)


def test_a_folder_of_csv_files_round_trips(store, tmp_path):
    export_inventory(store, tmp_path / "csv")
    files = sorted((tmp_path / "csv").iterdir())
    assert [f.name for f in files] == sorted(f"{sheet.name}.csv" for sheet in SHEETS)
    assert files[0].read_bytes().startswith(b"\xef\xbb\xbf")            # a BOM, for Excel (itscm/export.py)
    before = inventory(store)
    preview, result = imported(store, [(f.name, f.read_bytes()) for f in files])
    assert preview.plan.changes.empty and preview.rejected == 0 and result.import_id is None
    services = pd.read_csv(tmp_path / "csv" / "services.csv", encoding="utf-8-sig", dtype=str)
    services.loc[services["id"] == "svc5", "owner"] = "Nadia Owner"
    services.to_csv(tmp_path / "csv" / "services.csv", index=False)
    preview, result = imported(store, [(f.name, f.read_bytes()) for f in sorted((tmp_path / "csv").iterdir())])
    assert preview.plan.changes[["row_key", "field", "old", "new"]].to_dict("records") == [
        {"row_key": "svc5", "field": "owner", "old": "Owner", "new": "Nadia Owner"}]
    assert inventory(store) != before


def test_exported_text_is_neutralised_against_formulas_and_reads_back_as_it_was(store, tmp_path):
    with store.transaction() as cursor:
        cursor.execute("UPDATE services SET owner = '=HYPERLINK(\"https://evil.example\",\"x\")', "
                       "name = '@Expense <Claims> & co' WHERE service_id = 'svc15'")
    data, _ = export_bytes(store)
    sheet = load_workbook(io.BytesIO(data))["services"]
    row = row_of(data, "services", "svc15")
    assert sheet[f"E{row}"].value == "'=HYPERLINK(\"https://evil.example\",\"x\")"
    assert sheet[f"E{row}"].data_type == "s"                              # text, never a formula
    assert sheet[f"B{row}"].value == "'@Expense <Claims> & co"
    export_inventory(store, tmp_path / "csv")
    assert "'=HYPERLINK" in (tmp_path / "csv" / "services.csv").read_text(encoding="utf-8-sig")
    preview = preview_inventory(store, [("inventory.xlsx", data)])
    assert preview.plan.changes.empty and preview.rejected == 0


def test_dates_durations_in_other_units_and_text_cells_are_read_as_the_store_keeps_them(store):
    data = workbook({
        "services": [["id", "RTO (hours)", "MTPD", "impact cost per hour", "tier"],
                     ["svc1", 2, "1 day", "EUR 60,000", "Tier 1"],
                     ["svc5", "PT45M", "P1W", 75000.5, 2]],
        "drills": [["id", "service", "held on", "type", "outcome", "RTA (minutes)"],
                   ["drill-new", "Core Ledger", dt.date(2026, 6, 1), "Full_Interruption", "PASSED", "1h"],
                   ["drill-new-2", "Core Ledger", "2026-06-02", "tabletop", "partial", None]],
    })
    imported(store, [("bia.xlsx", data)])
    assert store.rows("SELECT service_id, rto_minutes, mtpd_minutes, impact_cost_per_hour, tier FROM services "
                      "WHERE service_id IN ('svc1', 'svc5') ORDER BY 1") == [
        ("svc1", 120, 1440, 60000.0, 1), ("svc5", 45, 10080, 75000.5, 2)]
    assert store.rows("SELECT drill_id, held_on, drill_type, outcome, rta_minutes FROM drills "
                      "WHERE drill_id LIKE 'drill-new%' ORDER BY 1") == [
        ("drill-new", dt.date(2026, 6, 1), "full interruption", "passed", 60),
        ("drill-new-2", dt.date(2026, 6, 2), "tabletop", "partial", None)]


def cells(reader_output: duckdb.DuckDBPyConnection) -> list[tuple]:
    return reader_output.execute("SELECT src, row_no, col_no, kind, text FROM wb_cells ORDER BY ALL").fetchall()


def read_both_ways(data: bytes) -> tuple[list[tuple], list[tuple], list[str]]:
    """The workbook's cells as read (fastexcel for the sheets it takes), as openpyxl reads them,
    and which reader read each sheet."""
    read = duckdb.connect()
    book = xlsx_reader.read_workbook(read, data, "x.xlsx", first_src=0, wanted=lambda title: title != "README")
    for sheet in book.sheets:      # a sheet kept as its columns: its cells as a recognised export needs them
        if sheet.columns is not None:
            xlsx_reader.cells_into_table(read, sheet.columns, sheet.src, sheet.epoch_1904,
                                         rows=(2, sheet.columns.num_rows))
    slow = duckdb.connect()
    slow.execute(xlsx_reader.CELLS_TABLE_SQL)
    for sheet in book.sheets:
        xlsx_reader._openpyxl_sheet(slow, data, "x.xlsx", sheet.title, sheet.src)
    return cells(read), cells(slow), [sheet.reader for sheet in book.sheets]


HAND_MADE = [
    ["id", "name", "RTO", "flag", "when", "at", "third", "text & <markup>"],
    ["svc-1", "  spaced\nline  ", 4.5, True, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 10, 30), 1 / 3,
     "a \"quoted\" 'word' & <b>"],
    [None, "Ünïcödé — ✓", -3, False, dt.time(4, 0), None, 41.666666666666664, "'=HYPERLINK(\"x\")"],
    [1234567, "1E-3", 1e-05, None, "007", "2026-03-01", 0.1 + 0.2, "x"],
    ["true", "60", 12345678901, "1.50", None, dt.datetime(1900, 2, 28, 23, 59, 59), -0.5, "FALSE"],
]


@pytest.mark.parametrize("shape", ["as written", "with shared strings", "hand-made", "hand-made, shared strings"])
def test_fastexcel_reads_what_openpyxl_reads(store, shape):
    if shape.startswith("hand-made"):
        data = workbook({"services": HAND_MADE})
    else:
        data, _ = export_bytes(store)
    if shape.endswith("shared strings"):
        data = with_shared_strings(data)
    fast, slow, readers = read_both_ways(data)
    assert set(readers) == {"fastexcel"}
    if shape.startswith("hand-made"):
        # A text cell shaped exactly as fastexcel prints a number or a yes/no is read as one (see
        # itscm/workbook/xlsx.py); the import parses either to the same value. Only those differ.
        assert {cell[1:] for cell in slow} - {cell[1:] for cell in fast} == {(5, 0, "s", "true"), (5, 1, "s", "60")}
        assert {cell[1:] for cell in fast} - {cell[1:] for cell in slow} == {(5, 0, "b", "TRUE"), (5, 1, "n", "60")}
        assert (0, 2, 6, "n", "0.3333333333333333") in fast                  # exact, not fastexcel's 9 decimals
        assert (0, 3, 4, "d", "1899-12-30T04:00:00") in fast                 # a time of day
    else:
        assert fast == slow
    assert len(fast) > 10


# Cells that test the typing's shortcuts: padding of every kind, the quote that neutralised a
# formula, text shaped like a date or a yes/no, empty and blank cells, refused values.
ODD_CELLS = [
    ["id", "name", "owner", "tier", "RTO (hours)", "lifecycle", "aliases", "impact cost per hour"],
    ["svc-1", "  padded  ", "'=1+2", "Tier 1", "4", None, "a; b", "EUR 1,000"],
    ["svc-2", "\u00a0nbsp\u3000", "'plain", "9", "soon", "", " ", "-5"],
    ["svc-3", "\ttab", "true", 2, 1.5, "retired", "2026-03-01 00:00:00", "abc"],
    ["svc-4", " ", "FALSE", "", None, "LIVE", "'+x", None],
    [None, None, None, None, None, None, None, None],
    ["svc-5", dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 10, 30), " 3 ", "\u2003", "gone", "x\u3000", 12],
]


def odd_csv(rows: list[list]) -> bytes:
    return "\n".join(",".join("" if cell is None else f'"{cell}"' for cell in row) for row in rows).encode()


@pytest.mark.parametrize("shape", ["exported", "odd cells", "odd cells as CSV", "exported as CSV"])
def test_typing_a_sheet_from_its_columns_gives_what_typing_its_cells_gives(store, monkeypatch, tmp_path, shape):
    if shape == "exported":
        files = [("inventory.xlsx", export_bytes(store)[0])]
    elif shape == "exported as CSV":
        export_inventory(store, tmp_path / "csv")
        files = [(path.name, path.read_bytes()) for path in sorted((tmp_path / "csv").glob("*.csv"))]
    elif shape == "odd cells":
        files = [("odd.xlsx", workbook({"services": ODD_CELLS}))]
    else:
        files = [("services.csv", odd_csv(ODD_CELLS))]
    by_columns = read.read_files(files)
    read_workbook, csv_source = xlsx_reader.read_workbook, read._csv_source

    def workbook_as_cells(con, data, file_name, **keywords):
        book = read_workbook(con, data, file_name, **keywords)
        for sheet in book.sheets:
            if sheet.columns is not None:
                xlsx_reader.cells_into_table(con, sheet.columns, sheet.src, sheet.epoch_1904,
                                             rows=(2, sheet.columns.num_rows))
                sheet.columns = None
        return book

    monkeypatch.setattr(xlsx_reader, "read_workbook", workbook_as_cells)
    monkeypatch.setattr(read, "_csv_source", lambda *args, **keywords: csv_source(*args, **{**keywords,
                                                                                              "as_cells": True}))
    by_cells = read.read_files(files)
    assert [source.rows for source in by_columns.sources] == [source.rows for source in by_cells.sources]
    assert by_columns.problems == by_cells.problems
    assert by_columns.typed.keys() == by_cells.typed.keys()
    for name, table in by_columns.typed.items():
        assert table.equals(by_cells.typed[name]), name
    if shape.startswith("odd"):
        assert len(by_columns.problems) >= 4
        assert by_columns.typed["services"].num_rows == 5


def test_rows_and_columns_keep_the_spreadsheet_numbering():
    book = Workbook()
    sheet = book.active
    sheet.title = "services"
    sheet["B3"], sheet["C3"], sheet["B5"], sheet["D6"] = "id", "owner", "svc1", "Owner"
    sheet["A7"] = "#N/A"
    sheet["A7"].data_type = "e"
    plans = book.create_sheet("plans")                       # nothing in column A: the grid starts at C4
    plans["C4"], plans["D5"] = "plan", "#DIV/0!"
    plans["D5"].data_type = "e"
    out = io.BytesIO()
    book.save(out)
    fast, slow, readers = read_both_ways(out.getvalue())
    assert readers == ["fastexcel", "fastexcel"]
    assert fast == slow == [(0, 3, 1, "s", "id"), (0, 3, 2, "s", "owner"), (0, 5, 1, "s", "svc1"),
                            (0, 6, 3, "s", "Owner"), (0, 7, 0, "e", "#N/A"),
                            (1, 4, 2, "s", "plan"), (1, 5, 3, "e", "#DIV/0!")]


def replaced_in_part(data: bytes, part: str, find: bytes, replace: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        for member in source.infolist():
            content = source.read(member.filename)
            if member.filename == part:
                assert find in content
                content = content.replace(find, replace, 1)
            book.writestr(member.filename, content)
    return out.getvalue()


def test_a_sheet_holding_a_formula_is_read_by_openpyxl(store):
    data, _ = export_bytes(store)
    # A formula with its saved value (as Excel writes one): calamine would read the value too, but
    # could not tell a formula without one from an empty cell.
    with_formula = replaced_in_part(data, "xl/worksheets/sheet3.xml",
                                    b'<c r="B2" t="inlineStr"><is><t xml:space="preserve">Core Ledger</t></is></c>',
                                    b'<c r="B2" t="str"><f>"Core "&amp;"Ledger"</f><v>Core Ledger</v></c>')
    preview = preview_inventory(store, [("inventory.xlsx", with_formula)])
    readers = {source.sheet.name: source.reader for source in preview.read.sources}
    assert readers["services"] == "openpyxl" and readers["plans"] == "fastexcel"
    assert preview.plan.changes.empty and preview.rejected == 0


@pytest.mark.parametrize(("find", "replace", "reader"), [
    (b'<c r="B2" t="inlineStr">', b'<c t="inlineStr" r="B2">', "openpyxl"),  # attributes in another order
    (b'<c r="B2" t="inlineStr">', b'<c t="inlineStr">', "openpyxl"),         # no cell reference
    (b"<t>Changed Owner</t>", b"<t><![CDATA[Changed Owner]]></t>", "fastexcel"),
    (b"<t>Changed Owner</t>", b"<t>Changed&#32;Owner</t>", "fastexcel"),     # a character reference
])
def test_cells_of_other_shapes_are_read_the_same(store, find, replace, reader):
    data = workbook({"services": [["id", "owner"], ["svc1", "Changed Owner"]]})
    odd = replaced_in_part(data, "xl/worksheets/sheet1.xml", find, replace)
    preview = preview_inventory(store, [("odd.xlsx", odd)])
    assert [source.reader for source in preview.read.sources] == [reader]
    assert preview.plan.changes[["row_key", "field", "new"]].to_dict("records") == [
        {"row_key": "svc1", "field": "owner", "new": "Changed Owner"}]
