"""RTO attainment (docs/DESIGN.md §4.2).

A recovery event is an incident with an outage end (restored_at, else resolved_at flagged as an
estimate) opened in the period and recovered by the end of the as-of date, or a drill held in the
period that measured an RTA. It is attained when RTA <= the service's RTO. Events with no matched
service or no RTO stay in every result as `without_rto`: they are counted, never dropped. With a
unit or tier filter, unmatched incidents cannot be placed and fall outside the filter. With the
filter's scope "continuity events" only the incidents the store's rule names count (drills always
do; docs/DESIGN.md §17).
"""

from __future__ import annotations

import pandas as pd

from itscm.filters import Filters, scoped_services_sql
from itscm.measures.common import percent
from itscm.rollup import BANDS, continuity_event_sql, period_events_sql, period_params, ratio_band_sql
from itscm.store import Store, reads_one_snapshot

# Columns: source ('incident' | 'drill'), event_id, service_id, service_name (as logged), title,
# started_at, recovered_at, restore_estimated, rta_minutes, service, unit, tier, rto_minutes,
# unmatched, attained (NULL without an RTO), rta_rto_ratio, month.
RECOVERY_EVENTS_SQL = f"""
WITH scoped_services AS ({scoped_services_sql()}),
events AS (
    SELECT 'incident' AS source, i.incident_id AS event_id, i.service_key, i.service_id, i.service_name, i.title,
           i.opened_at AS started_at, i.outage_end AS recovered_at,
           i.restored_at IS NULL AS restore_estimated, i.rta_minutes, i.priority, i.major, i.active_until
    FROM incidents i
    WHERE i.opened_at >= $period_start AND i.opened_at < $period_end
      AND i.outage_end < $as_of_end   -- recovered by the as-of date
    UNION ALL
    SELECT 'drill', d.drill_id, s.service_key, d.service_id, NULL, d.drill_type || ' drill',
           d.held_on::TIMESTAMP, NULL, FALSE, d.rta_minutes::DOUBLE, NULL, NULL, NULL
    FROM drills d JOIN services s ON s.service_id = d.service_id
    WHERE d.rta_minutes IS NOT NULL
      AND d.held_on >= $period_start::DATE AND d.held_on < $period_end::DATE
)
SELECT e.* EXCLUDE (service_key, priority, major, active_until), s.name AS service, s.unit, s.tier, s.rto_minutes,
       s.service_id IS NULL AS unmatched,
       e.rta_minutes <= s.rto_minutes AS attained,
       e.rta_minutes / nullif(s.rto_minutes, 0) AS rta_rto_ratio,
       date_trunc('month', e.started_at)::DATE AS month
FROM events e
LEFT JOIN scoped_services s ON s.service_key = e.service_key
WHERE (s.service_id IS NOT NULL OR (e.service_id IS NULL AND $all_units AND $all_tiers))
  AND (e.source = 'drill' OR $all_incidents
       OR {continuity_event_sql("e.priority", "e.major", "e.started_at", "e.recovered_at", "e.active_until",
                                "s.rto_minutes")})
"""

# The same events counted per service (or unmatched name), month and source: the incidents' from
# the rollup module's read of the period (itscm/rollup.py), the drills' from drills. Columns:
# source, month, service_id, service, unit, tier, rto_minutes, unmatched, service_name (as logged,
# for unmatched incidents), events, attained, estimated, band_1 .. band_6; the incidents of the
# filter's scope ($all_incidents, else the continuity events) and every drill.
def _event_counts_sql(*, matched_only: bool) -> str:
    """EVENT_COUNTS_SQL, or with `matched_only` its rows for events with a matched service alone."""
    return f"""
WITH scoped_services AS ({scoped_services_sql()}),
counts AS (
    SELECT 'incident' AS source, service_key, unmatched, unmatched_name, continuity, month, events, attained,
           estimated, {", ".join(f"band_{k}" for k in BANDS)}
    FROM ({period_events_sql(matched_only=matched_only)})
    UNION ALL
    SELECT 'drill', service_key, FALSE, NULL, TRUE, month, 1, attained, 0,
           {", ".join(f"(band = {k})::INTEGER" for k in BANDS)}
    FROM (   -- each drill's RTA/RTO band computed once
        SELECT s.service_key, date_trunc('month', d.held_on)::DATE AS month,
               (d.rta_minutes <= s.rto_minutes)::INTEGER AS attained,
               {ratio_band_sql("d.rta_minutes::DOUBLE", "s.rto_minutes")} AS band
        FROM drills d JOIN services s ON s.service_id = d.service_id
        WHERE d.rta_minutes IS NOT NULL
          AND d.held_on >= $period_start::DATE AND d.held_on < $period_end::DATE
    )
)
SELECT c.source, c.month, s.service_id, s.name AS service, s.unit, s.tier, s.rto_minutes, c.unmatched,
       c.unmatched_name AS service_name, c.events, coalesce(c.attained, 0) AS attained, c.estimated,
       {", ".join(f"coalesce(c.band_{k}, 0) AS band_{k}" for k in BANDS)}
FROM counts c
LEFT JOIN scoped_services s ON s.service_key = c.service_key
WHERE (s.service_id IS NOT NULL OR (c.unmatched AND $all_units AND $all_tiers)) AND ($all_incidents OR c.continuity)
"""


EVENT_COUNTS_SQL = _event_counts_sql(matched_only=False)
MATCHED_EVENT_COUNTS_SQL = _event_counts_sql(matched_only=True)

# RTO attainment of a group of EVENT_COUNTS_SQL rows: attained / events with an RTO, in percent,
# one decimal; NULL with no event to judge. Every figure of the measure uses this one formula.
ATTAINMENT_PCT_SQL = """round(100.0 * sum(attained) FILTER (WHERE rto_minutes IS NOT NULL)
          / nullif(sum(events) FILTER (WHERE rto_minutes IS NOT NULL), 0), 1)"""

# Aggregates share one shape: events that have an RTO, how many were attained, and the rest.
_COUNTS = f"""
    coalesce(sum(events) FILTER (WHERE rto_minutes IS NOT NULL), 0)::BIGINT AS events,
    coalesce(sum(attained) FILTER (WHERE rto_minutes IS NOT NULL), 0)::BIGINT AS attained,
    {ATTAINMENT_PCT_SQL} AS pct,
    coalesce(sum(events) FILTER (WHERE rto_minutes IS NULL), 0)::BIGINT AS without_rto
"""


def _grouped(store: Store, filters: Filters, keys: str) -> pd.DataFrame:
    sql = f"SELECT {keys}, {_COUNTS} FROM ({EVENT_COUNTS_SQL}) GROUP BY ALL HAVING sum(events) <> 0 ORDER BY ALL"
    return store.df(sql, period_params(store, filters))


@reads_one_snapshot
def attainment_summary(store: Store, filters: Filters) -> dict:
    """{events (with an RTO), attained, pct, without_rto, unmatched, estimated_restores}."""
    sql = f"""
        SELECT {_COUNTS},
               coalesce(sum(events) FILTER (WHERE unmatched), 0)::BIGINT AS unmatched,
               coalesce(sum(estimated), 0)::BIGINT AS estimated_restores
        FROM ({EVENT_COUNTS_SQL})
    """
    events, attained, _, without_rto, unmatched, estimated = store.rows(sql, period_params(store, filters))[0]
    return {
        "events": events,
        "attained": attained,
        "pct": percent(attained, events),
        "without_rto": without_rto,
        "unmatched": unmatched,
        "estimated_restores": estimated,
    }


@reads_one_snapshot
def judged_attainment(store: Store, filters: Filters) -> dict:
    """{events, attained, pct}: attainment_summary's figures for the events judged against an RTO,
    read without the unmatched incidents, which have none (the posture summary's previous period)."""
    sql = f"SELECT {_COUNTS} FROM ({MATCHED_EVENT_COUNTS_SQL})"
    events, attained, _, _ = store.rows(sql, period_params(store, filters))[0]
    return {"events": events, "attained": attained, "pct": percent(attained, events)}


@reads_one_snapshot
def attainment_by_month(store: Store, filters: Filters) -> pd.DataFrame:
    """month, source, events, attained, pct, without_rto."""
    return _grouped(store, filters, "month, source")


@reads_one_snapshot
def attainment_by_unit(store: Store, filters: Filters) -> pd.DataFrame:
    """unit ('(unmatched)' for events with no service), events, attained, pct, without_rto."""
    label = "coalesce(unit, CASE WHEN unmatched THEN '(unmatched)' ELSE '(no unit)' END) AS unit"
    return _grouped(store, filters, label)


@reads_one_snapshot
def attainment_by_tier(store: Store, filters: Filters) -> pd.DataFrame:
    return _grouped(store, filters, "tier, source")


RATIO_BANDS = ["<= 0.5", "0.5-1", "1-1.5", "1.5-2", "2-4", "> 4"]


@reads_one_snapshot
def rta_ratio_distribution(store: Store, filters: Filters) -> pd.DataFrame:
    """band (of RTA / RTO), source, events: the shape of recovery against target."""
    sums = ", ".join(f"coalesce(sum(band_{k}), 0)::BIGINT" for k in BANDS)
    rows = store.rows(f"SELECT source, {sums} FROM ({EVENT_COUNTS_SQL}) GROUP BY source ORDER BY source",
                      period_params(store, filters))
    cells = sorted((k, source, counts[k - 1]) for source, *counts in rows for k in BANDS if counts[k - 1])
    return pd.DataFrame({"band": pd.Series([RATIO_BANDS[k - 1] for k, _, _ in cells], dtype=object),
                         "source": pd.Series([source for _, source, _ in cells], dtype=object),
                         "events": pd.Series([events for _, _, events in cells], dtype="int64")})


# The breached events only (RTA past a known RTO), joined on the integer key before any text is
# read: the rows RECOVERY_EVENTS_SQL gives for them (the tests compare the two).
_BREACHED_EVENTS_SQL = f"""
WITH scoped_services AS ({scoped_services_sql(with_rto_only=True)})
SELECT 'incident' AS source, i.incident_id AS event_id, s.name AS service, s.unit, s.tier, i.title,
       i.opened_at AS started_at, i.outage_end AS recovered_at, i.restored_at IS NULL AS restore_estimated,
       i.rta_minutes, s.rto_minutes, i.rta_minutes / nullif(s.rto_minutes, 0) AS rta_rto_ratio
FROM incidents i JOIN scoped_services s ON s.service_key = i.service_key
WHERE i.opened_at >= $period_start AND i.opened_at < $period_end AND i.outage_end < $as_of_end
  AND i.rta_minutes > s.rto_minutes
  AND ($all_incidents
       OR {continuity_event_sql("i.priority", "i.major", "i.opened_at", "i.outage_end", "i.active_until",
                                "s.rto_minutes")})
UNION ALL
SELECT 'drill', d.drill_id, s.name, s.unit, s.tier, d.drill_type || ' drill', d.held_on::TIMESTAMP, NULL, FALSE,
       d.rta_minutes::DOUBLE, s.rto_minutes, d.rta_minutes / nullif(s.rto_minutes, 0)
FROM drills d JOIN services k ON k.service_id = d.service_id JOIN scoped_services s ON s.service_key = k.service_key
WHERE d.rta_minutes > s.rto_minutes AND d.held_on >= $period_start::DATE AND d.held_on < $period_end::DATE
"""


@reads_one_snapshot
def worst_breaches(store: Store, filters: Filters, limit: int = 50) -> pd.DataFrame:
    """The breached events with the highest RTA / RTO, worst first."""
    sql = f"""
        SELECT source, event_id, service, unit, tier, title, started_at, recovered_at, restore_estimated,
               round(rta_minutes, 1) AS rta_minutes, rto_minutes, round(rta_rto_ratio, 2) AS rta_rto_ratio
        FROM ({_BREACHED_EVENTS_SQL})
        ORDER BY rta_rto_ratio DESC, rta_minutes DESC, event_id LIMIT $limit
    """
    return store.df(sql, {**filters.query_params(store), "limit": limit})


@reads_one_snapshot
def events_without_rto(store: Store, filters: Filters, limit: int = 1000) -> pd.DataFrame:
    """Events that cannot be judged, grouped by the name logged: unmatched names and services
    with no RTO, with their event counts."""
    sql = f"""
        SELECT CASE WHEN unmatched THEN 'no matching service' ELSE 'service has no RTO' END AS reason,
               coalesce(service, service_name, '(blank)') AS name, source, sum(events)::BIGINT AS events
        FROM ({EVENT_COUNTS_SQL}) WHERE rto_minutes IS NULL
        GROUP BY ALL HAVING sum(events) <> 0 ORDER BY events DESC, name LIMIT $limit
    """
    return store.df(sql, {**period_params(store, filters), "limit": limit})
