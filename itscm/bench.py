"""`python -m itscm bench`: how fast the product is at a given size, measured, not asserted.

Builds a demo store in a temporary folder, then times: the demo generation; importing a
ServiceNow-style export through the real import path (read, validate, commit) and importing it
again; every measure warm, with and without a business-unit filter; every page through AppTest,
cold and warm; the same four measures computed the way a typical pandas dashboard does. Prints a
table, or one JSON object with --json.

Seconds depend on the machine, so two figures are measured beside them in the same run, on the
same machine: the import's floor (DuckDB's own CSV reader loading the same file into a table) and
the import's time over it (`ingest_ratio`, `reingest_ratio`); and the time of a write that touches
no incident (`empty_write_ms`), what every write pays whatever it changes. Ratios compare between
machines where seconds do not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from itscm.store import IN_MEMORY, MEMORY_LIMIT, PROJECT_ROOT, Store, open_store

WARM_RUNS = 5
EXPORT_ROWS = 1_000_000
IMPORT_RUNS = 3


def _median_ms(run: Callable[[], object], runs: int = WARM_RUNS) -> float:
    return median_wall_and_cpu_ms(run, runs)["wall"]


def median_wall_and_cpu_ms(run: Callable[[], object], runs: int = WARM_RUNS) -> dict[str, float]:
    """The median wall time of `runs` warm runs and the median process CPU time of the same runs,
    in ms: on a shared machine the wall clock includes waiting for a core, CPU time does not."""
    run()  # warm-up: caches, buffer pool
    walls, cpus = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        cpus.append((time.process_time() - started_cpu) * 1000)
        walls.append((time.perf_counter() - started) * 1000)
    return {"wall": round(statistics.median(walls), 1), "cpu": round(statistics.median(cpus), 1)}


def _measures() -> dict[str, Callable]:
    from itscm.measures import posture
    from itscm.measures.registry import headline_measures

    return {
        **{measure.name: measure.summary for measure in headline_measures()},
        "posture_summary": posture.posture_summary,
        "posture_trend": posture.posture_trend,
        "unit_gaps": posture.unit_gaps,
    }


def measure_scopes(store: Store, as_of: dt.date) -> dict:
    """The filters every measure is timed with: the whole organisation, and one business unit."""
    from itscm.filters import Filters

    unit = store.scalar("SELECT name FROM business_units ORDER BY name LIMIT 1")
    return {"all": Filters(as_of=as_of), "one_unit": Filters(as_of=as_of, units=(unit,))}


def measure_timings(store: Store, as_of: dt.date) -> dict[str, dict[str, float]]:
    scopes = measure_scopes(store, as_of)
    return {name: {scope: _median_ms(lambda f=function, s=filters: f(store, s)) for scope, filters in scopes.items()}
            for name, function in _measures().items()}


def page_timings(store_path: str, as_of: dt.date, *, with_cpu: bool = False) -> dict[str, dict[str, float]]:
    """Each page through AppTest: cold (empty caches, first run) and warm (same filters again);
    `with_cpu`: the warm runs' median process CPU time too (`warm_cpu`)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    # AppTest runs pages without a server; Streamlit says so at every run, which is noise here.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    os.environ["ITSCM_STORE"] = store_path
    timings = {}
    for page in sorted((PROJECT_ROOT / "pages").glob("*.py")):
        st.cache_data.clear()

        def run(path=page):
            app = AppTest.from_file(str(path), default_timeout=120)
            app.query_params["as_of"] = as_of.isoformat()
            app.run()
            if app.exception:
                raise RuntimeError(f"{path.name}: {app.exception[0].message}")

        started = time.perf_counter()
        run()
        cold = (time.perf_counter() - started) * 1000
        warm = median_wall_and_cpu_ms(run, runs=3)
        timings[page.stem] = {"cold": round(cold, 1), "warm": warm["wall"]}
        if with_cpu:
            timings[page.stem]["warm_cpu"] = warm["cpu"]
    return timings


def write_servicenow_export(store: Store, path: Path, rows: int) -> None:
    """An export of `rows` new incidents naming the store's services by their CMDB names, as a
    ServiceNow list export with display values."""
    stamp = "'%Y-%m-%d %H:%M:%S'"
    store.cursor().execute(f"""
        COPY (
            WITH names AS (
                SELECT row_number() OVER (ORDER BY alias) - 1 AS n, alias FROM service_aliases
                WHERE origin = 'cmdb'),
            how_many AS (SELECT count(*) AS names FROM names)
            SELECT printf('INC9%08d', i) AS number,
                   'Bench outage ' || i || ', users affected' AS short_description,
                   ['1 - Critical', '2 - High', '3 - Moderate', '4 - Low'][1 + i % 4] AS priority,
                   'Closed' AS state,
                   strftime(opened, {stamp}) AS opened_at,
                   strftime(opened + to_seconds(600 + i % 7200), {stamp}) AS u_restored_at,
                   strftime(opened + to_seconds(9000 + i % 7200), {stamp}) AS resolved_at,
                   strftime(opened + to_seconds(259200), {stamp}) AS closed_at,
                   names.alias AS cmdb_ci
            FROM (SELECT i, TIMESTAMP '2024-01-01' + to_seconds(i * 30) AS opened FROM range({rows}) t(i)) r
            JOIN names ON names.n = r.i % (SELECT names FROM how_many)
        ) TO '{path}' (HEADER, DELIMITER ',')
    """)


def ingest_timings(store_path: Path, export: Path, runs: int = IMPORT_RUNS) -> dict:
    """The export imported, then the same file again, into a fresh copy of the store as generated,
    `runs` times: an import changes the store, so each run starts from a copy. The medians are the
    figures (the budgets are medians); every run's time is kept beside them."""
    from itscm import ingest
    from itscm.access import command_line_actor

    data = export.read_bytes()
    times: dict[str, list[float]] = {"ingest": [], "reingest": []}
    result: dict = {}
    for run in range(runs):
        copy = store_path.with_name(f"import-run-{run}.duckdb")
        shutil.copyfile(store_path, copy)
        try:
            with Store(copy) as store:
                for label in ("ingest", "reingest"):
                    started = time.perf_counter()
                    preview = ingest.read_upload(data, export.name, store=store, max_bytes=len(data) + 1)
                    outcome = ingest.commit_upload(command_line_actor("bench"), store, preview)
                    times[label].append(round(time.perf_counter() - started, 2))
                    result[f"{label}_counts"] = {"inserted": outcome.inserted, "updated": outcome.updated,
                                                 "unchanged": outcome.unchanged, "rejected": outcome.rejected}
        finally:
            for leftover in (copy, copy.with_name(copy.name + ".wal")):
                leftover.unlink(missing_ok=True)
    for label, runs_s in times.items():
        result[f"{label}_s"] = round(statistics.median(runs_s), 2)
        result[f"{label}_runs_s"] = runs_s
    result["ingest_rows_per_s"] = round(result["ingest_counts"]["inserted"] / result["ingest_s"])
    return result


def import_floor_timings(export: Path, runs: int = IMPORT_RUNS) -> dict:
    """The floor under the import on this machine: DuckDB's own CSV reader loading the same file
    into a table (types detected, nothing checked), each run on a fresh in-memory database with the
    store's memory limit. The median of as many runs as the import, every run kept beside it."""
    runs_s = []
    for _ in range(runs):
        with duckdb.connect(IN_MEMORY, config={"memory_limit": MEMORY_LIMIT}) as con:
            started = time.perf_counter()
            con.execute("CREATE TABLE export AS SELECT * FROM read_csv($path, header = true)",
                        {"path": str(export)})
            # Four decimals: at a test's tiny size the floor is a few milliseconds.
            runs_s.append(round(time.perf_counter() - started, 4))
    return {"import_floor_s": round(statistics.median(runs_s), 4), "import_floor_runs_s": runs_s}


def empty_write_timing(store_path: Path) -> float:
    """The median time, in ms, of a write that touches no incident (a role grant) on a copy of the
    store: the transaction, the derived columns' check and the data version that every write pays."""
    from itscm.access import LOCAL_USER, grant_role

    copy = store_path.with_name("empty-write.duckdb")
    shutil.copyfile(store_path, copy)
    try:
        with Store(copy) as store:
            return _median_ms(lambda: grant_role(LOCAL_USER, store, "bench@example.com", "analyst"))
    finally:
        for leftover in (copy, copy.with_name(copy.name + ".wal")):
            leftover.unlink(missing_ok=True)


# -- the same four measures, the way a typical pandas dashboard computes them -----------------


def pandas_frames(store: Store) -> dict[str, pd.DataFrame]:
    tables = ["services", "incidents", "plans", "plan_reviews", "drills", "policy", "business_units"]
    return {table: store.arrow(f"SELECT * FROM {table}").to_pandas() for table in tables}


def pandas_measures(frames: dict[str, pd.DataFrame], as_of: dt.date) -> dict:
    """Coverage (simplified to plan, review and drill controls), attainment, downtime cost and
    staleness counts, with merges and groupbys over in-memory frames."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    start = end - pd.DateOffset(years=1)
    services, incidents = frames["services"], frames["incidents"]
    policy = frames["policy"].set_index("tier")
    live = services[services["lifecycle"] == "live"].merge(policy, left_on="tier", right_index=True)
    # attainment
    opened = incidents[(incidents["opened_at"] >= start) & (incidents["opened_at"] < end)].copy()
    opened["recovered"] = opened["restored_at"].fillna(opened["resolved_at"])
    opened = opened[opened["recovered"].notna()].merge(services[["service_id", "rto_minutes"]], on="service_id")
    rta = (opened["recovered"] - opened["opened_at"]).dt.total_seconds() / 60
    attained = int((rta <= opened["rto_minutes"]).sum())
    # downtime cost
    spans = incidents.merge(services[["service_id", "impact_cost_per_hour"]], on="service_id", how="left")
    finish = spans["restored_at"].fillna(spans["resolved_at"]).clip(upper=end)
    begin = spans["opened_at"].clip(lower=start)
    hours = ((finish - begin).dt.total_seconds() / 3600).clip(lower=0).fillna(0)
    cost = float((hours * spans["impact_cost_per_hour"]).sum())
    # staleness and coverage
    reviews = frames["plan_reviews"].groupby("plan_id")["reviewed_on"].max().rename("last_review")
    passed = frames["drills"][frames["drills"]["outcome"] == "passed"]
    tests = passed.groupby("service_id")["held_on"].max().rename("last_test")
    plans = frames["plans"][frames["plans"]["status"] != "retired"].merge(reviews, on="plan_id", how="left")
    plans = plans.merge(live[["service_id", "review_interval_days", "test_interval_days"]], on="service_id")
    plans = plans.merge(tests, on="service_id", how="left")
    day = pd.Timestamp(as_of)
    overdue = ((day - pd.to_datetime(plans["last_review"])).dt.days > plans["review_interval_days"]) | (
        (day - pd.to_datetime(plans["last_test"])).dt.days > plans["test_interval_days"])
    critical = live[live["is_critical"]]
    covered = critical["service_id"].isin(plans.loc[~overdue, "service_id"])
    return {"attained": attained, "events": len(opened), "cost": cost, "overdue": int(overdue.sum()),
            "covered": int(covered.sum())}


def pandas_ratio(store: Store, as_of: dt.date, measures: dict) -> dict[str, float]:
    load_started = time.perf_counter()
    frames = pandas_frames(store)
    load_s = time.perf_counter() - load_started
    pandas_ms = _median_ms(lambda: pandas_measures(frames, as_of), runs=3)
    ours_ms = sum(measures[name]["all"] for name in ("coverage", "rto_attainment", "downtime_cost", "staleness"))
    return {"pandas_ms": pandas_ms, "ours_ms": round(ours_ms, 1), "pandas_load_s": round(load_s, 2),
            "pandas_ratio": round(pandas_ms / ours_ms, 1)}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


CHROMIUM = "/usr/bin/chromium"
_READY = "[data-testid='stApp'][data-test-script-state='notRunning']"


def app_timings(store_path: str, as_of: dt.date) -> dict:
    """The app as people use it: `streamlit run` on the store, every page opened in headless
    Chromium (first load on a fresh server, then again), and the server process's peak resident
    memory (VmHWM) afterwards. Needs Debian's chromium and playwright."""
    import socket
    import subprocess
    import sys
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ITSCM_STORE": store_path, "PYTHONPATH": str(PROJECT_ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.25)
        pages = ["", *sorted(p.stem for p in (PROJECT_ROOT / "pages").glob("*.py") if p.stem != "Overview")]
        timings: dict[str, dict[str, float]] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for round_name in ("first", "again"):
                for path in pages:
                    started = time.perf_counter()
                    page.goto(f"{url}/{path}?as_of={as_of.isoformat()}")
                    page.wait_for_selector(_READY, timeout=300_000)
                    page.wait_for_timeout(300)
                    page.wait_for_selector(_READY, timeout=300_000)
                    elapsed = (time.perf_counter() - started - 0.3) * 1000
                    timings.setdefault(path or "Overview", {})[round_name] = round(elapsed, 1)
            browser.close()
        status = Path(f"/proc/{server.pid}/status").read_text()
        hwm_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
        return {"app_peak_rss_mb": round(hwm_kb / 1024, 1), "app_pages_ms": timings}
    finally:
        server.terminate()
        server.wait(timeout=30)


def report_timings(store: Store, as_of: dt.date) -> dict:
    """The board pack for the whole organisation: its HTML (every query and chart, cold: nothing
    of it is cached), its size, and where Chromium is installed the PDF printed from it, its
    pages and the printing alone. Once each, as a person makes one."""
    from itscm.filters import Filters
    from itscm.report import report_html
    from itscm.report.pdf import pdf_available, print_pdf

    filters = Filters(as_of=as_of)
    started = time.perf_counter()
    page = report_html(store, filters)
    figures: dict = {"report_html_s": round(time.perf_counter() - started, 2),
                     "report_html_mb": round(len(page.encode()) / 2**20, 1)}
    if pdf_available():
        started = time.perf_counter()
        pdf = print_pdf(page)
        figures["report_print_s"] = round(time.perf_counter() - started, 2)
        figures["report_pdf_s"] = round(figures["report_html_s"] + figures["report_print_s"], 2)
        figures["report_pdf_pages"] = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    return figures


def run_bench(services: int, incidents: int, *, say: Callable[[str], None], app: bool = False,
              inventory: bool = False, report: bool = False, changes: int = 0, estate: bool = False) -> dict:
    from itscm.demo import build_demo

    as_of = dt.date.today()
    with tempfile.TemporaryDirectory(prefix="itscm-bench-") as folder:
        path = str(Path(folder) / "bench.duckdb")
        store = open_store(path)
        say(f"generating {services:,} services and {incidents:,} incidents")
        started = time.perf_counter()
        build_demo(store, services=services, incidents=incidents, as_of=as_of)
        figures: dict = {"services": services, "incidents": incidents,
                         "generate_s": round(time.perf_counter() - started, 2)}
        if estate:
            from itscm.bench_changes import ESTATE_ASSETS, ESTATE_CHANGES, add_estate

            say(f"adding {ESTATE_ASSETS:,} assets and importing {ESTATE_CHANGES:,} changes")
            figures.update(add_estate(store, Path(folder), as_of))
        say("timing the measures")
        figures["measures_ms"] = measure_timings(store, as_of)
        say("timing the pages")
        figures["pages_ms"] = page_timings(path, as_of)
        if report:
            say("making the board pack, HTML then PDF")
            figures.update(report_timings(store, as_of))
        export = Path(folder) / "servicenow_export.csv"
        rows = min(EXPORT_ROWS, max(incidents, 1000))
        write_servicenow_export(store, export, rows)
        figures["export_rows"] = rows
        figures["export_mb"] = round(export.stat().st_size / 2**20, 1)
        store.cursor().execute("CHECKPOINT")  # the file alone is then the store as generated
        store.close()
        say("timing a write that touches no incident, on a copy of the store")
        figures["empty_write_ms"] = empty_write_timing(Path(path))
        say(f"importing a {rows:,}-row ServiceNow export, then again, {IMPORT_RUNS} times into copies of the store")
        figures.update(ingest_timings(Path(path), export))
        say(f"loading the same export with DuckDB's read_csv, {IMPORT_RUNS} times: the import's floor")
        figures.update(import_floor_timings(export))
        for label in ("ingest", "reingest"):
            figures[f"{label}_ratio"] = round(figures[f"{label}_s"] / figures["import_floor_s"], 1)
        if app:
            say("opening every page of a running app in Chromium")
            figures.update(app_timings(path, as_of))
        store = open_store(path)
        # Everything so far is what the app process does; pandas below is the comparison only.
        figures["peak_rss_mb"] = peak_rss_mb()
        say("comparing with pandas")
        figures.update(pandas_ratio(store, as_of, figures["measures_ms"]))
        store.close()
    if inventory:
        from itscm.bench_inventory import inventory_timings

        figures.update(inventory_timings(say=say))
    if changes:
        from itscm.bench_changes import change_timings

        figures.update(change_timings(changes, say=say))
    return figures


def format_table(figures: dict) -> str:
    estate = (f", {figures['estate_assets']:,} assets, {figures['estate_changes']:,} changes"
              if "estate_assets" in figures else "")
    lines = [f"Benchmark: {figures['services']:,} services, {figures['incidents']:,} incidents{estate}", ""]
    lines.append(f"  generate_s         {figures['generate_s']:>10}")
    lines.append(f"  ingest_s           {figures['ingest_s']:>10}   ({figures['export_rows']:,} rows, "
                 f"{figures['export_mb']} MB; {figures['ingest_rows_per_s']:,} rows/s)")
    lines.append(f"  reingest_s         {figures['reingest_s']:>10}   ({figures['reingest_counts']})")
    lines.append(f"  (medians of {len(figures['ingest_runs_s'])} runs: ingest {figures['ingest_runs_s']}, "
                 f"reingest {figures['reingest_runs_s']})")
    lines.append(f"  import_floor_s     {figures['import_floor_s']:>10}   (DuckDB's read_csv of the same file into "
                 f"a table; runs {figures['import_floor_runs_s']})")
    lines.append(f"  ingest_ratio       {figures['ingest_ratio']:>10}   (ingest_s / import_floor_s: "
                 "comparable between machines)")
    lines.append(f"  reingest_ratio     {figures['reingest_ratio']:>10}   (reingest_s / import_floor_s)")
    lines.append(f"  empty_write_ms     {figures['empty_write_ms']:>10}   (a role grant: a write that touches "
                 "no incident)")
    lines.append(f"  peak_rss_mb        {figures['peak_rss_mb']:>10}")
    lines.append(f"  pandas_ratio       {figures['pandas_ratio']:>10}   (pandas {figures['pandas_ms']} ms vs ours "
                 f"{figures['ours_ms']} ms for the four measures; pandas load {figures['pandas_load_s']} s)")
    lines += ["", "  measure (median of warm runs, ms)      all    one unit"]
    for name, values in figures["measures_ms"].items():
        lines.append(f"    {name:<34}{values['all']:>8}{values['one_unit']:>12}")
    lines += ["", "  page (AppTest, ms)                    cold        warm"]
    for name, values in figures["pages_ms"].items():
        lines.append(f"    {name:<34}{values['cold']:>8}{values['warm']:>12}")
    if "app_pages_ms" in figures:
        lines += ["", f"  app process peak memory (VmHWM)   {figures['app_peak_rss_mb']} MB",
                  "  page in Chromium (ms)                first       again"]
        for name, values in figures["app_pages_ms"].items():
            lines.append(f"    {name:<34}{values['first']:>8}{values['again']:>12}")
    if "report_html_s" in figures:
        lines += ["", *report_lines(figures)]
    if "inventory_s" in figures:
        lines += ["", *inventory_lines(figures)]
    if "changes_import_s" in figures:
        from itscm.bench_changes import change_lines

        lines += ["", *change_lines(figures)]
    return "\n".join(lines)


def report_lines(figures: dict) -> list[str]:
    lines = [f"  report_html_s      {figures['report_html_s']:>10}   (the board pack's queries, charts and page; "
             f"{figures['report_html_mb']} MB)"]
    if "report_pdf_s" in figures:
        lines.append(f"  report_pdf_s       {figures['report_pdf_s']:>10}   (of which Chromium printing "
                     f"{figures['report_print_s']} s; {figures['report_pdf_pages']} pages)")
    else:
        lines.append("  report_pdf_s             n/a   (no Chromium: `make browser` installs it)")
    return lines


def inventory_lines(figures: dict) -> list[str]:
    sizes = ", ".join(f"{n:,} {table}" for table, n in figures["inventory_sizes"].items())
    lines = [f"  inventory workbook ({sizes}; {figures['inventory_workbook_mb']} MB)",
             "  step (median, s)                      wall         CPU"]
    for name, wall in figures["inventory_s"].items():
        lines.append(f"    {name:<34}{wall:>8}{figures['inventory_cpu_s'][name]:>12}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--app", action="store_true",
                        help="also run the app (streamlit run) and open every page in headless Chromium: "
                             "page loads in a browser and the app process's peak memory")
    parser.add_argument("--report", action="store_true",
                        help="also make the board pack for the whole organisation, as HTML and (with Chromium) PDF")
    parser.add_argument("--resilience", action="store_true",
                        help="only the resilience analysis (10,000 services, 30,000 dependencies, 500 suppliers, "
                             "20,000 assets): the graph, the reach of every node, the tables, a scenario, the "
                             "Resilience page warm")
    parser.add_argument("--inventory", action="store_true",
                        help="also time the inventory workbook (10,000 services, 20,000 dependencies, 12,000 "
                             "plans, 40,000 reviews, 60,000 drills, 100,000 assets): export, preview and commit")
    parser.add_argument("--backend", choices=("file", "ducklake"), default="file",
                        help="ducklake: the same store on the file and on DuckLake, measures and pages side by "
                             "side with their ratio (itscm/bench_ducklake.py)")
    parser.add_argument("--catalog", metavar="LIBPQ", default=os.environ.get("ITSCM_BENCH_CATALOG"),
                        help="with --backend ducklake: an empty PostgreSQL database for the lake's catalog "
                             "(default $ITSCM_BENCH_CATALOG; without either, a private PostgreSQL 15 is started)")
    parser.add_argument("--changes", type=int, default=0, metavar="N",
                        help="also time importing a ServiceNow export of N changes (1,000,000 is the issue's size) "
                             "into a store of 1,000 services with 2,000 assets, and the staleness and coverage "
                             "measures before and after it")
    parser.add_argument("--estate", action="store_true",
                        help="the store also holds 100,000 assets behind its services and 1,000,000 changes "
                             "(imported through the change import) when the measures and pages are timed")


def run(args: argparse.Namespace) -> int:
    import sys

    if args.resilience:
        from itscm.bench_resilience import resilience_lines, resilience_timings

        figures = resilience_timings(say=lambda step: print(step, file=sys.stderr))
        print(json.dumps(figures) if args.json else "\n".join(resilience_lines(figures)))
        return 0
    if args.backend == "ducklake":
        from itscm.bench_ducklake import format_lake_table, run_lake_bench

        figures = run_lake_bench(args.services, args.incidents, say=lambda step: print(step, file=sys.stderr),
                                 catalog=args.catalog)
        print(json.dumps(figures) if args.json else format_lake_table(figures))
        return 0
    figures = run_bench(args.services, args.incidents, say=lambda step: print(step, file=sys.stderr),
                        app=args.app, inventory=args.inventory, report=args.report, changes=args.changes,
                        estate=args.estate)
    print(json.dumps(figures) if args.json else format_table(figures))
    return 0
