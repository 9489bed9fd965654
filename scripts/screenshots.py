"""Screenshots of every page of a running app, for a person to look at.

    python scripts/screenshots.py [--url http://localhost:8501] [--out screenshots] [--query "unit=Payments"]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

PAGES = ["", "Coverage", "RTO_attainment", "Downtime_cost", "Plan_staleness", "Services", "Assets", "Inventory",
         "Upload_incidents", "Changes", "Administration", "Resilience", "Consistency_checks", "Report"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://localhost:8501")
    parser.add_argument("--out", default="screenshots")
    parser.add_argument("--query", default="")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        for name in PAGES:
            url = f"{args.url}/{name}" + (f"?{args.query}" if args.query else "")
            page.goto(url)
            page.wait_for_selector(READY, timeout=60_000)
            page.wait_for_timeout(1500)  # let plotly finish drawing
            target = out / f"{name or 'Overview'}.png"
            page.screenshot(path=str(target), full_page=True)
            errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
            print(f"{target}  errors on page: {errors}")
        browser.close()


if __name__ == "__main__":
    main()
