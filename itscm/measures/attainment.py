"""RTO attainment (DESIGN section 3).

A recovery event is an incident with an outage end (restored_at, else resolved_at flagged as an
estimate) opened in the period and recovered by the end of the as-of date, or a drill held in the
period that measured an RTA. It is attained when RTA <= the service's RTO. Events with no matched
service or no RTO stay in every result as `without_rto`: they are counted, never dropped. With a
unit or tier filter, unmatched incidents cannot be placed and fall outside the filter.
"""

from __future__ import annotations

import pandas as pd

from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.measures.common import percent
from itscm.store import Store

# Columns: source ('incident' | 'drill'), event_id, service_id, service_name (as logged), title,
# started_at, recovered_at, restore_estimated, rta_minutes, service, unit, tier, rto_minutes,
# unmatched, attained (NULL without an RTO), rta_rto_ratio, month.
RECOVERY_EVENTS_SQL = f"""
WITH scoped_services AS (
    SELECT s.service_key, s.service_id, s.name, s.tier, s.rto_minutes, u.name AS unit
    FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id
    WHERE {SERVICE_SCOPE_SQL}
),
events AS (
    SELECT 'incident' AS source, i.incident_id AS event_id, i.service_key, i.service_id, i.service_name, i.title,
           i.opened_at AS started_at, i.outage_end AS recovered_at,
           i.restored_at IS NULL AS restore_estimated, i.rta_minutes
    FROM incidents i
    WHERE i.opened_at >= $period_start AND i.opened_at < $period_end
      AND i.outage_end < $as_of_end   -- recovered by the as-of date
    UNION ALL
    SELECT 'drill', d.drill_id, s.service_key, d.service_id, NULL, d.drill_type || ' drill',
           d.held_on::TIMESTAMP, NULL, FALSE, d.rta_minutes::DOUBLE
    FROM drills d JOIN services s ON s.service_id = d.service_id
    WHERE d.rta_minutes IS NOT NULL
      AND d.held_on >= $period_start::DATE AND d.held_on < $period_end::DATE
)
SELECT e.* EXCLUDE (service_key), s.name AS service, s.unit, s.tier, s.rto_minutes,
       s.service_id IS NULL AS unmatched,
       e.rta_minutes <= s.rto_minutes AS attained,
       e.rta_minutes / nullif(s.rto_minutes, 0) AS rta_rto_ratio,
       date_trunc('month', e.started_at)::DATE AS month
FROM events e
LEFT JOIN scoped_services s ON s.service_key = e.service_key
WHERE s.service_id IS NOT NULL OR (e.service_id IS NULL AND $all_units AND $all_tiers)
"""

# Aggregates share one shape: events that have an RTO, how many were attained, and the rest.
_COUNTS = """
    count(*) FILTER (WHERE rto_minutes IS NOT NULL) AS events,
    count(*) FILTER (WHERE attained) AS attained,
    round(100.0 * count(*) FILTER (WHERE attained)
          / nullif(count(*) FILTER (WHERE rto_minutes IS NOT NULL), 0), 1) AS pct,
    count(*) FILTER (WHERE rto_minutes IS NULL) AS without_rto
"""


def _grouped(store: Store, filters: Filters, keys: str) -> pd.DataFrame:
    sql = f"SELECT {keys}, {_COUNTS} FROM ({RECOVERY_EVENTS_SQL}) GROUP BY ALL ORDER BY ALL"
    return store.df(sql, filters.query_params(store))


def attainment_summary(store: Store, filters: Filters) -> dict:
    """{events (with an RTO), attained, pct, without_rto, unmatched, estimated_restores}."""
    sql = f"""
        SELECT {_COUNTS},
               count(*) FILTER (WHERE unmatched) AS unmatched,
               count(*) FILTER (WHERE restore_estimated) AS estimated_restores
        FROM ({RECOVERY_EVENTS_SQL})
    """
    events, attained, _, without_rto, unmatched, estimated = store.rows(sql, filters.query_params(store))[0]
    return {
        "events": events,
        "attained": attained,
        "pct": percent(attained, events),
        "without_rto": without_rto,
        "unmatched": unmatched,
        "estimated_restores": estimated,
    }


def attainment_by_month(store: Store, filters: Filters) -> pd.DataFrame:
    """month, source, events, attained, pct, without_rto."""
    return _grouped(store, filters, "month, source")


def attainment_by_unit(store: Store, filters: Filters) -> pd.DataFrame:
    """unit ('(unmatched)' for events with no service), events, attained, pct, without_rto."""
    label = "coalesce(unit, CASE WHEN unmatched THEN '(unmatched)' ELSE '(no unit)' END) AS unit"
    return _grouped(store, filters, label)


def attainment_by_tier(store: Store, filters: Filters) -> pd.DataFrame:
    return _grouped(store, filters, "tier, source")


RATIO_BANDS = ["<= 0.5", "0.5-1", "1-1.5", "1.5-2", "2-4", "> 4"]


def rta_ratio_distribution(store: Store, filters: Filters) -> pd.DataFrame:
    """band (of RTA / RTO), source, events: the shape of recovery against target."""
    sql = f"""
        SELECT CASE WHEN rta_rto_ratio <= 0.5 THEN 1 WHEN rta_rto_ratio <= 1 THEN 2
                    WHEN rta_rto_ratio <= 1.5 THEN 3 WHEN rta_rto_ratio <= 2 THEN 4
                    WHEN rta_rto_ratio <= 4 THEN 5 ELSE 6 END AS band_order,
               source, count(*) AS events
        FROM ({RECOVERY_EVENTS_SQL}) WHERE rta_rto_ratio IS NOT NULL
        GROUP BY ALL ORDER BY ALL
    """
    frame = store.df(sql, filters.query_params(store))
    frame.insert(0, "band", [RATIO_BANDS[i - 1] for i in frame.pop("band_order")])
    return frame


def worst_breaches(store: Store, filters: Filters, limit: int = 50) -> pd.DataFrame:
    """The breached events with the highest RTA / RTO, worst first."""
    sql = f"""
        SELECT source, event_id, service, unit, tier, title, started_at, recovered_at, restore_estimated,
               round(rta_minutes, 1) AS rta_minutes, rto_minutes, round(rta_rto_ratio, 2) AS rta_rto_ratio
        FROM ({RECOVERY_EVENTS_SQL}) WHERE NOT attained
        ORDER BY rta_rto_ratio DESC, rta_minutes DESC, event_id LIMIT $limit
    """
    return store.df(sql, {**filters.query_params(store), "limit": limit})


def events_without_rto(store: Store, filters: Filters, limit: int = 1000) -> pd.DataFrame:
    """Events that cannot be judged, grouped by the name logged: unmatched names and services
    with no RTO, with their event counts."""
    sql = f"""
        SELECT CASE WHEN unmatched THEN 'no matching service' ELSE 'service has no RTO' END AS reason,
               coalesce(service, service_name, '(blank)') AS name, source, count(*) AS events
        FROM ({RECOVERY_EVENTS_SQL}) WHERE rto_minutes IS NULL
        GROUP BY ALL ORDER BY events DESC, name LIMIT $limit
    """
    return store.df(sql, {**filters.query_params(store), "limit": limit})
