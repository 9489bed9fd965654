"""Sign-in through Streamlit's real st.login flow against a local OpenID Connect provider: nothing
is shown before signing in, the role comes from the store's grants, and the commit is refused to
a viewer."""

from __future__ import annotations

import re

import pytest

from itscm.access import Actor, grant_role
from itscm.store import Store
from tests import backends
from tests.browser.conftest import ERRORS, ROOT, StreamlitServer, _free_port, wait_ready
from tests.browser.fake_identity_provider import CLIENT_ID, CLIENT_SECRET, FakeIdentityProvider

SIDEBAR = "[data-testid='stSidebar']"


@pytest.fixture(scope="module")
def signed_in_server(small_org_path, tmp_path_factory):
    """A server with [auth] configured against the local provider; ana is an analyst by grant,
    boss an admin by the deployment's secrets, anyone else a viewer. One for the module: each
    test signs in on a browser context of its own, and neither writes to the store."""
    tmp_path = tmp_path_factory.mktemp("signed_in_server")
    provider = FakeIdentityProvider()
    store = backends.copy_store(small_org_path, tmp_path / "store.duckdb")
    with Store(store) as opened:
        grant_role(Actor("boss@example.com", "admin"), opened, "ana@example.com", "analyst")
    port = _free_port()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f"""
[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "{'x' * 32}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
server_metadata_url = "{provider.metadata_url}"

[access]
admins = ["boss@example.com"]
""")
    server = StreamlitServer(store, tmp_path / "streamlit.log", port=port,
                             extra_args=("--secrets.files", str(secrets)))
    yield server, provider
    server.stop()
    provider.stop()


def sign_in(page, server, provider, email: str, path: str = "") -> None:
    provider.next_email = email
    page.goto(f"{server.url}/{path}?as_of=2026-06-30")
    wait_ready(page)
    assert page.locator("[data-testid='stMetric']").count() == 0   # nothing before signing in
    page.get_by_role("button", name="Sign in").click()
    page.locator(SIDEBAR).get_by_text(f"Signed in as {email}").wait_for(timeout=30_000)
    wait_ready(page)
    if path:   # the provider sends people back to the app's home page
        page.goto(f"{server.url}/{path}?as_of=2026-06-30")
        wait_ready(page)


def test_people_sign_in_and_get_the_role_their_grant_gives(signed_in_server, page):
    server, provider = signed_in_server
    sign_in(page, server, provider, "ana@example.com")
    assert "(analyst)" in page.locator(SIDEBAR).inner_text()
    page.locator("[data-testid='stMetric']").first.wait_for()     # the Overview, now shown
    assert page.locator(ERRORS).count() == 0, server.log_tail()
    page.locator(SIDEBAR).get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)


def test_a_viewer_signed_in_is_not_offered_the_commit(signed_in_server, browser):
    server, provider = signed_in_server
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, server, provider, "vic@example.com", path="Upload_incidents")
        assert "(viewer)" in page.locator(SIDEBAR).inner_text()
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(
            str(ROOT / "tests" / "fixtures" / "ingest" / "servicenow_list.csv"))
        page.get_by_text("Incidents accepted").wait_for(timeout=30_000)
        wait_ready(page)
        page.get_by_text("To commit uploads you need the analyst role").wait_for(timeout=30_000)
        assert page.get_by_role("button", name=re.compile(r"^Commit")).count() == 0
        page.locator(SIDEBAR).get_by_role("link", name="Administration").click()
        page.get_by_role("heading", name="Administration", level=1).wait_for()
        wait_ready(page)
        assert page.get_by_text("changing it needs the admin role").is_visible()
        assert page.get_by_role("button", name="Grant role").count() == 0
        assert page.locator(ERRORS).count() == 0, server.log_tail()
    finally:
        context.close()
