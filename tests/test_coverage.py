"""Critical-service coverage: every control of docs/DESIGN.md §4.1, on its own, worked by hand."""

import datetime as dt

import pytest

from itscm.filters import Filters
from itscm.measures.coverage import (
    CONTROLS,
    control_gap_counts,
    coverage_by_service,
    coverage_by_unit_tier,
    coverage_summary,
    coverage_trend,
)
from tests.builders import OrgBuilder

AS_OF = dt.date(2026, 6, 30)
FILTERS = Filters(as_of=AS_OF)
DAY = dt.timedelta(days=1)


@pytest.fixture
def org():
    builder = OrgBuilder()
    builder.unit_id = builder.unit("Payments")
    return builder


def only_row(org):
    matrix = coverage_by_service(org.store, FILTERS)
    assert len(matrix) == 1
    return matrix.iloc[0]


def test_a_service_meeting_every_control_is_covered(org):
    org.covered_service(org.unit_id, AS_OF)
    row = only_row(org)
    assert all(row[control] for control in CONTROLS)
    assert row["covered"] and row["gaps"] == 0
    assert coverage_summary(org.store, FILTERS) == {"in_scope": 1, "covered": 1, "pct": 100.0}


@pytest.mark.parametrize(
    ("columns", "failing"),
    [
        ({"rto_minutes": None}, {"objectives_set", "rto_proven", "rto_within_mtpd"}),
        ({"rpo_minutes": None}, {"objectives_set"}),
        ({"impact_cost_per_hour": None}, {"bia_cost_set"}),
        ({"recovery_strategy": "none"}, {"strategy_set"}),
        ({"recovery_strategy": None}, {"strategy_set"}),
        ({"rto_minutes": 100}, {"rto_proven"}),                  # drill RTA 120 > RTO 100
        ({"mtpd_minutes": 200}, {"rto_within_mtpd"}),            # RTO 240 > MTPD 200
    ],
)
def test_each_service_control_on_its_own(org, columns, failing):
    org.covered_service(org.unit_id, AS_OF, **columns)
    row = only_row(org)
    assert {control for control in CONTROLS if not row[control]} == failing
    assert not row["covered"]
    assert row["gaps"] == len(failing)
    assert coverage_summary(org.store, FILTERS) == {"in_scope": 1, "covered": 0, "pct": 0.0}


def test_mtpd_not_set_does_not_fail(org):
    org.covered_service(org.unit_id, AS_OF, mtpd_minutes=None)
    assert only_row(org)["covered"]


def test_rta_exactly_equal_to_rto_proves_it(org):
    org.covered_service(org.unit_id, AS_OF, rto_minutes=120)  # drill RTA is 120
    assert only_row(org)["rto_proven"]


def test_no_plan_fails_plan_controls(org):
    service = org.service(org.unit_id)
    org.drill(service, AS_OF - 5 * DAY)
    row = only_row(org)
    assert not row["approved_plan"] and not row["plan_reviewed"]
    assert row["drill_passed"] and row["rto_proven"]


def test_draft_plan_is_not_approved(org):
    service = org.service(org.unit_id)
    plan = org.plan(service, status="draft", approved_on=None)
    org.review(plan, AS_OF - 5 * DAY)
    org.drill(service, AS_OF - 5 * DAY)
    row = only_row(org)
    assert not row["approved_plan"]
    assert not row["plan_reviewed"]  # only reviews of approved plans count


def test_plan_approved_after_the_as_of_date_does_not_count(org):
    service = org.service(org.unit_id)
    plan = org.plan(service, approved_on=AS_OF + DAY)
    org.review(plan, AS_OF - DAY)
    assert not only_row(org)["approved_plan"]


@pytest.mark.parametrize(("days_ago", "reviewed"), [(180, True), (181, False)])
def test_review_interval_boundary_tier_1(org, days_ago, reviewed):
    service = org.service(org.unit_id, tier=1)  # tier 1 reviews every 180 days
    plan = org.plan(service)
    org.review(plan, AS_OF - days_ago * DAY)
    org.drill(service, AS_OF - DAY)
    assert bool(only_row(org)["plan_reviewed"]) is reviewed


def test_review_after_the_as_of_date_does_not_count(org):
    service = org.service(org.unit_id)
    plan = org.plan(service)
    org.review(plan, AS_OF + DAY)
    assert not only_row(org)["plan_reviewed"]


@pytest.mark.parametrize(("days_ago", "tested"), [(365, True), (366, False)])
def test_test_interval_boundary_tier_2(org, days_ago, tested):
    service = org.service(org.unit_id, tier=2)  # tier 2 tests every 365 days, at least a tabletop
    org.drill(service, AS_OF - days_ago * DAY, drill_type="tabletop", rta_minutes=None)
    assert bool(only_row(org)["drill_passed"]) is tested


@pytest.mark.parametrize(("outcome", "drill_type", "tested"), [
    ("failed", "simulation", False),
    ("partial", "simulation", False),
    ("passed", "tabletop", False),      # tier 1 needs at least a simulation
    ("passed", "parallel", True),
    ("passed", "full interruption", True),
])
def test_only_passed_drills_of_the_minimum_type_count(org, outcome, drill_type, tested):
    service = org.service(org.unit_id, tier=1)
    org.drill(service, AS_OF - 10 * DAY, outcome=outcome, drill_type=drill_type)
    assert bool(only_row(org)["drill_passed"]) is tested


def test_rto_proven_by_latest_passed_drill_that_measured_an_rta(org):
    service = org.service(org.unit_id, rto_minutes=240)
    org.drill(service, AS_OF - 100 * DAY, rta_minutes=300)           # older, breached
    org.drill(service, AS_OF - 50 * DAY, rta_minutes=200)            # latest measured: proves
    org.drill(service, AS_OF - 10 * DAY, drill_type="tabletop", rta_minutes=None)
    org.drill(service, AS_OF - 5 * DAY, outcome="failed", rta_minutes=900)  # failed drills don't count
    row = only_row(org)
    assert row["proving_rta_minutes"] == 200
    assert row["rto_proven"]


def test_latest_passed_drill_over_rto_unproves(org):
    service = org.service(org.unit_id, rto_minutes=240)
    org.drill(service, AS_OF - 100 * DAY, rta_minutes=200)
    org.drill(service, AS_OF - 50 * DAY, rta_minutes=241)
    assert not only_row(org)["rto_proven"]


def test_scope_is_live_services_in_critical_tiers(org):
    org.covered_service(org.unit_id, AS_OF, tier=1)
    org.covered_service(org.unit_id, AS_OF, tier=2)
    org.service(org.unit_id, tier=2)                        # uncovered, in scope
    org.service(org.unit_id, tier=3)                        # not critical
    org.service(org.unit_id, tier=1, lifecycle="retired")   # retired
    assert coverage_summary(org.store, FILTERS) == {"in_scope": 3, "covered": 2, "pct": 66.7}


def test_filters_by_unit_with_sub_units_and_by_tier(org):
    retail = org.unit("Retail")
    cards = org.unit("Cards", parent=retail)
    org.covered_service(org.unit_id, AS_OF)
    org.service(retail, tier=1)
    org.covered_service(cards, AS_OF, tier=2)
    org.service(cards, tier=2)

    def summary(**kwargs):
        return coverage_summary(org.store, Filters(as_of=AS_OF, **kwargs))

    assert summary() == {"in_scope": 4, "covered": 2, "pct": 50.0}
    assert summary(units=("Retail",)) == {"in_scope": 3, "covered": 1, "pct": 33.3}
    assert summary(units=("Cards",)) == {"in_scope": 2, "covered": 1, "pct": 50.0}
    assert summary(units=("Payments", "Cards")) == {"in_scope": 3, "covered": 2, "pct": 66.7}
    assert summary(tiers=(2,)) == {"in_scope": 2, "covered": 1, "pct": 50.0}
    assert summary(units=("Retail",), tiers=(1,)) == {"in_scope": 1, "covered": 0, "pct": 0.0}
    assert summary(tiers=(3,)) == {"in_scope": 0, "covered": 0, "pct": None}

    by_unit = coverage_by_unit_tier(org.store, FILTERS).set_index(["unit", "tier"])
    assert by_unit.loc[("Retail", 1), "in_scope"] == 1
    assert by_unit.loc[("Retail", 1), "approved_plan_gaps"] == 1
    assert by_unit.loc[("Cards", 2), "pct"] == 50.0


def test_gap_counts_per_control(org):
    org.covered_service(org.unit_id, AS_OF, impact_cost_per_hour=None)
    org.service(org.unit_id, rpo_minutes=None)
    counts = control_gap_counts(org.store, FILTERS).set_index("control")["failing"]
    assert counts["bia_cost_set"] == 1
    assert counts["objectives_set"] == 1
    assert counts["approved_plan"] == 1
    assert counts["rto_within_mtpd"] == 0


def test_trend_takes_coverage_at_each_month_end(org):
    service = org.service(org.unit_id)
    plan = org.plan(service)
    org.review(plan, dt.date(2026, 4, 15))
    org.drill(service, dt.date(2026, 4, 20))
    trend = coverage_trend(org.store, Filters(since=dt.date(2026, 3, 1), until=AS_OF, as_of=AS_OF))
    assert [str(d.date()) for d in trend["month_end"]] == ["2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30"]
    assert list(trend["covered"]) == [0, 1, 1, 1]
    assert list(trend["pct"]) == [0.0, 100.0, 100.0, 100.0]
