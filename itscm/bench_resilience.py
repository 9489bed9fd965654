"""The resilience analysis at the size of a large organisation (docs/DESIGN.md §14.7).

`python -m itscm bench --resilience`: builds, in SQL, an in-memory store of `services` services
in 12 units and 4 tiers, `dependencies` dependency edges (mostly towards lower-numbered services,
some back, so there are cycles; one in ten with an alternative) and `suppliers` suppliers (each
service relying on one or two; one cloud provider on a quarter of them), `assets` assets (10
sites, 200 shared database clusters, the rest servers; the cloud provider supplies three sites,
other suppliers one server in ten; one in fifty retired) and `asset_links` links (every service
hosted on a site, the rest services running on servers and clusters). Then times, as medians
of warm runs: loading the graph, the reach of every node (from a loaded graph), the
worst-single-failure table, the supplier concentration table and one scenario (a supplier and
a service failed, by default durations and at 24 h). CPU seconds are reported beside the wall
clock: on a shared machine the wall clock includes waiting for a core. Last, through AppTest, cold,
warm and rerun: the Resilience page's views (a scenario link, each other tab), the Consistency
checks page, and beside them an empty page, the floor: AppTest's own fixed cost.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from itscm.filters import Filters
from itscm.resilience import analysis
from itscm.resilience.graph import load_graph
from itscm.resilience.scenario import resolve_failures, run_scenario
from itscm.store import Store

GRAPH_SQL = [
    """INSERT INTO business_units SELECT 'bu-' || i, 'Unit ' || i, NULL, 'Head ' || i FROM range(1, 13) t(i)""",
    """INSERT INTO services (service_id, name, unit_id, tier, owner, rto_minutes, rpo_minutes, mtpd_minutes,
                             impact_cost_per_hour, recovery_strategy, lifecycle)
       SELECT printf('svc-%05d', i), 'Service ' || i, 'bu-' || (i % 12 + 1), i % 4 + 1, 'Owner ' || (i % 97),
              [15, 60, 240, 1440][i % 4 + 1] * (1 + i % 3), [5, 30, 60, 240][i % 4 + 1],
              CASE WHEN i % 11 <> 0 THEN [60, 480, 1440, 5760][i % 4 + 1] END,
              CASE WHEN i % 13 <> 0 THEN (i % 50) * 1000.0 + 500 END, 'hot',
              CASE WHEN i % 40 = 0 THEN 'retired' ELSE 'live' END
       FROM range(1, $services + 1) t(i)""",
    # A layered estate: each service depends on one platform service among the first 100 and on
    # up to three of the 500 services numbered just below it; one edge in 1,000 points anywhere, so
    # some cycles exist; one in ten has an alternative. Platform services reach most of the estate.
    """INSERT INTO dependencies (service_id, depends_on_id, has_alternative)
       SELECT service_id, depends_on_id, bool_or(alternative) FROM (
           SELECT printf('svc-%05d', i) AS service_id,
                  printf('svc-%05d', CASE WHEN hash(i, j, 'back') % 1000 = 0 THEN hash(i, j) % $services + 1
                                          WHEN j = 0 THEN hash(i, j) % least(i - 1, 100) + 1
                                          ELSE i - 1 - hash(i, j) % least(i - 1, 500) END) AS depends_on_id,
                  hash(i, j, 'alt') % 10 = 0 AS alternative
           FROM range(2, $services + 1) t(i), range(0, 4) u(j))
       WHERE service_id <> depends_on_id
       GROUP BY ALL ORDER BY ALL LIMIT $dependencies""",
    """INSERT INTO suppliers SELECT 'sup-' || i, CASE WHEN i = 1 THEN 'Cloud provider' ELSE 'Supplier ' || i END,
       60 * (1 + i % 48), CASE WHEN i % 2 = 0 THEN 'hard' END, DATE '2027-01-01' + i::INTEGER
       FROM range(1, $suppliers + 1) t(i)""",
    """INSERT INTO service_suppliers
       SELECT printf('svc-%05d', i), 'sup-' || CASE WHEN i % 4 = 0 THEN 1 ELSE i % $suppliers + 1 END
       FROM range(1, $services + 1) t(i)
       UNION
       SELECT printf('svc-%05d', i), 'sup-' || ((i * 17) % $suppliers + 1) FROM range(1, $services + 1) t(i)
       WHERE i % 3 = 0""",
    """INSERT INTO assets (asset_id, name, asset_class, supplier_id, lifecycle)
       SELECT printf('ast-%05d', i),
              CASE WHEN i <= 10 THEN 'Site ' || i WHEN i <= 210 THEN 'Database cluster ' || i ELSE 'Server ' || i END,
              CASE WHEN i <= 10 THEN 'site' WHEN i <= 210 THEN 'database' ELSE 'server' END,
              CASE WHEN i <= 3 THEN 'sup-1' WHEN i > 10 AND i % 10 = 0 THEN 'sup-' || (i % $suppliers + 1) END,
              CASE WHEN i % 50 = 0 THEN 'retired' ELSE 'live' END
       FROM range(1, $assets + 1) t(i)""",
    # Every service on one of the 10 sites; then links to servers (mostly one or two services
    # each) and, one in five, to one of the 200 shared database clusters.
    """INSERT INTO service_assets
       SELECT printf('svc-%05d', k % $services + 1),
              printf('ast-%05d', CASE WHEN k <= $services THEN k % least(10, $assets) + 1
                                      WHEN k % 5 = 0 OR $assets <= 210 THEN k % least(200, $assets) + 1
                                      ELSE 211 + hash(k) % ($assets - 210) END),
              CASE WHEN k <= $services THEN 'hosted on' WHEN k % 5 = 0 THEN 'depends on' ELSE 'runs on' END
       FROM range(1, $asset_links + 1) t(k)
       WHERE $assets > 0""",
]


def build_graph_store(services: int, dependencies: int, suppliers: int, path: str | None = None, *,
                      assets: int = 0, asset_links: int = 0) -> Store:
    store = Store(path) if path else Store()
    with store.transaction() as cursor:
        for sql in GRAPH_SQL:
            params = {"services": services, "dependencies": dependencies, "suppliers": suppliers,
                      "assets": assets, "asset_links": asset_links}
            cursor.execute(sql, {name: value for name, value in params.items() if f"${name}" in sql})
    return store


def _median(run: Callable[[], object], runs: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return round(statistics.median(walls) * 1000, 1), round(statistics.median(cpus) * 1000, 1)


# The views timed through AppTest: the scenario link, each other tab of the Resilience page (only
# the open tab's content runs, docs/DESIGN.md §14.2), the Consistency checks page.
SCENARIO_LINK = {"fail_supplier": "Cloud provider", "hours": "24"}
VIEWS = {
    "Resilience, a scenario link": ("Resilience.py", SCENARIO_LINK),
    "Resilience, Dependencies": ("Resilience.py", {"tab": "Dependencies"}),
    "Resilience, Single points": ("Resilience.py", {"tab": "Single points of failure"}),
    "Resilience, Suppliers": ("Resilience.py", {"tab": "Supplier concentration"}),
    "Consistency checks": ("Consistency_checks.py", {}),
}
# AppTest's fixed cost, timed in the same run as the pages: every AppTest scans the installed
# packages for components (importlib.metadata) and parses what the script sent, whatever the page.
FLOOR = "an empty page (the floor)"
EMPTY_PAGE = 'import streamlit as st\n\nst.title("Empty")\n'


def page_timings(store_path: str, runs: int = 3) -> dict[str, dict[str, float]]:
    """Each view through AppTest, ms: cold (empty caches, the graph not loaded), warm (a new
    session on the same URL, as a second visitor: the median of `runs`), and rerun (the same
    session again, as after a widget change: AppTest's component scan is not repeated), wall
    and CPU. The floor is an empty page timed the same way."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from itscm.resilience.graph import forget_graphs

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    os.environ["ITSCM_STORE"] = store_path
    pages = Path(__file__).resolve().parent.parent / "pages"
    with tempfile.TemporaryDirectory(prefix="itscm-bench-empty-page-") as folder:
        empty = Path(folder) / "empty.py"
        empty.write_text(EMPTY_PAGE)
        views = {FLOOR: (empty, {}), **{name: (pages / page, query) for name, (page, query) in VIEWS.items()}}
        timings = {}
        for name, (path, query) in views.items():
            st.cache_data.clear()
            forget_graphs()

            def session(path=path, query=query, name=name) -> AppTest:
                app = AppTest.from_file(str(path), default_timeout=120)
                app.query_params.update(query)
                return rerun(app, name)

            started, cpu = time.perf_counter(), time.process_time()
            app = session()
            cold = round((time.perf_counter() - started) * 1000, 1)
            cold_cpu = round((time.process_time() - cpu) * 1000, 1)
            warm, warm_cpu = _median(session, runs)
            again, again_cpu = _median(lambda app=app, name=name: rerun(app, name), runs)
            timings[name] = {"cold": cold, "warm": warm, "rerun": again,
                             "cold_cpu": cold_cpu, "warm_cpu": warm_cpu, "rerun_cpu": again_cpu}
    return timings


def rerun(app, name: str):
    """`app` run (again); a page that fails, or shows an error instead (a store it cannot open), is
    not timed."""
    app.run()
    if app.exception or app.error:
        raise RuntimeError(f"{name}: {(app.exception or app.error)[0].value}")
    return app


def resilience_timings(services: int = 10_000, dependencies: int = 30_000, suppliers: int = 500,
                       assets: int = 20_000, asset_links: int = 30_000, *,
                       runs: int = 5, say: Callable[[str], None] = lambda step: None) -> dict:
    say(f"generating {services:,} services, {dependencies:,} dependencies, {suppliers:,} suppliers, "
        f"{assets:,} assets, {asset_links:,} asset links")
    folder = tempfile.TemporaryDirectory(prefix="itscm-bench-resilience-")
    path = str(Path(folder.name) / "graph.duckdb")
    store = build_graph_store(services, dependencies, suppliers, path, assets=assets, asset_links=asset_links)
    sizes = {table: int(store.scalar(f"SELECT count(*) FROM {table}"))
             for table in ("services", "dependencies", "suppliers", "service_suppliers", "assets", "service_assets")}
    graph = load_graph(store)
    filters = Filters()
    failed = resolve_failures(store, graph, [("supplier", "Cloud provider"), ("service", "svc-00007")])
    site = resolve_failures(store, graph, [("asset", "Site 4")]) if assets >= 4 else []

    def fresh_reach() -> None:
        graph._reach = None
        graph.reach_of_every_node()

    steps = {
        "load the graph": lambda: load_graph(store),
        "reach of every node": fresh_reach,
        "worst-single-failure table": lambda: analysis.single_failures(graph, 24.0),
        "supplier concentration": lambda: analysis.supplier_concentration(store, filters),
        "scenario, own recovery times": lambda: run_scenario(graph, failed),
        "scenario, 24 h": lambda: run_scenario(graph, failed, hours=24.0),
    }
    if site:
        steps["scenario, a site for 24 h"] = lambda: run_scenario(graph, site, hours=24.0)
    say("timing the resilience analysis")
    timings = {name: _median(step, runs) for name, step in steps.items()}
    reached = run_scenario(graph, failed, hours=24.0).summary["services_disrupted"]
    store.close()
    say("timing the pages")
    pages = page_timings(path)
    folder.cleanup()
    return {"resilience_sizes": sizes, "resilience_scenario_reached": reached, "resilience_pages_ms": pages,
            "resilience_ms": {name: wall for name, (wall, _cpu) in timings.items()},
            "resilience_cpu_ms": {name: cpu for name, (_wall, cpu) in timings.items()}}


def resilience_lines(figures: dict) -> list[str]:
    sizes = ", ".join(f"{n:,} {table}" for table, n in figures["resilience_sizes"].items())
    lines = [f"  resilience analysis ({sizes}; the scenario reaches "
             f"{figures['resilience_scenario_reached']:,} services)",
             "  step (median of warm runs, ms)        wall         CPU"]
    for name, wall in figures["resilience_ms"].items():
        lines.append(f"    {name:<34}{wall:>8}{figures['resilience_cpu_ms'][name]:>12}")
    columns = ("cold", "warm", "rerun", "cold_cpu", "warm_cpu", "rerun_cpu")
    lines += ["", f"  {'view (AppTest, ms)':<32}" + "".join(f"{c.replace('_cpu', ' CPU'):>12}" for c in columns)]
    for name, values in figures["resilience_pages_ms"].items():
        lines.append(f"    {name:<30}" + "".join(f"{values[column]:>12}" for column in columns))
    floor = figures["resilience_pages_ms"][FLOOR]
    lines += ["", "  warm, less the floor (the page's own share, ms)   wall         CPU"]
    for name, values in figures["resilience_pages_ms"].items():
        if name != FLOOR:
            lines.append(f"    {name:<46}{values['warm'] - floor['warm']:>8.1f}"
                         f"{values['warm_cpu'] - floor['warm_cpu']:>12.1f}")
    return lines
