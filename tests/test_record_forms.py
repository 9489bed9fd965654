"""The continuity record forms on the Services page, through AppTest with signed-in people of
each role: each form shown to a role that may use it, each change written, attributed and said."""

from __future__ import annotations

import datetime as dt

from itscm import access, records
from itscm.access import Actor
from itscm.store import open_store
from tests.test_administration import signed_in

LEDGER, LEDGER_PLAN, PORTAL_PLAN = "svc1", "plan2", "plan10"
ADMIN = Actor("boss@example.com", "admin")
FORM_BUTTONS = {"Create service", "Save changes", "Create plan", "Approve", "Retire", "Record review",
                "Record drill", "Add dependency", "Link", "Unlink", "Add supplier", "Change state"}


def granted(store_path, email: str, role: str) -> None:
    with open_store(store_path) as store:
        access.grant_role(ADMIN, store, email, role)


def clean(app) -> None:
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def click(app, label: str) -> None:
    next(button for button in app.button if button.label == label).click()
    app.run()


def test_a_continuity_manager_creates_a_service_and_sees_it_listed(store_path):
    granted(store_path, "cm@example.com", "continuity manager")
    app = signed_in("Services.py", "cm@example.com")
    clean(app)
    app.toggle(key="new-service-open").set_value(True).run()
    app.text_input(key="new-service-name").set_value("Payments Gateway")
    app.number_input(key="new-service-rto").set_value(30)
    click(app, "Create service")
    clean(app)
    assert [s.value for s in app.success] == ["Created Payments Gateway \\(svc\\-payments\\-gateway\\)\\."]
    assert "Payments Gateway" in list(app.dataframe[0].value["service"])
    with open_store(store_path) as store:
        assert store.rows("SELECT name, rto_minutes, tier FROM services WHERE service_id = 'svc-payments-gateway'") == [
            ("Payments Gateway", 30, 2)]
        assert store.rows("SELECT changed_by, action FROM change_log") == [("cm@example.com", "create service")]


def test_a_duplicate_name_is_refused_on_the_form_with_its_reason(store_path):
    granted(store_path, "cm@example.com", "continuity manager")
    app = signed_in("Services.py", "cm@example.com")
    app.toggle(key="new-service-open").set_value(True).run()
    app.text_input(key="new-service-name").set_value("core ledger")
    click(app, "Create service")
    assert not app.exception and any("already called 'core ledger'" in e.value for e in app.error)


def test_a_continuity_manager_approves_reviews_and_links_on_the_card(store_path):
    granted(store_path, "cm@example.com", "continuity manager")
    app = signed_in("Services.py", "cm@example.com", service=LEDGER)
    clean(app)
    app.text_input(key=f"plan-title-{LEDGER}").set_value("Regional failover")
    click(app, "Create plan")
    clean(app)
    assert any("Created the draft plan plan\\-svc1\\-regional\\-failover" in s.value for s in app.success)
    app.selectbox(key=f"review-plan-{LEDGER}").set_value(LEDGER_PLAN)
    app.text_input(key=f"review-outcome-{LEDGER}").set_value("no change")
    click(app, "Record review")
    clean(app)
    app.text_input(key=f"supplier-name-{LEDGER}").set_value("Acme Hosting")
    click(app, "Add supplier")
    clean(app)
    app.selectbox(key=f"dependency-target-{LEDGER}").set_value("svc5")   # Card Authorisation already depends on it
    click(app, "Add dependency")
    clean(app)
    assert any("closes a dependency loop" in s.value for s in app.success)
    with open_store(store_path) as store:
        assert store.rows("SELECT reviewed_by, outcome FROM plan_reviews WHERE plan_id = $p AND outcome IS NOT NULL",
                          {"p": LEDGER_PLAN}) == [("cm@example.com", "no change")]
        assert store.rows("SELECT service_id, supplier_id FROM service_suppliers") == [(LEDGER, "sup-acme-hosting")]
        assert [action for (action,) in store.rows("SELECT action FROM change_log ORDER BY changed_at")] == [
            "create plan", "record plan review", "add supplier", "link supplier", "add dependency"]


def test_the_recovery_team_records_a_drill_with_findings_and_closes_one(store_path):
    granted(store_path, "rt@example.com", "recovery team")
    app = signed_in("Services.py", "rt@example.com", service=LEDGER)
    clean(app)
    labels = {button.label for button in app.button}
    assert {"Record drill"} <= labels and not labels & {"Create service", "Save changes", "Create plan",
                                                         "Add dependency", "Add supplier"}
    assert any("change the plans you need the continuity manager role" in c.value for c in app.caption)
    app.selectbox(key=f"drill-outcome-{LEDGER}").set_value("partial")
    app.number_input(key=f"drill-rta-{LEDGER}").set_value(70)
    # The grid is a canvas; AppTest edits it the way the browser reports an edit: the added rows.
    app.session_state[f"drill-findings-{LEDGER}"] = {
        "edited_rows": {}, "deleted_rows": [],
        "added_rows": [{"what": "Runbook step 4 is out of date", "owner": "Grace", "due_on": "2026-01-15"},
                       {"what": "DNS provider has no contact"}]}
    click(app, "Record drill")
    clean(app)
    assert any("with 2 finding" in s.value for s in app.success)
    store = open_store(store_path)   # the handle the page uses (one per process): left open for it
    rows = store.rows("SELECT f.what, f.owner, f.due_on, f.state, d.outcome, d.rta_minutes FROM drill_findings f "
                      "JOIN drills d USING (drill_id) ORDER BY f.finding_id")
    assert rows == [("Runbook step 4 is out of date", "Grace", dt.date(2026, 1, 15), "open", "partial", 70),
                    ("DNS provider has no contact", None, None, "open", "partial", 70)]
    card_findings = next(frame.value for frame in app.dataframe if "overdue" in frame.value.columns)
    assert list(card_findings["overdue"]) == [True, False]     # due 2026-01-15, before today; no due date
    assert any(tab.label.startswith("Findings (2 open, 1 overdue)") for tab in app.tabs)
    app.selectbox(key=f"finding-{LEDGER}").set_value(card_findings["finding_id"].iloc[0])
    app.selectbox(key=f"finding-state-{LEDGER}").set_value("closed")
    click(app, "Change state")
    clean(app)
    with open_store(store_path) as store:
        assert store.scalar("SELECT count(*) FROM drill_findings WHERE state = 'open'") == 1
        assert store.rows("SELECT DISTINCT changed_by FROM change_log") == [("rt@example.com",)]


def test_a_viewer_sees_the_card_and_its_findings_but_no_form(store_path):
    with open_store(store_path) as store:
        records.record_drill(ADMIN, store, LEDGER, "2026-06-29", "tabletop", "partial",
                             findings=[records.Finding("Backups untested", "Grace", "2026-06-01")])
    app = signed_in("Services.py", "vic@example.com", service=LEDGER)
    clean(app)
    assert not {button.label for button in app.button} & FORM_BUTTONS
    card_findings = next(frame.value for frame in app.dataframe if "overdue" in frame.value.columns)
    assert list(card_findings["what"]) == ["Backups untested"] and list(card_findings["overdue"]) == [True]


def test_open_findings_appear_in_the_owner_worklist_with_the_overdue_flagged(store_path):
    store = open_store(store_path)   # the handle the page will use (one per process)
    records.record_drill(ADMIN, store, LEDGER, "2026-06-20", "tabletop", "partial",
                         findings=[records.Finding("Backups untested", "Grace", "2026-06-01"),
                                   records.Finding("Update the call tree", "Grace", "2026-08-01")])
    app = signed_in("Plan_staleness.py", "vic@example.com", as_of="2026-06-30")
    clean(app)
    findings = next(frame.value for frame in app.dataframe if "what" in frame.value.columns)
    assert list(zip(findings["what"], findings["owner"], findings["overdue"], strict=True)) == [
        ("Backups untested", "Grace", True), ("Update the call tree", "Grace", False)]
    assert "Grace" in app.selectbox(key="worklist-owner").options
    assert any("2 open finding(s), 1 past their due date" in c.value for c in app.caption)


def test_the_grant_form_offers_every_role(store_path):
    app = signed_in("Administration.py", "boss@example.com", admins=("boss@example.com",))
    clean(app)
    assert app.selectbox(key="grant-role-choice").options == list(access.ROLES)
