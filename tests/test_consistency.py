"""Consistency checks (docs/DESIGN.md §14.5), each on a hand-built store where exactly the rows
expected below break it; every other service in the store is consistent."""

from __future__ import annotations

import pytest

from itscm.filters import Filters
from itscm.measures.consistency import CHECKS, check_counts, consistency_checks, failing_check_count, run_check
from tests import backends
from tests.builders import OrgBuilder
from tests.resilience_org import depends, relies_on, supplier

ALL = Filters()


@pytest.fixture(scope="module")
def org():
    """Default policy ceilings: tier 1 240 min, tier 2 1440, tier 3 4320, tier 4 10080."""
    store = backends.new_store()
    build = OrgBuilder(store)
    ops = build.unit("Operations", unit_id="bu-ops")
    lab = build.unit("Lab", unit_id="bu-lab")

    def fine(name, **columns):   # consistent: an approved plan, every fact set, RTO within its tier
        service_id = build.service(ops, service_id=f"svc-{name}", name=name, **columns)
        build.plan(service_id)
        return service_id

    fine("Fine one", tier=1, rto_minutes=240, mtpd_minutes=480)            # at the ceiling: inside
    fine("Fine two", tier=2, rto_minutes=240, mtpd_minutes=480)            # at the tier above's: inside
    fine("Too slow for tier 1", tier=1, rto_minutes=300, mtpd_minutes=600)
    fine("Too fast for tier 3", tier=3, rto_minutes=60, mtpd_minutes=600)
    fine("Beyond tolerance", tier=2, rto_minutes=600, mtpd_minutes=480)
    build.service(lab, service_id="svc-bare", name="Bare", tier=2, rto_minutes=480, mtpd_minutes=960,
                  owner=" ", impact_cost_per_hour=None, recovery_strategy="none")            # no plan either
    fine("No cost", tier=1, rto_minutes=60, impact_cost_per_hour=None)
    build.service(ops, service_id="svc-t4", name="Unplanned tier 4", tier=4, rto_minutes=4320, mtpd_minutes=8640)
    old = build.service(ops, service_id="svc-old", name="Old mainframe", tier=3, rto_minutes=1440,
                        mtpd_minutes=2880, lifecycle="retired")
    build.plan(old, plan_id="plan-old", title="Mainframe DR")
    depends(store, "svc-Fine one", old)
    fine("Hosted", tier=1, rto_minutes=120, mtpd_minutes=480)
    relies_on(store, "svc-Hosted", supplier(store, "sup-slow", "Slow Hosting", 180))
    relies_on(store, "svc-Fine one", "sup-slow")                           # 180 <= 240: fine
    fine("Twin", tier=3, rto_minutes=1440, mtpd_minutes=2880)
    build.service(lab, service_id="svc-twin2", name=" twin ", tier=3, rto_minutes=1440, mtpd_minutes=2880)
    build.service(ops, service_id="svc-twin-old", name="Twin", tier=3, lifecycle="retired")   # retired: no twin
    yield store
    store.close()


def rows_of(store, key, filters=ALL):
    return run_check(store, filters, key).rows


def test_rto_outside_the_tiers_band(org):
    rows = rows_of(org, "rto_outside_tier_band")
    assert list(zip(rows["service"], rows["problem"], strict=True)) == [
        ("Too slow for tier 1", "longer than the tier allows"),       # 300 > 240
        ("Too fast for tier 3", "as short as a more critical tier"),   # 60 < 1440, tier 2's ceiling
    ]
    assert list(rows["band_to"]) == [240, 4320]
    assert rows["band_from"].isna().iloc[0] and rows["band_from"].iloc[1] == 1440


def test_rto_longer_than_mtpd(org):
    rows = rows_of(org, "rto_above_mtpd")
    assert list(zip(rows["service"], rows["excess_minutes"], strict=True)) == [("Beyond tolerance", 120)]


def test_critical_service_without_owner_cost_strategy_or_plan(org):
    rows = rows_of(org, "critical_service_incomplete")
    assert dict(zip(rows["service"], rows["missing"], strict=True)) == {
        "No cost": "cost per hour",
        "Bare": "owner, cost per hour, strategy, approved plan",
    }   # Unplanned tier 4 is not critical


def test_approved_plan_for_a_retired_service(org):
    rows = rows_of(org, "approved_plan_retired_service")
    assert list(zip(rows["service"], rows["plan_id"], strict=True)) == [("Old mainframe", "plan-old")]


def test_dependency_on_a_retired_service(org):
    rows = rows_of(org, "dependency_on_retired_service")
    assert list(zip(rows["service"], rows["retired_service"], strict=True)) == [("Fine one", "Old mainframe")]


def test_supplier_slower_than_the_rto_of_a_service_relying_on_it(org):
    rows = rows_of(org, "supplier_slower_than_rto")
    assert list(zip(rows["service"], rows["supplier"], rows["excess_minutes"], strict=True)) == [
        ("Hosted", "Slow Hosting", 60)]


def test_two_live_services_with_the_same_name(org):
    rows = rows_of(org, "duplicate_live_name")
    assert list(zip(rows["service_id"], rows["same_name_as"], strict=True)) == [
        ("svc-Twin", "svc-twin2"), ("svc-twin2", "svc-Twin")]


def test_the_filter_keeps_only_its_services_and_the_counts_add_up(org):
    lab = Filters(units=("Lab",))
    assert list(rows_of(org, "critical_service_incomplete", lab)["service"]) == ["Bare"]
    assert list(rows_of(org, "duplicate_live_name", lab)["service_id"]) == ["svc-twin2"]
    counts = check_counts(org, ALL).set_index("key")["count"].to_dict()
    assert counts == {"rto_outside_tier_band": 2, "rto_above_mtpd": 1, "critical_service_incomplete": 2,
                      "approved_plan_retired_service": 1, "dependency_on_retired_service": 1,
                      "supplier_slower_than_rto": 1, "duplicate_live_name": 2}
    assert failing_check_count(org, ALL) == len(CHECKS) == 7
    assert failing_check_count(org, Filters(units=("Lab",))) == 2
    assert [r.check.key for r in consistency_checks(org, ALL)] == [c.key for c in CHECKS]


def test_a_consistent_store_fails_no_check():
    store = backends.new_store()
    build = OrgBuilder(store)
    build.plan(build.service(None, tier=1, rto_minutes=60, mtpd_minutes=120))
    assert failing_check_count(store, ALL) == 0
    store.close()


def test_an_admin_moves_a_tiers_rto_ceiling_and_the_band_check_follows(org):
    from itscm import administration
    from itscm.access import Actor

    admin = Actor("admin@example.com", "admin")
    administration.edit_policy(admin, org, {1: {"rto_ceiling_minutes": 300}})
    try:
        assert "Too slow for tier 1" not in set(rows_of(org, "rto_outside_tier_band")["service"])   # 300 <= 300
        assert administration.policy(org).set_index("tier").loc[1, "rto_ceiling_minutes"] == 300
        with pytest.raises(administration.ChangeRefused):
            administration.edit_policy(admin, org, {1: {"rto_ceiling_minutes": 2.5}})
    finally:
        administration.edit_policy(admin, org, {1: {"rto_ceiling_minutes": 240}})
    assert "Too slow for tier 1" in set(rows_of(org, "rto_outside_tier_band")["service"])
