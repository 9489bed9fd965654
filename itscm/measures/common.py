"""Small helpers the measures share."""

from __future__ import annotations

import datetime as dt


def percent(part: int | float, whole: int | float) -> float | None:
    """part / whole in percent, one decimal; None where there is nothing to divide."""
    if not whole:
        return None
    return round(100.0 * part / whole, 1)


def month_ends(first: dt.date, last: dt.date) -> list[dt.date]:
    """The last day of every month from `first`'s month to `last`'s, with `last` itself ending
    the running month (a trend point is never taken after the period ends)."""
    ends = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        next_first = dt.date(year + month // 12, month % 12 + 1, 1)
        ends.append(min(next_first - dt.timedelta(days=1), last))
        year, month = next_first.year, next_first.month
    return ends
