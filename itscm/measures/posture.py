"""Continuity posture: the four headline numbers, their previous period, their monthly trend,
and business units ranked by their gaps. Built only from the four measures' own functions."""

from __future__ import annotations

import pandas as pd

from itscm.filters import Filters
from itscm.measures.attainment import EVENT_COUNTS_SQL, attainment_summary, judged_attainment
from itscm.measures.common import run_together
from itscm.measures.coverage import (
    COVERAGE_BY_SERVICE_SQL,
    DRILL_TYPES_WEAKEST_FIRST,
    coverage_summaries,
    coverage_summary,
    coverage_trend,
)
from itscm.measures.downtime import OUTAGE_TOTALS_SQL, downtime_by_month, downtime_summary, downtime_total
from itscm.measures.staleness import PLAN_STALENESS_SQL, staleness_summaries, staleness_summary, staleness_trend
from itscm.rollup import period_params
from itscm.store import Store


def measures_snapshot(store: Store, filters: Filters) -> dict:
    """The four measures for one filter, as dicts."""
    return {
        "coverage": coverage_summary(store, filters),
        "rto_attainment": attainment_summary(store, filters),
        "downtime_cost": downtime_summary(store, filters),
        "staleness": staleness_summary(store, filters),
    }


HEADLINES = {
    # key: (measure, figure, label, higher is better)
    "coverage_pct": ("coverage", "pct", "Critical-service coverage", True),
    "attainment_pct": ("rto_attainment", "pct", "RTO attainment", True),
    "downtime_cost": ("downtime_cost", "total", "Downtime cost", False),
    "stale_pct": ("staleness", "stale_pct", "Stale plans", False),
}


def posture_summary(store: Store, filters: Filters) -> dict:
    """{'current': snapshot, 'previous': the figures the headlines compare with, of the period of
    the same length before, 'headlines': {key: {label, value, previous, change, higher_is_better}}}."""
    before = filters.previous()
    dates = [filters.as_of, before.as_of]
    downtime, total_before, attainment, attainment_before, coverage, staleness = run_together(  # longest first
        lambda: downtime_summary(store, filters), lambda: downtime_total(store, before),
        lambda: attainment_summary(store, filters), lambda: judged_attainment(store, before),
        lambda: coverage_summaries(store, filters, dates), lambda: staleness_summaries(store, filters, dates),
    )
    current = {
        "coverage": coverage[filters.as_of],
        "rto_attainment": attainment,
        "downtime_cost": downtime,
        "staleness": staleness[filters.as_of],
    }
    previous = {
        "coverage": coverage[before.as_of],
        "rto_attainment": attainment_before,
        "downtime_cost": {"total": total_before},
        "staleness": staleness[before.as_of],
    }
    headlines = {}
    for key, (measure, figure, label, higher_is_better) in HEADLINES.items():
        value, earlier = current[measure][figure], previous[measure][figure]
        change = None if value is None or earlier is None else round(value - earlier, 2)
        headlines[key] = {
            "label": label, "value": value, "previous": earlier, "change": change,
            "higher_is_better": higher_is_better,
        }
    return {"current": current, "previous": previous, "headlines": headlines}


def posture_trend(store: Store, filters: Filters) -> pd.DataFrame:
    """month, coverage_pct, attainment_pct, downtime_cost, stale_pct: every measure by month."""
    attainment_sql = f"""
        SELECT month, round(100.0 * sum(attained) FILTER (WHERE rto_minutes IS NOT NULL)
                            / nullif(sum(events) FILTER (WHERE rto_minutes IS NOT NULL), 0), 1) AS attainment_pct
        FROM ({EVENT_COUNTS_SQL}) GROUP BY month HAVING sum(events) <> 0
    """
    by_month, staleness, coverage, attainment = run_together(   # the longest first
        lambda: downtime_by_month(store, filters), lambda: staleness_trend(store, filters),
        lambda: coverage_trend(store, filters), lambda: store.df(attainment_sql, period_params(store, filters)),
    )
    months = pd.DataFrame({"month": pd.to_datetime(coverage["month_end"]).dt.to_period("M").dt.to_timestamp()})
    trend = months.assign(coverage_pct=coverage["pct"].to_numpy(), stale_pct=staleness["stale_pct"].to_numpy())
    cost = by_month[["month", "cost"]].rename(columns={"cost": "downtime_cost"})
    for frame in (attainment, cost):
        frame["month"] = pd.to_datetime(frame["month"])
        trend = trend.merge(frame, on="month", how="left")
    trend["downtime_cost"] = trend["downtime_cost"].fillna(0.0)
    return trend[["month", "coverage_pct", "attainment_pct", "downtime_cost", "stale_pct"]]


def unit_gaps(store: Store, filters: Filters) -> pd.DataFrame:
    """Business units ranked by their gaps: unit, critical services, uncovered, coverage_pct,
    recovery events, breaches, attainment_pct, downtime_cost, plans, stale plans, stale_pct,
    services without plan."""
    coverage_params = {**filters.snapshot_params(store, [filters.as_of]), "drill_types": DRILL_TYPES_WEAKEST_FIRST}
    coverage = store.df(
        f"""SELECT unit, count(*) AS critical_services, count(*) FILTER (WHERE NOT covered) AS uncovered,
                   round(100.0 * count(*) FILTER (WHERE covered) / count(*), 1) AS coverage_pct
            FROM ({COVERAGE_BY_SERVICE_SQL}) WHERE unit IS NOT NULL GROUP BY unit""",
        coverage_params,
    )
    attainment = store.df(
        f"""SELECT unit, sum(events) FILTER (WHERE rto_minutes IS NOT NULL) AS recovery_events,
                   sum(events - attained) FILTER (WHERE rto_minutes IS NOT NULL) AS breaches,
                   round(100.0 * sum(attained) FILTER (WHERE rto_minutes IS NOT NULL)
                         / nullif(sum(events) FILTER (WHERE rto_minutes IS NOT NULL), 0), 1) AS attainment_pct
            FROM ({EVENT_COUNTS_SQL}) WHERE unit IS NOT NULL GROUP BY unit""",
        period_params(store, filters),
    )
    cost = store.df(
        f"""SELECT unit, round(coalesce(sum(cost), 0)) AS downtime_cost
            FROM ({OUTAGE_TOTALS_SQL}) WHERE unit IS NOT NULL GROUP BY unit""",
        period_params(store, filters),
    )
    staleness = store.df(
        f"""SELECT unit, count(*) FILTER (WHERE plan_id IS NOT NULL) AS plans,
                   count(*) FILTER (WHERE state IN ('overdue', 'never tested')) AS stale_plans,
                   round(100.0 * count(*) FILTER (WHERE state IN ('overdue', 'never tested'))
                         / nullif(count(*) FILTER (WHERE plan_id IS NOT NULL), 0), 1) AS stale_pct,
                   count(*) FILTER (WHERE state = 'no plan') AS services_without_plan
            FROM ({PLAN_STALENESS_SQL}) WHERE unit IS NOT NULL GROUP BY unit""",
        filters.snapshot_params(store, [filters.as_of]),
    )
    units = store.df(
        "SELECT name AS unit FROM business_units WHERE ($all_units OR list_contains($unit_ids, unit_id))",
        {key: value for key, value in filters.scope_params(store).items() if "unit" in key},
    )
    table = units
    for frame in (coverage, attainment, cost, staleness):
        table = table.merge(frame, on="unit", how="left")
    counts = ["critical_services", "uncovered", "recovery_events", "breaches", "plans", "stale_plans",
              "services_without_plan"]
    table[counts] = table[counts].fillna(0).astype("int64")
    table["downtime_cost"] = table["downtime_cost"].fillna(0.0)
    table["gaps"] = table["uncovered"] + table["stale_plans"] + table["services_without_plan"]
    return table.sort_values(["gaps", "breaches", "downtime_cost"], ascending=False, ignore_index=True)
