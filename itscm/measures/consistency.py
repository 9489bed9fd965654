"""Consistency checks (docs/DESIGN.md §14.5): facts of the inventory that contradict each other or
the policy, as a worklist. Each check has a key, a title and the SQL of its rows; a check fails when
it has rows. Every check keeps the services the filter keeps (business units and tiers); the
period and the as-of date play no part (the inventory holds current facts only).

Not to be confused with itscm/checks.py, which checks the store's derived data against a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.store import Store, reads_one_snapshot


def _live_in_scope(joins: str = "") -> str:
    """FROM and WHERE of the live services in the filter, `s`, with their unit `u` and `joins`."""
    return f"""
    FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id {joins}
    WHERE s.lifecycle = 'live' AND {SERVICE_SCOPE_SQL}
    """



@dataclass(frozen=True)
class Check:
    key: str
    title: str
    explains: str      # what a row means and what to do about it
    sql: str           # columns: service_id, service, unit, tier, then the check's own


@dataclass(frozen=True)
class CheckResult:
    check: Check
    rows: pd.DataFrame

    @property
    def count(self) -> int:
        return len(self.rows)


CHECKS: tuple[Check, ...] = (
    Check("rto_outside_tier_band", "RTO outside the policy's band for the tier",
          "The RTO is longer than the tier's RTO ceiling, or shorter than the ceiling of the tier above "
          "(so the tier understates how critical the service is). Change the RTO or the tier.",
          f"""
          WITH bands AS (
              SELECT tier, rto_ceiling_minutes AS band_to,
                     lag(rto_ceiling_minutes) OVER (ORDER BY tier) AS band_from
              FROM policy)
          SELECT s.service_id, s.name AS service, u.name AS unit, s.tier, s.rto_minutes, b.band_from, b.band_to,
                 CASE WHEN s.rto_minutes > b.band_to THEN 'longer than the tier allows'
                      ELSE 'as short as a more critical tier' END AS problem
          {_live_in_scope("JOIN bands b ON b.tier = s.tier")}
            AND (s.rto_minutes > b.band_to OR s.rto_minutes < b.band_from)
          ORDER BY s.tier, s.name"""),
    Check("rto_above_mtpd", "RTO longer than the MTPD",
          "The service may stay down longer than the business can tolerate. Shorten the RTO or revisit the MTPD.",
          f"""
          SELECT s.service_id, s.name AS service, u.name AS unit, s.tier, s.rto_minutes, s.mtpd_minutes,
                 s.rto_minutes - s.mtpd_minutes AS excess_minutes
          {_live_in_scope()}
            AND s.rto_minutes > s.mtpd_minutes
          ORDER BY excess_minutes DESC, s.name"""),
    Check("critical_service_incomplete", "Critical service without owner, cost, strategy or plan",
          "A service of a critical tier lacks one of what its recovery needs: an owner, a BIA cost per hour, "
          "a recovery strategy, an approved plan.",
          f"""
          SELECT * FROM (
              SELECT s.service_id, s.name AS service, u.name AS unit, s.tier,
                     concat_ws(', ',
                         CASE WHEN nullif(trim(coalesce(s.owner, '')), '') IS NULL THEN 'owner' END,
                         CASE WHEN s.impact_cost_per_hour IS NULL THEN 'cost per hour' END,
                         CASE WHEN coalesce(s.recovery_strategy, 'none') IN ('none', '') THEN 'strategy' END,
                         CASE WHEN NOT EXISTS (SELECT 1 FROM plans p WHERE p.service_id = s.service_id
                                               AND p.status = 'approved') THEN 'approved plan' END) AS missing
              {_live_in_scope()}
                AND s.tier IN (SELECT tier FROM policy WHERE is_critical))
          WHERE missing <> ''
          ORDER BY tier, service"""),
    Check("approved_plan_retired_service", "Approved plan for a retired service",
          "The service is retired but its plan is still approved. Retire the plan.",
          f"""
          SELECT s.service_id, s.name AS service, u.name AS unit, s.tier, p.plan_id, p.title AS plan, p.owner
          FROM plans p JOIN services s ON s.service_id = p.service_id
          LEFT JOIN business_units u ON u.unit_id = s.unit_id
          WHERE p.status = 'approved' AND s.lifecycle = 'retired' AND {SERVICE_SCOPE_SQL}
          ORDER BY s.name, p.plan_id"""),
    Check("dependency_on_retired_service", "Dependency on a retired service",
          "A live service depends on a retired one: the dependency is out of date, or the service is not retired.",
          f"""
          SELECT s.service_id, s.name AS service, u.name AS unit, s.tier,
                 r.service_id AS retired_service_id, r.name AS retired_service
          {_live_in_scope("JOIN dependencies d ON d.service_id = s.service_id "
                          "JOIN services r ON r.service_id = d.depends_on_id")}
            AND r.lifecycle = 'retired'
          ORDER BY s.name, r.name"""),
    Check("supplier_slower_than_rto", "Supplier's contracted recovery time longer than the RTO",
          "The service relies on a supplier whose contract allows a longer recovery than the service's RTO.",
          f"""
          SELECT s.service_id, s.name AS service, u.name AS unit, s.tier, s.rto_minutes,
                 sp.supplier_id, sp.name AS supplier, sp.contracted_recovery_minutes,
                 sp.contracted_recovery_minutes - s.rto_minutes AS excess_minutes
          {_live_in_scope("JOIN service_suppliers ss ON ss.service_id = s.service_id "
                          "JOIN suppliers sp ON sp.supplier_id = ss.supplier_id")}
            AND sp.contracted_recovery_minutes > s.rto_minutes
          ORDER BY excess_minutes DESC, s.name, sp.name"""),
    Check("duplicate_live_name", "Two live services with the same name",
          "Names are compared ignoring case and surrounding spaces; incidents naming them match only one.",
          f"""
          SELECT s.service_id, s.name AS service, u.name AS unit, s.tier,
                 (SELECT string_agg(o.service_id, ', ' ORDER BY o.service_id) FROM services o
                  WHERE o.lifecycle = 'live' AND o.service_id <> s.service_id
                    AND lower(trim(o.name)) = lower(trim(s.name))) AS same_name_as
          {_live_in_scope()}
            AND EXISTS (SELECT 1 FROM services o WHERE o.lifecycle = 'live' AND o.service_id <> s.service_id
                        AND lower(trim(o.name)) = lower(trim(s.name)))
          ORDER BY lower(trim(s.name)), s.service_id"""),
)

CHECKS_BY_KEY = {check.key: check for check in CHECKS}


@reads_one_snapshot
def run_check(store: Store, filters: Filters, key: str) -> CheckResult:
    check = CHECKS_BY_KEY[key]
    return CheckResult(check, store.df(check.sql, filters.scope_params(store)))


@reads_one_snapshot
def consistency_checks(store: Store, filters: Filters) -> list[CheckResult]:
    """Every check with its rows, in the order of CHECKS."""
    params = filters.scope_params(store)
    return [CheckResult(check, store.df(check.sql, params)) for check in CHECKS]


@reads_one_snapshot
def check_counts(store: Store, filters: Filters) -> pd.DataFrame:
    """key, check (its title), count: one row per check."""
    results = consistency_checks(store, filters)
    return pd.DataFrame([(r.check.key, r.check.title, r.count) for r in results], columns=["key", "check", "count"])


@reads_one_snapshot
def failing_check_count(store: Store, filters: Filters) -> int:
    """How many checks have at least one row: the Overview's figure."""
    return int((check_counts(store, filters)["count"] > 0).sum())
