"""UTF-8 CSV text -> the table `ingest_raw` in a scratch DuckDB, every field as text.

`ingest_raw` has `row_no` (the record's row as a spreadsheet user counts it: header = 1, first
data row = 2), `c0 .. c{n-1}` for the n header columns, and `c{n}`, which is non-NULL only when a
record has more fields than the header. Columns are addressed by position, never by the names in
the file, so no name from a user's CSV ever reaches SQL. A field present but empty is '' and a
field missing from a short record is NULL.

The fast path is DuckDB's parallel CSV reader. It skips blank lines, which would shift every row
number after one, so the records it returns are counted against the file's physical lines; when
they disagree beyond the newlines inside quoted fields, the file is re-read with Python's csv
module, which sees blank lines (slower, exact). Python's reader is also the fallback when DuckDB
refuses a file.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from itscm.ingest.decode import beside_the_read
from itscm.ingest.errors import IngestError

# A field equal to this string would be read as NULL; nothing real looks like it, so '' stays ''.
_NO_NULL_STRING = "\x01itscm-no-null\x01"


@dataclass(frozen=True)
class RawTable:
    records: int  # header included
    blank_rows: int  # blank lines between records, seen only by the exact path
    exact_path: bool  # True when Python's csv module read the file
    unbalanced_quotes: bool = False  # an odd number of '"': maybe a cell never closed


def load_raw(
    con: duckdb.DuckDBPyConnection,
    text: bytes,
    *,
    delimiter: str,
    n_columns: int,
    workdir: Path,
    file_name: str,
) -> RawTable:
    start, end = _content_span(text)
    path = workdir / "upload.csv"
    with open(path, "wb") as out:
        out.write(memoryview(text)[start:end])
        out.write(b"\n")
    span = (start, end)
    counting = beside_the_read(lambda: _byte_counts(text, span))   # while DuckDB reads the file
    try:
        records = _duckdb_read(con, path, delimiter, n_columns)
    except duckdb.Error:
        return _python_read(con, text, span, delimiter, n_columns, file_name)
    counts = counting.result()
    if _blank_lines_possible(con, counts, records, n_columns):
        con.execute("DROP TABLE ingest_raw_fast")
        return _python_read(con, text, span, delimiter, n_columns, file_name)
    con.execute("CREATE VIEW ingest_raw AS SELECT rowid + 1 AS row_no, * FROM ingest_raw_fast")
    return RawTable(records, 0, exact_path=False, unbalanced_quotes=counts.odd_quotes)


@dataclass(frozen=True)
class _ByteCounts:
    newline: bytes  # b"\n", or b"\r" for a file of old Mac line ends
    physical_lines: int
    # An unclosed quote makes every reader (DuckDB, Python, Excel) swallow the rest of the file
    # into one cell, silently; an odd count of quote characters is the cheap tell.
    odd_quotes: bool


def _byte_counts(text: bytes, span: tuple[int, int]) -> _ByteCounts:
    newline = b"\n" if text.find(b"\n", *span) >= 0 else b"\r"
    return _ByteCounts(newline, text.count(newline, *span) + 1, _odd_quotes(text, span))


def _odd_quotes(text: bytes, span: tuple[int, int]) -> bool:
    return text.count(b'"', *span) % 2 == 1


def _content_span(text: bytes) -> tuple[int, int]:
    """Where the text starts and ends once blank lines before the header and after the last row
    are dropped: the header is row 1, as the analyst counts, and trailing blank lines count for
    nothing (DuckDB and Python disagree on them)."""
    start, end = 0, len(text)
    while start < end and text[start] in (0x0A, 0x0D):
        start += 1
    while end > start and text[end - 1] in (0x0A, 0x0D):
        end -= 1
    return start, end


def _columns_literal(n_columns: int) -> str:
    # Generated names only: c0, c1, ... (plus one overflow column).
    return "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n_columns + 1)) + "}"


def _duckdb_read(con: duckdb.DuckDBPyConnection, path: Path, delimiter: str, n_columns: int) -> int:
    sql = (
        "CREATE TABLE ingest_raw_fast AS SELECT * FROM read_csv($path, auto_detect = false, header = false, "
        "skip = 0, delim = $delim, quote = '\"', escape = '\"', null_padding = true, strict_mode = false, "
        f"nullstr = $nullstr, parallel = PARALLEL, columns = {_columns_literal(n_columns)})"
    )
    params = {"path": str(path), "delim": delimiter, "nullstr": _NO_NULL_STRING}
    try:
        con.execute(sql.replace("PARALLEL", "true"), params)
    except duckdb.Error as error:
        # DuckDB's parallel scanner cannot pad short rows in a file with quoted newlines.
        if "parallel" not in str(error):
            raise
        con.execute(sql.replace("PARALLEL", "false"), params)
    return con.execute("SELECT count(*) FROM ingest_raw_fast").fetchone()[0]


def _blank_lines_possible(con: duckdb.DuckDBPyConnection, counts: _ByteCounts, records: int, n_columns: int) -> bool:
    physical_lines = counts.physical_lines
    if physical_lines == records:
        return False
    char = "chr(10)" if counts.newline == b"\n" else "chr(13)"
    embedded_sum = " + ".join(
        f"coalesce(sum(length(c{i}) - length(replace(c{i}, {char}, ''))), 0)" for i in range(n_columns + 1)
    )
    embedded = con.execute(f"SELECT {embedded_sum} FROM ingest_raw_fast").fetchone()[0]
    return physical_lines != records + embedded


def _python_read(
    con: duckdb.DuckDBPyConnection,
    text: bytes,
    span: tuple[int, int],
    delimiter: str,
    n_columns: int,
    file_name: str,
) -> RawTable:
    decoded = text[span[0] : span[1]].decode("utf-8", "replace")
    reader = csv.reader(io.StringIO(decoded, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    row_nos: list[int] = []
    columns: list[list[str | None]] = [[] for _ in range(n_columns + 1)]
    row_no = blank = 0
    try:
        for record in reader:
            row_no += 1
            if not record:
                blank += 1
                continue
            row_nos.append(row_no)
            width = len(record)
            for i in range(n_columns):
                columns[i].append(record[i] if i < width else None)
            columns[n_columns].append(record[n_columns] if width > n_columns else None)
    except csv.Error as error:
        raise IngestError(f"{file_name} cannot be read as CSV near row {row_no + 1}: {error}.") from None
    table = pa.table(
        {"row_no": pa.array(row_nos, pa.int64())}
        | {f"c{i}": pa.array(values, pa.string()) for i, values in enumerate(columns)}
    )
    con.register("ingest_raw_arrow", table)
    con.execute("CREATE TABLE ingest_raw AS SELECT * FROM ingest_raw_arrow")
    con.unregister("ingest_raw_arrow")
    return RawTable(len(row_nos), blank, exact_path=True, unbalanced_quotes=_odd_quotes(text, span))
