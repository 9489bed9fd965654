"""The inventory workbook at the size of a large organisation: export, preview, commit.

Part of `python -m itscm bench --inventory`. Builds a store holding an inventory of the given size
(generated in SQL; its assets in stores of their own), exports it to a workbook, then times, each
the median of `repeat` runs on fresh copies of the stores: the export (store -> .xlsx); the
preview and the commit of that workbook into an empty store (everything new); the same of the
workbook with three cells edited into the store it came from (three changes); of a workbook of the
services with their assets and links into that inventory without its assets (the assets and links
new, the services unchanged); and of those assets and links alone as two CSV files. The CPU
seconds are reported beside the wall-clock ones: on a shared machine the wall clock includes
waiting for a core.
"""

from __future__ import annotations

import io
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from openpyxl import load_workbook

from itscm.access import LOCAL_USER
from itscm.export import csv_for_spreadsheets
from itscm.store import Store
from itscm.workbook import commit_inventory, export_bytes, export_frames, preview_inventory

INVENTORY_SQL = [
    """INSERT INTO business_units SELECT 'bu-' || i, 'Unit ' || i, CASE WHEN i > 4 THEN 'bu-' || (i % 4 + 1) END,
       'Head ' || i FROM range(1, 13) t(i)""",
    """INSERT INTO services (service_id, name, unit_id, tier, owner, rto_minutes, rpo_minutes, mtpd_minutes,
                             impact_cost_per_hour, recovery_strategy, lifecycle)
       SELECT printf('svc-%05d', i), 'Service ' || i, 'bu-' || (i % 12 + 1), i % 4 + 1, 'Owner ' || (i % 97),
              [15, 60, 240, 1440][i % 4 + 1], [5, 30, 60, 240][i % 4 + 1], [60, 240, 960, 5760][i % 4 + 1],
              (i % 50) * 1000.0 + 500, ['hot', 'warm', 'cold', 'active-active'][i % 4 + 1],
              CASE WHEN i % 40 = 0 THEN 'retired' ELSE 'live' END
       FROM range(1, $services + 1) t(i)""",
    """INSERT INTO service_aliases (alias, alias_key, service_id, origin)
       SELECT 'SVC-CI-' || i, 'svc-ci-' || i, printf('svc-%05d', i), 'cmdb' FROM range(1, $services + 1) t(i)""",
    """INSERT INTO dependencies (service_id, depends_on_id, has_alternative)
       SELECT service_id, depends_on_id, bool_or(alternative) FROM (
           SELECT printf('svc-%05d', i) AS service_id,
                  printf('svc-%05d', (i * 7 + j * 13) % (i - 1) + 1) AS depends_on_id, (i + j) % 5 = 0 AS alternative
           FROM range(2, $services + 1) t(i), range(0, 3) u(j))
       GROUP BY ALL ORDER BY ALL LIMIT $dependencies""",
    """INSERT INTO suppliers SELECT 'sup-' || i, 'Supplier ' || i, 60 * i, CASE WHEN i % 2 = 0 THEN 'hard' END,
       DATE '2027-01-01' + i::INTEGER FROM range(1, 26) t(i)""",
    """INSERT INTO service_suppliers SELECT printf('svc-%05d', i), 'sup-' || (i % 25 + 1)
       FROM range(1, $services + 1) t(i)""",
    """INSERT INTO plans (plan_id, service_id, title, owner, status, approved_on, document_link)
       SELECT printf('plan-%05d', i), printf('svc-%05d', (i - 1) % $services + 1), 'Recovery plan ' || i,
              'Owner ' || (i % 97), ['approved', 'draft', 'approved', 'retired'][i % 4 + 1],
              CASE WHEN i % 4 <> 1 THEN DATE '2024-01-01' + (i % 700)::INTEGER END, 'https://plans.example/' || i
       FROM range(1, $plans + 1) t(i)""",
    """INSERT INTO plan_reviews (plan_id, reviewed_on, reviewed_by, outcome, notes)
       SELECT printf('plan-%05d', (i - 1) % $plans + 1), DATE '2023-01-01' + ((i // $plans) * 90 + i % 30)::INTEGER,
              'Reviewer ' || (i % 31), CASE WHEN i % 3 = 0 THEN 'updated' ELSE 'no change' END,
              CASE WHEN i % 10 = 0 THEN 'Contacts refreshed' END
       FROM range(1, $reviews + 1) t(i)""",
    """INSERT INTO drills (drill_id, service_id, plan_id, held_on, drill_type, outcome, rta_minutes,
                           data_loss_minutes, open_findings)
       SELECT printf('drill-%06d', i), printf('svc-%05d', (i - 1) % $services + 1),
              printf('plan-%05d', (i - 1) % $plans + 1), DATE '2022-01-01' + (i % 1500)::INTEGER,
              ['walkthrough', 'tabletop', 'simulation', 'parallel', 'full interruption'][i % 5 + 1],
              ['passed', 'passed', 'partial', 'failed'][i % 4 + 1], CASE WHEN i % 5 >= 2 THEN 30 + i % 300 END,
              CASE WHEN i % 5 >= 2 THEN i % 60 END, 0
       FROM range(1, $drills + 1) t(i)""",
    """INSERT INTO assets (asset_id, name, asset_class, class_raw, location, owner, supplier_id, lifecycle, status_raw,
                          last_verified, verified_by)
       SELECT printf('AST-%06d', i), 'host-' || i,
              ['server', 'database', 'application', 'network', 'cloud service', 'site'][i % 6 + 1],
              ['Servers', 'Database Servers', 'Applications', 'Switches', 'Cloud', 'Sites'][i % 6 + 1],
              'DC ' || (i % 5), 'Owner ' || (i % 97), CASE WHEN i % 10 = 0 THEN 'sup-' || (i % 25 + 1) END,
              CASE WHEN i % 50 = 0 THEN 'retired' ELSE 'live' END, 'Ready to Deploy (deployed)',
              CASE WHEN i % 20 <> 0 THEN DATE '2026-01-01' + (i % 180)::INTEGER END,
              CASE WHEN i % 20 <> 0 THEN ['audit', 'discovery', 'review'][i % 3 + 1] END
       FROM range(1, $assets + 1) t(i)""",
    """INSERT INTO service_assets (service_id, asset_id, relation)
       SELECT printf('svc-%05d', (i - 1) % $services + 1), printf('AST-%06d', i),
              ['runs on', 'hosted on', 'depends on'][i % 3 + 1]
       FROM range(1, $assets + 1) t(i)""",
]


def _build(path: Path, sizes: dict) -> None:
    """A new store holding an inventory of these sizes, for the bench alone (never anyone's data)."""
    with Store(path) as store, store.transaction() as cursor:
        for statement in INVENTORY_SQL:
            used = {name: value for name, value in sizes.items() if f"${name}" in statement}
            cursor.execute(statement, used)


def edited(workbook: bytes) -> bytes:
    """The workbook with three cells changed, as a person would in a spreadsheet."""
    book = load_workbook(io.BytesIO(workbook))
    book["services"]["F2"] = 30                # an RTO
    book["plans"]["E3"] = "retired"            # a status (plan-00002 is approved)
    book["drills"]["F4"] = "partial"           # an outcome (drill-000003 failed)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def timed(action) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return time.perf_counter() - wall, time.process_time() - cpu, result


DEFAULT_SIZES = {"services": 10_000, "dependencies": 20_000, "plans": 12_000, "reviews": 40_000, "drills": 60_000,
                 "assets": 100_000}


def inventory_timings(sizes: dict[str, int] | None = None, *, repeat: int = 3,
                      say: Callable[[str], None] = lambda _: None) -> dict:
    """{inventory_sizes, inventory_workbook_mb, inventory_s: {figure: median wall seconds},
    inventory_cpu_s: {figure: median CPU seconds}, inventory_runs_s: {figure: [wall seconds]}}."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    with tempfile.TemporaryDirectory(prefix="itscm-inventory-bench-") as name:
        folder = Path(name)
        empty = folder / "empty.duckdb"
        without_assets, assets_only = folder / "without_assets.duckdb", folder / "assets_only.duckdb"
        # The inventory workbook of issue #12's budget: services, dependencies, plans, reviews and
        # drills; the assets are timed apart, as the asset register they come from.
        _build(without_assets, {**sizes, "assets": 0})
        # An asset register as a site would bring it: the services, their assets and links only.
        _build(assets_only, {**sizes, "dependencies": 0, "plans": 0, "reviews": 0, "drills": 0})
        Store(empty).close()
        figures: dict[str, list[tuple[float, float]]] = {}

        def record(figure: str, wall: float, cpu: float) -> None:
            figures.setdefault(figure, []).append((wall, cpu))

        say(f"inventory: exporting {sizes['services']:,} services and their plans, reviews and drills")
        with Store(without_assets, read_only=True) as store:
            for _ in range(repeat):
                wall, cpu, (workbook, _counts) = timed(lambda store=store: export_bytes(store))
                record("export", wall, cpu)
        changed = edited(workbook)
        with Store(assets_only, read_only=True) as store:
            assets_workbook, _counts = export_bytes(store)
            frames = export_frames(store)
        # The same assets and links as two CSV files, as an asset register's export comes.
        assets_csv = [(f"{name}.csv", csv_for_spreadsheets(frames[name])) for name in ("assets", "service_assets")]
        say("inventory: previewing and committing the workbook, into an empty store and with three edits")
        for run in range(repeat):
            # "assets": a workbook of the services, their assets and links into the inventory without
            # its assets: the assets and links all new, the services unchanged.
            for figure, source, files in (("new", empty, [("inventory.xlsx", workbook)]),
                                          ("three_edits", without_assets, [("inventory.xlsx", changed)]),
                                          ("assets", without_assets, [("assets.xlsx", assets_workbook)]),
                                          ("assets_csv", without_assets, assets_csv)):
                copy = folder / f"run-{run}.duckdb"
                shutil.copy(source, copy)
                with Store(copy) as store:
                    wall, cpu, preview = timed(lambda store=store, files=files: preview_inventory(store, files))
                    record(f"preview_{figure}", wall, cpu)
                    wall, cpu, _ = timed(lambda store=store, preview=preview: commit_inventory(
                        LOCAL_USER, store, preview))
                    record(f"commit_{figure}", wall, cpu)
                copy.unlink()
    return {
        "inventory_sizes": sizes,
        "inventory_workbook_mb": round(len(workbook) / 2**20, 1),
        "inventory_s": {f: round(statistics.median(w for w, _ in runs), 2) for f, runs in figures.items()},
        "inventory_cpu_s": {f: round(statistics.median(c for _, c in runs), 2) for f, runs in figures.items()},
        "inventory_runs_s": {f: [round(w, 2) for w, _ in runs] for f, runs in figures.items()},
    }
