"""The change import and the measures it feeds, at a large organisation's size.

Part of `python -m itscm bench --changes N`. Builds a demo store (its services, plans, reviews,
drills and change history) with assets behind the services added in SQL, writes a ServiceNow
`change_request` export of N changes naming those services and assets, then times, each the median
of `repeat` runs on fresh copies of the store: the import (read, check, commit) and the same file
again (nothing to write); DuckDB's own `read_csv` of the same file into a table (the floor, as
for the incident import) and straight into the store's changes table (the store floor: the rows
written, nothing checked); and the staleness and coverage measures warm on the store without and
with the changes imported, each measure on both in turn (the store without them is the floor the
measures are read against). CPU seconds and milliseconds are reported beside the wall-clock ones:
on a shared machine the wall clock includes waiting for a core.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from itscm import change_days
from itscm.store import IN_MEMORY, MEMORY_LIMIT, Store

# Two assets per service (a server and a database), each behind its service.
ASSETS_SQL = [
    """INSERT INTO assets (asset_id, name, asset_class, lifecycle)
       SELECT printf('srv-%05d-%s', s.service_key, kind), s.name || ' ' || kind, kind, 'live'
       FROM services s, (VALUES ('server'), ('database')) k(kind)""",
    """INSERT INTO service_assets (service_id, asset_id, relation)
       SELECT s.service_id, printf('srv-%05d-%s', s.service_key, kind), 'runs on'
       FROM services s, (VALUES ('server'), ('database')) k(kind)""",
]


ESTATE_ASSETS = 100_000
ESTATE_CHANGES = 1_000_000
ESTATE_CLASSES = ["server", "database", "application", "network", "cloud service"]


def add_estate(store: Store, folder: Path, as_of: dt.date, *, assets: int = ESTATE_ASSETS,
               changes: int = ESTATE_CHANGES) -> dict:
    """The issue's sizes of infrastructure behind a store's services, so that measures and pages
    are timed with them there: `assets` assets spread over the services (each verified between 0
    and 400 days before `as_of`, so inventory currency has gaps to find), then a ServiceNow export
    of `changes` changes naming services and assets, imported through the real import."""
    from itscm.access import command_line_actor
    from itscm.changes import commit_changes, read_changes

    with store.transaction() as cursor:
        cursor.execute("""
            CREATE TEMP TABLE estate AS
            SELECT i, s.service_id, printf('bench-asset-%06d', i) AS asset_id
            FROM range($assets) t(i)
            JOIN (SELECT service_id, row_number() OVER (ORDER BY service_id) - 1 AS n FROM services) s
              ON s.n = i % (SELECT count(*) FROM services)""", {"assets": assets})
        cursor.execute("""
            INSERT INTO assets (asset_id, name, asset_class, location, owner, lifecycle, last_verified,
                                verified_by)
            SELECT asset_id, 'Bench asset ' || i, $classes[1 + i % len($classes)], 'Site ' || (i % 7),
                   'Team ' || (i % 40), 'live', $as_of - to_days(CAST((i * 37) % 400 AS INTEGER)), 'discovery'
            FROM estate""", {"classes": ESTATE_CLASSES, "as_of": as_of})
        cursor.execute("INSERT INTO service_assets (service_id, asset_id, relation) "
                       "SELECT service_id, asset_id, 'runs on' FROM estate")
        cursor.execute("DROP TABLE estate")
        change_days.refresh(cursor)
    export = folder / "estate_change_request.csv"
    write_change_export(store, export, changes, as_of)
    data = export.read_bytes()
    export.unlink()
    preview = read_changes(data, export.name, store=store, max_bytes=len(data) + 1)
    result = commit_changes(command_line_actor("bench"), store, preview)
    return {"estate_assets": assets, "estate_changes": result.inserted}


def write_change_export(store: Store, path: Path, rows: int, as_of: dt.date) -> None:
    """A ServiceNow change_request list export (field names, display values) of `rows` changes over
    the three years before `as_of`: a third name a service, two thirds an asset behind one; mostly
    closed, some in review, cancelled or in progress; 1 % name a host nobody knows."""
    stamp = "'%Y-%m-%d %H:%M:%S'"
    store.cursor().execute(f"""
        COPY (
            WITH cis AS (
                SELECT row_number() OVER (ORDER BY ci) - 1 AS n, ci
                FROM (SELECT name AS ci FROM services UNION ALL SELECT asset_id FROM assets)),
            how_many AS (SELECT count(*) AS cis FROM cis)
            SELECT printf('CHG9%08d', i) AS number, 'Bench change ' || i AS short_description,
                   CASE WHEN i % 100 = 7 THEN 'unknown-host-' || (i % 50) ELSE cis.ci END AS cmdb_ci,
                   ['Standard', 'Normal', 'Normal', 'Emergency'][1 + i % 4] AS type,
                   ['Closed', 'Closed', 'Closed', 'Closed', 'Review', 'Canceled', 'Implement'][1 + i % 7] AS state,
                   CASE WHEN i % 7 < 5 THEN ['Successful', 'Successful', 'Successful with issues',
                                             'Unsuccessful'][1 + i % 4] END AS close_code,
                   strftime(start, {stamp}) AS start_date,
                   strftime(start + INTERVAL 3 HOUR, {stamp}) AS end_date,
                   CASE WHEN i % 7 < 5 THEN strftime(start + to_minutes(150 + i % 60), {stamp}) END AS work_end,
                   CASE WHEN i % 7 < 4 THEN strftime(start + INTERVAL 2 DAY, {stamp}) END AS closed_at,
                   'Moderate' AS risk
            FROM (SELECT i, i % how_many.cis AS n,
                         TIMESTAMP '{as_of:%Y-%m-%d}' - INTERVAL 1096 DAY + to_seconds(i * 94608000 // $rows) AS start
                  FROM range($rows) t(i), how_many) r
            JOIN cis ON cis.n = r.n   -- an equality, so a hash join (a computed condition joins every pair)
        ) TO '{path}' (HEADER, DELIMITER ',')
    """, {"rows": rows})


# The second floor: DuckDB's read_csv of the export straight into the store's changes table, its
# types sniffed, no check, no CI match, no undo record, no change days: what writing the file's
# rows into the store costs before the import does anything an import must (docs/PERFORMANCE.md).
STORE_FLOOR_SQL = """
    INSERT INTO changes (source, number, title, ci_name, change_type, type_raw, state, state_raw, close_code,
                         close_code_raw, planned_start, planned_end, work_end, closed_at, completed_at, upload_id)
    SELECT 'servicenow', number, short_description, cmdb_ci, lower(type), type, lower(state), state,
           lower(close_code), close_code, start_date, end_date, work_end, closed_at,
           coalesce(work_end, end_date, closed_at), 'floor'
    FROM read_csv($path, header = true)
"""


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)


MEASURE_RUNS = 5


def _median_wall_cpu_ms(run: Callable[[], object], runs: int = MEASURE_RUNS) -> tuple[float, float]:
    """Median wall and CPU milliseconds of `runs` warm runs (after one to warm up)."""
    run()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return round(statistics.median(walls), 1), round(statistics.median(cpus), 1)


def _measure_ms(stores: dict[str, Store], as_of: dt.date) -> dict[str, dict[str, tuple[float, float]]]:
    """{measure: {store label: (wall ms, CPU ms)}}, warm, each measure timed on every store in
    turn, so that the stores' figures share the machine's load of the moment."""
    from itscm.filters import Filters
    from itscm.measures.coverage import coverage_summary, coverage_trend
    from itscm.measures.staleness import changes_behind_plans, plan_worklist, staleness_summary, staleness_trend

    filters = Filters(as_of=as_of, since=as_of - dt.timedelta(days=730), until=as_of)
    return {function.__name__: {label: _median_wall_cpu_ms(lambda f=function, s=store: f(s, filters))
                                for label, store in stores.items()}
            for function in (staleness_summary, staleness_trend, plan_worklist, changes_behind_plans,
                             coverage_summary, coverage_trend)}


def change_timings(changes: int = 1_000_000, services: int = 1_000, *, repeat: int = 3,
                   say: Callable[[str], None] = lambda _step: None) -> dict:
    from itscm.access import command_line_actor
    from itscm.changes import commit_changes, read_changes
    from itscm.demo import build_demo
    from itscm.filters import Filters
    from itscm.measures.staleness import staleness_summary

    as_of = dt.date.today()
    actor = command_line_actor("bench")
    times: dict[str, list[tuple[float, float]]] = {"import": [], "reimport": [], "floor": [], "store_floor": []}
    figures: dict = {"changes_services": services, "changes_rows": changes}
    with tempfile.TemporaryDirectory(prefix="itscm-bench-changes-") as folder:
        path = Path(folder) / "store.duckdb"
        export = Path(folder) / "change_request.csv"
        say(f"changes: a demo store of {services:,} services with two assets each, and {changes:,} changes to import")
        with Store(path) as store:
            build_demo(store, services=services, incidents=1_000, as_of=as_of)
            with store.transaction() as cursor:
                for statement in ASSETS_SQL:
                    cursor.execute(statement)
                change_days.refresh(cursor)
            write_change_export(store, export, changes, as_of)
            figures["changes_export_mb"] = round(export.stat().st_size / 2**20, 1)
            store.cursor().execute("CHECKPOINT")
        data = export.read_bytes()
        for run in range(repeat):
            copy = path.with_name(f"run-{run}.duckdb")
            shutil.copyfile(path, copy)
            try:
                with Store(copy) as store:
                    for label in ("import", "reimport"):
                        outcome = {}

                        def once(outcome=outcome):
                            preview = read_changes(data, export.name, store=store, max_bytes=len(data) + 1)
                            outcome["result"] = commit_changes(actor, store, preview)

                        times[label].append(_timed(once))
                        result = outcome["result"]
                        figures[f"changes_{label}_counts"] = {
                            "inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
                            "rejected": result.rejected, "unmatched_cis": len(result.unmatched_cis)}
                    if run == 0:
                        with Store(path, read_only=True) as before:
                            say("changes: the measures warm, without and with the changes imported")
                            figures["changes_measures_ms"] = _measure_ms({"before": before, "after": store}, as_of)
                        figures["changes_completed"] = store.scalar(
                            "SELECT count(*) FROM changes WHERE completed_at IS NOT NULL")
                        figures["changes_plans_changed_since_review"] = staleness_summary(
                            store, Filters(as_of=as_of))["changed_since_review"]
            finally:
                for leftover in (copy, copy.with_name(copy.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            shutil.copyfile(path, copy)
            try:
                with duckdb.connect(str(copy), config={"memory_limit": MEMORY_LIMIT}) as con:
                    times["store_floor"].append(_timed(lambda con=con: con.execute(STORE_FLOOR_SQL,
                                                                                   {"path": str(export)})))
                    figures["changes_store_floor_rows"] = con.execute(
                        "SELECT count(*) FROM changes WHERE upload_id = 'floor'").fetchone()[0]
            finally:
                for leftover in (copy, copy.with_name(copy.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            with duckdb.connect(IN_MEMORY, config={"memory_limit": MEMORY_LIMIT}) as con:
                times["floor"].append(_timed(lambda con=con: con.execute(
                    "CREATE TABLE export AS SELECT * FROM read_csv($path, header = true)", {"path": str(export)})))
            say(f"changes: run {run + 1} of {repeat}: import {times['import'][-1][0]} s, "
                f"again {times['reimport'][-1][0]} s, read_csv {times['floor'][-1][0]} s, "
                f"read_csv into the store {times['store_floor'][-1][0]} s")
    for label, runs in times.items():
        figures[f"changes_{label}_s"] = statistics.median(wall for wall, _ in runs)
        figures[f"changes_{label}_cpu_s"] = statistics.median(cpu for _, cpu in runs)
        figures[f"changes_{label}_runs_s"] = [wall for wall, _ in runs]
    figures["changes_import_ratio"] = round(figures["changes_import_s"] / figures["changes_floor_s"], 1)
    figures["changes_import_store_ratio"] = round(figures["changes_import_s"] / figures["changes_store_floor_s"], 1)
    return figures


def change_lines(figures: dict) -> list[str]:
    lines = [f"  change import ({figures['changes_rows']:,} ServiceNow changes, {figures['changes_export_mb']} MB, "
             f"into a store of {figures['changes_services']:,} services with two assets each)",
             "  step (median, s)                      wall         CPU   runs"]
    for label in ("import", "reimport", "floor", "store_floor"):
        lines.append(f"    {label:<34}{figures[f'changes_{label}_s']:>8}{figures[f'changes_{label}_cpu_s']:>12}"
                     f"   {figures[f'changes_{label}_runs_s']}")
    lines.append(f"    import / read_csv floor           {figures['changes_import_ratio']:>8}")
    lines.append(f"    import / store floor              {figures['changes_import_store_ratio']:>8}")
    lines += ["  measure (warm median, ms)     before wall / CPU    after wall / CPU    after / before CPU"]
    for name, by_store in figures["changes_measures_ms"].items():
        (before_wall, before_cpu), (after_wall, after_cpu) = by_store["before"], by_store["after"]
        lines.append(f"    {name:<26}{before_wall:>10} / {before_cpu:<8}{after_wall:>10} / {after_cpu:<8}"
                     f"{after_cpu / before_cpu if before_cpu else float('nan'):>10.2f}")
    return lines
