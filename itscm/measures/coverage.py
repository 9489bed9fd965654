"""Critical-service coverage (docs/DESIGN.md §4.1).

In scope: live services in the critical tiers of the policy. A service is covered when every
control in `CONTROLS` holds at the as-of date. One SQL statement computes the service-by-control
matrix for a list of as-of dates, so the snapshot and the monthly trend are the same query.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from itscm.change_days import covering_months_sql, last_change_sql
from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.measures.common import month_ends, percent
from itscm.store import Store, reads_one_snapshot

# Control column -> what a manager reads in the gap matrix.
CONTROLS: dict[str, str] = {
    "objectives_set": "RTO and RPO set",
    "bia_cost_set": "BIA impact cost set",
    "strategy_set": "Recovery strategy chosen",
    "approved_plan": "Approved plan",
    "plan_reviewed": "Plan reviewed in interval",
    "drill_passed": "Passed drill in interval",
    "rto_proven": "RTO proven by drill",
    "rto_within_mtpd": "RTO within MTPD",
}

DRILL_TYPES_WEAKEST_FIRST = ["walkthrough", "tabletop", "simulation", "parallel", "full interruption"]

# Columns: as_of, service_id, service, unit_id, unit, tier, owner, rto_minutes, mtpd_minutes,
# last_review, last_change, last_qualifying_drill, proving_rta_minutes, one boolean per control,
# gaps, covered. `last_change` is the day the latest completed change reached the service (itself
# or an asset it runs on) by the as-of date; when the tier's policy says so
# (change_fails_review), a change after the last review fails "plan reviewed in interval"
# (docs/DESIGN.md §16).
# `proving_rta_minutes` is the RTA of the latest passed drill that measured one: a tabletop after
# a simulation does not un-prove an RTO.
COVERAGE_BY_SERVICE_SQL = f"""
WITH as_of_dates AS (
    SELECT unnest($as_of_dates)::DATE AS as_of
),
in_scope AS (
    SELECT s.*, u.name AS unit, p.review_interval_days, p.test_interval_days,
           coalesce(p.change_fails_review, TRUE) AS change_fails_review,
           list_position($drill_types, p.min_test_type) AS min_test_rank
    FROM services s
    JOIN policy p ON p.tier = s.tier AND p.is_critical
    LEFT JOIN business_units u ON u.unit_id = s.unit_id
    WHERE s.lifecycle = 'live' AND {SERVICE_SCOPE_SQL}
),
grid AS (
    SELECT row_number() OVER () AS grid_row, d.as_of, s.* FROM as_of_dates d CROSS JOIN in_scope s
),
-- Grouped and joined back on the grid's row number: one integer, not a date and a text id.
approved AS (
    SELECT g.grid_row, count(pl.plan_id) > 0 AS approved_plan,
           max(r.reviewed_on) AS last_review
    FROM grid g
    JOIN plans pl ON pl.service_id = g.service_id AND pl.status = 'approved'
                 AND (pl.approved_on IS NULL OR pl.approved_on <= g.as_of)
    LEFT JOIN plan_reviews r ON r.plan_id = pl.plan_id AND r.reviewed_on <= g.as_of
    GROUP BY g.grid_row
),
passed AS (
    SELECT g.grid_row,
           max(d.held_on) FILTER (WHERE list_position($drill_types, d.drill_type) >= g.min_test_rank)
               AS last_qualifying_drill,
           arg_max(d.rta_minutes, d.held_on) FILTER (WHERE d.rta_minutes IS NOT NULL) AS proving_rta_minutes
    FROM grid g
    JOIN drills d ON d.service_id = g.service_id AND d.outcome = 'passed' AND d.held_on <= g.as_of
    GROUP BY g.grid_row
),
-- the completed change days per service (itscm/change_days.py), one row per service and as-of month
change_months AS ({covering_months_sql()}),
changed AS (
    SELECT g.grid_row, {last_change_sql("c", "g.as_of")} AS last_change
    FROM grid g JOIN change_months c ON c.service_id = g.service_id AND c.covered = date_trunc('month', g.as_of)::DATE
),
controls AS (
    SELECT g.as_of, g.service_id, g.name AS service, g.unit_id, g.unit, g.tier, g.owner,
           g.rto_minutes, g.mtpd_minutes, a.last_review, c.last_change,
           p.last_qualifying_drill, p.proving_rta_minutes,
           g.rto_minutes IS NOT NULL AND g.rpo_minutes IS NOT NULL AS objectives_set,
           g.impact_cost_per_hour IS NOT NULL AS bia_cost_set,
           coalesce(g.recovery_strategy NOT IN ('none', ''), FALSE) AS strategy_set,
           coalesce(a.approved_plan, FALSE) AS approved_plan,
           coalesce(date_diff('day', a.last_review, g.as_of) <= g.review_interval_days, FALSE)
               AND NOT (g.change_fails_review AND coalesce(c.last_change > a.last_review, FALSE))
               AS plan_reviewed,
           coalesce(date_diff('day', p.last_qualifying_drill, g.as_of) <= g.test_interval_days, FALSE)
               AS drill_passed,
           coalesce(p.proving_rta_minutes <= g.rto_minutes, FALSE) AS rto_proven,
           g.rto_minutes IS NOT NULL AND (g.mtpd_minutes IS NULL OR g.rto_minutes <= g.mtpd_minutes)
               AS rto_within_mtpd
    FROM grid g
    LEFT JOIN approved a ON a.grid_row = g.grid_row
    LEFT JOIN passed p ON p.grid_row = g.grid_row
    LEFT JOIN changed c ON c.grid_row = g.grid_row
)
SELECT *,
       {" + ".join(f"(NOT {c})::INTEGER" for c in CONTROLS)} AS gaps,
       {" AND ".join(CONTROLS)} AS covered
FROM controls
"""


def _params(store: Store, filters: Filters, as_of_dates: list[dt.date]) -> dict:
    params = filters.snapshot_params(store, as_of_dates)
    params["drill_types"] = DRILL_TYPES_WEAKEST_FIRST
    return params



@reads_one_snapshot
def coverage_by_service(store: Store, filters: Filters) -> pd.DataFrame:
    """The service-by-control gap matrix at the as-of date, worst gaps first."""
    sql = f"SELECT * FROM ({COVERAGE_BY_SERVICE_SQL}) ORDER BY covered, gaps DESC, tier, unit, service"
    return store.df(sql, _params(store, filters, [filters.as_of])).drop(columns="as_of")


@reads_one_snapshot
def coverage_summary(store: Store, filters: Filters) -> dict:
    """{in_scope, covered, pct} at the as-of date."""
    return coverage_summaries(store, filters, [filters.as_of])[filters.as_of]


@reads_one_snapshot
def coverage_summaries(store: Store, filters: Filters, as_of_dates: list[dt.date]) -> dict[dt.date, dict]:
    """coverage_summary at each date, in one query."""
    sql = f"SELECT as_of, count(*), count(*) FILTER (WHERE covered) FROM ({COVERAGE_BY_SERVICE_SQL}) GROUP BY as_of"
    counts = {as_of: (in_scope, covered)
              for as_of, in_scope, covered in store.rows(sql, _params(store, filters, as_of_dates))}
    summaries = {}
    for as_of in as_of_dates:
        in_scope, covered = counts.get(as_of, (0, 0))
        summaries[as_of] = {"in_scope": in_scope, "covered": covered, "pct": percent(covered, in_scope)}
    return summaries


@reads_one_snapshot
def coverage_by_unit_tier(store: Store, filters: Filters) -> pd.DataFrame:
    """unit, tier, in_scope, covered, pct, and the count of services failing each control."""
    failing = ", ".join(f"count(*) FILTER (WHERE NOT {c}) AS {c}_gaps" for c in CONTROLS)
    sql = f"""
        SELECT coalesce(unit, '(no unit)') AS unit, tier, count(*) AS in_scope,
               count(*) FILTER (WHERE covered) AS covered,
               round(100.0 * count(*) FILTER (WHERE covered) / count(*), 1) AS pct, {failing}
        FROM ({COVERAGE_BY_SERVICE_SQL})
        GROUP BY ALL ORDER BY pct, unit, tier
    """
    return store.df(sql, _params(store, filters, [filters.as_of]))


@reads_one_snapshot
def control_gap_counts(store: Store, filters: Filters) -> pd.DataFrame:
    """control, label, failing: how many in-scope services fail each control."""
    failing = ", ".join(f"count(*) FILTER (WHERE NOT {c}) AS {c}" for c in CONTROLS)
    sql = f"SELECT {failing} FROM ({COVERAGE_BY_SERVICE_SQL})"
    counts = store.rows(sql, _params(store, filters, [filters.as_of]))[0]
    return pd.DataFrame(
        {"control": list(CONTROLS), "label": list(CONTROLS.values()), "failing": list(counts)}
    )


@reads_one_snapshot
def coverage_trend(store: Store, filters: Filters) -> pd.DataFrame:
    """month (its last day, or the as-of date for the running month), in_scope, covered, pct."""
    sql = f"""
        SELECT as_of AS month_end, count(*) AS in_scope, count(*) FILTER (WHERE covered) AS covered,
               round(100.0 * count(*) FILTER (WHERE covered) / count(*), 1) AS pct
        FROM ({COVERAGE_BY_SERVICE_SQL}) GROUP BY as_of ORDER BY as_of
    """
    dates = month_ends(filters.since, min(filters.until, filters.as_of))
    return store.df(sql, _params(store, filters, dates))
