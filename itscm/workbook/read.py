"""Files -> one typed table per sheet, and the problems of every cell.

An import reads one or more files: workbooks (every sheet named after a sheet of
itscm/workbook/sheets.py) and CSV files (named after the sheet they hold, `services.csv`). A sheet
is kept as its columns of text (a plain sheet fastexcel read, a CSV file), or as rows of one cell
each in a scratch DuckDB (`wb_cells`: openpyxl's sheets, a recognised export whose row rules work
on cells), pivoted into the same columns when typed. Each column's header says which field it
fills; each distinct value of a closed-list, duration, money, date or yes/no column is parsed
once in Python (itscm/workbook/cells.py) and taken back by the column's dictionary indices; text
is cleaned in SQL unless it plainly needs no cleaning; each row is typed as the store types it,
with `has_<field>` saying whether that row's file carried the column (a file updates only the
columns it carries).

Rows are kept even when a cell is refused (`ok` is false): a refused row still names its service,
so that service is not mistaken for one absent from the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePath

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    # The source's cells as columns (a plain sheet fastexcel read, xlsx.RawSheet.columns; a CSV
    # file not recognised as an export): the column number as text -> the cell's text (null: no
    # cell), and row_no; typed straight from them. None: the cells are rows of wb_cells.
    # `cells_from` says how such a column's text gives a cell's kind and text (_CELL_SQL).
    columns: pa.Table | None = None
    cells_from: str = "cells"
    epoch_1904: bool = False

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
        for source in result.sources:
            source.columns = None        # typed: a preview keeps the typed rows, not the cells as well
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
            source = Source(raw.src, display, found.format if found else "xlsx", raw.title,
                            found.sheet if found else sheet, raw.header,
                            found.match if found else match_header(sheet, raw.header), raw.rows, raw.reader,
                            columns=raw.columns, cells_from="fastexcel", epoch_1904=raw.epoch_1904)
            if found is not None and source.columns is not None:
                # The export's row rules (itscm/workbook/formats.py) work on the cells.
                xlsx.cells_into_table(con, source.columns, source.src, source.epoch_1904,
                                      rows=(2, source.columns.num_rows))
                source.columns = None
            _add_source(con, result, source, found)
        if ignored:
            result.problem(None, None, None, "warning",
                           f"sheet(s) {', '.join(map(repr, ignored))} are not inventory sheets; not read",
                           file=display)
        if not read:
            result.problem(None, None, None, "warning", "no sheet is named after an inventory sheet or has the "
                           "header of a recognised export", file=display)
        return
    sheet = sheet_named(PurePath(name).stem)
    header, records = _parse_csv(data, display)
    found = recognise(header, sheet)
    if found is None and sheet is None:
        raise WorkbookError(f"{display}: a CSV file is named after the sheet it holds ("
                            + ", ".join(f"{s.name}.csv" for s in SHEETS) + ") or has the header of a "
                            "recognised export (" + ", ".join(LABELS.values()) + ").")
    result.files.append(FileRead(display, "csv", sha256, len(data)))
    # A recognised export's row rules (itscm/workbook/formats.py) work on the cells.
    columns, rows = _csv_source(con, records, len(header), first_src, as_cells=found is not None)
    _add_source(con, result, Source(first_src, display, found.format if found else "csv", display,
                                    found.sheet if found else sheet, header,
                                    found.match if found else match_header(sheet, header), rows, "csv",
                                    columns=columns, cells_from="csv"), found)


def _add_source(con, result: ReadResult, source: Source, found) -> None:
    result.sources.append(source)
    if found is not None:
        source.blank_keeps = True
        prepare(con, result, source, found)


# The characters Python's str.strip() removes (every chr(code) whose isspace() is true), for DuckDB's
# trim: a CSV cell is empty, and a row filled, exactly as the per-cell Python loop this replaced said.
_PYTHON_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                      "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _parse_csv(data: bytes, name: str) -> tuple[list[str | None], list[list[str]]]:
    """The header (each name stripped, None for an empty one) and the records below it."""
    try:
        decoded = decode_upload(data, name, max_bytes=xlsx.MAX_FILE_BYTES)
    except IngestError as error:
        raise WorkbookError(str(error)) from None
    text = decoded.text.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=decoded.delimiter, quotechar='"', strict=False)
    try:
        header = [value.strip() or None for value in next(reader, [])]
        # The records (the csv module in C), one past the cap so that a longer file is refused.
        records = list(itertools.islice(reader, xlsx.MAX_ROWS_PER_SHEET))
        if next(reader, None) is not None:
            raise WorkbookError(f"{name} has more than {xlsx.MAX_ROWS_PER_SHEET:,} rows (an inventory has "
                                "far fewer; split it into several files).")
    except csv.Error as error:
        raise WorkbookError(f"{name} is not a readable CSV file ({error}).") from None
    return header, records


def _csv_source(con, records: list[list[str]], width: int, src: int, *, as_cells: bool) -> tuple[pa.Table | None, int]:
    """(Source.columns, rows holding a cell): the records as columns, or (None, ...) with their
    cells in wb_cells when `as_cells`."""
    if as_cells:
        return None, _csv_cells(con, records, src)
    return _csv_columns(records, width), _csv_rows(records)


def _csv_rows(records: list[list[str]]) -> int:
    """Rows holding a cell that is not blank (Python's str.strip() whitespace); an empty line is a row
    of none."""
    return sum(1 for record in records if any(cell.strip() for cell in record))


def _csv_columns(records: list[list[str]], width: int) -> pa.Table:
    """The records as a text column per column of the header (null where a record stops short),
    and row_no (the header is row 1; an empty line is a row)."""
    columns = list(itertools.zip_longest(*records))[:width] if records else []
    table = {str(number): pa.array(column, pa.string()) for number, column in enumerate(columns)}
    table.update({str(number): pa.nulls(len(records), pa.string()) for number in range(len(columns), width)})
    table["row_no"] = pa.array(range(2, len(records) + 2), pa.int32())
    return pa.table(table)


def _csv_cells(con, records: list[list[str]], src: int) -> int:
    """The records' cells into wb_cells (each placed and filtered in DuckDB, not in a Python loop
    over a million cells); the rows holding one."""
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
    return con.execute("SELECT count(DISTINCT row_no) FROM wb_cells WHERE src = $src", {"src": src}).fetchall()[0][0]


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


# How a column's text (`raw`) gives a cell's kind and its text as wb_cells would hold it, per
# Source.cells_from; `present` is whether it is a cell at all. fastexcel's text by the reader's own
# SQL; a CSV cell is text, and blank when Python's strip() leaves nothing; a column pivoted from
# wb_cells holds each cell's kind followed by its text.
_CELL_SQL = {
    "fastexcel": (xlsx.KIND_SQL, xlsx.TEXT_SQL, "TRUE"),
    "csv": ("'s'", "raw", "trim(raw, $whitespace) <> ''"),
    "cells": ("left(raw, 1)", "substr(raw, 2)", "TRUE"),
}
_CELLS_SQL = """
SELECT col, i, v.text, present, CASE WHEN present AND v.kind NOT IN ('e', 'f') THEN {clean} END AS value,
       CASE WHEN present THEN CASE v.kind WHEN 'e' THEN 'the cell shows the error ' || v.text
                                          WHEN 'f' THEN 'a formula whose value was never saved: open and save '
                                                        || 'the file in a spreadsheet, or type the value' END
       END AS error, v.kind
FROM (SELECT col, i, kind, text, {present} AND NOT (kind = 's' AND trim(text) = '') AS present
      FROM (SELECT col, i, raw, kind, {text} AS text FROM (SELECT col, i, raw, {kind} AS kind FROM wb_raw))) v
ORDER BY col, i
"""
# Text whose first and last characters are letters, digits, punctuation or symbols: DuckDB's trim
# (which removes Unicode space separators) and Python's strip() leave it as it is. Such text, not
# starting with the quote that neutralised a formula, is its own cleaned value: the bulk of a
# column is typed without a pass through SQL.
_EDGE = r"[\pL\pN\pP\pS]"
_UNTRIMMED = f"^{_EDGE}(?s:.*{_EDGE})?$"


def _type_cells(con, result: ReadResult) -> None:
    """result.typed: per sheet, its sources' rows typed (_type_source), and a required cell left
    empty reported."""
    usable = [source for source in result.sources if source.usable]
    # Sources are typed in two threads (the machines this runs on have two cores), each on its own
    # cursor: most of the typing is pyarrow's and DuckDB's, which release the GIL. Their problems
    # are kept apart and reported in the sources' order, as one thread would.
    with ThreadPoolExecutor(max_workers=2) as typers:
        typing = [(source.src, typers.submit(_type_source_apart, con, source)) for source in usable]
        typed = {}
        for src, future in typing:
            typed[src], problems = future.result()
            result.problems += problems
    for sheet in SHEETS:
        sources = [source for source in usable if source.sheet is sheet]
        if sources:
            table = pa.concat_tables([typed[source.src] for source in sources])
            result.typed[sheet.name] = _check_required(result, sheet, sources, table)


def _type_source_apart(con, source: Source) -> tuple[pa.Table, list[dict]]:
    """_type_source on a cursor of its own, with the problems it finds."""
    cursor, found = con.cursor(), ReadResult()
    try:
        return _type_source(cursor, found, source), found.problems
    finally:
        cursor.close()


def _sheet(name: str) -> Sheet:
    return next(sheet for sheet in SHEETS if sheet.name == name)


def _wide(con, source: Source, col_nos: list[int]) -> pa.Table:
    """The source's rows below the header, a text column per column read (see Source.columns)."""
    if source.columns is not None:
        table = source.columns
        return table.filter(pc.greater(table.column("row_no"), 1))
    if not col_nos:
        return pa.table({"row_no": pa.array([], pa.int32())})
    pivoted = ", ".join(f'any_value(kind || text) FILTER (WHERE col_no = {int(n)}) AS "{int(n)}"' for n in col_nos)
    return con.execute(f"SELECT row_no, {pivoted} FROM wb_cells WHERE src = $src AND row_no > 1 "
                       "AND list_contains($cols, col_no) GROUP BY row_no ORDER BY row_no",
                       {"src": source.src, "cols": col_nos}).fetch_arrow_table()


def _cells_sql(con, source: Source, cells_from: str, raw: pa.Table) -> pa.Table:
    """col, i, text, present, value (a text cell's), error and kind of each (col, i, raw) row of `raw`,
    in that order."""
    kind, text, present = _CELL_SQL[cells_from]
    params = {"time_day": xlsx.time_day(source.epoch_1904)} if cells_from == "fastexcel" else \
        {"whitespace": _PYTHON_WHITESPACE} if cells_from == "csv" else {}
    con.register("wb_raw", raw)
    try:
        return con.execute(_CELLS_SQL.format(clean=_CLEAN_TEXT_SQL, present=present, text=text, kind=kind),
                           params).fetch_arrow_table()
    finally:
        con.unregister("wb_raw")


# The Arrow type DuckDB gives each store type.
_ARROW_TYPES = {"INTEGER": pa.int32(), "DOUBLE": pa.float64(), "DATE": pa.date32(), "BOOLEAN": pa.bool_(),
                "VARCHAR": pa.string()}


def _type_source(con, result: ReadResult, source: Source) -> pa.Table:
    """One row per row of the source with a cell in a column read: src, row_no, ok, each field of
    the sheet typed as the store types it, has_<field> (the row's file carries that column) and
    present_<field> for the required ones; its cells' errors go to the result's problems.

    A closed-list, duration, money, date or yes/no column is parsed once per distinct text
    (itscm/workbook/cells.py) and its values taken back by the dictionary's indices; a text column's
    cells are their own values but for those _UNTRIMMED or a rewritten kind sends through SQL."""
    read = sorted(source.match.columns.items())
    wide = _wide(con, source, [col_no for col_no, _ in read])
    cells_from = source.cells_from if source.columns is not None else "cells"
    count = wide.num_rows
    raws, parsed, slow = {}, {}, []
    for col_no, column in read:
        raw = wide.column(str(col_no)).combine_chunks() if str(col_no) in wide.column_names \
            else pa.nulls(count, pa.string())
        raw = raw.cast(pa.string())
        raw = pc.if_else(pc.equal(raw, ""), pa.scalar(None, pa.string()), raw)
        raws[col_no] = raw
        if column.kind in (TEXT, LIST):
            if cells_from == "cells":
                own = np.zeros(count, bool)
            else:
                own = pc.and_not(pc.match_substring_regex(raw, _UNTRIMMED), pc.starts_with(raw, "'"))
                if cells_from == "fastexcel":
                    own = pc.and_not(own, pc.match_substring_regex(raw, xlsx.REWRITTEN_TEXT))
                own = pc.fill_null(own, False).to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(~own & raw.is_valid().to_numpy(zero_copy_only=False))
            slow.append((col_no, rows, raw.take(pa.array(rows, pa.int32()))))
            raws[col_no] = (raw, own, rows)
        else:
            encoded = pc.dictionary_encode(raw)
            parsed[col_no] = encoded
            slow.append((col_no, np.arange(len(encoded.dictionary)), encoded.dictionary))
    cells = _cells_sql(con, source, cells_from, pa.table({
        "col": pa.array(np.concatenate([np.full(len(rows), col_no) for col_no, rows, _ in slow] or [[]]), pa.int32()),
        "i": pa.array(np.concatenate([rows for _, rows, _ in slow] or [[]]), pa.int32()),
        "raw": pa.concat_arrays([values for _, _, values in slow]) if slow else pa.array([], pa.string())}))
    by_col = {col_no: cells.filter(pc.equal(cells.column("col"), col_no)) for col_no, _ in read}
    values, errors, texts, presents = {}, {}, {}, {}
    for col_no, column in read:
        done = by_col[col_no]
        if col_no in parsed:
            encoded, unit = parsed[col_no], source.match.units.get(column.field)
            outcomes = [parse_cell(column, unit, kind, text) if present else (None, None)
                        for kind, text, present in zip(done.column("kind").to_pylist(), done.column("text").to_pylist(),
                                                       done.column("present").to_pylist(), strict=True)]
            typed = _store_typed(con, column.store_type, [value for value, _ in outcomes])
            indices = encoded.indices
            values[col_no] = typed.take(indices)
            errors[col_no] = pa.array([error for _, error in outcomes], pa.string()).take(indices)
            texts[col_no] = done.column("text").take(indices)
            presents[col_no] = pc.fill_null(done.column("present").take(indices), False)
        else:
            raw, own, rows = raws[col_no]
            # Where each slow row's answer is in `done` (the rows it holds, in order), else null.
            where = np.full(count, -1)
            where[rows] = np.arange(len(rows))
            at = pa.array(where, pa.int32(), mask=where < 0)
            own_array = pa.array(own)
            values[col_no] = pc.if_else(own_array, raw, done.column("value").take(at))
            errors[col_no] = done.column("error").take(at)
            texts[col_no] = pc.if_else(own_array, raw, done.column("text").take(at))
            presents[col_no] = pc.or_(own_array, pc.fill_null(done.column("present").take(at), False))
    present_anywhere = np.zeros(count, bool)
    failed = np.zeros(count, bool)
    for col_no, _ in read:
        present_anywhere |= presents[col_no].to_numpy(zero_copy_only=False)
        failed |= errors[col_no].is_valid().to_numpy(zero_copy_only=False)
    keep = pa.array(present_anywhere)
    row_nos = wide.column("row_no").combine_chunks().cast(pa.int32())
    problems = []
    for col_no, column in read:
        broken = np.flatnonzero(errors[col_no].is_valid().to_numpy(zero_copy_only=False))
        if len(broken):
            header = source.header_of(column.field)
            at = pa.array(broken)
            problems += [(row_no, col_no, header, error, text) for row_no, error, text in zip(
                row_nos.take(at).to_pylist(), errors[col_no].take(at).to_pylist(), texts[col_no].take(at).to_pylist(),
                strict=True)]
    for row_no, _, header, error, text in sorted(problems, key=lambda problem: problem[:2]):
        result.problem(source, row_no, header, "error", error, text)
    fields = {column.field: col_no for col_no, column in read}
    out = {"src": pa.array(np.full(int(present_anywhere.sum()), source.src), pa.int32()),
           "row_no": row_nos.filter(keep), "ok": pa.array(~failed[present_anywhere])}
    flags = {}
    for column in source.sheet.columns:
        if column.field in fields:
            value = values[fields[column.field]].filter(keep)
            flags[f"has_{column.field}"] = value.is_valid() if source.blank_keeps else pa.array(
                np.ones(len(value), bool))
            if column.blank and not source.blank_keeps:
                # A closed list's value for a blank cell (lifecycle live, plan status draft).
                value = pc.fill_null(value, pa.scalar(column.blank, value.type))
        else:
            value = pa.nulls(len(out["row_no"]), _ARROW_TYPES[column.store_type])
            flags[f"has_{column.field}"] = pa.array(np.zeros(len(value), bool))
        out[column.field] = value
    for column in source.sheet.columns:
        if column.required:
            out[f"present_{column.field}"] = presents[fields[column.field]].filter(keep) \
                if column.field in fields else pa.array(np.zeros(len(out["row_no"]), bool))
    return pa.table({**out, **flags})


def _store_typed(con, store_type: str, values: list[str | None]) -> pa.Array:
    """Canonical texts (itscm/workbook/cells.py) cast as the store types the column (TRY_CAST: a
    value out of the type's range is none)."""
    if store_type not in _ARROW_TYPES:
        raise ValueError(f"no store type {store_type}")      # a mistake in sheets.py, not in the file
    if store_type == "VARCHAR":
        return pa.array(values, pa.string())
    con.register("wb_values_to_type", pa.table({"value": pa.array(values, pa.string())}))
    try:
        return con.execute(f"SELECT TRY_CAST(value AS {store_type}) AS value FROM wb_values_to_type").fetch_arrow_table(
        ).column("value").combine_chunks()
    finally:
        con.unregister("wb_values_to_type")


def _check_required(result: ReadResult, sheet: Sheet, sources: list[Source], table: pa.Table) -> pa.Table:
    """A required cell left empty rejects its row (a refused one is reported by its parse already)."""
    required = [column for column in sheet.columns if column.required]
    if required:
        by_src = {source.src: source for source in sources}
        srcs, row_nos = table.column("src").to_numpy(), table.column("row_no").to_numpy()
        missing_any = np.zeros(table.num_rows, bool)
        for column in required:
            missing = ~table.column(f"present_{column.field}").to_numpy(zero_copy_only=False)
            missing_any |= missing
            for src, row_no in zip(srcs[missing].tolist(), row_nos[missing].tolist(), strict=True):
                result.problem(by_src[src], row_no, by_src[src].header_of(column.field), "error",
                               f"{column.header} is required")
        ok = pa.array(table.column("ok").to_numpy(zero_copy_only=False) & ~missing_any)
        table = table.set_column(table.schema.get_field_index("ok"), "ok", ok)
        table = table.drop_columns([f"present_{column.field}" for column in required])
    return table
