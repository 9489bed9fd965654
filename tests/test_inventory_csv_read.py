"""The CSV reader's cells: row numbers as a spreadsheet shows them, blank cells dropped as Python's
str.strip() would drop them, quoting as the csv module reads it (itscm/workbook/read.py)."""

import duckdb
import pytest

from itscm.workbook import read, xlsx
from itscm.workbook.errors import WorkbookError

pytestmark = pytest.mark.no_store   # opens no store: not run again on DuckLake


def cells(data: bytes, src: int = 4):
    con = duckdb.connect()
    con.execute(xlsx.CELLS_TABLE_SQL)
    header, records = read._parse_csv(data, "services.csv")
    _columns, rows = read._csv_source(con, records, len(header), src, as_cells=True)
    assert read._csv_rows(records) == rows          # as the file's columns count them
    return header, rows, con.execute("SELECT src, row_no, col_no, kind, text FROM wb_cells ORDER BY ALL").fetchall()


def test_row_numbers_count_empty_lines_and_quoted_line_breaks():
    header, rows, found = cells(b'service_id,name\r\nsvc-1,"two\nlines"\r\n\r\nsvc-2,\r\n')
    assert header == ["service_id", "name"]
    assert rows == 2
    assert found == [(4, 2, 0, "s", "svc-1"), (4, 2, 1, "s", "two\nlines"), (4, 4, 0, "s", "svc-2")]


def test_a_cell_of_unicode_whitespace_is_empty_and_text_keeps_its_spaces():
    data = "service_id,name,owner\n\u00a0\u3000,\t, \n \u2003x ,\x1c,'=1\n".encode()
    _header, rows, found = cells(data)
    assert rows == 1     # the first data row holds only whitespace
    assert found == [(4, 3, 0, "s", " \u2003x "), (4, 3, 2, "s", "'=1")]


def test_rows_past_the_cap_are_refused(monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS_PER_SHEET", 3)
    assert cells(b"service_id\na\nb\nc\n")[1] == 3
    with pytest.raises(WorkbookError, match="more than 3 rows"):
        cells(b"service_id\na\nb\nc\nd\n")


def test_the_thread_setting_is_restored():
    con = duckdb.connect()
    con.execute(xlsx.CELLS_TABLE_SQL)
    con.execute("SET threads = 2")
    header, records = read._parse_csv(b"service_id\nsvc-1\n", "services.csv")
    read._csv_source(con, records, len(header), 0, as_cells=True)
    assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 2
