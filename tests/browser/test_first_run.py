"""A first run in Chromium: an empty store's Overview invites the inventory; the template comes
through the real download button, is filled in here with openpyxl, goes back through the real
file uploader on the Inventory page, is committed, and the Overview then shows the organisation's
posture, as the measures compute it from the same workbook."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from itscm.access import Actor
from itscm.filters import Filters
from itscm.measures.coverage import coverage_summary
from itscm.store import open_store
from itscm.workbook import commit_inventory, preview_inventory
from tests import backends
from tests.browser.conftest import ERRORS, StreamlitServer, wait_ready

TODAY = dt.date.today()


@pytest.fixture
def empty_server(tmp_path):
    store = backends.new_target(tmp_path / "mine.duckdb", migrated=False)
    open_store(store).close()   # as `make run STORE=mine.duckdb` does through `python -m itscm init`
    running = StreamlitServer(store, tmp_path / "streamlit.log")
    yield running
    running.stop()


def fill_in(template: bytes) -> bytes:
    """A business unit, three critical services (one covered: an approved plan reviewed lately and a
    passed full-interruption drill within RTO), a dependency."""
    book = load_workbook(io.BytesIO(template))
    rows = {
        "business_units": [["Treasury", None, "Ada Head"]],
        "services": [
            [None, "Payments Hub", "Treasury", "1", "Ops", 60, 15, 240, 20_000, "hot", "live", None],
            [None, "Risk Engine", "Treasury", "1", "Risk", 120, 30, 480, 8_000, "warm", "live", None],
            [None, "Reporting", "Treasury", "2", "Finance", 480, 240, 1440, 1_000, "cold", "live", None],
        ],
        "dependencies": [["Payments Hub", "Risk Engine", "no"]],
        "plans": [["PLAN-PAY", "Payments Hub", "Payments recovery", "Ops", "approved",
                   TODAY - dt.timedelta(days=60), None]],
        "plan_reviews": [["PLAN-PAY", TODAY - dt.timedelta(days=20), "Ada Head", "approved", None]],
        "drills": [["DRILL-PAY", "PLAN-PAY", "Payments Hub", TODAY - dt.timedelta(days=14), "full interruption",
                    "passed", 45, 5]],
    }
    for sheet, values in rows.items():
        for row in values:
            book[sheet].append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def expected_coverage(filled: bytes, tmp_path) -> dict:
    """The coverage the measures give for the same workbook, in a store of the test's own."""
    store = open_store(tmp_path / "expected.duckdb")
    try:
        preview = preview_inventory(store, [("inventory.xlsx", filled)])
        commit_inventory(Actor("test", "continuity manager"), store, preview)
        return coverage_summary(store, Filters(as_of=TODAY))
    finally:
        store.close()


def test_an_empty_store_leads_to_the_inventory_and_then_to_the_posture(empty_server, page, artifacts, tmp_path):
    page.goto(empty_server.url)
    wait_ready(page)
    page.get_by_role("heading", name="Bring your inventory").wait_for()
    page.get_by_text("holds no services yet").wait_for()
    assert page.locator("[data-testid='stMetric']").count() == 0
    page.screenshot(path=str(artifacts / "first_run_overview.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the empty template (.xlsx)").click()
    template = download.value.path().read_bytes()
    assert download.value.suggested_filename == "inventory_template.xlsx"
    filled = fill_in(template)
    workbook_path = tmp_path / "inventory.xlsx"
    workbook_path.write_bytes(filled)

    page.get_by_role("link", name="Open the Inventory page").click()
    wait_ready(page)
    page.get_by_role("heading", name="Inventory", level=1).wait_for()
    page.screenshot(path=str(artifacts / "inventory_before_upload.png"), full_page=True)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(workbook_path))
    commit = page.get_by_role("button", name=re.compile(r"^Commit \d+ row"))
    commit.wait_for(timeout=30_000)
    wait_ready(page)
    page.screenshot(path=str(artifacts / "inventory_preview.png"), full_page=True)
    commit.click()
    page.get_by_text(re.compile(r"row\(s\) were added")).wait_for(timeout=30_000)
    wait_ready(page)
    assert page.get_by_role("button", name=re.compile(r"^Commit")).count() == 0   # gone with its preview
    assert page.locator(ERRORS).count() == 0, empty_server.log_tail()
    page.screenshot(path=str(artifacts / "inventory_after_commit.png"), full_page=True)

    expected = expected_coverage(filled, tmp_path)
    assert (expected["covered"], expected["in_scope"]) == (1, 3)   # as the workbook was filled in
    page.get_by_role("link", name="Overview").click()
    wait_ready(page)
    tile = page.locator("[data-testid='stMetric']").filter(has_text="Coverage")
    tile.wait_for(timeout=30_000)
    assert tile.locator("[data-testid='stMetricValue']").inner_text() == f"{expected['pct']:.1f} %"
    tile.locator("[data-testid='stTooltipIcon']").hover()
    page.get_by_text(f"{expected['covered']} of {expected['in_scope']} critical services").wait_for()
    assert page.locator(ERRORS).count() == 0, empty_server.log_tail()
    page.screenshot(path=str(artifacts / "first_run_overview_after_import.png"), full_page=True)
