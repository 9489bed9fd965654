"""Files -> one typed table per sheet, and the problems of every cell.

An import reads one or more files: workbooks (every sheet named after a sheet of
itscm/workbook/sheets.py) and CSV files (named after the sheet they hold, `services.csv`). Their
cells land in one scratch DuckDB as (sheet read, row, column, kind, text) rows, but for a sheet
fastexcel reads as it is, whose header row alone goes there and whose columns are kept as they came
(itscm/workbook/xlsx.py); each column's header says which field it fills. Each sheet read is then
typed column by column, one row per spreadsheet row (`wb_wide_<src>`: the kind and text of each
cell read, straight from fastexcel's columns, else pivoted from the cells): each distinct value of a
closed-list, duration, money, date or yes/no column is parsed once in Python
(itscm/workbook/cells.py) and joined back, text is cleaned in SQL, and each field is cast as the
store types it, with `has_<field>` saying whether that row's file carried the column (a file
updates only the columns it carries).

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
import pyarrow.compute as pc

from itscm.export import FORMULA_TRIGGERS
from itscm.ingest.decode import decode_upload
from itscm.ingest.errors import IngestError
from itscm.store import MEMORY_LIMIT
from itscm.workbook import xlsx
from itscm.workbook.cells import ERROR_VALUE, FORMULA_WITHOUT_VALUE, parse_cell
from itscm.workbook.errors import WorkbookError
from itscm.workbook.formats import LABELS, prepare, recognise
from itscm.workbook.sheets import (
    LIST,
    README_SHEET,
    SHEETS,
    TEXT,
    Column,
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
    # fastexcel's columns of a sheet read as it is, whose cells below the header are not in
    # wb_cells (xlsx.RawSheet.columns).
    columns: xlsx.SheetColumns | None = None

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
                                            raw.reader, columns=raw.columns), found)
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
        # Its row rules read and rewrite its cells in wb_cells.
        xlsx.fill_cells(con, source.src, source.columns)
        source.columns = None
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


def _clean_text_sql(kind: str, text: str) -> str:
    """SQL: a text cell's value, from the constant SQL expressions of its kind and its text."""
    return f"""CASE WHEN {kind} = 'd' THEN CASE WHEN ends_with({text}, 'T00:00:00') THEN left({text}, 10)
                                           ELSE replace({text}, 'T', ' ') END
                    WHEN NOT contains({text}, chr(39)) THEN trim({text})
                    WHEN starts_with(trim({text}), chr(39))
                         AND list_contains({_TRIGGERS_SQL}, substr(trim({text}), 2, 1)) THEN substr(trim({text}), 2)
                    ELSE trim({text})
               END"""


def _type_cells(con, result: ReadResult) -> None:
    # Each source's columns read: (column number in the file, its Column, `parse`: a number for a
    # field parsed in Python, one per sheet, field and unit, the key parsed values are joined back
    # by; None for text).
    parse_ids: dict[tuple, int] = {}
    read_columns: dict[int, list[tuple[int, Column, int | None]]] = {}
    usable = [source for source in result.sources if source.usable]
    for source in usable:
        read_columns[source.src] = [
            (col_no, column, None if column.kind in (TEXT, LIST) else parse_ids.setdefault(
                (source.sheet.name, column.field, source.match.units.get(column.field)), len(parse_ids)))
            for col_no, column in source.match.columns.items()]
        _wide_cells(con, source, [col_no for col_no, _, _ in read_columns[source.src]])
    to_parse = [f"SELECT {parse} AS parse, k{col_no} AS kind, t{col_no} AS text FROM wb_wide_{source.src} w "
                f"WHERE {_present(col_no)}"
                for source in usable for col_no, _, parse in read_columns[source.src] if parse is not None]
    distinct = con.execute("SELECT DISTINCT * FROM (" + " UNION ALL ".join(to_parse) + ")").fetchall() \
        if to_parse else []
    parse_keys = {number: key for key, number in parse_ids.items()}
    parsed = [(parse, kind, text, *parse_cell(_sheet(parse_keys[parse][0]).column(parse_keys[parse][1]),
                                              parse_keys[parse][2], kind, text))
              for parse, kind, text in distinct]
    con.register("wb_parsed_arrow", pa.table(list(zip(*parsed, strict=True)) if parsed else [[]] * 5, schema=pa.schema(
        [("parse", pa.int32())] + [(name, pa.string()) for name in ("kind", "text", "value", "error")])))
    con.execute("CREATE OR REPLACE TEMP TABLE wb_parsed AS SELECT * FROM wb_parsed_arrow")
    con.unregister("wb_parsed_arrow")
    typed = {source.src: _typed_source(con, result, source, read_columns[source.src]) for source in usable}
    for sheet in SHEETS:
        sources = [source for source in usable if source.sheet is sheet]
        if sources:
            table = pa.concat_tables([typed[source.src] for source in sources])
            result.typed[sheet.name] = _check_required(result, sheet, sources, table)


def _sheet(name: str) -> Sheet:
    return next(sheet for sheet in SHEETS if sheet.name == name)


def _present(col_no: int) -> str:
    """SQL: the row has a cell in the column (wb_wide_<src> leaves out an empty text cell)."""
    return f"w.k{col_no} IS NOT NULL"


def _wide_cells(con, source: Source, col_nos: list[int]) -> None:
    """wb_wide_<src>: one row per row of the source below its header, with the kind (k<n>) and text
    (t<n>) of its cell in each column n read (both NULL for no cell or an empty text cell); from
    fastexcel's columns as they came when nothing changed its cells since (itscm/workbook/xlsx.py),
    else pivoted from `wb_cells`."""
    table = f"wb_wide_{int(source.src)}"
    if source.columns is not None:
        con.register("wb_sheet_columns", source.columns.table)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS "
                        + xlsx.wide_cells_sql("wb_sheet_columns", col_nos),
                        {"time_day": xlsx.time_day(source.columns.epoch_1904)})
        finally:
            con.unregister("wb_sheet_columns")
        return
    pivoted = ", ".join(f"any_value(kind) FILTER (WHERE col_no = {n}) AS k{n}, "
                        f"any_value(text) FILTER (WHERE col_no = {n}) AS t{n}" for n in col_nos)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT row_no{', ' + pivoted if pivoted else ''} "
                "FROM wb_cells WHERE src = $src AND row_no > 1 AND list_contains($cols, col_no) "
                f"AND NOT (kind = 's' AND {xlsx.BLANK_TEXT_SQL.format(text='text')}) GROUP BY row_no",
                {"src": source.src, "cols": col_nos})


def _typed_source(con, result: ReadResult, source: Source,
                  read_columns: list[tuple[int, Column, int | None]]) -> pa.Table:
    """One row per row of the source with a cell in a column read: src, row_no, ok, each field of
    the sheet typed as the store types it, has_<field> (the source carries that column) and
    present_<field> for the required ones; its cells' errors are added to the result's problems."""
    values, errors, joins = {}, {}, []
    text_read = False
    for col_no, column, parse in read_columns:
        present, kind, text = _present(col_no), f"w.k{col_no}", f"w.t{col_no}"
        if parse is not None:
            joins.append(f"LEFT JOIN wb_parsed p{col_no} ON p{col_no}.parse = {int(parse)} "
                         f"AND p{col_no}.kind = {kind} AND p{col_no}.text = {text}")
            values[column.field] = f"CASE WHEN {present} THEN p{col_no}.value END"
            errors[col_no] = f"CASE WHEN {present} THEN p{col_no}.error END"
        else:
            text_read = True
            values[column.field] = (f"CASE WHEN {present} AND {kind} NOT IN ('e', 'f') "
                                    f"THEN {_clean_text_sql(kind, text)} END")
            errors[col_no] = (f"CASE WHEN {present} THEN CASE {kind} WHEN 'e' THEN $error_value || {text} "
                              "WHEN 'f' THEN $formula_without_value END END")
    inner = [f"{int(source.src)}::INTEGER AS src", "w.row_no::INTEGER AS row_no"]
    inner += [f"TRY_CAST({values.get(column.field, 'NULL')} AS {column.store_type}) AS {column.field}"
              for column in source.sheet.columns]
    inner += [f"{error} AS error{col_no}" for col_no, error in errors.items()]
    inner += [f"{_present(col_no)} AS present_{column.field}" for col_no, column, _ in read_columns if column.required]
    blanks, flags = [], []
    for column in source.sheet.columns:
        carried = column.field in values
        # A file carrying the column: a closed list's value for a blank cell (lifecycle live, plan
        # status draft); an export's blank cell leaves the stored value (Source.blank_keeps).
        if carried and column.blank and not source.blank_keeps:
            blanks.append(f"coalesce({column.field}, '{column.blank}') AS {column.field}")
        flags.append(f"{column.field} IS NOT NULL AS has_{column.field}" if carried and source.blank_keeps
                     else f"{'TRUE' if carried else 'FALSE'} AS has_{column.field}")
    anywhere = " OR ".join(_present(col_no) for col_no in errors) or "FALSE"
    table = con.execute(f"""
        SELECT src, row_no, TRUE AS ok, * EXCLUDE (src, row_no){f" REPLACE ({', '.join(blanks)})" if blanks else ""},
               {', '.join(flags)}
        FROM (SELECT {', '.join(inner)} FROM wb_wide_{int(source.src)} w {' '.join(joins)} WHERE {anywhere}) r
        ORDER BY row_no
    """, {"error_value": ERROR_VALUE, "formula_without_value": FORMULA_WITHOUT_VALUE} if text_read else {}
    ).fetch_arrow_table()
    fields = {col_no: column.field for col_no, column, _ in read_columns}
    failed_anywhere = pa.array([False] * table.num_rows, pa.bool_())
    problems = []
    for col_no in errors:
        error_column = table.column(f"error{col_no}")
        if error_column.null_count == len(error_column):
            continue
        failed = pc.is_valid(error_column)
        failed_anywhere = pc.or_(failed_anywhere, failed)
        problems += [(row_no, col_no, error) for row_no, error in zip(
            table.column("row_no").filter(failed).to_pylist(), error_column.filter(failed).to_pylist(), strict=True)]
    if problems:
        # The cell as read (for a date, its ISO text), from wb_wide_<src>: the sheet's cells may not
        # be in wb_cells.
        texts = ", ".join(f"t{col_no}" for col_no in errors)
        raws = {row[0]: dict(zip(errors, row[1:], strict=True)) for row in con.execute(
            f"SELECT row_no, {texts} FROM wb_wide_{int(source.src)} WHERE list_contains($rows, row_no)",
            {"rows": sorted({row_no for row_no, _, _ in problems})}).fetchall()}
        for row_no, col_no, error in sorted(problems):
            result.problem(source, row_no, source.header_of(fields[col_no]), "error", error, raws[row_no][col_no])
    con.execute(f"DROP TABLE wb_wide_{int(source.src)}")
    table = table.set_column(table.schema.get_field_index("ok"), "ok", pc.invert(failed_anywhere))
    return table.drop_columns([f"error{col_no}" for col_no in errors])


def _check_required(result: ReadResult, sheet: Sheet, sources: list[Source], table: pa.Table) -> pa.Table:
    """A required cell left empty rejects its row (a refused one is reported by its parse already)."""
    required = [column for column in sheet.columns if column.required]
    if not required:
        return table
    by_src = {source.src: source for source in sources}
    missing_any = pa.array([False] * table.num_rows, pa.bool_())
    for column in required:
        missing = pc.invert(table.column(f"present_{column.field}"))
        missing_any = pc.or_(missing_any, missing)
        for src, row_no in zip(table.column("src").filter(missing).to_pylist(),
                               table.column("row_no").filter(missing).to_pylist(), strict=True):
            result.problem(by_src[src], row_no, by_src[src].header_of(column.field), "error",
                           f"{column.header} is required")
    ok = pc.and_(table.column("ok"), pc.invert(missing_any))
    table = table.set_column(table.schema.get_field_index("ok"), "ok", ok)
    return table.drop_columns([f"present_{column.field}" for column in required])
