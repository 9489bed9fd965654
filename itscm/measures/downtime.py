"""Downtime cost (DESIGN section 3).

Per incident: outage hours inside the period x the service's BIA impact cost per hour. The
outage ends at restored_at, else resolved_at (an estimate, flagged). With neither, a closed
incident has an unknown outage length (no hours, counted as "closed without a restore time") and
an open one is an ongoing outage counted up to the end of the as-of date. Hours with no matched
service or no BIA cost are unpriced: shown, never dropped. The breach part of an outage is the
time past opened_at + RTO, clipped to the period the same way.
"""

from __future__ import annotations

import pandas as pd

from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.store import Store

# Columns: incident_id, source, service_id, service_name (as logged), title, priority, opened_at,
# outage_end, end_basis ('restored' | 'resolved (estimate)' | 'ongoing' | 'closed without restore
# time'), service, unit, tier, rto_minutes, cost_per_hour, priced, window_start, window_end,
# outage_hours, breach_hours, cost, breach_cost. window_* is the outage clipped to the period.
OUTAGES_SQL = f"""
WITH scoped_services AS (
    SELECT s.service_key, s.service_id, s.name, s.tier, s.rto_minutes, s.impact_cost_per_hour, u.name AS unit
    FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id
    WHERE {SERVICE_SCOPE_SQL}
),
-- Two scans, so that DuckDB can skip row groups by their outage_end range in the first (the rows
-- are in time order); incidents without an outage end are few.
outages AS (
    SELECT i.incident_id, i.source, i.service_key, i.service_id, i.service_name, i.title, i.priority,
           i.opened_at, i.outage_end, i.rta_minutes AS outage_minutes,
           CASE WHEN i.restored_at IS NOT NULL THEN 'restored' ELSE 'resolved (estimate)' END AS end_basis
    FROM incidents i
    WHERE i.outage_end > $period_start AND i.opened_at < $period_end
    UNION ALL
    SELECT i.incident_id, i.source, i.service_key, i.service_id, i.service_name, i.title, i.priority,
           i.opened_at,
           CASE WHEN i.closed_at IS NULL OR i.closed_at >= $as_of_end THEN $as_of_end END, NULL,
           CASE WHEN i.closed_at IS NULL OR i.closed_at >= $as_of_end THEN 'ongoing'
                ELSE 'closed without restore time' END
    FROM incidents i
    WHERE i.outage_end IS NULL AND i.opened_at < $period_end
      AND (i.closed_at IS NULL OR i.closed_at >= $period_start)
),
clipped AS (
    SELECT o.* EXCLUDE (service_key), s.name AS service, s.unit, s.tier, s.rto_minutes,
           s.impact_cost_per_hour AS cost_per_hour,
           s.impact_cost_per_hour IS NOT NULL AS priced,
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
SELECT * EXCLUDE (breach_start, outage_minutes),
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


def downtime_summary(store: Store, filters: Filters) -> dict:
    """{total, breach_cost, priced_hours, unpriced_hours, incidents, ongoing, estimated_restores,
    closed_without_restore_time}."""
    sql = f"""
        SELECT coalesce(sum(cost), 0), coalesce(sum(breach_cost), 0),
               coalesce(sum(outage_hours) FILTER (WHERE priced), 0),
               coalesce(sum(outage_hours) FILTER (WHERE NOT priced OR priced IS NULL), 0),
               count(*), count(*) FILTER (WHERE end_basis = 'ongoing'),
               count(*) FILTER (WHERE end_basis = 'resolved (estimate)'),
               count(*) FILTER (WHERE end_basis = 'closed without restore time')
        FROM ({OUTAGES_SQL})
    """
    row = store.rows(sql, filters.query_params(store))[0]
    keys = ["total", "breach_cost", "priced_hours", "unpriced_hours", "incidents", "ongoing",
            "estimated_restores", "closed_without_restore_time"]
    summary = dict(zip(keys, row, strict=True))
    for key in ("total", "breach_cost", "priced_hours", "unpriced_hours"):
        summary[key] = round(float(summary[key]), 2)
    return summary


# Outage time is split across the months it spans, so a long outage is charged to each month.
_MONTHLY_SQL = f"""
WITH outages AS ({OUTAGES_SQL}),
months AS (
    SELECT range AS month_start, range + INTERVAL 1 MONTH AS month_end
    FROM range(date_trunc('month', $period_start), $period_end, INTERVAL 1 MONTH)
)
SELECT m.month_start::DATE AS month, o.*,
       greatest(epoch(least(o.window_end, m.month_end) - greatest(o.window_start, m.month_start)), 0)
           / 3600.0 AS month_hours,
       CASE WHEN o.rto_minutes IS NOT NULL THEN
           greatest(epoch(least(o.window_end, m.month_end)
                          - greatest(o.window_start, m.month_start,
                                     o.opened_at + to_minutes(o.rto_minutes::BIGINT))), 0) / 3600.0
       END AS month_breach_hours
FROM outages o
JOIN months m ON o.window_start < m.month_end AND o.window_end > m.month_start
"""


def downtime_by_month(store: Store, filters: Filters) -> pd.DataFrame:
    """month, cost, breach_cost, priced_hours, unpriced_hours."""
    sql = f"""
        SELECT month,
               coalesce(sum(month_hours * cost_per_hour), 0) AS cost,
               coalesce(sum(month_breach_hours * cost_per_hour), 0) AS breach_cost,
               coalesce(sum(month_hours) FILTER (WHERE priced), 0) AS priced_hours,
               coalesce(sum(month_hours) FILTER (WHERE priced IS NOT TRUE), 0) AS unpriced_hours
        FROM ({_MONTHLY_SQL}) GROUP BY month ORDER BY month
    """
    return store.df(sql, filters.query_params(store))


def downtime_by_unit(store: Store, filters: Filters) -> pd.DataFrame:
    """unit, incidents, outage_hours, cost, breach_cost, unpriced_hours."""
    sql = f"""
        SELECT coalesce(unit, CASE WHEN service IS NULL THEN '(unmatched)' ELSE '(no unit)' END) AS unit,
               count(*) AS incidents, sum(outage_hours) AS outage_hours,
               coalesce(sum(cost), 0) AS cost, coalesce(sum(breach_cost), 0) AS breach_cost,
               coalesce(sum(outage_hours) FILTER (WHERE priced IS NOT TRUE), 0) AS unpriced_hours
        FROM ({OUTAGES_SQL}) GROUP BY ALL ORDER BY cost DESC, unit
    """
    return store.df(sql, filters.query_params(store))


def top_cost_services(store: Store, filters: Filters, limit: int = 15) -> pd.DataFrame:
    """The services whose outages cost most: service, unit, tier, incidents, outage_hours, cost,
    breach_cost, cost_per_hour."""
    sql = f"""
        SELECT service, unit, tier, count(*) AS incidents, sum(outage_hours) AS outage_hours,
               sum(cost) AS cost, sum(breach_cost) AS breach_cost, any_value(cost_per_hour) AS cost_per_hour
        FROM ({OUTAGES_SQL}) WHERE priced
        GROUP BY service_id, service, unit, tier ORDER BY cost DESC, service LIMIT $limit
    """
    return store.df(sql, {**filters.query_params(store), "limit": limit})


def costliest_breaches(store: Store, filters: Filters, limit: int = 50) -> pd.DataFrame:
    """Incidents whose outage ran past the RTO, by the cost of the time beyond target."""
    sql = f"""
        SELECT incident_id, service, unit, tier, title, opened_at, outage_end, end_basis, rto_minutes,
               round(outage_hours, 2) AS outage_hours, round(breach_hours, 2) AS breach_hours,
               round(breach_cost, 2) AS breach_cost, round(cost, 2) AS cost
        FROM ({OUTAGES_SQL}) WHERE breach_hours > 0
        ORDER BY breach_cost DESC NULLS LAST, breach_hours DESC, incident_id LIMIT $limit
    """
    return store.df(sql, {**filters.query_params(store), "limit": limit})


def unpriced_outages(store: Store, filters: Filters, limit: int = 1000) -> pd.DataFrame:
    """Outage hours that carry no cost, by why and by the name logged."""
    sql = f"""
        SELECT CASE WHEN service IS NULL THEN 'no matching service' ELSE 'service has no BIA cost' END
                   AS reason,
               coalesce(service, service_name, '(blank)') AS name, count(*) AS incidents,
               sum(outage_hours) AS outage_hours
        FROM ({OUTAGES_SQL}) WHERE priced IS NOT TRUE
        GROUP BY ALL ORDER BY outage_hours DESC, name LIMIT $limit
    """
    return store.df(sql, {**filters.query_params(store), "limit": limit})
