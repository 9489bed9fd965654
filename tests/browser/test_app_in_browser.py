"""The app in headless Chromium against a real server."""

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import ERRORS, ROOT, select_first_row, wait_ready

AS_OF = "as_of=2026-06-30"
PAGES = [  # url path, title, has charts
    ("", "Continuity posture", True),
    ("Coverage", "Critical-service coverage", True),
    ("RTO_attainment", "RTO attainment", True),
    ("Downtime_cost", "Downtime cost", True),
    ("Plan_staleness", "Plan staleness", True),
    ("Services", "Services", False),
    ("Inventory", "Inventory", False),
    ("Upload_incidents", "Upload incidents", False),
    ("Administration", "Administration", False),
    ("Resilience", "Resilience", False),
    ("Consistency_checks", "Consistency checks", False),
]


def scope_caption(page) -> str:
    """The line under the page title that says which filters are applied."""
    return page.locator("[data-testid='stMain'] [data-testid='stCaptionContainer']").first.inner_text()


def assert_no_errors(page, server):
    errors = page.locator(ERRORS)
    assert errors.count() == 0, f"{errors.first.inner_text()}\n--- server log ---\n{server.log_tail()}"


def assert_no_developer_options(page):
    """Streamlit's Deploy button and developer menu items (Rerun, Clear cache) stay hidden, even
    from a browser on localhost, where toolbarMode "auto" would show them."""
    assert page.locator("[data-testid='stAppDeployButton']").count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    page.locator("[data-testid='stMainMenu']").click()
    menu = page.locator("[data-testid='stMainMenuPopover']")
    menu.wait_for()
    items = menu.inner_text()
    assert "Print" in items   # the menu is open and keeps the viewer's options
    assert not {"Rerun", "Clear cache", "Deploy"} & set(items.splitlines()), items
    page.keyboard.press("Escape")


@pytest.mark.parametrize(("path", "title", "has_charts"), PAGES)
def test_every_page_renders_with_its_charts(server, page, artifacts, path, title, has_charts):
    page.goto(f"{server.url}/{path}?{AS_OF}")
    wait_ready(page)
    page.get_by_role("heading", name=title, level=1).wait_for()
    if has_charts:
        # Plotly draws each chart when its script has loaded, after Streamlit's run has ended: wait
        # for the second chart itself rather than count the charts drawn at the first one.
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)
    assert_no_errors(page, server)
    page.screenshot(path=str(artifacts / f"{path or 'Overview'}.png"), full_page=True)


def test_first_request_to_a_deep_link_shows_that_page_filtered(fresh_server, page, artifacts):
    page.goto(f"{fresh_server.url}/Coverage?{AS_OF}&unit=Payments&tier=1")
    wait_ready(page)
    page.get_by_role("heading", name="Critical-service coverage", level=1).wait_for()
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Payments", exact=True).wait_for()
    assert "Payments · tier 1" in scope_caption(page)
    assert page.locator("[data-testid='stMetricValue']").first.inner_text() == "100.0 %"
    menu = [link.inner_text().split("\n")[-1] for link in sidebar.get_by_role("link").all()]  # after the icon
    assert menu[:2] == ["Overview", "Coverage"] and "app" not in menu   # the app's menu, not file names
    assert_no_errors(page, fresh_server)
    assert_no_developer_options(page)
    page.screenshot(path=str(artifacts / "deep_link_coverage.png"))


def test_sidebar_navigation_keeps_the_filters(server, page):
    page.goto(f"{server.url}/?{AS_OF}&unit=Payments")
    wait_ready(page)
    page.locator("[data-testid='stSidebar']").get_by_role("link", name="Plan staleness").click()
    page.get_by_role("heading", name="Plan staleness", level=1).wait_for()
    wait_ready(page)
    assert "/Plan_staleness" in page.url
    assert "unit=Payments" in page.url
    assert "Payments" in scope_caption(page)
    assert_no_errors(page, server)


def test_choosing_a_filter_puts_it_in_the_url(server, page):
    page.goto(f"{server.url}/Downtime_cost?{AS_OF}")
    wait_ready(page)
    units = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']")
    legal = page.get_by_role("option", name="Legal")
    # On a loaded machine a click while the page still settles can leave the list shut, or shut it
    # again between the option showing and its click (the option then detached): open it again.
    for attempt in range(3):
        units.click()
        try:
            legal.click(timeout=10_000)
            break
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(r"unit=Legal"))
    wait_ready(page)
    assert "Legal" in scope_caption(page)
    assert_no_errors(page, server)


def test_upload_through_the_real_widget(fresh_server, page, artifacts):
    page.goto(f"{fresh_server.url}/Upload_incidents?{AS_OF}")
    wait_ready(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(
        str(ROOT / "tests" / "fixtures" / "ingest" / "servicenow_list.csv"))
    page.get_by_text("Incidents accepted").wait_for(timeout=30_000)
    wait_ready(page)
    page.screenshot(path=str(artifacts / "upload_preview.png"), full_page=True)
    commit = page.get_by_role("button", name=re.compile(r"^Commit \d+ incidents"))
    commit.click()
    page.get_by_text(re.compile(r"inserted", re.IGNORECASE)).first.wait_for(timeout=30_000)
    wait_ready(page)
    assert_no_errors(page, fresh_server)
    # The outcome, and what was read, but neither the dry run nor a second commit of the same file.
    assert page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="5 inserted").count() == 1
    assert page.get_by_text("Incidents accepted").is_visible()
    assert page.get_by_text(re.compile(r"^Dry run")).count() == 0 and commit.count() == 0
    page.screenshot(path=str(artifacts / "upload_committed.png"), full_page=True)
    page.get_by_role("tab", name="Upload history").click()
    page.locator("[data-testid='stTabPanel']:visible [data-testid='stDataFrame']").first.wait_for()
    assert page.get_by_role("button", name="Undo upload").is_visible()


def test_selecting_a_unit_on_the_overview_narrows_every_page(server, page):
    page.goto(f"{server.url}/?{AS_OF}")
    wait_ready(page)
    select_first_row(page, page.locator("[data-testid='stDataFrame']").first)
    page.wait_for_function("location.search.includes('unit=')", timeout=30_000)
    wait_ready(page)
    first_unit = "Retail <b>Banking</b>"   # the unit with most gaps in the small organisation
    assert first_unit in scope_caption(page)
    page.locator("[data-testid='stSidebar']").get_by_role("link", name="Coverage").click()
    page.get_by_role("heading", name="Critical-service coverage", level=1).wait_for()
    wait_ready(page)
    assert first_unit in scope_caption(page)
    assert_no_errors(page, server)


def test_selecting_a_service_opens_its_card_and_the_link_opens_it_again(server, page):
    page.goto(f"{server.url}/Services?{AS_OF}")
    wait_ready(page)
    select_first_row(page, page.locator("[data-testid='stDataFrame']").first)
    page.wait_for_function("location.search.includes('service=')", timeout=30_000)
    wait_ready(page)
    heading = page.locator("[data-testid='stMain'] h3").first.inner_text()
    link = page.url
    page.goto(link)   # the same link, as a colleague would open it
    wait_ready(page)
    assert page.locator("[data-testid='stMain'] h3").first.inner_text() == heading
    assert page.get_by_text("Edit this service").is_visible()   # local mode: every role
    assert_no_errors(page, server)
