"""Plan staleness, worked by hand. Tier 2 reviews and tests every 365 days."""

import datetime as dt

import pytest

from itscm.filters import Filters
from itscm.measures.staleness import (
    open_findings_worklist,
    plan_worklist,
    staleness_by_unit,
    staleness_summary,
    staleness_trend,
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


def plan_with(org, *, reviewed_days_ago, tested_days_ago, tier=2, **plan_columns):
    service = org.service(org.unit_id, tier=tier)
    plan = org.plan(service, **plan_columns)
    if reviewed_days_ago is not None:
        org.review(plan, AS_OF - reviewed_days_ago * DAY)
    if tested_days_ago is not None:
        org.drill(service, AS_OF - tested_days_ago * DAY, plan_id=plan)
    return plan


def state_of(org, plan_id):
    worklist = plan_worklist(org.store, FILTERS).set_index("plan_id")
    return worklist.loc[plan_id, "state"]


@pytest.mark.parametrize(("days_ago", "state"), [
    (10, "current"),
    (334, "current"),              # due in 31 days
    (335, "due within 30 days"),   # due in exactly 30 days
    (365, "due within 30 days"),   # due today: not yet overdue
    (366, "overdue"),
])
def test_due_soon_boundary_on_review(org, days_ago, state):
    plan = plan_with(org, reviewed_days_ago=days_ago, tested_days_ago=5)
    assert state_of(org, plan) == state


@pytest.mark.parametrize(("days_ago", "state"), [(334, "current"), (335, "due within 30 days"), (366, "overdue")])
def test_due_soon_boundary_on_test(org, days_ago, state):
    plan = plan_with(org, reviewed_days_ago=5, tested_days_ago=days_ago)
    assert state_of(org, plan) == state


def test_never_tested_wins_over_overdue(org):
    plan = plan_with(org, reviewed_days_ago=None, tested_days_ago=None)
    assert state_of(org, plan) == "never tested"


def test_never_reviewed_is_overdue(org):
    plan = plan_with(org, reviewed_days_ago=None, tested_days_ago=5)
    assert state_of(org, plan) == "overdue"


def test_only_passed_drills_count_as_tests(org):
    service = org.service(org.unit_id, tier=2)
    plan = org.plan(service)
    org.review(plan, AS_OF - 5 * DAY)
    org.drill(service, AS_OF - 5 * DAY, plan_id=plan, outcome="failed")
    assert state_of(org, plan) == "never tested"


def test_drill_for_no_particular_plan_counts_for_the_service_plans(org):
    service = org.service(org.unit_id, tier=2)
    plan = org.plan(service)
    org.review(plan, AS_OF - 5 * DAY)
    org.drill(service, AS_OF - 5 * DAY, plan_id=None)
    assert state_of(org, plan) == "current"


def test_drill_for_another_plan_of_the_service_does_not_count(org):
    service = org.service(org.unit_id, tier=2)
    plan, other = org.plan(service), org.plan(service)
    org.review(plan, AS_OF - 5 * DAY)
    org.drill(service, AS_OF - 5 * DAY, plan_id=other)
    org.drill(service, AS_OF - 400 * DAY, plan_id=plan)
    assert state_of(org, plan) == "overdue"   # its own drill is 400 days old
    org.drill(service, AS_OF + 5 * DAY, plan_id=plan)   # after the as-of date: not yet held
    assert state_of(org, plan) == "overdue"


def test_tier_1_uses_its_own_review_interval(org):
    plan = plan_with(org, reviewed_days_ago=181, tested_days_ago=5, tier=1)   # 180-day reviews
    assert state_of(org, plan) == "overdue"


def test_summary_counts_states_and_services_without_plan(org):
    plan_with(org, reviewed_days_ago=10, tested_days_ago=10)                  # current
    plan_with(org, reviewed_days_ago=340, tested_days_ago=10)                 # due soon
    plan_with(org, reviewed_days_ago=400, tested_days_ago=10)                 # overdue
    plan_with(org, reviewed_days_ago=10, tested_days_ago=None)                # never tested
    plan_with(org, reviewed_days_ago=10, tested_days_ago=10, status="draft")  # drafts count too
    plan_with(org, reviewed_days_ago=900, tested_days_ago=900, status="retired")  # ignored
    org.service(org.unit_id, tier=3)                                          # no plan
    org.service(org.unit_id, tier=1, lifecycle="retired")                     # retired: ignored
    retired_service = org.service(org.unit_id, lifecycle="retired")
    org.plan(retired_service)                                                 # plan of retired service
    assert staleness_summary(org.store, FILTERS) == {
        "plans": 5, "current": 2, "due_soon": 1, "changed_since_review": 0, "overdue": 1, "never_tested": 1,
        "services_without_plan": 2,   # the tier-3 service and the one whose only plan is retired
        "stale_pct": 40.0,
    }
    worklist = plan_worklist(org.store, FILTERS)
    assert list(worklist["state"])[:2] == ["no plan", "no plan"]
    heat = staleness_by_unit(org.store, FILTERS).set_index("state")["count"]
    assert heat.to_dict() == {"current": 2, "due within 30 days": 1, "never tested": 1, "no plan": 2,
                              "overdue": 1}


def test_filters_by_unit_and_tier(org):
    plan_with(org, reviewed_days_ago=400, tested_days_ago=10, tier=1)
    retail = org.unit("Retail")
    org.service(retail, tier=2)
    assert staleness_summary(org.store, Filters(as_of=AS_OF, units=("Retail",)))["services_without_plan"] == 1
    assert staleness_summary(org.store, Filters(as_of=AS_OF, units=("Retail",)))["plans"] == 0
    assert staleness_summary(org.store, Filters(as_of=AS_OF, tiers=(1,)))["overdue"] == 1
    assert staleness_summary(org.store, Filters(as_of=AS_OF, tiers=(2,)))["overdue"] == 0


def test_trend_takes_staleness_at_each_month_end(org):
    plan_with(org, reviewed_days_ago=340, tested_days_ago=10)   # reviewed 2025-07-25, due 2026-07-25
    trend = staleness_trend(org.store, Filters(since=dt.date(2026, 4, 1), until=AS_OF, as_of=AS_OF))
    # The drill was on 2026-06-20: at the April and May month ends the plan was never tested.
    assert list(trend["stale"]) == [1, 1, 0]
    assert list(trend["stale_pct"]) == [100.0, 100.0, 0.0]


# -- open findings in the owner worklist --------------------------------------------------------


def finding(org, drill_id: str, what: str, **columns) -> None:
    row = {"finding_id": what, "drill_id": drill_id, "what": what, "owner": None, "due_on": None, "state": "open"}
    row.update(columns)
    org._insert("drill_findings", row)


def test_open_findings_per_owner_with_the_overdue_ones_first(org):
    service = org.service(org.unit_id, tier=2, owner="Service Owner")
    drill = org.drill(service, AS_OF - 20 * DAY, outcome="partial")
    finding(org, drill, "due later", owner="Grace", due_on=AS_OF + 10 * DAY)
    finding(org, drill, "overdue", owner="Grace", due_on=AS_OF - 3 * DAY)
    finding(org, drill, "undated")                                         # its service's owner owns it
    finding(org, drill, "due today", owner="Ada", due_on=AS_OF)            # not yet overdue
    finding(org, drill, "closed", owner="Grace", due_on=AS_OF - 30 * DAY, state="closed")
    finding(org, drill, "accepted", owner="Grace", state="risk accepted")
    retired = org.service(org.unit_id, lifecycle="retired")
    finding(org, org.drill(retired, AS_OF - 20 * DAY), "of a retired service", due_on=AS_OF - 30 * DAY)
    other_unit = org.service(org.unit("Retail"), tier=2)
    finding(org, org.drill(other_unit, AS_OF - 20 * DAY), "in Retail", owner="Ada", due_on=AS_OF - 1 * DAY)

    found = open_findings_worklist(org.store, FILTERS)
    assert list(zip(found["what"], found["owner"], found["overdue"], found["days_overdue"].fillna(-1),
                    strict=True)) == [
        ("overdue", "Grace", True, 3), ("in Retail", "Ada", True, 1),
        ("due today", "Ada", False, 0), ("due later", "Grace", False, 0), ("undated", "Service Owner", False, -1)]
    payments = open_findings_worklist(org.store, Filters(as_of=AS_OF, units=("Payments",)))
    assert "in Retail" not in set(payments["what"]) and len(payments) == 4
