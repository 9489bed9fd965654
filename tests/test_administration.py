"""Admin changes: inventory edits, policy, targets and backups from the app, each checked at the
action, refused cleanly when wrong, and recorded with who made it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm import access, administration, backup, ingest
from itscm.access import AccessDenied, Actor
from itscm.administration import ChangeRefused
from itscm.filters import Filters
from itscm.measures.coverage import coverage_summary
from itscm.store import Store, open_store
from itscm.targets import posture_targets
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents

ROOT = Path(__file__).resolve().parent.parent
ADMIN, ANALYST, VIEWER = Actor("boss@example.com", "admin"), Actor("ana@example.com", "analyst"), \
    Actor("vic@example.com", "viewer")
T = dt.datetime(2026, 7, 1, 9, 0)
LEDGER = "svc1"   # Core Ledger in tests/small_org.py: tier 1, covered, RTO 60 min
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "test-only",
        "client_id": "id", "client_secret": "secret",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration"}



@pytest.fixture
def store(store_path):
    with Store(store_path) as opened:
        yield opened


def log(store: Store) -> list[tuple]:
    return store.rows("SELECT changed_by, action, subject, before, after FROM change_log ORDER BY changed_at")


# -- inventory ----------------------------------------------------------------------------------


def test_an_edit_changes_the_service_and_records_before_and_after(store):
    changed = administration.edit_service(ADMIN, store, LEDGER, {"rto_minutes": 90, "owner": "  Grace  ", "tier": 1},
                                          now=T)
    assert changed == {"rto_minutes": (60, 90), "owner": ("Owner", "Grace")}   # tier was already 1
    assert store.rows("SELECT rto_minutes, owner FROM services WHERE service_id = $id", {"id": LEDGER}) == [
        (90, "Grace")]
    before, after = json.dumps({"rto_minutes": 60, "owner": "Owner"}), json.dumps({"rto_minutes": 90, "owner": "Grace"})
    assert log(store) == [("boss@example.com", "edit service", LEDGER, before, after)]


def test_an_edit_that_changes_nothing_writes_nothing(store):
    version = store.data_version()
    assert administration.edit_service(ADMIN, store, LEDGER, {"rto_minutes": 60}) == {}
    assert store.data_version() == version and log(store) == []


def test_an_edit_moves_the_measures(store):
    """Clearing the Core Ledger's RTO is a coverage gap: one covered service fewer."""
    filters = Filters(as_of=SMALL_ORG_AS_OF)
    before = coverage_summary(store, filters)
    administration.edit_service(ADMIN, store, LEDGER, {"rto_minutes": None})
    after = coverage_summary(store, filters)
    assert (after["in_scope"], after["covered"]) == (before["in_scope"], before["covered"] - 1)


@pytest.mark.parametrize("changes, reason", [
    ({"tier": 7}, "Tier must be one of 1, 2, 3, 4"),
    ({"rto_minutes": -5}, "RTO must be between 0"),
    ({"rto_minutes": 12.5}, "whole number of minutes"),
    ({"rpo_minutes": "soon"}, "Not a valid value"),
    ({"impact_cost_per_hour": -1}, "zero or more"),
    ({"name": "   "}, "Name cannot be empty"),
    ({"unit_id": "bu-nowhere"}, "no business unit 'bu-nowhere'"),
    ({"recovery_strategy": "pray"}, "Recovery strategy must be one of"),
    ({"lifecycle": "zombie"}, "Lifecycle must be one of"),
    ({"service_id": "svc99"}, "service_id cannot be edited"),
    ({"owner": "x" * 201}, "longer than 200"),
])
def test_a_wrong_value_is_refused_and_nothing_changes(store, changes, reason):
    before = table_contents(store)
    with pytest.raises(ChangeRefused, match=reason):
        administration.edit_service(ADMIN, store, LEDGER, {"owner": "Grace", **changes})
    assert table_contents(store) == before


def test_editing_a_service_that_does_not_exist_is_refused(store):
    with pytest.raises(ChangeRefused, match="no service 'svc-nope'"):
        administration.edit_service(ADMIN, store, "svc-nope", {"owner": "Grace"})


@pytest.mark.parametrize("actor", [VIEWER, ANALYST])
def test_only_a_continuity_manager_edits_the_inventory(store, actor):
    before = table_contents(store)
    with pytest.raises(AccessDenied, match="needs the continuity manager role"):
        administration.edit_service(actor, store, LEDGER, {"rto_minutes": 5})
    assert table_contents(store) == before


@pytest.mark.parametrize("actor", [VIEWER, ANALYST, Actor("cm@example.com", "continuity manager")])
def test_only_an_admin_edits_the_policy_and_targets(store, actor):
    before = table_contents(store)
    for attempt in (lambda: administration.edit_policy(actor, store, {1: {"test_interval_days": 30}}),
                    lambda: administration.set_targets(actor, store, {"coverage_pct": 50}),
                    lambda: backup.take_backup(actor, store, "/nonexistent/never-written")):
        with pytest.raises(AccessDenied, match="needs the admin role"):
            attempt()
    assert table_contents(store) == before


def test_a_viewer_cannot_save_a_column_mapping_and_an_analyst_can(store):
    mapping = {"id": "Ticket", "opened": "Raised"}
    with pytest.raises(AccessDenied, match="save a column mapping needs the analyst role"):
        ingest.save_mapping(VIEWER, store, "Acme", mapping)
    assert store.scalar("SELECT count(*) FROM column_mappings") == 0
    ingest.save_mapping(ANALYST, store, "Acme", mapping)
    assert store.rows("SELECT name, created_by FROM column_mappings") == [("Acme", "ana@example.com")]


# -- policy and targets -------------------------------------------------------------------------


def test_policy_edits_are_checked_applied_and_logged(store):
    changed = administration.edit_policy(ADMIN, store, {2: {"review_interval_days": 90, "is_critical": True,
                                                       "min_test_type": "simulation"}})
    assert changed == {2: {"review_interval_days": (365, 90), "min_test_type": ("tabletop", "simulation")}}
    assert administration.policy(store).set_index("tier").loc[2, "review_interval_days"] == 90
    assert log(store)[-1][:3] == ("boss@example.com", "edit policy", "tier 2")
    for wrong, reason in [({"test_interval_days": 0}, "between 1 and"), ({"min_test_type": "vibes"}, "must be one of"),
                          ({"tier": 3}, "not a policy setting")]:
        with pytest.raises(ChangeRefused, match=reason):
            administration.edit_policy(ADMIN, store, {2: wrong})
    with pytest.raises(ChangeRefused, match="no policy for tier 9"):
        administration.edit_policy(ADMIN, store, {9: {"test_interval_days": 30}})


def test_a_policy_edit_of_several_tiers_is_all_or_nothing(store):
    before = table_contents(store)
    with pytest.raises(ChangeRefused, match="Test interval must be between 1 and"):
        administration.edit_policy(ADMIN, store, {1: {"review_interval_days": 30}, 2: {"test_interval_days": 0}})
    with pytest.raises(ChangeRefused, match="no policy for tier 9"):
        administration.edit_policy(ADMIN, store, {1: {"review_interval_days": 30}, 9: {"test_interval_days": 30}})
    assert table_contents(store) == before
    changed = administration.edit_policy(ADMIN, store, {1: {"review_interval_days": 30}, 3: {"is_critical": True}})
    assert set(changed) == {1, 3} and [row[2] for row in log(store)] == ["tier 1", "tier 3"]


def test_a_shorter_test_interval_uncovers_services_drilled_before_it(store):
    filters = Filters(as_of=SMALL_ORG_AS_OF)
    covered = coverage_summary(store, filters)["covered"]
    administration.edit_policy(ADMIN, store, {1: {"test_interval_days": 2}})   # drills were 3 and 5 days ago
    assert coverage_summary(store, filters)["covered"] == covered - 2


def test_targets_are_set_by_an_admin_and_logged(store):
    assert administration.set_targets(ADMIN, store, {"coverage_pct": 80}) == {"coverage_pct": (95.0, 80.0)}
    assert administration.set_targets(ADMIN, store, {"coverage_pct": 80}) == {}
    assert posture_targets(store)["coverage_pct"] == 80.0
    assert log(store) == [("boss@example.com", "set target", "coverage_pct", '{"coverage_pct": 95.0}',
                           '{"coverage_pct": 80.0}')]
    with pytest.raises(ChangeRefused, match="from 0 to 100"):
        administration.set_targets(ADMIN, store, {"coverage_pct": 120})


def test_the_targets_form_saves_every_target_in_one_transaction_logged_one_by_one(store):
    version = store.data_version()
    wanted = {"coverage_pct": 80.0, "attainment_pct": 90.0, "stale_pct": 7.5}   # attainment as it is
    assert administration.set_targets(ADMIN, store, wanted) == {"coverage_pct": (95.0, 80.0), "stale_pct": (5.0, 7.5)}
    assert store.data_version() == version + 1
    assert posture_targets(store) == wanted | {"inventory_currency_pct": 95.0}   # not set: its default
    assert sorted((action, subject) for _, action, subject, _, _ in log(store)) == [
        ("set target", "coverage_pct"), ("set target", "stale_pct")]
    assert administration.set_targets(ADMIN, store, wanted) == {} and store.data_version() == version + 1
    with pytest.raises(ChangeRefused, match="from 0 to 100"):   # one wrong value: none is saved
        administration.set_targets(ADMIN, store, {"coverage_pct": 70, "stale_pct": 120})
    assert posture_targets(store) == wanted | {"inventory_currency_pct": 95.0}
    with pytest.raises(AccessDenied):
        administration.set_targets(ANALYST, store, {"coverage_pct": 70})


# -- the change history -------------------------------------------------------------------------


def test_the_change_history_lists_every_kind_of_change_with_its_author(store):
    access.grant_role(ADMIN, store, "ana@example.com", "analyst", now=T)
    ingest.map_service_name(ANALYST, store, "OLD-MAINFRAME", LEDGER)
    administration.edit_service(ADMIN, store, LEDGER, {"owner": "Grace"})
    history = administration.change_history(store)
    assert {("grant role", "boss@example.com"), ("map service name", "ana@example.com"),
            ("edit service", "boss@example.com")} <= set(zip(history["action"], history["changed_by"], strict=True))
    assert history["changed_at"].is_monotonic_decreasing


# -- pages, with simulated users ----------------------------------------------------------------


def signed_in(page: str, email: str, *, admins: tuple[str, ...] = (), **query) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    app.secrets["auth"] = AUTH
    if admins:
        app.secrets["access"] = {"admins": list(admins)}
    app.user = {"is_logged_in": True, "email": email, "name": "Someone"}
    app.query_params.update(query)
    return app.run()


def test_an_admin_edits_a_service_on_its_card_and_the_edit_is_attributed(store_path):
    app = signed_in("Services.py", "boss@example.com", admins=("boss@example.com",), service=LEDGER)
    assert not app.exception
    rto = next(widget for widget in app.number_input if widget.label == "RTO (minutes)")
    assert rto.value == 60
    rto.set_value(45)
    next(button for button in app.button if button.label == "Save changes").click()
    app.run()
    assert not app.exception and [s.value for s in app.success] == ["Saved the RTO\\."]
    with open_store(store_path) as store:
        assert log(store)[-1][:3] == ("boss@example.com", "edit service", LEDGER)
        assert store.scalar("SELECT rto_minutes FROM services WHERE service_id = $id", {"id": LEDGER}) == 45


def test_a_viewer_sees_the_card_but_no_edit_form(store_path):
    app = signed_in("Services.py", "vic@example.com", service=LEDGER)
    assert not app.exception
    assert [m.label for m in app.metric][:2] == ["RTO", "Effective RTO"]
    assert "Save changes" not in [b.label for b in app.button]
    assert any("edit the inventory you need the continuity manager role" in c.value for c in app.caption)


def test_an_admin_takes_a_backup_from_the_administration_page(store_path, tmp_path):
    app = signed_in("Administration.py", "boss@example.com", admins=("boss@example.com",))
    assert not app.exception
    app.button(key="backup-now").click()
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    assert any("Backed up" in s.value for s in app.success)
    made = [p for p in (tmp_path / "backups").iterdir() if not p.name.startswith(".")]
    assert len(made) == 1 and (made[0] / "manifest.json").exists()
    assert json.loads((made[0] / "manifest.json").read_text())["created_by"] == "boss@example.com"
    history = app.dataframe[-1].value
    assert history.iloc[0]["action"] == "backup" and history.iloc[0]["changed_by"] == "boss@example.com"


def test_a_viewer_can_read_the_administration_page_but_not_act(store_path):
    app = signed_in("Administration.py", "vic@example.com")
    assert not app.exception
    labels = [b.label for b in app.button]
    assert "Back up now" not in labels and "Save policy" not in labels
    assert all(widget.disabled for widget in app.number_input)   # the targets, shown read-only


def test_an_admin_sets_a_target_on_the_administration_page(store_path):
    app = signed_in("Administration.py", "boss@example.com", admins=("boss@example.com",))
    app.number_input(key="target-coverage_pct").set_value(85.0)
    next(button for button in app.button if button.label == "Save targets").click()
    app.run()
    assert not app.exception and any("Saved 1 target" in s.value for s in app.success)
    with open_store(store_path) as store:
        assert posture_targets(store)["coverage_pct"] == 85.0


def backup_while_held(store_path, folder) -> subprocess.CompletedProcess:
    with Store(store_path):   # this process stands for the running app
        return subprocess.run([sys.executable, "-m", "itscm", "backup", "--store", str(store_path),
                               "--to", str(folder)], capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.file_only
def test_the_command_line_backup_of_a_store_the_app_holds_says_where_to_take_it(store_path, tmp_path):
    """DuckDB lets one process hold a store it writes to: the CLI names it and points at the app."""
    result = backup_while_held(store_path, tmp_path / "b")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "in use by another process (PID" in result.stderr and "Administration page" in result.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.ducklake_only
def test_the_command_line_backs_up_a_lake_the_app_holds(store_path, tmp_path):
    """A lake has no lock: the nightly backup runs while the app serves."""
    result = backup_while_held(store_path, tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["tables"]["services"] == 6


def test_an_admin_edits_the_policy_table_on_the_administration_page(store_path):
    app = signed_in("Administration.py", "boss@example.com", admins=("boss@example.com",))
    save = next(button for button in app.button if button.label == "Save policy")
    assert save.disabled   # nothing edited yet
    # The grid is a canvas; AppTest edits it the way the browser reports an edit: the edited rows.
    app.session_state["policy-editor"] = {"edited_rows": {1: {"review_interval_days": 90}}, "added_rows": [],
                                          "deleted_rows": []}
    app.run()
    next(button for button in app.button if button.label == "Save policy").click()
    app.run()
    assert not app.exception and any("Saved 1 policy setting" in s.value for s in app.success)
    with open_store(store_path) as store:
        assert administration.policy(store).set_index("tier").loc[2, "review_interval_days"] == 90
        assert log(store)[-1][:3] == ("boss@example.com", "edit policy", "tier 2")


def test_saving_one_field_leaves_a_service_s_odd_facts_as_they_are(store_path):
    """A unit that no longer exists and no tier: the form shows them and saving the owner keeps them."""
    with open_store(store_path) as store, store.transaction() as cursor:
        cursor.execute("UPDATE services SET unit_id = 'bu-gone', tier = NULL WHERE service_id = $id", {"id": LEDGER})
    app = signed_in("Services.py", "boss@example.com", admins=("boss@example.com",), service=LEDGER)
    next(widget for widget in app.text_input if widget.label == "Owner").set_value("Grace")
    next(button for button in app.button if button.label == "Save changes").click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    with open_store(store_path) as store:
        assert store.rows("SELECT unit_id, tier, owner FROM services WHERE service_id = $id", {"id": LEDGER}) == [
            ("bu-gone", None, "Grace")]
        assert log(store)[-1][3:] == ('{"owner": "Owner"}', '{"owner": "Grace"}')
