"""Files -> one typed table per sheet, and the problems of every cell.

An import reads one or more files: workbooks (every sheet named after a sheet of
itscm/workbook/sheets.py) and CSV files (named after the sheet they hold, `services.csv`). Their
cells land in one scratch DuckDB as (sheet read, row, column, kind, text) rows; each column's
header says which field it fills; each distinct value of a closed-list, duration, money, date or
yes/no column is parsed once in Python (itscm/workbook/cells.py); text is cleaned in SQL; and a
pivot makes one row per spreadsheet row, typed as the store types it, with `has_<field>` saying
whether that row's file carried the column (a file updates only the columns it carries).

Rows are kept even when a cell is refused (`ok` is false): a refused row still names its service,
so that service is not mistaken for one absent from the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
from dataclasses import dataclass, field
from pathlib import PurePath

import duckdb
import pandas as pd
import pyarrow as pa

from itscm.export import FORMULA_TRIGGERS
from itscm.ingest.decode import decode_upload
from itscm.ingest.errors import IngestError
from itscm.store import MEMORY_LIMIT
from itscm.workbook import xlsx
from itscm.workbook.cells import parse_cell
from itscm.workbook.errors import WorkbookError
from itscm.workbook.formats import LABELS, prepare, recognise
from itscm.workbook.sheets import (
    LIST,
    README_SHEET,
    SHEETS,
    TEXT,
    HeaderMatch,
    Sheet,
    match_header,
    name_key,
    sheet_named,
)

WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xltx", ".xltm")
CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
PROBLEM_COLUMNS = ["file", "sheet", "row", "column", "severity", "reason", "value"]


@dataclass(frozen=True)
class FileRead:
    name: str
    format: str              # xlsx or csv
    sha256: str
    size_bytes: int


@dataclass
class Source:
    """One sheet of one file, as read."""
    src: int
    file: str
    format: str              # xlsx or csv, or the export recognised from its header (itscm/workbook/formats.py)
    title: str               # the workbook tab, or the CSV file's name
    sheet: Sheet
    header: list[str | None]
    match: HeaderMatch
    rows: int                # data rows below the header
    reader: str              # fastexcel, openpyxl or csv (itscm/workbook/xlsx.py says which reads what)
    usable: bool = True      # False when a required column is missing: no row of it is read
    # An export's empty cell says the other system does not record it, not that it is empty: the
    # row then leaves that field as it is (a recognised format, itscm/workbook/formats.py).
    blank_keeps: bool = False

    def header_of(self, field_name: str) -> str:
        for position, column in self.match.columns.items():
            if column.field == field_name:
                return str(self.header[position])
        return self.sheet.column(field_name).header


@dataclass
class ReadResult:
    files: list[FileRead] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    typed: dict[str, pa.Table] = field(default_factory=dict)   # sheet name -> its rows, typed
    problems: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, source: Source | None, row: int | None, column: str | None, severity: str, reason: str,
                value: object = None, *, file: str | None = None) -> None:
        self.problems.append({"file": source.file if source else file, "sheet": source.sheet.name if source else None,
                              "row": row, "column": column, "severity": severity, "reason": reason, "value": value})

    def problems_frame(self) -> pd.DataFrame:
        return problems_frame(self.problems)


def problems_frame(problems: list[dict]) -> pd.DataFrame:
    """file, sheet, row (as the spreadsheet shows it, header = 1; empty for a file-wide problem),
    column, severity (error: the row is rejected; warning), reason, value."""
    frame = pd.DataFrame(problems, columns=PROBLEM_COLUMNS)
    frame["row"] = frame["row"].astype("Int64")
    return frame


def read_files(files: list[tuple[str, bytes]]) -> ReadResult:
    """Read every file; raises WorkbookError (one line) when a file is refused as a whole, before
    anything is written anywhere."""
    if not files:
        raise WorkbookError("No file to import.")
    result = ReadResult()
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    try:
        con.execute(xlsx.CELLS_TABLE_SQL)
        for name, data in files:
            _read_file(con, result, name, data)
        if not result.sources:
            raise WorkbookError(
                "Nothing to import: no sheet or CSV file is named after an inventory sheet ("
                + ", ".join(sheet.name for sheet in SHEETS) + ") or has the header of a recognised export ("
                + ", ".join(LABELS.values()) + ").")
        _check_columns(result)
        _type_cells(con, result)
    finally:
        con.close()
    return result


def _read_file(con, result: ReadResult, name: str, data: bytes) -> None:
    display = PurePath(name).name
    if len(data) > xlsx.MAX_FILE_BYTES:
        raise WorkbookError(f"{display} is {len(data) / 2**20:.1f} MB, above the limit of "
                            f"{xlsx.MAX_FILE_BYTES / 2**20:.0f} MB for an inventory file.")
    extension = PurePath(name).suffix.lower()
    is_zip, is_ole = data.startswith(xlsx.ZIP_SIGNATURE), data.startswith(xlsx.OLE_SIGNATURE)
    if extension == ".xls":
        raise WorkbookError(f"{display} is an old-style Excel (.xls) workbook: save it as .xlsx and import that.")
    as_workbook = extension in WORKBOOK_EXTENSIONS or (extension not in CSV_EXTENSIONS and (is_zip or is_ole))
    if not as_workbook and (is_zip or is_ole):
        raise WorkbookError(f"{display} is a workbook, not a CSV file: give it the .xlsx extension.")
    sha256 = hashlib.sha256(data).hexdigest()
    first_src = len(result.sources)
    if as_workbook:
        # Every tab is read (but the template's README): a tab is recognised by its name or by its
        # header row; one that is neither is dropped.
        book = xlsx.read_workbook(con, data, display, first_src=first_src,
                                  wanted=lambda title: name_key(title) != name_key(README_SHEET))
        result.files.append(FileRead(display, "xlsx", sha256, len(data)))
        result.notes += book.notes
        ignored = [title for title in book.ignored_sheets if title.strip().lower() != README_SHEET.lower()]
        read = 0
        for raw in book.sheets:
            sheet = sheet_named(raw.title)
            found = recognise(raw.header, sheet)
            if found is None and sheet is None:
                con.execute("DELETE FROM wb_cells WHERE src = $src", {"src": raw.src})
                ignored.append(raw.title)
                continue
            read += 1
            _add_source(con, result, Source(raw.src, display, found.format if found else "xlsx", raw.title,
                                            found.sheet if found else sheet, raw.header,
                                            found.match if found else match_header(sheet, raw.header), raw.rows,
                                            raw.reader), found)
        if ignored:
            result.problem(None, None, None, "warning",
                           f"sheet(s) {', '.join(map(repr, ignored))} are not inventory sheets; not read",
                           file=display)
        if not read:
            result.problem(None, None, None, "warning", "no sheet is named after an inventory sheet or has the "
                           "header of a recognised export", file=display)
        return
    sheet = sheet_named(PurePath(name).stem)
    header, rows = _read_csv(con, data, display, first_src)
    found = recognise(header, sheet)
    if found is None and sheet is None:
        raise WorkbookError(f"{display}: a CSV file is named after the sheet it holds ("
                            + ", ".join(f"{s.name}.csv" for s in SHEETS) + ") or has the header of a "
                            "recognised export (" + ", ".join(LABELS.values()) + ").")
    result.files.append(FileRead(display, "csv", sha256, len(data)))
    _add_source(con, result, Source(first_src, display, found.format if found else "csv", display,
                                    found.sheet if found else sheet, header,
                                    found.match if found else match_header(sheet, header), rows, "csv"), found)


def _add_source(con, result: ReadResult, source: Source, found) -> None:
    result.sources.append(source)
    if found is not None:
        source.blank_keeps = True
        prepare(con, result, source, found)


# The characters Python's str.strip() removes (every chr(code) whose isspace() is true), for DuckDB's
# trim: a CSV cell is empty, and a row filled, exactly as the per-cell Python loop this replaced said.
_PYTHON_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                      "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _read_csv(con, data: bytes, name: str, src: int) -> tuple[list[str | None], int]:
    try:
        decoded = decode_upload(data, name, max_bytes=xlsx.MAX_FILE_BYTES)
    except IngestError as error:
        raise WorkbookError(str(error)) from None
    text = decoded.text.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=decoded.delimiter, quotechar='"', strict=False)
    try:
        header = [value.strip() or None for value in next(reader, [])]
        # The records (the csv module in C), one past the cap so that a longer file is refused; each
        # cell is then placed and filtered in DuckDB, not in a Python loop over 1.1 million cells.
        records = list(itertools.islice(reader, xlsx.MAX_ROWS_PER_SHEET))
        if next(reader, None) is not None:
            raise WorkbookError(f"{name} has more than {xlsx.MAX_ROWS_PER_SHEET:,} rows (an inventory has "
                                "far fewer; split it into several files).")
    except csv.Error as error:
        raise WorkbookError(f"{name} is not a readable CSV file ({error}).") from None
    con.register("wb_csv_records", pa.table({
        "row_no": pa.array(range(2, len(records) + 2), pa.int32()),    # the header is row 1; an empty line is a row
        "cells": pa.array(records, pa.list_(pa.string()))}))
    # On one thread, as the XLSX reader inserts a sheet: a second one only adds overhead to this
    # insert (1.0 s of CPU instead of 0.56 for the 100,000 assets, and no faster by the clock).
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    con.execute("SET threads = 1")
    try:
        con.execute("""
            INSERT INTO wb_cells
            SELECT $src, row_no, col_no, 's', text, TRUE
            FROM (SELECT row_no, unnest(cells) AS text, unnest(range(len(cells)))::INTEGER AS col_no
                  FROM wb_csv_records)
            -- A cell starting with a printable ASCII character skips the trim (with a list of characters
            -- it costs 18 times the plain one: 1.8 s of CPU for 100,000 assets).
            WHERE text <> '' AND ((text >= '!' AND text < chr(127)) OR trim(text, $whitespace) <> '')
        """, {"src": src, "whitespace": _PYTHON_WHITESPACE})
    finally:
        con.unregister("wb_csv_records")
        con.execute(f"SET threads = {threads}")     # an integer DuckDB gave: nothing to inject
    rows = con.execute("SELECT count(DISTINCT row_no) FROM wb_cells WHERE src = $src", {"src": src}).fetchall()[0][0]
    return header, rows


def _check_columns(result: ReadResult) -> None:
    for source in result.sources:
        for text in source.match.ignored:
            result.problem(source, 1, text, "warning", f"not a column of the {source.sheet.name} sheet; not read")
        for text in source.match.repeated:
            result.problem(source, 1, text, "warning", "a second column for the same field; the first is read")
        carried = {column.field for column in source.match.columns.values()}
        missing = [column.header for column in source.sheet.columns if column.required and column.field not in carried]
        if missing:
            source.usable = False
            result.problem(source, 1, None, "error",
                           f"the sheet has no {', '.join(map(repr, missing))} column, so none of its "
                           f"{source.rows} row(s) can be read")


# -- typing --------------------------------------------------------------------------------------

# Text as the export wrote it: trimmed, and without the quote that neutralised a formula
# (itscm/export.py), so that an exported workbook reads back as it was.
# itscm/export.py's formula triggers as an SQL list (character codes: a view takes no parameters).
_TRIGGERS_SQL = "[" + ", ".join(f"chr({ord(char)})" for char in FORMULA_TRIGGERS) + "]"
_CLEAN_TEXT_SQL = """
CASE WHEN v.kind = 'd' THEN CASE WHEN ends_with(v.text, 'T00:00:00') THEN left(v.text, 10)
                                 ELSE replace(v.text, 'T', ' ') END
     WHEN NOT contains(v.text, chr(39)) THEN trim(v.text)
     WHEN starts_with(trim(v.text), chr(39)) AND list_contains(TRIGGERS, substr(trim(v.text), 2, 1))
     THEN substr(trim(v.text), 2)
     ELSE trim(v.text)
END
""".replace("TRIGGERS", _TRIGGERS_SQL)


def _type_cells(con, result: ReadResult) -> None:
    # One row per column read: its field, and `parse`, a number for a field parsed in Python (one
    # per sheet, field and unit: the key parsed values are joined back by), else NULL (text).
    parse_ids: dict[tuple, int] = {}
    fields = []
    for source in result.sources:
        if not source.usable:
            continue
        for position, column in source.match.columns.items():
            unit = source.match.units.get(column.field)
            parse = None if column.kind in (TEXT, LIST) else parse_ids.setdefault(
                (source.sheet.name, column.field, unit), len(parse_ids))
            fields.append((source.src, position, source.sheet.name, column.field,
                           source.sheet.columns.index(column), parse))
    con.register("wb_fields_arrow", pa.table(list(zip(*fields, strict=True)) if fields else [[]] * 6, schema=pa.schema(
        [("src", pa.int32()), ("col_no", pa.int32()), ("sheet", pa.string()), ("field", pa.string()),
         ("position", pa.int32()), ("parse", pa.int32())])))
    con.execute("CREATE TEMP TABLE wb_fields AS SELECT * FROM wb_fields_arrow")
    con.unregister("wb_fields_arrow")
    # The cells of the columns read, below the header; an empty text cell is no cell. A view: each
    # statement below reads it once (materialising it cost more than joining the few fields again).
    con.execute("""
        CREATE TEMP VIEW wb_values AS
        SELECT c.src, c.row_no, f.sheet, f.field, f.position, f.parse, c.kind, c.text
        FROM wb_cells c JOIN wb_fields f ON f.src = c.src AND f.col_no = c.col_no
        WHERE c.row_no > 1 AND NOT (c.kind = 's' AND trim(c.text) = '')
    """)
    distinct = con.execute("SELECT DISTINCT parse, kind, text FROM wb_values WHERE parse IS NOT NULL").fetchall()
    parse_keys = {number: key for key, number in parse_ids.items()}
    parsed = [(parse, kind, text, *parse_cell(_sheet(parse_keys[parse][0]).column(parse_keys[parse][1]),
                                              parse_keys[parse][2], kind, text))
              for parse, kind, text in distinct]
    con.register("wb_parsed_arrow", pa.table(list(zip(*parsed, strict=True)) if parsed else [[]] * 5, schema=pa.schema(
        [("parse", pa.int32())] + [(name, pa.string()) for name in ("kind", "text", "value", "error")])))
    con.execute("CREATE TEMP TABLE wb_parsed AS SELECT * FROM wb_parsed_arrow")
    con.unregister("wb_parsed_arrow")
    # Each cell's value and error: parsed values joined back by plain equalities (an IS NOT
    # DISTINCT FROM would compare every cell with every parsed value); text cleaned here, unjoined.
    con.execute(f"""
        CREATE TEMP VIEW wb_typed_values AS
        SELECT v.src, v.row_no, v.sheet, v.field, v.position, v.text AS raw, p.value, p.error
        FROM wb_values v JOIN wb_parsed p ON p.parse = v.parse AND p.kind = v.kind AND p.text = v.text
        UNION ALL
        SELECT v.src, v.row_no, v.sheet, v.field, v.position, v.text,
               CASE WHEN v.kind NOT IN ('e', 'f') THEN {_CLEAN_TEXT_SQL} END,
               CASE WHEN v.kind = 'e' THEN 'the cell shows the error ' || v.text
                    WHEN v.kind = 'f' THEN 'a formula whose value was never saved: open and save the file in a '
                                           || 'spreadsheet, or type the value' END
        FROM wb_values v WHERE v.parse IS NULL
    """)
    by_src = {source.src: source for source in result.sources}
    for src, row_no, field_name, error, raw in con.execute(
            "SELECT src, row_no, field, error, raw FROM wb_typed_values WHERE error IS NOT NULL ORDER BY src, row_no"
    ).fetchall():
        source = by_src[src]
        result.problem(source, row_no, source.header_of(field_name), "error", error, raw)
    for sheet in SHEETS:
        sources = [source for source in result.sources if source.sheet is sheet and source.usable]
        if sources:
            result.typed[sheet.name] = _pivot(con, result, sheet, sources)


def _sheet(name: str) -> Sheet:
    return next(sheet for sheet in SHEETS if sheet.name == name)


def _pivot(con, result: ReadResult, sheet: Sheet, sources: list[Source]) -> pa.Table:
    """One row per spreadsheet row of the sheet's sources: src, row_no, ok, each field typed as
    the store types it, and has_<field> (the row's file carries that column)."""
    carried = pa.table({"src": pa.array([source.src for source in sources], pa.int32()),
                        "fields": pa.array([[column.field for column in source.match.columns.values()]
                                            for source in sources], pa.list_(pa.string())),
                        "blank_keeps": pa.array([source.blank_keeps for source in sources], pa.bool_())})
    con.register("wb_carried", carried)
    values = ",\n".join(
        f"TRY_CAST(max(CASE WHEN position = {position} THEN value END) AS {column.store_type}) AS {column.field}"
        for position, column in enumerate(sheet.columns))
    flags = ",\n".join(f"list_contains(c.fields, '{column.field}') AND NOT (c.blank_keeps AND r.{column.field} IS NULL)"
                       f" AS has_{column.field}" for column in sheet.columns)
    # A closed list's value for a blank cell (lifecycle live, plan status draft), in a file carrying it.
    blanks = ", ".join(f"coalesce(r.{column.field}, CASE WHEN list_contains(c.fields, '{column.field}') "
                       f"AND NOT c.blank_keeps THEN '{column.blank}' END) AS {column.field}"
                       for column in sheet.columns if column.blank)
    replace = f" REPLACE ({blanks})" if blanks else ""
    required = [column for column in sheet.columns if column.required]
    # A required cell left empty (a refused one is reported by its parse already).
    present = "".join(f", bool_or(position = {sheet.columns.index(column)}) AS present_{column.field}"
                      for column in required)
    try:
        table = con.execute(f"""
            SELECT r.*{replace}, {flags}
            FROM (SELECT src, row_no, NOT bool_or(error IS NOT NULL) AS ok, {values} {present}
                  FROM wb_typed_values WHERE sheet = $sheet GROUP BY src, row_no) r
            JOIN wb_carried c ON c.src = r.src
            ORDER BY r.src, r.row_no
        """, {"sheet": sheet.name}).fetch_arrow_table()
    finally:
        con.unregister("wb_carried")
    if required:
        by_src = {source.src: source for source in sources}
        frame = table.select(["src", "row_no", *[f"present_{column.field}" for column in required]]).to_pandas()
        missing_any = pd.Series(False, index=frame.index)
        for column in required:
            missing = ~frame[f"present_{column.field}"]
            missing_any |= missing
            for src, row_no in zip(frame.loc[missing, "src"], frame.loc[missing, "row_no"], strict=True):
                result.problem(by_src[int(src)], int(row_no), by_src[int(src)].header_of(column.field), "error",
                               f"{column.header} is required")
        ok = pa.array(table.column("ok").to_numpy(zero_copy_only=False) & ~missing_any.to_numpy())
        table = table.set_column(table.schema.get_field_index("ok"), "ok", ok)
        table = table.drop_columns([f"present_{column.field}" for column in required])
    return table
