"""The continuity records kept in the app (itscm/records.py): each checked at the action for its
role, refused with one line when wrong and the store unchanged, recorded in change_log, and the
rollup still what a full rebuild makes of the facts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from itscm import administration, records, rollup
from itscm.access import AccessDenied, Actor
from itscm.checks import ChangeRefused
from itscm.filters import Filters
from itscm.inventory import service_catalogue
from itscm.measures.staleness import plan_worklist
from itscm.store import Store
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents

MANAGER = Actor("cm@example.com", "continuity manager")
RECOVERY = Actor("rt@example.com", "recovery team")
VIEWER, ANALYST = Actor("vic@example.com", "viewer"), Actor("ana@example.com", "analyst")
T = dt.datetime(2026, 7, 1, 9, 0)        # "now" of every write here: the day after the small org's as-of
TODAY = T.date()
LEDGER, AUTH, PORTAL, BRANCH = "svc1", "svc5", "svc9", "svc12"   # tests/small_org.py
LEDGER_PLAN, PORTAL_PLAN, BRANCH_DRAFT = "plan2", "plan10", "plan13"


@pytest.fixture
def store(store_path):
    with Store(store_path) as opened:
        yield opened


def log(store: Store) -> list[tuple]:
    return store.rows("SELECT changed_by, action, subject, before, after FROM change_log ORDER BY changed_at, action")


def verified(store: Store) -> list[dict]:
    with store.read_transaction() as cursor:
        return rollup.differences(cursor)


def refused(store: Store, error: type, match: str, write) -> None:
    """`write` is refused with `match` and leaves every table as it was."""
    before, version = table_contents(store), store.data_version()
    with pytest.raises(error, match=match):
        write()
    assert table_contents(store) == before and store.data_version() == version


# -- services -------------------------------------------------------------------------------------


def test_a_new_service_gets_an_id_its_key_and_a_record_and_is_listed(store):
    service_id = records.create_service(MANAGER, store, {
        "name": "  Payments Gateway ", "unit_id": "bu-pay", "tier": 1, "owner": "Grace", "rto_minutes": 30,
        "rpo_minutes": 5, "mtpd_minutes": 240, "impact_cost_per_hour": 20_000, "recovery_strategy": "hot"}, now=T)
    assert service_id == "svc-payments-gateway"
    assert store.rows("SELECT name, unit_id, tier, owner, rto_minutes, lifecycle, service_key IS NOT NULL "
                      "FROM services WHERE service_id = $id", {"id": service_id}) == [
        ("Payments Gateway", "bu-pay", 1, "Grace", 30, "live", True)]
    assert verified(store) == []
    (by, action, subject, before, after), = log(store)
    assert (by, action, subject, json.loads(before)) == ("cm@example.com", "create service", service_id, {})
    assert json.loads(after)["rto_minutes"] == 30 and json.loads(after)["name"] == "Payments Gateway"
    listed = service_catalogue(store, Filters(as_of=SMALL_ORG_AS_OF), search="gateway")
    assert list(listed["service_id"]) == [service_id]
    # a second service of a similar name gets the next id
    assert records.create_service(MANAGER, store, {"name": "Payments-Gateway (EU)"}) == "svc-payments-gateway-eu"
    assert records.create_service(MANAGER, store, {"name": "Payments  Gateway!"}) == "svc-payments-gateway-2"


def test_a_service_id_can_be_given_and_must_be_free(store):
    assert records.create_service(MANAGER, store, {"name": "Fraud Scoring"}, service_id="FRAUD-01") == "FRAUD-01"
    refused(store, ChangeRefused, "already a service 'svc1'",
            lambda: records.create_service(MANAGER, store, {"name": "Other"}, service_id="svc1"))
    refused(store, ChangeRefused, "already a service 'fraud-01'",
            lambda: records.create_service(MANAGER, store, {"name": "Other"}, service_id="fraud-01"))


@pytest.mark.parametrize("facts, reason", [
    ({"name": "core ledger"}, r"A live service is already called 'core ledger' \(svc1\)"),
    ({"name": "  "}, "Name cannot be empty"),
    ({"owner": "Grace"}, "Name cannot be empty"),
    ({"name": "New", "tier": 5}, "Tier must be one of 1, 2, 3, 4"),
    ({"name": "New", "rto_minutes": -1}, "RTO must be between 0"),
    ({"name": "New", "rpo_minutes": 2.5}, "RPO is a whole number of minutes"),
    ({"name": "New", "impact_cost_per_hour": -3}, "Cost per hour must be zero or more"),
    ({"name": "New", "recovery_strategy": "hope"}, "Recovery strategy must be one of"),
    ({"name": "New", "lifecycle": "draft"}, "Lifecycle must be one of"),
    ({"name": "New", "unit_id": "bu-nowhere"}, "no business unit 'bu-nowhere'"),
    ({"name": "New", "service_key": 3}, "service_key cannot be edited here"),
])
def test_a_wrong_new_service_is_refused(store, facts, reason):
    refused(store, ChangeRefused, reason, lambda: records.create_service(MANAGER, store, facts))


def test_a_retired_service_s_name_can_be_used_again(store):
    administration.edit_service(MANAGER, store, LEDGER, {"lifecycle": "retired"}, now=T)
    assert records.create_service(MANAGER, store, {"name": "Core Ledger", "rto_minutes": 60}) == "svc-core-ledger"
    assert log(store)[0][:3] == ("cm@example.com", "edit service", LEDGER)
    assert verified(store) == []


# -- roles --------------------------------------------------------------------------------------


def every_write(store: Store) -> list:
    """One call of each write here, and the service edit, as `actor -> call`."""
    return [
        lambda a: records.create_service(a, store, {"name": "Payments Gateway"}),
        lambda a: administration.edit_service(a, store, LEDGER, {"rto_minutes": 5}),
        lambda a: administration.edit_service(a, store, LEDGER, {"lifecycle": "retired"}),
        lambda a: records.add_dependency(a, store, LEDGER, PORTAL),
        lambda a: records.remove_dependency(a, store, AUTH, LEDGER),
        lambda a: records.add_supplier(a, store, "Acme"),
        lambda a: records.create_plan(a, store, LEDGER, "Failover"),
        lambda a: records.approve_plan(a, store, BRANCH_DRAFT),
        lambda a: records.retire_plan(a, store, BRANCH_DRAFT),
        lambda a: records.record_review(a, store, LEDGER_PLAN, TODAY),
        lambda a: records.record_drill(a, store, LEDGER, TODAY, "tabletop", "passed"),
    ]


@pytest.mark.parametrize("actor", [VIEWER, ANALYST])
def test_a_viewer_and_an_analyst_cannot_change_the_inventory(store, actor):
    for write in every_write(store):
        refused(store, AccessDenied, f"{actor.name} has the {actor.role} role", lambda w=write: w(actor))


def test_the_recovery_team_records_drills_and_findings_but_not_the_inventory(store):
    for write in every_write(store)[:-1]:
        refused(store, AccessDenied, "needs the continuity manager role", lambda w=write: w(RECOVERY))
    drill_id = records.record_drill(RECOVERY, store, LEDGER, TODAY, "tabletop", "partial",
                                    findings=[records.Finding("DNS failover is manual", "Ops", TODAY)], now=T)
    finding_id = store.scalar("SELECT finding_id FROM drill_findings WHERE drill_id = $id", {"id": drill_id})
    records.set_finding_state(RECOVERY, store, finding_id, "risk accepted", now=T)
    refused(store, AccessDenied, "to change a finding needs the recovery team role",
            lambda: records.set_finding_state(ANALYST, store, finding_id, "closed"))
    assert [row[1] for row in log(store)] == ["change finding", "record drill"]


# -- dependencies -------------------------------------------------------------------------------


def test_dependencies_are_added_and_removed_with_their_record(store):
    added = records.add_dependency(MANAGER, store, PORTAL, LEDGER, has_alternative=True, now=T)
    assert added.cycle == [] and not added.makes_a_cycle
    assert store.rows("SELECT has_alternative FROM dependencies WHERE service_id = $s",
                      {"s": PORTAL}) == [(True,)]
    records.remove_dependency(MANAGER, store, PORTAL, LEDGER, now=T + dt.timedelta(minutes=1))
    assert store.scalar("SELECT count(*) FROM dependencies WHERE service_id = $s", {"s": PORTAL}) == 0
    recorded = [(action, subject, json.loads(before), json.loads(after))
                for _, action, subject, before, after in log(store)]
    assert recorded == [
        ("add dependency", PORTAL, {}, {"depends_on": LEDGER, "has_alternative": True}),
        ("remove dependency", PORTAL, {"depends_on": LEDGER, "has_alternative": True}, {}),
    ]
    assert verified(store) == []


def test_a_cycle_is_allowed_and_reported(store):
    records.add_dependency(MANAGER, store, LEDGER, PORTAL)            # ledger -> portal; auth -> ledger already
    added = records.add_dependency(MANAGER, store, PORTAL, AUTH)      # portal -> auth closes the loop
    assert added.makes_a_cycle and added.cycle == [PORTAL, AUTH, LEDGER, PORTAL]


@pytest.mark.parametrize("call, reason", [
    (lambda s: records.add_dependency(MANAGER, s, LEDGER, LEDGER), "cannot depend on itself"),
    (lambda s: records.add_dependency(MANAGER, s, AUTH, LEDGER), "svc5 already depends on svc1"),
    (lambda s: records.add_dependency(MANAGER, s, LEDGER, "svc-nope"), "no service 'svc-nope'"),
    (lambda s: records.add_dependency(MANAGER, s, LEDGER, PORTAL, has_alternative="maybe"),
     "Has an alternative must be one of True, False, None"),
    (lambda s: records.remove_dependency(MANAGER, s, LEDGER, AUTH), "svc1 does not depend on svc5"),
])
def test_a_wrong_dependency_change_is_refused(store, call, reason):
    refused(store, ChangeRefused, reason, lambda: call(store))


# -- suppliers ----------------------------------------------------------------------------------


def test_a_supplier_is_added_linked_and_unlinked(store):
    supplier_id = records.add_supplier(MANAGER, store, "Acme Hosting", contracted_recovery_minutes=240,
                                       substitutability="hard", contract_end="2027-03-31", now=T)
    assert supplier_id == "sup-acme-hosting"
    assert store.rows("SELECT name, contracted_recovery_minutes, substitutability, contract_end FROM suppliers") == [
        ("Acme Hosting", 240, "hard", dt.date(2027, 3, 31))]
    assert records.suppliers(store) == {supplier_id: "Acme Hosting"}
    records.link_supplier(MANAGER, store, LEDGER, supplier_id, now=T)
    assert store.rows("SELECT service_id, supplier_id FROM service_suppliers") == [(LEDGER, supplier_id)]
    refused(store, ChangeRefused, "svc1 already relies on sup-acme-hosting",
            lambda: records.link_supplier(MANAGER, store, LEDGER, supplier_id))
    records.unlink_supplier(MANAGER, store, LEDGER, supplier_id, now=T + dt.timedelta(minutes=1))
    assert store.scalar("SELECT count(*) FROM service_suppliers") == 0
    assert [row[1] for row in log(store)] == ["add supplier", "link supplier", "unlink supplier"]
    assert verified(store) == []


@pytest.mark.parametrize("call, reason", [
    (lambda s: records.add_supplier(MANAGER, s, " "), "Supplier name cannot be empty"),
    (lambda s: records.add_supplier(MANAGER, s, "Acme", contracted_recovery_minutes=-5),
     "Contracted recovery time must be between 0"),
    (lambda s: records.add_supplier(MANAGER, s, "Acme", contract_end="next spring"),
     "Contract end is a date"),
    (lambda s: records.link_supplier(MANAGER, s, LEDGER, "sup-nope"), "no supplier 'sup-nope'"),
    (lambda s: records.link_supplier(MANAGER, s, "svc-nope", "sup-nope"), "no service 'svc-nope'"),
    (lambda s: records.unlink_supplier(MANAGER, s, LEDGER, "sup-nope"), "svc1 does not rely on sup-nope"),
])
def test_a_wrong_supplier_change_is_refused(store, call, reason):
    refused(store, ChangeRefused, reason, lambda: call(store))


def test_a_supplier_name_is_known_in_any_case(store):
    records.add_supplier(MANAGER, store, "Acme Hosting")
    refused(store, ChangeRefused, "already a supplier called 'ACME hosting'",
            lambda: records.add_supplier(MANAGER, store, "ACME hosting"))


# -- plans and reviews --------------------------------------------------------------------------


def test_a_plan_is_created_as_a_draft_approved_reviewed_and_retired(store):
    plan_id = records.create_plan(MANAGER, store, LEDGER, "Ledger regional failover", owner="Grace",
                                  document_link="https://wiki.example.com/ledger-dr", now=T)
    assert plan_id == "plan-svc1-ledger-regional-failover"
    assert store.rows("SELECT service_id, title, owner, status, approved_on, document_link FROM plans "
                      "WHERE plan_id = $id", {"id": plan_id}) == [
        (LEDGER, "Ledger regional failover", "Grace", "draft", None, "https://wiki.example.com/ledger-dr")]
    records.approve_plan(MANAGER, store, plan_id, now=T)
    assert store.rows("SELECT status, approved_on FROM plans WHERE plan_id = $id", {"id": plan_id}) == [
        ("approved", TODAY)]
    records.record_review(MANAGER, store, plan_id, "2026-06-30", outcome="no change", notes="Checked contacts", now=T)
    assert store.rows("SELECT reviewed_on, reviewed_by, outcome, notes FROM plan_reviews WHERE plan_id = $id",
                      {"id": plan_id}) == [(dt.date(2026, 6, 30), "cm@example.com", "no change", "Checked contacts")]
    records.retire_plan(MANAGER, store, plan_id, now=T)
    assert [row[1:3] for row in log(store)] == [
        ("approve plan", plan_id), ("create plan", plan_id), ("record plan review", plan_id), ("retire plan", plan_id)]
    approved = [json.loads(row[4]) for row in log(store) if row[1] == "approve plan"]
    assert approved == [{"status": "approved", "approved_on": "2026-07-01"}]
    assert verified(store) == []


def test_a_review_moves_a_stale_plan_to_current(store):
    filters = Filters(as_of=SMALL_ORG_AS_OF)

    def state() -> str:
        return plan_worklist(store, filters).set_index("plan_id").loc[PORTAL_PLAN, "state"]

    assert state() == "overdue"   # reviewed 400 days before
    records.record_review(MANAGER, store, PORTAL_PLAN, SMALL_ORG_AS_OF, now=T)
    assert state() == "current"


@pytest.mark.parametrize("call, reason", [
    (lambda s: records.create_plan(MANAGER, s, "svc-nope", "Plan"), "no service 'svc-nope'"),
    (lambda s: records.create_plan(MANAGER, s, LEDGER, ""), "Title cannot be empty"),
    (lambda s: records.approve_plan(MANAGER, s, "plan-nope"), "no plan 'plan-nope'"),
    (lambda s: records.approve_plan(MANAGER, s, BRANCH_DRAFT, approved_on=TODAY + dt.timedelta(days=1), now=T),
     "Approved on cannot be in the future"),
    (lambda s: records.approve_plan(MANAGER, s, LEDGER_PLAN, approved_on="2024-01-01"),
     "already approved on 2024-01-01"),
    (lambda s: records.record_review(MANAGER, s, LEDGER_PLAN, "2026-07-02", now=T),
     r"Reviewed on cannot be in the future \(2026-07-02 is after 2026-07-01\)"),
    (lambda s: records.record_review(MANAGER, s, LEDGER_PLAN, None), "Reviewed on cannot be empty"),
    (lambda s: records.record_review(MANAGER, s, LEDGER_PLAN, "30/06/2026"), "Reviewed on is a date"),
    (lambda s: records.record_review(MANAGER, s, LEDGER_PLAN, SMALL_ORG_AS_OF - dt.timedelta(days=10),
                                     reviewed_by="Reviewer"), "Reviewer already recorded a review of plan2"),
    (lambda s: records.record_review(MANAGER, s, LEDGER_PLAN, TODAY, notes="x" * 2001, now=T),
     "Notes is longer than 2000"),
])
def test_a_wrong_plan_change_is_refused(store, call, reason):
    refused(store, ChangeRefused, reason, lambda: call(store))


def test_a_retired_plan_is_neither_approved_nor_reviewed_nor_retired_again(store):
    records.retire_plan(MANAGER, store, BRANCH_DRAFT, now=T)
    for call, reason in [(lambda: records.approve_plan(MANAGER, store, BRANCH_DRAFT), "is retired"),
                         (lambda: records.record_review(MANAGER, store, BRANCH_DRAFT, TODAY, now=T), "is retired"),
                         (lambda: records.retire_plan(MANAGER, store, BRANCH_DRAFT), "already retired")]:
        refused(store, ChangeRefused, reason, call)


# -- drills and findings ------------------------------------------------------------------------


def test_a_drill_is_recorded_with_its_findings_and_their_states_change(store):
    drill_id = records.record_drill(
        RECOVERY, store, LEDGER, "2026-06-29", "simulation", "partial", plan_id=LEDGER_PLAN, rta_minutes=75,
        data_loss_minutes=5, findings=[records.Finding("Runbook step 4 is out of date", "Grace", "2026-07-31"),
                                       records.Finding("No contact for the DNS provider", None, None)], now=T)
    assert drill_id == "drill-svc1-2026-06-29"
    assert store.rows("SELECT plan_id, held_on, drill_type, outcome, rta_minutes, data_loss_minutes, open_findings "
                      "FROM drills WHERE drill_id = $id", {"id": drill_id}) == [
        (LEDGER_PLAN, dt.date(2026, 6, 29), "simulation", "partial", 75, 5, 2)]
    findings = store.rows("SELECT finding_id, what, owner, due_on, state, recorded_by FROM drill_findings "
                          "ORDER BY finding_id")
    assert findings == [
        ("finding-drill-svc1-2026-06-29", "Runbook step 4 is out of date", "Grace", dt.date(2026, 7, 31), "open",
         "rt@example.com"),
        ("finding-drill-svc1-2026-06-29-2", "No contact for the DNS provider", None, None, "open", "rt@example.com"),
    ]
    records.set_finding_state(RECOVERY, store, findings[0][0], "closed", now=T)
    assert store.scalar("SELECT open_findings FROM drills WHERE drill_id = $id", {"id": drill_id}) == 1
    assert store.scalar("SELECT state FROM drill_findings WHERE finding_id = $id", {"id": findings[0][0]}) == "closed"
    recorded = {action: (json.loads(before), json.loads(after)) for _, action, _, before, after in log(store)}
    assert recorded["change finding"] == ({"state": "open"}, {"state": "closed"})
    assert [f["finding_id"] for f in recorded["record drill"][1]["findings"]] == [f[0] for f in findings]
    assert verified(store) == []
    # the same service and day again: an id of its own
    assert records.record_drill(RECOVERY, store, LEDGER, "2026-06-29", "walkthrough", "passed") == \
        "drill-svc1-2026-06-29-2"


@pytest.mark.parametrize("call, reason", [
    (lambda s: records.record_drill(RECOVERY, s, "svc-nope", TODAY, "tabletop", "passed"), "no service 'svc-nope'"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "tabletop", "passed", plan_id=PORTAL_PLAN),
     "Plan plan10 is a plan of svc9, not of svc1"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "tabletop", "passed", plan_id="plan-nope"),
     "no plan 'plan-nope'"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, "2026-07-02", "tabletop", "passed", now=T),
     "Held on cannot be in the future"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "fire drill", "passed"),
     "Drill type must be one of walkthrough, tabletop, simulation, parallel, full interruption"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "tabletop", "won"),
     "Outcome must be one of passed, partial, failed"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "tabletop", "passed", rta_minutes=-1),
     "RTA must be between 0"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "tabletop", "passed", data_loss_minutes=0.5),
     "Data loss is a whole number of minutes"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "tabletop", "passed",
                                    findings=[records.Finding("ok"), records.Finding(" ")]),
     "Finding 2 cannot be empty"),
    (lambda s: records.record_drill(RECOVERY, s, LEDGER, TODAY, "tabletop", "passed",
                                    findings=[records.Finding("Late", due_on="soon")]),
     "Due date of finding 1 is a date"),
    (lambda s: records.set_finding_state(RECOVERY, s, "finding-nope", "closed"), "no finding 'finding-nope'"),
    (lambda s: records.set_finding_state(RECOVERY, s, "finding-nope", "done"),
     "State must be one of open, closed, risk accepted"),
])
def test_a_wrong_drill_or_finding_is_refused(store, call, reason):
    refused(store, ChangeRefused, reason, lambda: call(store))


def test_a_finding_already_in_that_state_is_refused(store):
    drill_id = records.record_drill(RECOVERY, store, LEDGER, TODAY, "tabletop", "partial",
                                    findings=[records.Finding("Backups untested")], now=T)
    finding_id = store.scalar("SELECT finding_id FROM drill_findings WHERE drill_id = $id", {"id": drill_id})
    refused(store, ChangeRefused, "already open",
            lambda: records.set_finding_state(RECOVERY, store, finding_id, "open"))


# -- the rollup after each kind of write --------------------------------------------------------


def test_the_rollup_stays_current_after_every_kind_of_write(store):
    steps = [
        lambda: records.create_service(MANAGER, store, {"name": "Fraud Scoring", "rto_minutes": 15}),
        lambda: administration.edit_service(MANAGER, store, LEDGER, {"rto_minutes": 20}),   # its incidents' RTO
        lambda: administration.edit_service(MANAGER, store, PORTAL, {"lifecycle": "retired"}),
        lambda: records.add_dependency(MANAGER, store, "svc-fraud-scoring", LEDGER),
        lambda: records.remove_dependency(MANAGER, store, AUTH, LEDGER),
        lambda: records.link_supplier(MANAGER, store, LEDGER, records.add_supplier(MANAGER, store, "Acme")),
        lambda: records.approve_plan(MANAGER, store, records.create_plan(MANAGER, store, LEDGER, "New plan")),
        lambda: records.record_review(MANAGER, store, LEDGER_PLAN, SMALL_ORG_AS_OF),
        lambda: records.record_drill(RECOVERY, store, LEDGER, SMALL_ORG_AS_OF, "parallel", "passed",
                                     findings=[records.Finding("x")]),
        lambda: records.retire_plan(MANAGER, store, BRANCH_DRAFT),
    ]
    for number, step in enumerate(steps):
        step()
        assert verified(store) == [], f"after step {number}"
    assert store.scalar("SELECT r.rto_minutes FROM incident_month_rtos r JOIN services s USING (service_key) "
                        "WHERE s.service_id = $id", {"id": LEDGER}) == 20
