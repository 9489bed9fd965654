"""CSV exports that are safe to open in a spreadsheet.

A cell starting with =, +, -, @, a tab or a carriage return is run as a formula by Excel and its
kin (OWASP, "CSV Injection"). Such text cells get a leading single quote, so they are shown as
text; numbers stay numbers, so a negative figure is not mangled.
"""

from __future__ import annotations

import pandas as pd

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_for_spreadsheets(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV (with a BOM, so Excel detects the encoding), formulas neutralised."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_cell)
    # CRLF as RFC 4180 says; it also makes the writer quote any cell holding a lone carriage return.
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
