"""One cell of a closed-list, duration, money, date or yes/no column -> the value stored, or the
reason it is refused.

A cell arrives as its kind and its text, as the readers leave it (itscm/workbook/xlsx.py, and CSV
files, whose cells are all text): 's' text, 'n' a number as written in the file, 'd' a date cell
as ISO 8601 ('2026-03-31T00:00:00'), 'b' a yes/no cell ('TRUE' or 'FALSE'), 'e' an error value
('#N/A') and 'f' a formula whose value was never saved. The import parses each distinct
(column, kind, text) once, so a column of 60,000 dates costs a few hundred parses. Text columns
are cleaned in SQL (itscm/workbook/read.py).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from itscm.workbook.durations import DurationError, parse_duration
from itscm.workbook.sheets import CHOICE, DATE, DURATION, MONEY, TIERS, YESNO, Column

HIGHEST_COST = Decimal(10) ** 12
YES = {"yes", "y", "true", "1", "x"}
NO = {"no", "n", "false", "0"}
# An Excel time-of-day cell (a duration typed as 04:00) is a date on the epoch's first day.
_TIME_ONLY_DAYS = ("1899-12-30", "1899-12-31", "1904-01-01")
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_CURRENCY = re.compile(r"^(?:[A-Z]{3}|[€$£¥])?\s*(.*?)\s*(?:[A-Z]{3}|[€$£¥])?$")
_TIER = re.compile(r"^(?:tier\s*|t)?([1-4])(?:\.0*)?(?:\s*(?:-|–|:|\().*)?$", re.IGNORECASE)


class CellError(ValueError):
    """The reason a cell is refused."""


def choice_key(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text).strip().lower()


def parse_cell(column: Column, unit: str | None, kind: str, text: str) -> tuple[str | None, str | None]:
    """(the value as text, None) or (None, the reason). Values are canonical text: whole minutes,
    a number, an ISO date, a choice as the store writes it, 'true'/'false'; None for a blank cell
    (a closed list's `blank` value instead, when it has one)."""
    try:
        return _parse(column, unit, kind, text), None
    except (CellError, DurationError) as error:
        return None, str(error)


def _parse(column: Column, unit: str | None, kind: str, text: str) -> str | None:
    if kind == "e":
        raise CellError(f"the cell shows the error {text}")
    if kind == "f":
        raise CellError("a formula whose value was never saved: open and save the file in a spreadsheet, "
                        "or type the value")
    text = text.strip()
    if not text:
        return column.blank
    if column.kind == DURATION:
        if kind == "d":
            day, _, clock = text.partition("T")
            if day not in _TIME_ONLY_DAYS:
                raise CellError("a date, not a duration")
            return str(parse_duration(clock[:5]))
        if kind == "b":
            raise CellError("a yes/no value, not a duration")
        return str(parse_duration(text, unit))
    if column.kind == MONEY:
        # An amount per day (a BIA's "Cost per day", itscm/workbook/formats.py) is stored per hour.
        return _money(kind, text, per=24 if unit == "day" else 1)
    if column.kind == DATE:
        return _date(kind, text)
    if column.kind == YESNO:
        key = text.lower()
        if key in YES:
            return "true"
        if key in NO:
            return "false"
        raise CellError(f"{text!r} is neither yes nor no")
    if column.kind == CHOICE:
        return _choice(column, kind, text)
    raise CellError(f"no parser for {column.kind} columns")   # a mistake in sheets.py, not in the file


def _money(kind: str, text: str, per: int = 1) -> str:
    if kind in ("d", "b"):
        raise CellError("not an amount")
    body = _CURRENCY.match(text)[1].replace(" ", "").replace("\u00a0", "")
    if _THOUSANDS.match(body):
        body = body.replace(",", "")
    try:
        amount = Decimal(body)
    except InvalidOperation:
        raise CellError(f"{text!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise CellError("an amount cannot be negative" if amount < 0 else f"{text!r} is not an amount")
    if amount >= HIGHEST_COST:
        raise CellError(f"{text} is implausibly large for a cost per hour")
    return str(float(amount / per))


def _date(kind: str, text: str) -> str:
    if kind == "n":
        raise CellError("a number, not a date: format the cell as a date or write YYYY-MM-DD")
    if kind == "b":
        raise CellError("a yes/no value, not a date")
    match = _ISO_DATE.match(text)
    if not match:
        raise CellError(f"{text!r} is not a date: write YYYY-MM-DD (or format the cell as a date)")
    year, month, day = (int(part) for part in match.groups())
    try:
        value = dt.date(year, month, day)
    except ValueError:
        raise CellError(f"{text!r} is not a date in the calendar") from None
    if not 1900 <= value.year <= 2200:
        raise CellError(f"{text} is out of range for a continuity record")
    return value.isoformat()


def _choice(column: Column, kind: str, text: str) -> str:
    if column.choices == TIERS:
        tier = _TIER.match(text)
        if tier:
            return tier[1]
        raise CellError(f"{text!r} is not a tier (1 to 4)")
    if kind != "s":
        raise CellError(f"{text!r} is not one of: {', '.join(column.choices)}")
    wanted = choice_key(text)
    for choice in column.choices:
        if choice_key(choice) == wanted:
            return choice
    raise CellError(f"{text!r} is not one of: {', '.join(column.choices)}")
