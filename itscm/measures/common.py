"""Small helpers the measures share."""

from __future__ import annotations

import datetime as dt

from itscm.filters import Filters
from itscm.store import Store


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


def period_params(store: Store, filters: Filters) -> dict:
    """The period measures' parameters plus the period's whole calendar months, [body_start,
    body_end), read from the monthly rollup (itscm/derived.py); the days before and after them are
    computed from the incidents. Without a whole month, body_start = body_end = period_end."""
    params = filters.query_params(store)
    start, end = params["period_start"], params["period_end"]
    first = start if start.day == 1 else dt.datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    last = end.replace(day=1)
    if first >= last:
        first = last = end
    return {**params, "body_start": first, "body_end": last}
