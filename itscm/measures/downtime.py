"""Downtime cost (docs/DESIGN.md §4.3).

Per incident: outage hours inside the period x the service's BIA impact cost per hour. The
outage ends at restored_at, else resolved_at (an estimate, flagged). With neither, a closed
incident has an unknown outage length (no hours, counted as "closed without a restore time") and
an open one is an ongoing outage counted up to the end of the as-of date. Hours with no matched
service or no BIA cost are unpriced: shown, never dropped. The breach part of an outage is the
time past opened_at + RTO, clipped to the period the same way.

Downtime cost counts every incident whatever the filter's scope (docs/DESIGN.md §17): what an
outage cost does not depend on whether it was a continuity event. The rows say which were
(`continuity`), and the summary gives the continuity events' share of the cost.
"""

from __future__ import annotations

import pandas as pd

from itscm.filters import Filters, scoped_services_sql
from itscm.measures.common import percent
from itscm.rollup import (
    breach_seconds_sql,
    continuity_event_sql,
    overlap_seconds_sql,
    period_outages_sql,
    period_params,
)
from itscm.store import Store, reads_one_snapshot

# Columns: incident_id, source, service_id, service_name (as logged), title, priority, opened_at,
# outage_end, end_basis ('restored' | 'resolved (estimate)' | 'ongoing' | 'closed without restore
# time'), service, unit, tier, rto_minutes, cost_per_hour, priced, window_start, window_end,
# outage_hours, breach_hours, cost, breach_cost, continuity (a continuity event), in_scope (in the
# filter's scope). window_* is the outage clipped to the period.
OUTAGES_SQL = f"""
WITH scoped_services AS ({scoped_services_sql()}),
-- Two scans, so that DuckDB can skip row groups by their outage_end range in the first (the rows
-- are in time order); incidents without an outage end are few.
outages AS (
    SELECT i.incident_id, i.source, i.service_key, i.service_id, i.service_name, i.title, i.priority,
           i.opened_at, i.outage_end, i.rta_minutes AS outage_minutes,
           CASE WHEN i.restored_at IS NOT NULL THEN 'restored' ELSE 'resolved (estimate)' END AS end_basis,
           i.major, i.active_until
    FROM incidents i
    WHERE i.outage_end > $period_start AND i.opened_at < $period_end
    UNION ALL
    SELECT i.incident_id, i.source, i.service_key, i.service_id, i.service_name, i.title, i.priority,
           i.opened_at,
           CASE WHEN i.closed_at IS NULL OR i.closed_at >= $as_of_end THEN $as_of_end END, NULL,
           CASE WHEN i.closed_at IS NULL OR i.closed_at >= $as_of_end THEN 'ongoing'
                ELSE 'closed without restore time' END,
           i.major, i.active_until
    FROM incidents i
    WHERE i.outage_end IS NULL AND i.opened_at < $period_end
      AND (i.closed_at IS NULL OR i.closed_at >= $period_start)
),
clipped AS (
    SELECT o.* EXCLUDE (service_key), s.name AS service, s.unit, s.tier, s.rto_minutes,
           s.impact_cost_per_hour AS cost_per_hour,
           s.impact_cost_per_hour IS NOT NULL AS priced,
           -- outage_minutes is NULL exactly where outage_end stands for the as-of day, not an end
           {continuity_event_sql("o.priority", "o.major", "o.opened_at",
                                 "CASE WHEN o.outage_minutes IS NOT NULL THEN o.outage_end END",
                                 "o.active_until", "s.rto_minutes")} AS continuity,
           -- greatest() and least() skip NULLs: an unknown end or RTO must stay unknown here.
           greatest(o.opened_at, $period_start) AS window_start,
           CASE WHEN o.outage_end IS NOT NULL THEN least(o.outage_end, $period_end) END AS window_end,
           CASE WHEN s.rto_minutes IS NOT NULL
                THEN greatest(epoch(o.opened_at) + 60 * s.rto_minutes, epoch($period_start)) END
               AS breach_start
    FROM outages o
    LEFT JOIN scoped_services s ON s.service_key = o.service_key
    WHERE s.service_id IS NOT NULL OR (o.service_id IS NULL AND $all_units AND $all_tiers)
)
SELECT * EXCLUDE (breach_start, outage_minutes, major, active_until), $all_incidents OR continuity AS in_scope,
       -- Most outages lie wholly inside the period: their length is the stored outage_minutes.
       -- Only those crossing a period boundary are clipped, in seconds since the epoch (numbers
       -- are far cheaper per row than timestamp intervals at millions of rows).
       CASE WHEN outage_minutes IS NOT NULL AND opened_at >= $period_start AND outage_end <= $period_end
                THEN outage_minutes / 60.0
            ELSE coalesce(greatest(epoch(window_end) - epoch(window_start), 0) / 3600.0, 0) END AS outage_hours,
       CASE WHEN rto_minutes IS NULL THEN 0.0
            WHEN outage_minutes IS NOT NULL AND opened_at >= $period_start AND outage_end <= $period_end
                THEN greatest(outage_minutes - rto_minutes, 0) / 60.0
            ELSE coalesce(greatest(epoch(window_end) - breach_start, 0) / 3600.0, 0) END AS breach_hours,
       outage_hours * cost_per_hour AS cost,
       breach_hours * cost_per_hour AS breach_cost
FROM clipped
"""


# The same outages summed per service (or unmatched name) and month, from the rollup module's read
# of the period (itscm/rollup.py). Columns: month, service_id, service, unit, tier, rto_minutes,
# cost_per_hour, priced, unmatched, service_name (as logged, for unmatched incidents), incidents,
# estimated_restores, ongoing, closed_without_restore_time, outage_hours, breach_hours, cost,
# breach_cost.
def _outage_totals_sql(*, matched_only: bool) -> str:
    """OUTAGE_TOTALS_SQL, or with `matched_only` its rows for outages of a matched service alone."""
    return f"""
    WITH scoped_services AS ({scoped_services_sql()})
    SELECT t.month, t.service_key, s.service_id, s.name AS service, s.unit, s.tier, s.rto_minutes,
           s.impact_cost_per_hour AS cost_per_hour, s.impact_cost_per_hour IS NOT NULL AS priced,
           t.unmatched, t.unmatched_name AS service_name,
           t.outages AS incidents, t.estimated AS estimated_restores, t.ongoing,
           t.closed AS closed_without_restore_time,
           t.outage_seconds / 3600.0 AS outage_hours, t.breach_seconds / 3600.0 AS breach_hours,
           t.outage_seconds / 3600.0 * s.impact_cost_per_hour AS cost,
           t.breach_seconds / 3600.0 * s.impact_cost_per_hour AS breach_cost,
           t.continuity, $all_incidents OR t.continuity AS in_scope
    FROM ({period_outages_sql(matched_only=matched_only)}) t
    LEFT JOIN scoped_services s ON s.service_key = t.service_key
    WHERE s.service_id IS NOT NULL OR (t.unmatched AND $all_units AND $all_tiers)
    """


OUTAGE_TOTALS_SQL = _outage_totals_sql(matched_only=False)
MATCHED_OUTAGE_TOTALS_SQL = _outage_totals_sql(matched_only=True)


@reads_one_snapshot
def downtime_summary(store: Store, filters: Filters) -> dict:
    """{total, breach_cost, priced_hours, unpriced_hours, incidents, ongoing, estimated_restores,
    closed_without_restore_time, continuity_cost, continuity_pct}: every incident's cost whatever
    the scope, and the continuity events' part of it (continuity_pct: of total; None when 0)."""
    sql = f"""
        SELECT coalesce(sum(cost), 0), coalesce(sum(breach_cost), 0),
               coalesce(sum(outage_hours) FILTER (WHERE priced), 0),
               coalesce(sum(outage_hours) FILTER (WHERE NOT priced OR priced IS NULL), 0),
               coalesce(sum(incidents + ongoing + closed_without_restore_time), 0)::BIGINT,
               coalesce(sum(ongoing), 0)::BIGINT, coalesce(sum(estimated_restores), 0)::BIGINT,
               coalesce(sum(closed_without_restore_time), 0)::BIGINT,
               coalesce(sum(cost) FILTER (WHERE continuity), 0)
        FROM ({OUTAGE_TOTALS_SQL})
    """
    row = store.rows(sql, period_params(store, filters))[0]
    keys = ["total", "breach_cost", "priced_hours", "unpriced_hours", "incidents", "ongoing",
            "estimated_restores", "closed_without_restore_time", "continuity_cost"]
    summary = dict(zip(keys, row, strict=True))
    for key in ("total", "breach_cost", "priced_hours", "unpriced_hours", "continuity_cost"):
        summary[key] = round(float(summary[key]), 2)
    summary["continuity_pct"] = percent(summary["continuity_cost"], summary["total"])
    return summary


@reads_one_snapshot
def downtime_total(store: Store, filters: Filters) -> float:
    """downtime_summary's total alone: priced outages only, so read without the unmatched incidents
    (the posture summary's previous period)."""
    total = store.scalar(f"SELECT coalesce(sum(cost), 0) FROM ({MATCHED_OUTAGE_TOTALS_SQL})",
                         period_params(store, filters))
    return round(float(total), 2)


@reads_one_snapshot
def downtime_by_month(store: Store, filters: Filters) -> pd.DataFrame:
    """month, cost, breach_cost, priced_hours, unpriced_hours."""
    sql = f"""
        SELECT month,
               coalesce(sum(cost), 0) AS cost,
               coalesce(sum(breach_cost), 0) AS breach_cost,
               coalesce(sum(outage_hours) FILTER (WHERE priced), 0) AS priced_hours,
               coalesce(sum(outage_hours) FILTER (WHERE priced IS NOT TRUE), 0) AS unpriced_hours
        FROM ({OUTAGE_TOTALS_SQL}) GROUP BY month HAVING sum(outage_hours) > 0 ORDER BY month
    """
    return store.df(sql, period_params(store, filters))


@reads_one_snapshot
def downtime_by_unit(store: Store, filters: Filters) -> pd.DataFrame:
    """unit, incidents, outage_hours, cost, breach_cost, unpriced_hours."""
    sql = f"""
        SELECT coalesce(unit, CASE WHEN service IS NULL THEN '(unmatched)' ELSE '(no unit)' END) AS unit,
               sum(incidents + ongoing + closed_without_restore_time)::BIGINT AS incidents,
               sum(outage_hours) AS outage_hours,
               coalesce(sum(cost), 0) AS cost, coalesce(sum(breach_cost), 0) AS breach_cost,
               coalesce(sum(outage_hours) FILTER (WHERE priced IS NOT TRUE), 0) AS unpriced_hours
        FROM ({OUTAGE_TOTALS_SQL}) GROUP BY ALL
        HAVING sum(incidents + ongoing + closed_without_restore_time) > 0 ORDER BY cost DESC, unit
    """
    return store.df(sql, period_params(store, filters))


@reads_one_snapshot
def top_cost_services(store: Store, filters: Filters, limit: int = 15) -> pd.DataFrame:
    """The services whose outages cost most: service, unit, tier, incidents, outage_hours, cost,
    breach_cost, cost_per_hour."""
    sql = f"""
        SELECT any_value(service) AS service, any_value(unit) AS unit, any_value(tier) AS tier,
               sum(incidents + ongoing + closed_without_restore_time)::BIGINT AS incidents,
               sum(outage_hours) AS outage_hours,
               sum(cost) AS cost, sum(breach_cost) AS breach_cost, any_value(cost_per_hour) AS cost_per_hour
        FROM ({OUTAGE_TOTALS_SQL}) WHERE priced
        GROUP BY service_key
        HAVING sum(incidents + ongoing + closed_without_restore_time) > 0
        ORDER BY cost DESC, service LIMIT $limit
    """
    return store.df(sql, {**period_params(store, filters), "limit": limit})


# Outages past their RTO, row by row, reading only the few columns that decide it before the
# rest: the same figures as OUTAGES_SQL for those rows (the tests compare them).
_BREACHES_SQL = f"""
WITH scoped_services AS ({scoped_services_sql(with_rto_only=True)}),
candidates AS (
    SELECT i.incident_id, i.title, i.opened_at, i.outage_end AS window_end, i.outage_end,
           CASE WHEN i.restored_at IS NOT NULL THEN 'restored' ELSE 'resolved (estimate)' END AS end_basis,
           s.*
    FROM incidents i JOIN scoped_services s ON s.service_key = i.service_key
    WHERE i.outage_end > $period_start AND i.opened_at < $period_end AND i.rta_minutes > s.rto_minutes
    UNION ALL
    SELECT i.incident_id, i.title, i.opened_at, $period_end, $as_of_end, 'ongoing', s.*
    FROM incidents i JOIN scoped_services s ON s.service_key = i.service_key
    WHERE i.outage_end IS NULL AND i.opened_at < $period_end AND i.active_until >= $as_of_end
),
measured AS (
    SELECT *, {overlap_seconds_sql("opened_at", "window_end", "$period_start", "$period_end")} / 3600.0
               AS outage_hours,
           {breach_seconds_sql("opened_at", "window_end", "rto_minutes", "$period_start", "$period_end")} / 3600.0
               AS breach_hours
    FROM candidates
),
worst AS (
    SELECT *, outage_hours * impact_cost_per_hour AS cost, breach_hours * impact_cost_per_hour AS breach_cost
    FROM measured WHERE breach_hours > 0
    ORDER BY breach_cost DESC NULLS LAST, breach_hours DESC, incident_id LIMIT $limit
)
SELECT incident_id, name AS service, unit, tier, title, opened_at, outage_end, end_basis,
       rto_minutes, round(outage_hours, 2) AS outage_hours, round(breach_hours, 2) AS breach_hours,
       round(breach_cost, 2) AS breach_cost, round(cost, 2) AS cost
FROM worst ORDER BY breach_cost DESC NULLS LAST, breach_hours DESC, incident_id
"""


@reads_one_snapshot
def costliest_breaches(store: Store, filters: Filters, limit: int = 50) -> pd.DataFrame:
    """Incidents whose outage ran past the RTO, by the cost of the time beyond target: every
    incident's, whatever the scope, as the rest of downtime cost."""
    params = {key: value for key, value in filters.query_params(store).items()
              if key != "all_incidents" and not key.startswith("event_")}   # parameters it has no use for
    return store.df(_BREACHES_SQL, {**params, "limit": limit})


@reads_one_snapshot
def unpriced_outages(store: Store, filters: Filters, limit: int = 1000) -> pd.DataFrame:
    """Outage hours that carry no cost, by why and by the name logged."""
    sql = f"""
        SELECT CASE WHEN any_value(service) IS NULL THEN 'no matching service' ELSE 'service has no BIA cost' END
                   AS reason,
               coalesce(any_value(service), any_value(service_name), '(blank)') AS name,
               sum(incidents + ongoing + closed_without_restore_time)::BIGINT AS incidents,
               sum(outage_hours) AS outage_hours
        FROM ({OUTAGE_TOTALS_SQL}) WHERE priced IS NOT TRUE
        GROUP BY service_key, service_name HAVING sum(incidents + ongoing + closed_without_restore_time) > 0
        ORDER BY outage_hours DESC, name LIMIT $limit
    """
    return store.df(sql, {**period_params(store, filters), "limit": limit})
