"""Plan staleness (docs/DESIGN.md §4.4).

Per plan (draft or approved) of a live service: days since its last review and since the last
passed drill of its service (a drill for this plan or for no particular plan), against the
tier's review and test intervals. A plan is, in this order of precedence: never tested (no
passed drill ever), overdue (never reviewed, or review or test past due), changed since review
(its service, or an asset the service runs on, had a change completed after the plan's last
review, or its approval if never reviewed: docs/DESIGN.md §16), due within 30 days (the earlier
due date is at most 30 days after the as-of date), else current. Overdue, never tested and
changed since review are stale. Live services with no plan appear as one 'no plan' row each, so
the owner worklist shows them too.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from itscm.change_days import changes_through_sql, covering_months_sql, last_change_sql
from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.measures.common import month_ends, percent
from itscm.store import Store, reads_one_snapshot

DUE_SOON_DAYS = 30
STATES = ["current", "due within 30 days", "changed since review", "overdue", "never tested", "no plan"]
STALE_STATES = ("overdue", "never tested", "changed since review")
STALE_STATES_SQL = "('overdue', 'never tested', 'changed since review')"

# Columns: as_of, plan_id (NULL for 'no plan'), plan, plan_status, owner, service_id, service,
# unit, tier, last_review, last_passed_drill, review_due, test_due, last_change, change_baseline
# (the last review, else the approval), changes_since_review, days_since_review, days_since_test,
# days_overdue, state.
PLAN_STALENESS_SQL = f"""
WITH as_of_dates AS (
    SELECT unnest($as_of_dates)::DATE AS as_of
),
live_services AS (
    SELECT s.service_id, s.name, s.owner, s.tier, u.name AS unit,
           p.review_interval_days, p.test_interval_days
    FROM services s
    JOIN policy p ON p.tier = s.tier
    LEFT JOIN business_units u ON u.unit_id = s.unit_id
    WHERE s.lifecycle = 'live' AND {SERVICE_SCOPE_SQL}
),
-- Each plan's review dates and the dates of the passed drills that count for it (for this plan,
-- or for its service and no particular plan), gathered once per plan rather than once per date.
reviews_by_plan AS (
    SELECT plan_id, list(reviewed_on) AS reviewed FROM plan_reviews GROUP BY plan_id
),
passed_by_service AS (
    SELECT service_id, list({{'held_on': held_on, 'plan_id': plan_id}}) AS passed
    FROM drills WHERE outcome = 'passed' GROUP BY service_id
),
-- The completed change days per service (itscm/change_days.py), one row per service and month
-- of each as-of date, the review's and the approval's.
change_months AS ({covering_months_sql()}),
live_plans AS (
    SELECT pl.plan_id, pl.title AS plan, pl.status AS plan_status, coalesce(pl.owner, s.owner) AS owner, s.*,
           pl.approved_on,
           coalesce(r.reviewed, []) AS reviewed,
           coalesce([d.held_on FOR d IN p.passed IF d.plan_id IS NULL OR d.plan_id = pl.plan_id], []) AS passed
    FROM live_services s
    JOIN plans pl ON pl.service_id = s.service_id AND pl.status <> 'retired'
    LEFT JOIN reviews_by_plan r ON r.plan_id = pl.plan_id
    LEFT JOIN passed_by_service p ON p.service_id = s.service_id
),
plan_latest AS (
    SELECT *,
           -- the last review, else the approval: the day the plan was last checked against its service
           coalesce(last_review, CASE WHEN approved_on <= as_of THEN approved_on END) AS change_baseline
    FROM (
        SELECT d.as_of, g.*,
               list_max(list_filter(g.reviewed, day -> day <= d.as_of)) AS last_review,
               list_max(list_filter(g.passed, day -> day <= d.as_of)) AS last_passed_drill
        FROM as_of_dates d CROSS JOIN live_plans g
    )
),
plan_dates AS (
    SELECT g.as_of, g.plan_id, g.plan, g.plan_status, g.owner, g.service_id, g.name AS service, g.unit, g.tier,
           g.last_review, g.last_passed_drill,
           (g.last_review + to_days(g.review_interval_days))::DATE AS review_due,
           (g.last_passed_drill + to_days(g.test_interval_days))::DATE AS test_due,
           {last_change_sql("c", "g.as_of")} AS last_change, g.change_baseline,
           -- no baseline (never reviewed, not approved by then): no change counts against it
           CASE WHEN g.change_baseline IS NULL THEN 0
                ELSE {changes_through_sql("c", "g.as_of")} - {changes_through_sql("b", "g.change_baseline")}
           END AS changes_since_review
    FROM plan_latest g
    LEFT JOIN change_months c
           ON c.service_id = g.service_id AND c.covered = date_trunc('month', g.as_of)::DATE
    LEFT JOIN change_months b
           ON b.service_id = g.service_id AND b.covered = date_trunc('month', g.change_baseline)::DATE
),
plan_states AS (
    SELECT *,
           date_diff('day', last_review, as_of) AS days_since_review,
           date_diff('day', last_passed_drill, as_of) AS days_since_test,
           greatest(date_diff('day', least(review_due, test_due), as_of), 0) AS days_overdue,
           CASE WHEN last_passed_drill IS NULL THEN 'never tested'
                WHEN last_review IS NULL OR review_due < as_of OR test_due < as_of THEN 'overdue'
                WHEN changes_since_review > 0 THEN 'changed since review'
                WHEN least(review_due, test_due) <= as_of + {DUE_SOON_DAYS} THEN 'due within 30 days'
                ELSE 'current' END AS state
    FROM plan_dates
),
services_without_plan AS (
    SELECT d.as_of, NULL::TEXT AS plan_id, NULL::TEXT AS plan, NULL::TEXT AS plan_status, s.owner,
           s.service_id, s.name AS service, s.unit, s.tier,
           NULL::DATE AS last_review, NULL::DATE AS last_passed_drill, NULL::DATE AS review_due,
           NULL::DATE AS test_due, NULL::BIGINT AS days_since_review, NULL::BIGINT AS days_since_test,
           NULL::BIGINT AS days_overdue, 'no plan' AS state
    FROM as_of_dates d
    CROSS JOIN (
        SELECT s.* FROM live_services s
        WHERE NOT EXISTS (SELECT 1 FROM plans pl WHERE pl.service_id = s.service_id AND pl.status <> 'retired')
    ) s
)
SELECT * FROM plan_states
UNION ALL BY NAME
SELECT * FROM services_without_plan
"""


def _params(store: Store, filters: Filters, as_of_dates: list[dt.date]) -> dict:
    return filters.snapshot_params(store, as_of_dates)



_STATE_ORDER = (
    "list_position(['no plan', 'never tested', 'overdue', 'changed since review', 'due within 30 days', "
    "'current'], state)"
)


@reads_one_snapshot
def plan_worklist(store: Store, filters: Filters) -> pd.DataFrame:
    """Every plan and every service without one, most urgent first: the owner worklist."""
    sql = f"""
        SELECT * EXCLUDE (as_of) FROM ({PLAN_STALENESS_SQL})
        ORDER BY {_STATE_ORDER}, tier, days_overdue DESC NULLS LAST, owner, service
    """
    return store.df(sql, _params(store, filters, [filters.as_of]))


@reads_one_snapshot
def staleness_summary(store: Store, filters: Filters) -> dict:
    """{plans, current, due_soon, changed_since_review, overdue, never_tested, services_without_plan,
    stale_pct}. Stale = overdue, never tested or changed since review, as a share of plans."""
    return staleness_summaries(store, filters, [filters.as_of])[filters.as_of]


_SUMMARY_KEYS = ["plans", "current", "due_soon", "changed_since_review", "overdue", "never_tested",
                 "services_without_plan"]


@reads_one_snapshot
def staleness_summaries(store: Store, filters: Filters, as_of_dates: list[dt.date]) -> dict[dt.date, dict]:
    """staleness_summary at each date, in one query."""
    sql = f"""
        SELECT as_of,
               count(*) FILTER (WHERE plan_id IS NOT NULL),
               count(*) FILTER (WHERE state = 'current'),
               count(*) FILTER (WHERE state = 'due within 30 days'),
               count(*) FILTER (WHERE state = 'changed since review'),
               count(*) FILTER (WHERE state = 'overdue'),
               count(*) FILTER (WHERE state = 'never tested'),
               count(*) FILTER (WHERE state = 'no plan')
        FROM ({PLAN_STALENESS_SQL}) GROUP BY as_of
    """
    counts = {as_of: counts for as_of, *counts in store.rows(sql, _params(store, filters, as_of_dates))}
    summaries = {}
    for as_of in as_of_dates:
        summary = dict(zip(_SUMMARY_KEYS, counts.get(as_of, [0] * len(_SUMMARY_KEYS)), strict=True))
        stale = summary["overdue"] + summary["never_tested"] + summary["changed_since_review"]
        summary["stale_pct"] = percent(stale, summary["plans"])
        summaries[as_of] = summary
    return summaries


@reads_one_snapshot
def staleness_by_unit(store: Store, filters: Filters) -> pd.DataFrame:
    """unit, state, count: the heatmap of plan states per business unit."""
    sql = f"""
        SELECT coalesce(unit, '(no unit)') AS unit, state, count(*) AS count
        FROM ({PLAN_STALENESS_SQL}) GROUP BY ALL ORDER BY unit, state
    """
    return store.df(sql, _params(store, filters, [filters.as_of]))


@reads_one_snapshot
def staleness_trend(store: Store, filters: Filters) -> pd.DataFrame:
    """month_end, plans, stale, stale_pct."""
    sql = f"""
        SELECT as_of AS month_end,
               count(*) FILTER (WHERE plan_id IS NOT NULL) AS plans,
               count(*) FILTER (WHERE state IN {STALE_STATES_SQL}) AS stale,
               round(100.0 * count(*) FILTER (WHERE state IN {STALE_STATES_SQL})
                     / nullif(count(*) FILTER (WHERE plan_id IS NOT NULL), 0), 1) AS stale_pct
        FROM ({PLAN_STALENESS_SQL}) GROUP BY as_of ORDER BY as_of
    """
    dates = month_ends(filters.since, min(filters.until, filters.as_of))
    return store.df(sql, _params(store, filters, dates))


# Columns: plan_id, plan, owner, service_id, service, state, changes_since_review, change_id, number,
# title, ci_name, reached_through ('service' or the asset's name), change_type, close_code,
# completed_at, emergency, unsuccessful. The completed changes behind each plan changed since review
# at the as-of date: at most $per_plan a plan, emergency and unsuccessful ones first, then the
# latest (`changes_since_review` counts them all: a plan of a busy service can have hundreds).
# Overdue and never tested plans are left out: their fix comes first, and their older baselines
# would widen the window of changes read to nearly all of them.
CHANGES_BEHIND_PLANS_SQL = f"""
WITH flagged AS MATERIALIZED (
    SELECT plan_id, plan, owner, service_id, service, state, changes_since_review, change_baseline
    FROM ({PLAN_STALENESS_SQL}) WHERE state = 'changed since review'
),
-- Which changes to read, from the change days (itscm/change_days.py): of each flagged plan's days
-- after its baseline, those holding its latest $per_plan changes and those holding its latest
-- $per_plan emergency or unsuccessful ones (listed first). No other change can be among the
-- plan's first $per_plan, so the changes of every other day are never read.
plan_days AS (
    SELECT * FROM (
        SELECT f.plan_id, f.service_id, f.change_baseline,
               unnest(m.days) AS day, unnest(m.changes) AS changes, unnest(m.marked) AS marked
        FROM flagged f
        JOIN service_change_days m ON m.service_id = f.service_id
         AND m.month >= date_trunc('month', f.change_baseline)::DATE AND m.month <= $as_of
    )
    WHERE day > change_baseline AND day <= $as_of
),
needed AS MATERIALIZED (
    SELECT DISTINCT service_id, day FROM (
        SELECT service_id, day, marked,
               sum(changes) OVER later - changes AS later_changes, sum(marked) OVER later - marked AS later_marked
        FROM plan_days
        WINDOW later AS (PARTITION BY plan_id ORDER BY day DESC ROWS UNBOUNDED PRECEDING)
    )
    WHERE later_changes < $per_plan OR (marked > 0 AND later_marked < $per_plan)
),
-- the changes of those days, on a range of completed_at that lets DuckDB skip older row groups
recent AS (
    SELECT source, number, title, ci_name, service_id, asset_id, change_type, close_code, completed_at,
           completed_at::DATE AS day
    FROM changes
    WHERE completed_at >= (SELECT min(day) FROM needed)::TIMESTAMP AND completed_at < ($as_of + 1)::TIMESTAMP
),
reaching AS (
    SELECT c.*, c.service_id AS reached, NULL::TEXT AS through_asset
    FROM recent c JOIN needed n ON n.service_id = c.service_id AND n.day = c.day
    UNION ALL
    SELECT c.*, n.service_id, c.asset_id
    FROM recent c
    JOIN (SELECT DISTINCT n.service_id, n.day, sa.asset_id
          FROM needed n JOIN service_assets sa ON sa.service_id = n.service_id) n
      ON n.asset_id = c.asset_id AND n.day = c.day
    WHERE c.service_id IS DISTINCT FROM n.service_id
),
behind AS (
    SELECT f.*, r.* EXCLUDE (service_id, reached, day),
           coalesce(r.change_type = 'emergency', FALSE) AS emergency,
           coalesce(r.close_code = 'unsuccessful', FALSE) AS unsuccessful
    FROM flagged f JOIN reaching r ON r.reached = f.service_id AND r.day > f.change_baseline
    QUALIFY row_number() OVER (PARTITION BY f.plan_id
                               ORDER BY coalesce(r.change_type = 'emergency' OR r.close_code = 'unsuccessful', FALSE)
                                        DESC, r.completed_at DESC, r.source, r.number) <= $per_plan
)
SELECT b.plan_id, b.plan, b.owner, b.service_id, b.service, b.state, b.changes_since_review,
       b.source || ':' || b.number AS change_id,
       b.number, b.title, b.ci_name,
       CASE WHEN b.through_asset IS NULL THEN 'service' ELSE coalesce(a.name, b.through_asset) END
           AS reached_through,
       b.change_type, b.close_code, b.completed_at, b.emergency, b.unsuccessful
FROM behind b
LEFT JOIN assets a ON a.asset_id = b.through_asset
"""
CHANGES_SHOWN_PER_PLAN = 20


@reads_one_snapshot
def changes_behind_plans(store: Store, filters: Filters, per_plan: int = CHANGES_SHOWN_PER_PLAN) -> pd.DataFrame:
    """The changes behind each plan changed since review (at most `per_plan` a plan, emergency and
    unsuccessful first), newest first per plan: what the owner has to read the plan against."""
    sql = f"""
        SELECT * FROM ({CHANGES_BEHIND_PLANS_SQL})
        ORDER BY owner, service, plan_id, completed_at DESC, change_id
    """
    params = _params(store, filters, [filters.as_of]) | {"as_of": filters.as_of, "per_plan": per_plan}
    return store.df(sql, params)


# Columns: owner (the finding's, else its service's), finding_id, what, due_on, overdue (open and
# due before the as-of date), days_overdue, service_id, service, unit, tier, drill_id, held_on.
# The open findings of drills of live services in scope: what the owners have to act on besides
# their plans. A finding's state is kept as it is now, not as a history.
OPEN_FINDINGS_SQL = f"""
SELECT coalesce(f.owner, s.owner) AS owner, f.finding_id, f.what, f.due_on,
       coalesce(f.due_on < $as_of, FALSE) AS overdue,
       -- greatest() skips NULLs: an undated finding is tested first, so it has no days overdue
       CASE WHEN f.due_on IS NOT NULL THEN greatest(date_diff('day', f.due_on, $as_of), 0) END AS days_overdue,
       s.service_id, s.name AS service, u.name AS unit, s.tier, d.drill_id, d.held_on
FROM drill_findings f
JOIN drills d ON d.drill_id = f.drill_id
JOIN services s ON s.service_id = d.service_id
LEFT JOIN business_units u ON u.unit_id = s.unit_id
WHERE f.state = 'open' AND s.lifecycle = 'live' AND {SERVICE_SCOPE_SQL}
"""


@reads_one_snapshot
def open_findings_worklist(store: Store, filters: Filters) -> pd.DataFrame:
    """Open drill findings per owner, overdue first, then by due date (undated last)."""
    sql = f"""
        SELECT * FROM ({OPEN_FINDINGS_SQL})
        ORDER BY overdue DESC, due_on NULLS LAST, owner, service, finding_id
    """
    return store.df(sql, {**filters.scope_params(store), "as_of": filters.as_of})
