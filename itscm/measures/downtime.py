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

from itscm.derived import breach_seconds_sql, overlap_seconds_sql
from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.measures.common import incidents_scan, period_params
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


# The same outages summed per service (or unmatched name) and month: outage and breach seconds
# of the months of [body_start, body_end) from the monthly rollup (itscm/derived.py), of the
# days around them from incidents, less, when the last rollup month runs past the period (see
# period_params), what that month holds after the period's end; incidents without an outage end
# (ongoing or closed without a restore time) from incidents, since they depend on the as-of date.
# Columns: month, service_id, service, unit, tier, rto_minutes, cost_per_hour, priced, unmatched,
# service_name (as logged, for unmatched incidents), incidents, estimated_restores, ongoing,
# closed_without_restore_time, outage_hours, breach_hours, cost, breach_cost.
_ONGOING = "(closed_at IS NULL OR closed_at >= $as_of_end)"


def _outage_totals_sql(*, matched_only: bool) -> str:
    """OUTAGE_TOTALS_SQL, or with `matched_only` its rows for outages of a matched service alone."""
    def scan(columns: str, where: str, few: bool = False) -> str:
        return incidents_scan(columns, where, few=few, matched_only=matched_only)

    head = scan(
        "opened_at, restored_at IS NULL AS estimated, outage_end, $period_start AS seg_start, $body_start AS seg_end, "
        "date_trunc('month', $period_start)::DATE AS month, TRUE AS counted, 1 AS sign",
        "opened_at < $body_start AND outage_end > $period_start")
    # The constant guards ($body_end < $period_end...) let DuckDB drop a scan that is not needed.
    tail = scan(
        "opened_at, restored_at IS NULL, outage_end, $body_end, $period_end, date_trunc('month', $body_end)::DATE, "
        "opened_at >= $body_end, 1",
        "$body_end < $period_end AND opened_at < $period_end AND outage_end > $body_end")
    after = scan(
        "opened_at, restored_at IS NULL, outage_end, $period_end, $body_end, date_trunc('month', $period_end)::DATE, "
        "opened_at >= $period_end, -1",
        "$period_end < $body_end AND opened_at < $body_end AND outage_end > $period_end")
    open_before = scan(
        f"opened_at, CASE WHEN {_ONGOING} THEN 'ongoing' ELSE 'closed' END AS kind",
        "outage_end IS NULL AND opened_at < $body_start AND active_until >= $period_start", few=True)
    ongoing_since = scan(
        "opened_at, 'ongoing'",
        "outage_end IS NULL AND opened_at >= $body_start AND opened_at < $period_end AND active_until >= $as_of_end",
        few=True)
    closed_after = scan(
        "opened_at, 'closed'",
        "outage_end IS NULL AND opened_at >= $body_end AND opened_at < $period_end AND active_until < $as_of_end",
        few=True)
    opened_after = scan(
        "opened_at, 'after the period'",
        "$period_end < $body_end AND outage_end IS NULL AND opened_at >= $period_end AND opened_at < $body_end",
        few=True)
    matched_rollup_rows = "AND service_key IS NOT NULL" if matched_only else ""
    return f"""
    WITH scoped_services AS (
        SELECT s.service_key, s.service_id, s.name, s.tier, s.rto_minutes, s.impact_cost_per_hour, u.name AS unit
        FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id
        WHERE {SERVICE_SCOPE_SQL}
    ),
    -- Each scan below can skip the row groups outside its time range (the rows are in time order).
    ended AS (
        -- ended outages reaching into the head: counted there
        {head}
        UNION ALL
        -- ended outages reaching into the tail: counted there if opened there
        {tail}
        UNION ALL
        -- ended outages reaching past the period into its last rollup month: taken off that month
        {after}
    ),
    open AS (
        -- no outage end, opened before the whole months
        {open_before}
        UNION ALL
        -- still ongoing at the as-of date, opened since: the rollup counted those in whole months as closed
        {ongoing_since}
        UNION ALL
        -- closed without a restore time, opened after the whole months
        {closed_after}
        UNION ALL
        -- no outage end, opened after the period in its last rollup month: the rollup counted those
        {opened_after}
    ),
    segments AS (   -- the period cut at month starts, for ongoing outages
        SELECT m::DATE AS month, greatest(m, $period_start) AS seg_start,
               least(m + INTERVAL 1 MONTH, $period_end) AS seg_end
        FROM range(date_trunc('month', $period_start), $period_end, INTERVAL 1 MONTH) t(m)
    ),
    totals AS (
        SELECT service_key, unmatched, unmatched_name, month, opened AS incidents, estimated,
               0 AS ongoing, no_end AS closed, outage_seconds, breach_seconds
        FROM incident_months WHERE month >= $body_start::DATE AND month < $body_end::DATE {matched_rollup_rows}
        UNION ALL
        SELECT e.service_key, e.unmatched, e.unmatched_name, e.month,
               e.sign * e.counted::INTEGER, e.sign * (e.counted AND e.estimated)::INTEGER, 0, 0,
               e.sign * {overlap_seconds_sql("e.opened_at", "e.outage_end", "e.seg_start", "e.seg_end")},
               e.sign * coalesce({breach_seconds_sql("e.opened_at", "e.outage_end", "s.rto_minutes", "e.seg_start",
                                                     "e.seg_end")}, 0)
        FROM ended e LEFT JOIN services s ON s.service_key = e.service_key
        UNION ALL
        -- counted once, in the month their time in the period starts
        SELECT service_key, unmatched, unmatched_name, date_trunc('month', greatest(opened_at, $period_start))::DATE,
               0, 0, (kind = 'ongoing')::INTEGER,
               (kind = 'closed')::INTEGER - (kind = 'after the period')::INTEGER
                   - (kind = 'ongoing' AND opened_at >= $body_start AND opened_at < $body_end)::INTEGER,
               0, 0
        FROM open
        UNION ALL
        -- ongoing outages last to the end of the period, through every month segment
        SELECT o.service_key, o.unmatched, o.unmatched_name, g.month, 0, 0, 0, 0,
               {overlap_seconds_sql("o.opened_at", "$period_end", "g.seg_start", "g.seg_end")},
               coalesce({breach_seconds_sql("o.opened_at", "$period_end", "s.rto_minutes", "g.seg_start", "g.seg_end")},
                        0)
        FROM open o JOIN segments g ON g.seg_end > o.opened_at
        LEFT JOIN services s ON s.service_key = o.service_key
        WHERE o.kind = 'ongoing'
    )
    SELECT t.month, t.service_key, s.service_id, s.name AS service, s.unit, s.tier, s.rto_minutes,
           s.impact_cost_per_hour AS cost_per_hour, s.impact_cost_per_hour IS NOT NULL AS priced,
           t.unmatched, t.unmatched_name AS service_name,
           t.incidents, t.estimated AS estimated_restores, t.ongoing, t.closed AS closed_without_restore_time,
           t.outage_seconds / 3600.0 AS outage_hours, t.breach_seconds / 3600.0 AS breach_hours,
           t.outage_seconds / 3600.0 * s.impact_cost_per_hour AS cost,
           t.breach_seconds / 3600.0 * s.impact_cost_per_hour AS breach_cost
    FROM totals t
    LEFT JOIN scoped_services s ON s.service_key = t.service_key
    WHERE s.service_id IS NOT NULL OR (t.unmatched AND $all_units AND $all_tiers)
    """


OUTAGE_TOTALS_SQL = _outage_totals_sql(matched_only=False)
MATCHED_OUTAGE_TOTALS_SQL = _outage_totals_sql(matched_only=True)


def _params(store: Store, filters: Filters) -> dict:
    return period_params(store, filters)


def downtime_summary(store: Store, filters: Filters) -> dict:
    """{total, breach_cost, priced_hours, unpriced_hours, incidents, ongoing, estimated_restores,
    closed_without_restore_time}."""
    sql = f"""
        SELECT coalesce(sum(cost), 0), coalesce(sum(breach_cost), 0),
               coalesce(sum(outage_hours) FILTER (WHERE priced), 0),
               coalesce(sum(outage_hours) FILTER (WHERE NOT priced OR priced IS NULL), 0),
               coalesce(sum(incidents + ongoing + closed_without_restore_time), 0)::BIGINT,
               coalesce(sum(ongoing), 0)::BIGINT, coalesce(sum(estimated_restores), 0)::BIGINT,
               coalesce(sum(closed_without_restore_time), 0)::BIGINT
        FROM ({OUTAGE_TOTALS_SQL})
    """
    row = store.rows(sql, _params(store, filters))[0]
    keys = ["total", "breach_cost", "priced_hours", "unpriced_hours", "incidents", "ongoing",
            "estimated_restores", "closed_without_restore_time"]
    summary = dict(zip(keys, row, strict=True))
    for key in ("total", "breach_cost", "priced_hours", "unpriced_hours"):
        summary[key] = round(float(summary[key]), 2)
    return summary


def downtime_total(store: Store, filters: Filters) -> float:
    """downtime_summary's total alone: priced outages only, so read without the unmatched incidents
    (the posture summary's previous period)."""
    total = store.scalar(f"SELECT coalesce(sum(cost), 0) FROM ({MATCHED_OUTAGE_TOTALS_SQL})", _params(store, filters))
    return round(float(total), 2)


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
    return store.df(sql, _params(store, filters))


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
    return store.df(sql, _params(store, filters))


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
    return store.df(sql, {**_params(store, filters), "limit": limit})


# Outages past their RTO, row by row, reading only the few columns that decide it before the
# rest: the same figures as OUTAGES_SQL for those rows (the tests compare them).
_BREACHES_SQL = f"""
WITH scoped_services AS (
    SELECT s.service_key, s.name, s.tier, s.rto_minutes, s.impact_cost_per_hour, u.name AS unit
    FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id
    WHERE s.rto_minutes IS NOT NULL AND {SERVICE_SCOPE_SQL}
),
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


def costliest_breaches(store: Store, filters: Filters, limit: int = 50) -> pd.DataFrame:
    """Incidents whose outage ran past the RTO, by the cost of the time beyond target."""
    return store.df(_BREACHES_SQL, {**filters.query_params(store), "limit": limit})


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
    return store.df(sql, {**_params(store, filters), "limit": limit})
