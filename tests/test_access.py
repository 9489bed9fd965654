"""Roles: checked at the action, taken from grants when people sign in, and every change attributed.

Signed-in people are simulated with AppTest's `user` and an `[auth]` secrets section."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm import access, ingest
from itscm.access import AccessDenied, Actor, grant_role, role_for
from itscm.ingest import read_upload
from itscm.store import Store, open_store
from tests import backends
from tests.store_contents import table_contents

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "ingest" / "servicenow_list.csv"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "test-only",
        "client_id": "id", "client_secret": "secret",
        "server_metadata_url": "https://id.example.com/.well-known/openid-configuration"}
ADMIN = Actor("boss@example.com", "admin")
T = dt.datetime(2026, 7, 1, 9, 0)



def signed_in_page(page: str, email: str | None, *, admins: tuple[str, ...] = ()) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    app.secrets["auth"] = AUTH
    if admins:
        app.secrets["access"] = {"admins": list(admins)}
    app.user = {"is_logged_in": True, "email": email, "name": "Someone"} if email else {"is_logged_in": False}
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def upload(app: AppTest) -> AppTest:
    app.file_uploader(key="upload-file").upload(FIXTURE.name, FIXTURE.read_bytes(), "text/csv")
    return app.run()


# -- the domain ---------------------------------------------------------------------------------


def test_a_viewer_is_refused_at_the_commit_and_nothing_is_stored(store_path):
    store = open_store(store_path)
    preview = read_upload(FIXTURE.read_bytes(), FIXTURE.name, store=store)
    before = table_contents(store)
    viewer = Actor("vic@example.com", "viewer")
    with pytest.raises(AccessDenied, match="needs the analyst role"):
        ingest.commit_upload(viewer, store, preview)
    with pytest.raises(AccessDenied):
        ingest.map_service_name(viewer, store, "OLD-MAINFRAME", "svc1")
    upload_id = ingest.commit_upload(Actor("ana@example.com", "analyst"), store, preview, now=T).upload_id
    after_commit = table_contents(store)
    with pytest.raises(AccessDenied):
        ingest.undo_upload(viewer, store, upload_id)
    with pytest.raises(AccessDenied, match="grant roles"):
        grant_role(Actor("ana@example.com", "analyst"), store, "ana@example.com", "admin")
    assert table_contents(store) == after_commit != before


def test_roles_come_from_grants_email_over_domain_latest_wins(store_path):
    store = open_store(store_path)
    assert role_for(store, "new@example.com") == "viewer"            # signed in, nothing granted
    grant_role(ADMIN, store, "@Example.com", "analyst", now=T)
    assert role_for(store, "new@EXAMPLE.com") == "analyst"
    assert role_for(store, "new@example.com.evil.org") == "viewer"   # a domain is matched whole
    grant_role(ADMIN, store, " Vic@Example.com ", "viewer", now=T + dt.timedelta(minutes=1))
    assert role_for(store, "vic@example.com") == "viewer"             # an email's grant beats its domain's
    grant_role(ADMIN, store, "vic@example.com", "admin", now=T + dt.timedelta(minutes=2))
    assert role_for(store, "vic@example.com") == "admin"              # the latest grant wins
    assert role_for(store, "someone@else.org", admins=["Someone@Else.org"]) == "admin"
    assert store.rows("SELECT principal, role, granted_by FROM role_grants ORDER BY granted_at") == [
        ("@example.com", "analyst", "boss@example.com"), ("vic@example.com", "viewer", "boss@example.com"),
        ("vic@example.com", "admin", "boss@example.com")]
    current = access.role_grants(store)
    assert dict(zip(current["principal"], current["role"], strict=True)) == {
        "@example.com": "analyst", "vic@example.com": "admin"}


@pytest.mark.parametrize("principal", ["", "ana", "ana@", "@", "a b@example.com", "example.com", "<b>x</b>@x"])
def test_a_grant_names_an_email_or_a_domain(store_path, principal):
    with pytest.raises(ValueError, match="neither an email"):
        grant_role(ADMIN, open_store(store_path), principal, "analyst")


def test_grant_refusals(store_path):
    store = open_store(store_path)
    with pytest.raises(ValueError, match="Unknown role"):
        grant_role(ADMIN, store, "ana@example.com", "superuser")
    with pytest.raises(AccessDenied, match="from themselves"):
        grant_role(ADMIN, store, "BOSS@example.com", "analyst")
    assert store.scalar("SELECT count(*) FROM role_grants") == 0


def test_mapping_a_name_records_who_and_when(store_path):
    store = open_store(store_path)
    ledger = store.scalar("SELECT service_id FROM services WHERE name = 'Core Ledger'")
    ingest.map_service_name(Actor("ana@example.com", "analyst"), store, "OLD-MAINFRAME", ledger)
    by, at = store.rows("SELECT mapped_by, mapped_at FROM service_aliases WHERE alias = 'OLD-MAINFRAME'")[0]
    assert by == "ana@example.com" and at is not None


def test_grants_survive_a_store_reopened(tmp_path):
    path = backends.new_target(tmp_path / "s.duckdb")
    with Store(path) as store:
        grant_role(ADMIN, store, "ana@example.com", "analyst")
    with Store(path) as store:
        assert role_for(store, "ana@example.com") == "analyst"


# -- the pages ----------------------------------------------------------------------------------


def test_local_mode_says_so_and_has_every_role(store_path):
    app = AppTest.from_file(str(ROOT / "pages" / "Upload_incidents.py"), default_timeout=60).run()
    assert_clean(app)
    assert any("Single-user local mode" in c.value for c in app.sidebar.caption)


def test_a_visitor_not_signed_in_sees_only_the_sign_in_button(store_path):
    app = signed_in_page("Overview.py", None)
    assert_clean(app)
    assert [b.label for b in app.button] == ["Sign in"]
    assert not app.title and not app.metric and not app.dataframe
    app.button(key="sign-in").click().run()   # Authlib is not installed here: a clear message, no traceback
    assert_clean(app)
    assert app.error and "cannot start" in app.error[0].value


def test_a_viewer_is_not_offered_the_commit(store_path):
    app = upload(signed_in_page("Upload_incidents.py", "vic@example.com"))
    assert_clean(app)
    assert any("Signed in as vic@example\\.com (viewer)" in c.value for c in app.sidebar.caption)
    assert not [b for b in app.button if b.key == "upload-commit"]
    assert any("need the analyst role" in c.value for c in app.caption)
    assert open_store(store_path).scalar("SELECT count(*) FROM uploads") == 0


def test_an_analyst_uploads_and_the_upload_is_attributed(store_path):
    grant_role(ADMIN, open_store(store_path), "@example.com", "analyst")
    app = upload(signed_in_page("Upload_incidents.py", "Ana@Example.com"))
    assert_clean(app)
    app.button(key="upload-commit").click().run()
    assert_clean(app)
    assert open_store(store_path).rows("SELECT uploaded_by, state FROM uploads") == [("ana@example.com", "committed")]


def test_an_admin_grants_a_role_on_the_access_page(store_path):
    app = signed_in_page("Administration.py", "boss@example.com", admins=("boss@example.com",))
    assert_clean(app)
    app.text_input(key="grant-principal").input("ana@example.com")
    app.selectbox(key="grant-role-choice").set_value("analyst")
    next(b for b in app.button if b.label == "Grant role").click().run()
    assert_clean(app)
    assert any("ana@example" in s.value for s in app.success)
    store = open_store(store_path)
    assert store.rows("SELECT principal, role, granted_by FROM role_grants") == [
        ("ana@example.com", "analyst", "boss@example.com")]
    assert role_for(store, "ana@example.com") == "analyst"

    viewer = signed_in_page("Administration.py", "vic@example.com")
    assert_clean(viewer)
    assert not viewer.text_input and any("need the admin role" in c.value for c in viewer.caption)
