"""Small helpers the measures share."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


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


# Long-lived, so that each worker keeps its one cursor per store (Store.cursor is per thread).
_QUERY_WORKERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="itscm-query")


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """The results of independent queries of one composite measure, run at once on the workers'
    own cursors. A DuckDB query leaves cores idle while it is planned and while its small scans
    start, so on two cores two at a time finish sooner than one after another; the work done is
    the same. Never call it from inside one of its own calls: the workers would wait on each other."""
    futures = [_QUERY_WORKERS.submit(call) for call in calls]
    return [future.result() for future in futures]
