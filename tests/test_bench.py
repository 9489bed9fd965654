"""The benchmark runs end to end at a tiny size and reports every figure the issue asks for.
(Its speed is read from its output, never asserted here.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from itscm.bench import CHROMIUM, format_table, inventory_lines
from itscm.private_postgres import binaries
from itscm.store import PROJECT_ROOT


def test_bench_reports_every_figure():
    """One run of the bench as people run it, in its own process (Playwright's sync API cannot
    start inside the browser tests' session, and the app's server must be the only one holding
    the store), with the app opened in Chromium where the machine has it: one demo build and one
    set of imports serve both the figures and the pages' (the run takes a minute or more)."""
    app = Path(CHROMIUM).exists()
    done = subprocess.run(
        [sys.executable, "-m", "itscm", "bench", "--services", "40", "--incidents", "2000", "--json",
         *(["--app"] if app else [])],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=True,
    )
    figures = json.loads(done.stdout)
    for key in ("generate_s", "ingest_s", "ingest_rows_per_s", "reingest_s", "measures_ms", "pages_ms",
                "peak_rss_mb", "pandas_ratio"):
        assert key in figures
    assert figures["reingest_counts"]["inserted"] == 0 and figures["reingest_counts"]["updated"] == 0
    assert figures["ingest_counts"]["inserted"] == figures["export_rows"] == 2000
    # each run imports into its own copy of the store as generated: the last one too inserts every row
    assert len(figures["ingest_runs_s"]) == len(figures["reingest_runs_s"]) == 3
    assert sorted(figures["ingest_runs_s"])[1] == figures["ingest_s"]
    assert set(figures["measures_ms"]["posture_summary"]) == {"all", "one_unit"}
    assert {"Overview", "Coverage", "Upload_incidents"} <= set(figures["pages_ms"])
    # the figures that travel between machines: measured in the same run, beside the seconds
    for key in ("import_floor_s", "ingest_ratio", "reingest_ratio", "empty_write_ms"):
        assert figures[key] > 0, key
    assert len(figures["import_floor_runs_s"]) == 3
    assert sorted(figures["import_floor_runs_s"])[1] == figures["import_floor_s"]
    assert figures["ingest_ratio"] == round(figures["ingest_s"] / figures["import_floor_s"], 1)
    assert figures["reingest_ratio"] == round(figures["reingest_s"] / figures["import_floor_s"], 1)
    table = format_table(figures)
    for key in ("pandas_ratio", "import_floor_s", "ingest_ratio", "reingest_ratio", "empty_write_ms"):
        assert key in table
    if app:
        assert figures["app_peak_rss_mb"] > 0
        assert {"Overview", "Coverage", "Downtime_cost", "Upload_incidents"} <= set(figures["app_pages_ms"])
        assert all(set(times) == {"first", "again"} for times in figures["app_pages_ms"].values())
        assert "app process peak memory" in table


def test_report_bench_makes_the_board_pack(small_org_path):
    from itscm.bench import report_lines, report_timings
    from itscm.store import Store
    from tests.conftest import SMALL_ORG_AS_OF

    with Store(small_org_path, read_only=True) as store:
        figures = report_timings(store, SMALL_ORG_AS_OF)
    assert figures["report_html_s"] > 0 and figures["report_html_mb"] > 1   # plotly.js is inside
    if Path(CHROMIUM).exists():
        assert figures["report_pdf_s"] > figures["report_print_s"] > 0 and figures["report_pdf_pages"] >= 3
    assert any("report_html_s" in line for line in report_lines(figures))


def test_inventory_bench_reports_export_preview_and_commit():
    from itscm.bench_inventory import inventory_timings

    figures = inventory_timings({"services": 60, "dependencies": 80, "plans": 70, "reviews": 150, "drills": 200,
                                 "assets": 120}, repeat=1)
    steps = {"export", "preview_new", "commit_new", "preview_three_edits", "commit_three_edits", "preview_assets",
             "commit_assets", "preview_assets_csv", "commit_assets_csv"}
    assert set(figures["inventory_s"]) == set(figures["inventory_cpu_s"]) == steps
    assert all(seconds > 0 for seconds in figures["inventory_s"].values())
    assert figures["inventory_sizes"]["services"] == 60 and figures["inventory_workbook_mb"] >= 0
    assert any("preview_three_edits" in line for line in inventory_lines(figures))


def test_change_bench_reports_the_import_its_floor_and_the_measures():
    from itscm.bench_changes import change_lines, change_timings

    figures = change_timings(3_000, services=40, repeat=1)
    assert figures["changes_import_counts"]["inserted"] + figures["changes_import_counts"]["rejected"] == 3_000
    assert figures["changes_import_counts"]["unmatched_cis"] > 0          # the unknown hosts
    assert figures["changes_reimport_counts"]["inserted"] == figures["changes_reimport_counts"]["updated"] == 0
    assert figures["changes_import_s"] > 0 and figures["changes_floor_s"] > 0
    assert figures["changes_import_ratio"] == round(figures["changes_import_s"] / figures["changes_floor_s"], 1)
    assert figures["changes_store_floor_rows"] == 3_000 and figures["changes_store_floor_s"] > 0
    assert figures["changes_import_store_ratio"] == round(
        figures["changes_import_s"] / figures["changes_store_floor_s"], 1)
    assert set(figures["changes_measures_ms"]) == {
        "staleness_summary", "staleness_trend", "plan_worklist", "changes_behind_plans", "coverage_summary",
        "coverage_trend"}
    assert all(set(by_store) == {"before", "after"} and all(wall > 0 and cpu >= 0 for wall, cpu in by_store.values())
               for by_store in figures["changes_measures_ms"].values())
    assert figures["changes_plans_changed_since_review"] > 0
    assert any("read_csv floor" in line for line in change_lines(figures))
    assert any("import / store floor" in line for line in change_lines(figures))
    assert any("after / before CPU" in line for line in change_lines(figures))


@pytest.mark.skipif(binaries() is None, reason="needs PostgreSQL 15 (`make postgres`) for a private catalog")
def test_lake_bench_times_the_file_and_the_lake_side_by_side():
    from itscm.bench_ducklake import format_lake_table, run_lake_bench

    # the writers' part has its own test on DuckLake (tests/test_bench_writers.py)
    figures = run_lake_bench(40, 2000, say=lambda _: None, runs=1, pages=False, writers=False)
    assert figures["lake_data_files"] > 0 and figures["migrate_s"] > 0
    for timing in (figures["floor_ms"], *(t for scopes in figures["measures_ms"].values() for t in scopes.values())):
        assert timing["file"]["cpu"] > 0 and timing["lake"]["cpu"] > 0
        assert timing["ratio_cpu"] == round(timing["lake"]["cpu"] / timing["file"]["cpu"], 2)
        assert timing["ratio_wall"] == round(timing["lake"]["wall"] / timing["file"]["wall"], 2)
    assert set(figures["measures_ms"]["posture_summary"]) == {"all", "one_unit"}
    assert len(figures["load_average"]) == 3
    table = format_lake_table(figures)
    assert "posture_summary (one_unit)" in table and "floor: one scan of incidents" in table
    # the writers' own bench (itscm/bench_writers.py), where the build has it, is printed beside
    figures["writers"] = {"floor_one_writer": {"commits_per_s": 22.8},
                          "together": {"writers": 2, "commits_per_s": 20.7}, "ratio_to_floor": 0.91}
    assert "alone (floor) 22.8, 2 at once 20.7 (0.91x the floor)" in format_lake_table(figures)
