"""The Report page in headless Chromium: both formats of the board pack download, and each is
what it says (a PDF; one HTML page with plotly.js inside)."""

from pathlib import Path

from tests.browser.conftest import wait_ready
from tests.browser.test_app_in_browser import AS_OF, assert_no_errors


def _download(page, button: str) -> bytes:
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name=button).click()
    return Path(download.value.path()).read_bytes()


def test_the_report_page_downloads_the_pdf_and_the_html(server, page, artifacts):
    page.goto(f"{server.url}/Report?{AS_OF}")
    wait_ready(page)
    page.get_by_role("heading", name="Board pack", level=1).wait_for()

    page.get_by_role("button", name="Make the report").click()
    page.get_by_role("button", name="Download the report (PDF)").wait_for(timeout=120_000)
    assert _download(page, "Download the report (PDF)").startswith(b"%PDF-")

    page.get_by_text("HTML (one file").click()
    page.get_by_role("button", name="Make the report").click()
    page.get_by_role("button", name="Download the report (HTML)").wait_for(timeout=120_000)
    html = _download(page, "Download the report (HTML)").decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "Executive summary" in html and "Plotly.newPlot" in html
    assert "Retail &lt;b&gt;Banking&lt;/b&gt;" in html
    assert_no_errors(page, server)
    page.screenshot(path=str(artifacts / "Report.png"), full_page=True)
