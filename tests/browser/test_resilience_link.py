"""A scenario link opened on a fresh server (its first request): the Resilience page reads the
failed nodes and the hours from the URL and shows the scenario's figures."""

from __future__ import annotations

from tests.browser.conftest import ERRORS, wait_ready


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
