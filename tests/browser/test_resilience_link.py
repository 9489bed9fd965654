"""A scenario link opened on a fresh server (its first request): the Resilience page reads the
failed nodes and the hours from the URL and shows the scenario's figures."""

from __future__ import annotations

import pytest

from itscm.store import Store
from tests import backends
from tests.browser.conftest import ERRORS, StreamlitServer, wait_ready
from tests.resilience_org import relies_on, supplier


@pytest.fixture
def hosted_server(small_org_path, tmp_path):
    """A server on the small organisation with a hosting supplier under Core Ledger, so that Card
    Authorisation's chain is two steps deep: Card Authorisation -> Core Ledger -> Hosting Co."""
    store = backends.copy_store(small_org_path, tmp_path / "store.duckdb")
    with Store(store) as opened:
        supplier(opened, "sup-host", "Hosting Co", 480)
        relies_on(opened, "svc1", "sup-host")
    running = StreamlitServer(store, tmp_path / "streamlit.log")
    yield running
    running.stop()


def test_a_scenario_link_reopens_the_scenario_on_a_fresh_server(fresh_server, page, artifacts):
    # Core Ledger fails for 10 h: it and Card Authorisation (which depends on it) are disrupted,
    # 10 h x (50,000 + 80,000) per hour.
    page.goto(f"{fresh_server.url}/Resilience?fail_service=Core+Ledger&hours=10&as_of=2026-06-30")
    wait_ready(page)
    page.get_by_role("heading", name="Resilience").wait_for()
    page.get_by_role("tab", name="Scenarios").click()
    wait_ready(page)
    page.locator("[data-testid='stMetricLabel']", has_text="Services disrupted").wait_for()
    metrics = page.locator("[data-testid='stMetric']")
    figures = {metrics.nth(i).locator("[data-testid='stMetricLabel']").inner_text().strip():
               metrics.nth(i).locator("[data-testid='stMetricValue']").inner_text().strip()
               for i in range(metrics.count())}
    page.screenshot(path=str(artifacts / "resilience_scenario_link.png"), full_page=True)
    assert figures["Services disrupted"] == "2", figures
    assert figures["Past their RTO"] == "2"
    assert figures["Cost"] == "€1.3 M"
    assert "fail_service=Core+Ledger" in page.url and "hours=10" in page.url   # the link stays the scenario's
    assert page.locator(ERRORS).count() == 0


def test_the_dependency_chart_draws_the_steps_chosen_and_the_link_keeps_them(hosted_server, page, artifacts):
    page.goto(f"{hosted_server.url}/Resilience?as_of=2026-06-30")
    wait_ready(page)
    page.locator("[data-testid='stSelectbox']", has_text="Service").click()
    page.get_by_role("option", name="Card Authorisation").click()
    wait_ready(page)
    chart = page.locator("[data-testid='stGraphVizChart'] svg")
    chart.get_by_text("Card Authorisation").wait_for()
    at_two = chart.locator("g.node").count()
    assert chart.get_by_text("Hosting Co").count() == 1
    steps = page.locator("[data-testid='stButtonGroup']", has_text="Steps shown each way")   # not the tier pills
    steps.locator("button", has_text="1").click()
    page.wait_for_function("location.search.includes('chain-steps=1')", timeout=30_000)
    wait_ready(page)
    assert chart.get_by_text("Hosting Co").count() == 0          # beyond one step
    assert 1 < chart.locator("g.node").count() < at_two
    expander = page.locator("[data-testid='stExpander']").first
    assert "beyond the steps drawn" in expander.inner_text()
    page.screenshot(path=str(artifacts / "resilience_chain_one_step.png"), full_page=True)
    page.goto(page.url)                                           # the link, as a colleague opens it
    wait_ready(page)
    assert steps.locator("button[aria-checked='true']").inner_text().strip() == "1"
    assert page.locator(ERRORS).count() == 0
