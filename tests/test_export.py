"""Exports that a spreadsheet opens safely, and user text shown as text."""

import csv
import io

import pandas as pd
import pytest

from itscm.export import csv_for_spreadsheets
from itscm.ui import plain

pytestmark = pytest.mark.no_store   # opens no store: not run again on DuckLake

def test_formula_cells_are_neutralised_and_numbers_kept():
    frame = pd.DataFrame({
        "title": ["=HYPERLINK(\"http://x\",\"click\")", "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR",
                  "plain text", "a=b"],
        "cost": [-5.5, 1, 2, 3, 4, 5, 6, 7],
    })
    text = csv_for_spreadsheets(frame).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["title"] for row in rows] == [
        "'=HYPERLINK(\"http://x\",\"click\")", "'+1+1", "'-2+3", "'@SUM(A1)", "'\tTab", "'\rCR",
        "plain text", "a=b"]
    assert rows[0]["cost"] == "-5.5"   # a negative number is a number, not a formula


def test_export_starts_with_a_bom_for_excel():
    assert csv_for_spreadsheets(pd.DataFrame({"a": ["x"]})).startswith(b"\xef\xbb\xbf")


def test_plain_shows_markup_as_text():
    assert plain("<script>alert(1)</script>") == "\\<script\\>alert\\(1\\)\\</script\\>"
    assert plain("**bold** [x](javascript:y) $E=mc^2$") == (
        "\\*\\*bold\\*\\* \\[x\\]\\(javascript\\:y\\) \\$E=mc^2\\$")
    assert plain("Retail Banking") == "Retail Banking"
