"""A change export uploaded through the real widget turns a plan 'changed since review'."""

import re
from pathlib import Path

from tests.browser.conftest import ERRORS, wait_ready

AS_OF = "as_of=2026-06-30"
# Core Ledger's plan was reviewed on 2026-06-20 (tests/small_org.py); this change ended after it.
EXPORT = ("number,short_description,cmdb_ci,type,state,close_code,start_date,end_date,work_end,closed_at\n"
          "CHG0090001,Ledger database failover rework,Core Ledger,Emergency,Closed,Unsuccessful,"
          "2026-06-25 20:00:00,2026-06-25 23:00:00,2026-06-25 22:40:00,2026-06-27 09:00:00\n")


def changed_since_review_tile(page) -> str:
    tile = page.locator("[data-testid='stMetric']").filter(has_text=re.compile(r"^Changed"))
    return tile.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_a_change_export_turns_a_plan_changed_since_review(fresh_server, page, artifacts, tmp_path):
    page.goto(f"{fresh_server.url}/Plan_staleness?{AS_OF}")
    wait_ready(page)
    assert changed_since_review_tile(page) == "0"

    export = tmp_path / "change_request.csv"
    export.write_text(EXPORT)
    page.goto(f"{fresh_server.url}/Changes?{AS_OF}")
    wait_ready(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(export))
    page.get_by_text("Changes accepted").wait_for(timeout=30_000)
    wait_ready(page)
    page.screenshot(path=str(artifacts / "changes_preview.png"), full_page=True)
    page.get_by_role("button", name=re.compile(r"^Commit 1 changes")).click()
    page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="1 inserted").wait_for(timeout=30_000)
    wait_ready(page)
    assert page.locator(ERRORS).count() == 0, fresh_server.log_tail()
    tile = page.locator("[data-testid='stMetric']").filter(has_text="Plans changed since review")
    assert tile.locator("[data-testid='stMetricValue']").inner_text().strip() == "1"
    page.screenshot(path=str(artifacts / "changes_committed.png"), full_page=True)

    page.goto(f"{fresh_server.url}/Plan_staleness?{AS_OF}")
    wait_ready(page)
    assert changed_since_review_tile(page) == "1"
    page.get_by_text("Changes since the plans' reviews").wait_for()
    assert page.locator(ERRORS).count() == 0, fresh_server.log_tail()
    page.screenshot(path=str(artifacts / "plan_staleness_changed.png"), full_page=True)

    # The CSV is made when the button is pressed (itscm/ui/widgets.py download_csv), not drawn with the page.
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download changes CSV").click()
    assert download.value.suggested_filename == "changes_behind_plans.csv"
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("plan_id,plan,owner,service_id,service,state,changes_since_review,change_id")
    assert len(lines) == 2 and "CHG0090001" in lines[1] and "Ledger database failover rework" in lines[1]
