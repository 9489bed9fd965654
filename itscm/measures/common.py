"""Small helpers the measures share."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
    """The period measures' parameters plus the calendar months read from the monthly rollup,
    [body_start, body_end) (itscm/derived.py). The days before them (the head) are computed from
    the incidents. The period's last, partial month is either computed from the incidents too
    (the tail), or, when that is the cheaper read, taken whole from the rollup less the days after
    the period's end (the complement): then body_end is past period_end. Each head, tail or
    complement lies within one calendar month. Without a whole month in the period it is all head."""
    params = filters.query_params(store)
    start, end = params["period_start"], params["period_end"]
    first = start if start.day == 1 else _next_month(start)
    last = end.replace(day=1)
    if first > last:  # within one calendar month: all head
        first = last = end
    elif last < end and _complement_is_cheaper(store, last, end):
        last = _next_month(last)
    return {**params, "body_start": first, "body_end": last}


def _next_month(day: dt.datetime) -> dt.datetime:
    return dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1)


def _complement_is_cheaper(store: Store, month_start: dt.datetime, end: dt.datetime) -> bool:
    """Whether the days of `end`'s month from `end` on are fewer to read than those before it,
    or hold nothing at all: as of today, nothing later has been recorded yet (the usual case)."""
    if _next_month(month_start) - end < end - month_start:
        return True
    return _nothing_after(store, end)


# No incident opened, and no outage ended, at or after the period's end. Two scans, so that each
# skips every row group by its own column's range.
_NOTHING_AFTER_SQL = """
SELECT NOT EXISTS (SELECT 1 FROM incidents WHERE opened_at >= $end)
   AND NOT EXISTS (SELECT 1 FROM incidents WHERE outage_end >= $end)
"""


def _nothing_after(store: Store, end: dt.datetime) -> bool:
    return bool(store.scalar(_NOTHING_AFTER_SQL, {"end": end}))


def incidents_scan(columns: str, where: str, *, few: bool = False, matched_only: bool = False) -> str:
    """SELECT service_key, unmatched, unmatched_name, <columns> FROM incidents WHERE <where>.

    Many rows: two scans, matched incidents without reading any text column (most of the cost of
    a scan), the rest with the name they were logged under (filtering on the integer key: testing
    a text column for NULL reads all of it). `few`: one scan, the text read for the rows kept.
    `matched_only`: the matched incidents alone, for figures unmatched ones never enter (events
    judged against an RTO, priced downtime). Incidents naming a service that no longer exists come
    out as neither matched nor unmatched, and no measure places them. Arguments are constant SQL."""
    matched = f"""
        SELECT service_key, FALSE AS unmatched, NULL::TEXT AS unmatched_name, {columns}
        FROM incidents WHERE service_key IS NOT NULL AND {where}
    """
    if matched_only:
        return matched
    if few:
        return f"""
        SELECT service_key, service_id IS NULL AS unmatched,
               CASE WHEN service_id IS NULL THEN service_name END AS unmatched_name, {columns}
        FROM incidents WHERE {where}
    """
    return f"""{matched}
        UNION ALL
        SELECT NULL::INTEGER, service_id IS NULL, service_name, {columns}
        FROM incidents WHERE service_key IS NULL AND {where}
    """


# Long-lived, so that each worker keeps its one cursor per store (Store.cursor is per thread).
_QUERY_WORKERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="itscm-query")


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """The results of independent queries of one composite measure, run at once on the workers'
    own cursors. A DuckDB query leaves cores idle while it is planned and while its small scans
    start, so on two cores two at a time finish sooner than one after another; the work done is
    the same. Never call it from inside one of its own calls: the workers would wait on each other."""
    futures = [_QUERY_WORKERS.submit(call) for call in calls]
    return [future.result() for future in futures]
