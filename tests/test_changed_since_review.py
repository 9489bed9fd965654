"""Plans changed since review (docs/DESIGN.md §16), worked by hand: the staleness state, the
changes behind it in the worklist, and the coverage control it fails. Tier 2 reviews and tests
every 365 days, so a plan reviewed and tested 100 days before the as-of date is otherwise current."""

import datetime as dt

import pytest

from itscm import administration
from itscm.access import LOCAL_USER
from itscm.filters import Filters
from itscm.measures.coverage import coverage_by_service, coverage_summary
from itscm.measures.staleness import changes_behind_plans, plan_worklist, staleness_summary, staleness_trend
from tests.builders import OrgBuilder
from tests.change_builders import asset, change, runs_on

AS_OF = dt.date(2026, 6, 30)
FILTERS = Filters(as_of=AS_OF)
DAY = dt.timedelta(days=1)
REVIEWED = AS_OF - 100 * DAY


@pytest.fixture
def org():
    builder = OrgBuilder()
    builder.unit_id = builder.unit("Payments")
    return builder


def reviewed_plan(org, *, tier=2, reviewed=REVIEWED, approved_on=dt.date(2024, 1, 1)):
    service = org.service(org.unit_id, tier=tier)
    plan = org.plan(service, approved_on=approved_on)
    if reviewed is not None:
        org.review(plan, reviewed)
    org.drill(service, REVIEWED - 10 * DAY, plan_id=plan, rta_minutes=60)
    return service, plan


def state_of(org, plan_id, filters=FILTERS):
    return plan_worklist(org.store, filters).set_index("plan_id").loc[plan_id, "state"]


def test_a_plan_with_no_change_is_current(org):
    _, plan = reviewed_plan(org)
    assert state_of(org, plan) == "current"


def test_a_change_to_the_service_after_the_review_flags_the_plan(org):
    service, plan = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + 10 * DAY)
    row = plan_worklist(org.store, FILTERS).set_index("plan_id").loc[plan]
    assert row["state"] == "changed since review"
    assert row["changes_since_review"] == 1
    assert row["last_change"].date() == REVIEWED + 10 * DAY


def test_a_change_before_the_review_does_not_count(org):
    service, plan = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED - DAY)
    change(org, service_id=service, work_end=REVIEWED)      # on the day of the review: the review saw it
    assert state_of(org, plan) == "current"


def test_a_cancelled_change_does_not_count(org):
    service, plan = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + 10 * DAY, state="cancelled", close_code=None)
    assert state_of(org, plan) == "current"


@pytest.mark.parametrize("state", ["planned", "in progress", None])
def test_a_change_not_yet_implemented_does_not_count(org, state):
    service, plan = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + 10 * DAY, state=state)
    assert state_of(org, plan) == "current"


def test_an_implemented_change_counts_before_it_is_closed(org):
    service, plan = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + 10 * DAY, state="implemented", close_code=None)
    assert state_of(org, plan) == "changed since review"


def test_a_change_to_an_asset_of_the_service_counts(org):
    service, plan = reviewed_plan(org)
    other_service, other_plan = reviewed_plan(org)
    database = asset(org, "Payments DB", asset_class="database")
    runs_on(org, service, database)
    runs_on(org, service, database, relation="depends on")    # a second relation to the same asset
    change(org, asset_id=database, work_end=REVIEWED + 5 * DAY, number="CHG1")
    assert state_of(org, plan) == "changed since review"
    assert plan_worklist(org.store, FILTERS).set_index("plan_id").loc[plan, "changes_since_review"] == 1
    assert state_of(org, other_plan) == "current"        # the asset is not behind the other service
    behind = changes_behind_plans(org.store, FILTERS)
    assert behind[["plan_id", "number", "reached_through"]].to_dict("records") == [
        {"plan_id": plan, "number": "CHG1", "reached_through": "Payments DB"}]
    assert other_service not in set(behind["service_id"])


def test_a_change_matched_to_the_service_and_its_asset_counts_once(org):
    service, plan = reviewed_plan(org)
    database = asset(org, "Payments DB")
    runs_on(org, service, database)
    runs_on(org, service, database, relation="hosted on")     # two relations to one asset: still once
    change(org, service_id=service, asset_id=database, work_end=REVIEWED + 5 * DAY)
    assert plan_worklist(org.store, FILTERS).set_index("plan_id").loc[plan, "changes_since_review"] == 1
    assert len(changes_behind_plans(org.store, FILTERS)) == 1


def test_as_of_in_the_past_sees_only_the_changes_completed_before_it(org):
    service, plan = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + 20 * DAY)
    earlier = Filters(as_of=REVIEWED + 19 * DAY)
    on_the_day = Filters(as_of=REVIEWED + 20 * DAY)
    assert state_of(org, plan, earlier) == "current"
    assert changes_behind_plans(org.store, earlier).empty
    assert state_of(org, plan, on_the_day) == "changed since review"


def test_completion_is_work_end_else_planned_end_else_closed(org):
    service, plan = reviewed_plan(org)
    # work ended before the review, though closed after it: the review saw the change
    change(org, service_id=service, work_end=REVIEWED - DAY, closed_at=dt.datetime.combine(REVIEWED + 5 * DAY,
                                                                                         dt.time()))
    assert state_of(org, plan) == "current"
    change(org, service_id=service, planned_end=dt.datetime.combine(REVIEWED + 3 * DAY, dt.time()))
    assert state_of(org, plan) == "changed since review"


def test_never_reviewed_plan_counts_changes_since_its_approval_but_stays_overdue(org):
    service, plan = reviewed_plan(org, reviewed=None, approved_on=REVIEWED)
    change(org, service_id=service, work_end=REVIEWED - DAY)
    row = plan_worklist(org.store, FILTERS).set_index("plan_id").loc[plan]
    assert row["changes_since_review"] == 0
    change(org, service_id=service, work_end=REVIEWED + DAY)
    row = plan_worklist(org.store, FILTERS).set_index("plan_id").loc[plan]
    assert (row["state"], row["changes_since_review"]) == ("overdue", 1)   # precedence: overdue first


def test_precedence_overdue_and_never_tested_before_changed_due_soon_after(org):
    service = org.service(org.unit_id, tier=2)
    untested = org.plan(service)
    org.review(untested, REVIEWED)
    change(org, service_id=service, work_end=REVIEWED + DAY)
    assert state_of(org, untested) == "never tested"

    due_soon_service, due_soon = reviewed_plan(org, reviewed=AS_OF - 340 * DAY)
    assert state_of(org, due_soon) == "due within 30 days"
    change(org, service_id=due_soon_service, work_end=AS_OF - 10 * DAY)
    assert state_of(org, due_soon) == "changed since review"


def test_changed_plans_count_as_stale_in_summary_and_trend(org):
    service, _ = reviewed_plan(org)
    reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + 10 * DAY)
    summary = staleness_summary(org.store, FILTERS)
    assert (summary["changed_since_review"], summary["current"], summary["stale_pct"]) == (1, 1, 50.0)
    trend = staleness_trend(org.store, Filters(as_of=AS_OF, since=dt.date(2026, 3, 1), until=AS_OF))
    by_month = dict(zip(trend["month_end"].dt.date, trend["stale"], strict=True))
    assert by_month[dt.date(2026, 3, 31)] == 0          # before the change
    assert by_month[dt.date(2026, 6, 30)] == 1


def test_emergency_and_unsuccessful_changes_are_marked(org):
    service, _ = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + DAY, number="E", change_type="emergency")
    change(org, service_id=service, work_end=REVIEWED + 2 * DAY, number="U", close_code="unsuccessful")
    change(org, service_id=service, work_end=REVIEWED + 3 * DAY, number="S", change_type="standard")
    behind = changes_behind_plans(org.store, FILTERS).set_index("number")
    assert list(behind.index) == ["S", "U", "E"]          # newest first
    assert behind["emergency"].to_dict() == {"S": False, "U": False, "E": True}
    assert behind["unsuccessful"].to_dict() == {"S": False, "U": True, "E": False}


def test_the_changes_shown_per_plan_are_capped_marked_ones_first(org):
    service, _ = reviewed_plan(org)
    for day in range(1, 6):
        change(org, service_id=service, work_end=REVIEWED + day * DAY, number=f"N{day}")
    change(org, service_id=service, work_end=REVIEWED + DAY, number="OLD-EMERGENCY", change_type="emergency")
    behind = changes_behind_plans(org.store, FILTERS, per_plan=3)
    assert behind["number"].tolist() == ["N5", "N4", "OLD-EMERGENCY"]
    assert set(behind["changes_since_review"]) == {6}


def test_a_change_since_review_fails_the_review_control_when_the_policy_says_so(org):
    service = org.covered_service(org.unit_id, AS_OF)          # tier 1, reviewed 10 days ago
    assert coverage_summary(org.store, FILTERS)["covered"] == 1
    change(org, service_id=service, work_end=AS_OF - 5 * DAY)
    row = coverage_by_service(org.store, FILTERS).set_index("service_id").loc[service]
    assert (bool(row["plan_reviewed"]), bool(row["covered"])) == (False, False)
    assert row["last_change"].date() == AS_OF - 5 * DAY
    assert coverage_summary(org.store, Filters(as_of=AS_OF - 6 * DAY))["covered"] == 1   # before the change

    administration.edit_policy(LOCAL_USER, org.store, {1: {"change_fails_review": False}})
    row = coverage_by_service(org.store, FILTERS).set_index("service_id").loc[service]
    assert (bool(row["plan_reviewed"]), bool(row["covered"])) == (True, True)


def test_a_change_before_the_review_leaves_the_review_control_alone(org):
    service = org.covered_service(org.unit_id, AS_OF)
    change(org, service_id=service, work_end=AS_OF - 11 * DAY)
    assert bool(coverage_by_service(org.store, FILTERS).set_index("service_id").loc[service, "plan_reviewed"])


def test_the_report_lists_the_plans_changed_since_review(org):
    from itscm.report import report_html

    service, plan = reviewed_plan(org)
    change(org, service_id=service, work_end=REVIEWED + 10 * DAY, change_type="emergency")
    change(org, service_id=service, work_end=REVIEWED + 20 * DAY)
    section = report_html(org.store, FILTERS).split('id="changed_plans">', 1)[1].split("</section>", 1)[0]
    row = next(row for row in section.split("<tr>") if plan in row or org.store.scalar(
        "SELECT title FROM plans WHERE plan_id = $p", {"p": plan}) in row)
    cells = [cell.split(">", 1)[1] for cell in row.split("</td>")[:-1]]
    assert cells[3:7] == ["2", "1", "0", str(REVIEWED + 20 * DAY)]
