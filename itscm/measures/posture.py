"""Continuity posture: the headline numbers, their previous period, their monthly trend, and
business units ranked by their gaps. Built only from the measures' own functions, for every
headline measure of the registry (itscm/measures/registry.py)."""

from __future__ import annotations

import pandas as pd

from itscm.filters import Filters
from itscm.measures.attainment import ATTAINMENT_PCT_SQL, EVENT_COUNTS_SQL
from itscm.measures.common import run_together
from itscm.measures.coverage import COVERAGE_BY_SERVICE_SQL, DRILL_TYPES_WEAKEST_FIRST, coverage_trend
from itscm.measures.downtime import OUTAGE_TOTALS_SQL, downtime_by_month
from itscm.measures.registry import headline_measures
from itscm.measures.staleness import PLAN_STALENESS_SQL, STALE_STATES_SQL, staleness_trend
from itscm.rollup import period_params
from itscm.store import Store, reads_one_snapshot


@reads_one_snapshot
def measures_snapshot(store: Store, filters: Filters) -> dict:
    """Every headline measure's summary for one filter, by the measure's name."""
    return {measure.name: measure.summary(store, filters) for measure in headline_measures()}


@reads_one_snapshot
def posture_summary(store: Store, filters: Filters) -> dict:
    """{'current': snapshot, 'previous': the figures the headlines compare with, of the period of
    the same length before, 'headlines': {key: {label, value, previous, change, higher_is_better}}}."""
    before = filters.previous()
    dates = [filters.as_of, before.as_of]
    measures = headline_measures()
    longest_first = sorted(measures, key=lambda measure: -measure.query_cost)
    calls = []
    for measure in longest_first:
        if measure.at_dates:   # both periods in one query
            calls.append(lambda m=measure: m.at_dates(store, filters, dates))
        else:
            calls += [lambda m=measure: m.summary(store, filters), lambda m=measure: m.previous_summary(store, before)]
    results = iter(run_together(*calls))
    current, previous = {}, {}
    for measure in longest_first:
        if measure.at_dates:
            both = next(results)
            current[measure.name], previous[measure.name] = both[filters.as_of], both[before.as_of]
        else:
            current[measure.name], previous[measure.name] = next(results), next(results)
    headlines = {}
    for measure in measures:
        value, earlier = current[measure.name][measure.figure], previous[measure.name][measure.figure]
        change = None if value is None or earlier is None else round(value - earlier, 2)
        headlines[measure.key] = {
            "label": measure.label, "value": value, "previous": earlier, "change": change,
            "higher_is_better": measure.higher_is_better,
        }
    in_order = [measure.name for measure in measures]
    return {"current": {name: current[name] for name in in_order},
            "previous": {name: previous[name] for name in in_order}, "headlines": headlines}


@reads_one_snapshot
def posture_trend(store: Store, filters: Filters) -> pd.DataFrame:
    """month, coverage_pct, attainment_pct, downtime_cost, stale_pct: every measure by month (and
    each registered measure's own `trend`, under its key)."""
    attainment_sql = f"""
        SELECT month, {ATTAINMENT_PCT_SQL} AS attainment_pct
        FROM ({EVENT_COUNTS_SQL}) GROUP BY month HAVING sum(events) <> 0
    """
    added = [measure for measure in headline_measures() if measure.trend]
    by_month, staleness, coverage, attainment, *added_trends = run_together(   # the longest first
        lambda: downtime_by_month(store, filters), lambda: staleness_trend(store, filters),
        lambda: coverage_trend(store, filters), lambda: store.df(attainment_sql, period_params(store, filters)),
        *(lambda m=measure: m.trend(store, filters) for measure in added),
    )
    months = pd.DataFrame({"month": pd.to_datetime(coverage["month_end"]).dt.to_period("M").dt.to_timestamp()})
    trend = months.assign(coverage_pct=coverage["pct"].to_numpy(), stale_pct=staleness["stale_pct"].to_numpy())
    cost = by_month[["month", "cost"]].rename(columns={"cost": "downtime_cost"})
    for frame in (attainment, cost, *added_trends):
        frame["month"] = pd.to_datetime(frame["month"])
        trend = trend.merge(frame, on="month", how="left")
    trend["downtime_cost"] = trend["downtime_cost"].fillna(0.0)
    return trend[["month", *(measure.key for measure in headline_measures() if measure.key in trend)]]


@reads_one_snapshot
def unit_gaps(store: Store, filters: Filters) -> pd.DataFrame:
    """Business units ranked by their gaps: unit, critical services, uncovered, coverage_pct,
    recovery events, breaches, attainment_pct, downtime_cost, plans, stale plans, stale_pct,
    services without plan (and each registered measure's own `by_unit` columns)."""
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
                   {ATTAINMENT_PCT_SQL} AS attainment_pct
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
                   count(*) FILTER (WHERE state IN {STALE_STATES_SQL}) AS stale_plans,
                   round(100.0 * count(*) FILTER (WHERE state IN {STALE_STATES_SQL})
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
    added = [measure.by_unit(store, filters) for measure in headline_measures() if measure.by_unit]
    for frame in (coverage, attainment, cost, staleness, *added):
        table = table.merge(frame, on="unit", how="left")
    counts = ["critical_services", "uncovered", "recovery_events", "breaches", "plans", "stale_plans",
              "services_without_plan"]
    table[counts] = table[counts].fillna(0).astype("int64")
    table["downtime_cost"] = table["downtime_cost"].fillna(0.0)
    table["gaps"] = table["uncovered"] + table["stale_plans"] + table["services_without_plan"]
    return table.sort_values(["gaps", "breaches", "downtime_cost"], ascending=False, ignore_index=True)
