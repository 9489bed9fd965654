"""`python -m itscm bench --backend ducklake`: the same store on the file and on DuckLake, side by side.

Builds the demo store as `bench` does, moves it to a DuckLake (`migrate-store`, then `maintain`,
which merges each table into as few files as it can: the fastest way to a large lake, and the
state a lake is in after its daily maintenance), then times, on both, in the same process and
alternately so that both meet the same load: a floor (one scan of one column of the incidents),
every measure warm, for all units and for one, and every page through AppTest, cold and warm. Each
warm figure is the median of the runs' wall time and of their process CPU time; the lake's over
the file's is the ratio. The load average is printed beside them: on a shared machine the CPU
time and the ratios carry between runs, the wall clock does not.

The catalog: `--catalog` (or `$ITSCM_BENCH_CATALOG`), the libpq connection string of an empty
PostgreSQL database, the data files then going to `$ITSCM_DATA_PATH` or a temporary folder;
without one, a private PostgreSQL 15 is started for the run (itscm/private_postgres.py) and
removed at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from itscm import ducklake
from itscm.bench import _measures, measure_scopes, median_wall_and_cpu_ms, page_timings
from itscm.store import Store, open_store

CATALOG_ENV_VAR = "ITSCM_BENCH_CATALOG"
FLOOR_SQL = "SELECT sum(rta_minutes) FROM incidents"
BACKENDS = ("file", "lake")


@contextmanager
def lake_target(folder: Path, catalog: str | None) -> Iterator[str]:
    """Where the lake goes: the given catalog (its data in $ITSCM_DATA_PATH or under `folder`), or
    a new database in a private PostgreSQL started for the run and stopped after it."""
    from itscm.private_postgres import PrivatePostgres, binaries

    before = os.environ.get(ducklake.DATA_PATH_ENV_VAR)
    try:
        if catalog:
            os.environ.setdefault(ducklake.DATA_PATH_ENV_VAR, str(folder / "lake"))
            yield ducklake.SUPPORTED_PREFIX + catalog
            return
        bin_folder = binaries()
        if bin_folder is None:
            raise SystemExit(f"bench --backend ducklake needs a catalog: --catalog / ${CATALOG_ENV_VAR}, or "
                             "PostgreSQL 15 installed (`make postgres`) to start a private one.")
        postgres = PrivatePostgres(bin_folder).start()
        try:
            target, data = postgres.new_lake()
            os.environ[ducklake.DATA_PATH_ENV_VAR] = str(data)
            yield target
        finally:
            postgres.stop()
    finally:
        if before is None:
            os.environ.pop(ducklake.DATA_PATH_ENV_VAR, None)
        else:
            os.environ[ducklake.DATA_PATH_ENV_VAR] = before


def side_by_side(stores: dict[str, Store], run: Callable[[Store], object], runs: int) -> dict:
    """`run` timed on each store in turn, and the lake's wall and CPU time over the file's."""
    timings = {backend: median_wall_and_cpu_ms(lambda s=store: run(s), runs) for backend, store in stores.items()}
    return {**timings, "ratio_wall": _ratio(timings, "wall"), "ratio_cpu": _ratio(timings, "cpu")}


def _ratio(timings: dict, clock: str) -> float | None:
    file, lake = timings["file"][clock], timings["lake"][clock]
    return round(lake / file, 2) if file else None


def lake_measure_timings(stores: dict[str, Store], as_of: dt.date, runs: int) -> dict:
    scopes = measure_scopes(stores["file"], as_of)
    return {name: {scope: side_by_side(stores, lambda store, f=function, s=filters: f(store, s), runs)
                   for scope, filters in scopes.items()}
            for name, function in _measures().items()}


def lake_page_timings(paths: dict[str, str], as_of: dt.date) -> dict:
    by_backend = {backend: page_timings(path, as_of, with_cpu=True) for backend, path in paths.items()}
    pages = {}
    for page, file in by_backend["file"].items():
        lake = by_backend["lake"][page]
        pages[page] = {"file": file, "lake": lake, "ratio_warm": round(lake["warm"] / file["warm"], 2),
                       "ratio_warm_cpu": round(lake["warm_cpu"] / file["warm_cpu"], 2) if file["warm_cpu"] else None}
    return pages


def writer_timings(target: str, say: Callable[[str], None]) -> dict:
    """Commits per second of two writer processes on the lake beside one alone (the writers' own
    bench, itscm/bench_writers.py, where this build has it); nothing where it does not."""
    try:
        from itscm import bench_writers
    except ImportError:
        return {}
    say("timing commits per second, one writer process alone and two at once")
    return {"writers": bench_writers.writer_timings(target)}


def run_lake_bench(services: int, incidents: int, *, say: Callable[[str], None], catalog: str | None = None,
                   runs: int = 5, pages: bool = True, writers: bool = True) -> dict:
    """The file and the lake side by side; `pages`: the pages through AppTest too; `writers`:
    commits per second with two writer processes too (itscm/bench_writers.py)."""
    from itscm import maintenance
    from itscm.backup import migrate_store
    from itscm.demo import build_demo

    as_of = dt.date.today()
    figures: dict = {"backend": "ducklake", "services": services, "incidents": incidents,
                     "load_average": [round(load, 1) for load in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="itscm-bench-lake-") as folder_name:
        folder = Path(folder_name)
        path = str(folder / "bench.duckdb")
        say(f"generating {services:,} services and {incidents:,} incidents in a store file")
        started = time.perf_counter()
        with Store(path) as store:
            build_demo(store, services=services, incidents=incidents, as_of=as_of)
            store.cursor().execute("CHECKPOINT")
        figures["generate_s"] = round(time.perf_counter() - started, 2)
        with lake_target(folder, catalog) as target:
            say("moving it to DuckLake (migrate-store), then maintain")
            started = time.perf_counter()
            migrate_store(path, target)
            figures["migrate_s"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            with Store(target) as lake:
                done = maintenance.maintain(lake, retention_days=0)
            figures["maintain_s"] = round(time.perf_counter() - started, 2)
            figures["lake_data_files"] = done["data_files_after"]
            stores = {"file": open_store(path), "lake": open_store(target)}
            try:
                say("timing the floor and every measure, file and lake in turn")
                figures["floor_ms"] = side_by_side(stores, lambda store: store.scalar(FLOOR_SQL), runs)
                figures["measures_ms"] = lake_measure_timings(stores, as_of, runs)
                if pages:
                    say("timing the pages through AppTest, file then lake")
                    figures["pages_ms"] = lake_page_timings({"file": path, "lake": target}, as_of)
            finally:
                for store in stores.values():
                    store.close()
            if writers:
                figures.update(writer_timings(target, say))
    figures["load_average_after"] = [round(load, 1) for load in os.getloadavg()]
    return figures


def format_lake_table(figures: dict) -> str:
    lines = [f"Benchmark, file against DuckLake: {figures['services']:,} services, {figures['incidents']:,} incidents",
             f"  load average {figures['load_average']} before, {figures['load_average_after']} after "
             "(2 cores: wall times above 2 include waiting for a core)", "",
             f"  generate_s {figures['generate_s']}   migrate_s {figures['migrate_s']}   maintain_s "
             f"{figures['maintain_s']}   data files in the lake {figures['lake_data_files']}", "",
             "  median of warm runs, ms            file wall  lake wall   ratio    file CPU   lake CPU   ratio"]
    lines.append(_row("floor: one scan of incidents", figures["floor_ms"]))
    for name, scopes in figures["measures_ms"].items():
        for scope, timing in scopes.items():
            lines.append(_row(f"{name} ({scope})", timing))
    if "pages_ms" in figures:
        lines += ["", "  page (AppTest, ms)       file cold  lake cold  file warm  lake warm   ratio  "
                      "file CPU   lake CPU   ratio"]
        for page, timing in figures["pages_ms"].items():
            file, lake = timing["file"], timing["lake"]
            lines.append(f"    {page:<22}{file['cold']:>9}{lake['cold']:>11}{file['warm']:>11}{lake['warm']:>11}"
                         f"{timing['ratio_warm']:>8}{file['warm_cpu']:>11}{lake['warm_cpu']:>11}"
                         f"{timing['ratio_warm_cpu']!s:>8}")
    if "writers" in figures:
        writers = figures["writers"]
        lines += ["", f"  commits per second on the lake: one writer process alone (floor) "
                      f"{writers['floor_one_writer']['commits_per_s']}, {writers['together']['writers']} at once "
                      f"{writers['together']['commits_per_s']} ({writers['ratio_to_floor']}x the floor)"]
    return "\n".join(lines)


def _row(label: str, timing: dict) -> str:
    file, lake = timing["file"], timing["lake"]
    return (f"    {label:<32}{file['wall']:>10}{lake['wall']:>11}{timing['ratio_wall']!s:>8}"
            f"{file['cpu']:>12}{lake['cpu']:>11}{timing['ratio_cpu']!s:>8}")
