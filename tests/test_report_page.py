"""The Report page through AppTest: a viewer makes the HTML report and the owner packs and gets
their download buttons; without Chromium, the PDF choice says in one line what to install."""

from __future__ import annotations

import pytest

from tests.test_pages import AS_OF, assert_clean, run_page


@pytest.fixture
def store_env(store_path):
    return store_path


def _downloads(app) -> dict[str, object]:
    return {button.proto.label: button for button in app.get("download_button")}


def test_the_html_report_and_owner_packs_are_made_and_offered(store_env):
    app = run_page("Report.py", as_of=AS_OF)
    assert_clean(app)
    assert not _downloads(app)                      # nothing made yet
    app.radio(key="report-format").set_value("html").run()
    app.button(key="make-report").click().run()
    assert_clean(app)
    assert "Download the report (HTML)" in _downloads(app)
    app.button(key="make-packs").click().run()
    assert_clean(app)
    assert set(_downloads(app)) == {"Download the report (HTML)", "Download the owner packs (zip)"}


def test_the_made_report_is_not_offered_for_other_filters(store_env):
    app = run_page("Report.py", as_of=AS_OF)
    app.radio(key="report-format").set_value("html").run()
    app.button(key="make-report").click().run()
    assert "Download the report (HTML)" in _downloads(app)
    app.radio(key="report-format").set_value("pdf").run()
    assert "Download the report (PDF)" not in _downloads(app)   # a PDF was not made


def test_without_chromium_the_pdf_choice_says_what_to_install(store_env, monkeypatch):
    monkeypatch.setenv("ITSCM_CHROMIUM", "no-such-chromium")
    app = run_page("Report.py", as_of=AS_OF)
    assert_clean(app)
    assert any("install Debian's `chromium`" in warning.value for warning in app.warning)
    assert not [button for button in app.button if button.key == "make-report"]


def test_an_admin_names_the_organisation_on_the_administration_page(store_env):
    from itscm.administration import organisation_name
    from itscm.store import Store

    app = run_page("Administration.py", as_of=AS_OF)
    app.text_input(key="organisation-name").input("Acme <b>Bank</b>")
    next(button for button in app.button if button.label == "Save name").click().run()
    assert_clean(app)
    with Store(store_env) as store:
        assert organisation_name(store) == "Acme <b>Bank</b>"
