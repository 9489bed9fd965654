"""The failure graph on hand-built organisations (docs/DESIGN.md §14): reach, effective RTO,
scenarios, single points of failure, the worst-single-failure table and supplier concentration,
every expected figure worked out by hand below.

The organisation (dependent -> dependency; * = has a working alternative):

    A -> B -> C          A tier 1, RTO 60,  MTPD 240,  1000/h
    D -> B, D -> C       B tier 2, RTO 120, MTPD 480,   500/h      (a diamond: D reaches C twice)
    E -> F -> E          C tier 3, RTO 480, MTPD 1440,  100/h
    E -> C               D tier 1, RTO 30,  MTPD 120,  2000/h
    G -*> C              E tier 2, RTO 240, MTPD 960,   300/h      (a cycle with F)
    B, G rely on S       F tier 3, RTO 60,  no MTPD,   no cost
                         G tier 1, RTO 60,  MTPD 1440,  800/h
                         S a supplier, contracted recovery 720 min

A failure spreads from a dependency to its dependents, so:
    C reaches C, B, D, E, A, F (not G: its edge has an alternative)
    B reaches B, A, D;  E and F reach each other;  S reaches B, A, D, G
"""

from __future__ import annotations

import random

import pytest

from itscm.filters import Filters
from itscm.resilience import analysis
from itscm.resilience.graph import graph_of, load_graph, strongly_connected_components
from itscm.resilience.scenario import UnknownFailure, parse_failure, resolve_failures, run_scenario
from itscm.store import Store
from tests import backends
from tests.builders import OrgBuilder
from tests.resilience_org import asset, depends, relies_on, runs_on, supplier


def build_org(store: Store) -> None:
    build = OrgBuilder(store)
    unit = build.unit("Operations", unit_id="bu-ops")
    other = build.unit("Branches", unit_id="bu-branch")
    ids = {}
    for name, tier, rto, mtpd, cost, unit_id in [
        ("A", 1, 60, 240, 1000.0, unit), ("B", 2, 120, 480, 500.0, unit), ("C", 3, 480, 1440, 100.0, unit),
        ("D", 1, 30, 120, 2000.0, other), ("E", 2, 240, 960, 300.0, other), ("F", 3, 60, None, None, other),
        ("G", 1, 60, 1440, 800.0, unit),
    ]:
        ids[name] = build.service(unit_id, service_id=f"svc-{name}", name=name, tier=tier, rto_minutes=rto,
                                  mtpd_minutes=mtpd, impact_cost_per_hour=cost)
    for dependent, dependency in ["AB", "BC", "DB", "DC", "EF", "FE", "EC"]:
        depends(store, ids[dependent], ids[dependency])
    depends(store, ids["G"], ids["C"], alternative=True)
    supplier(store, "sup-S", "S", 720, substitutability="hard")
    relies_on(store, ids["B"], "sup-S")
    relies_on(store, ids["G"], "sup-S")


@pytest.fixture(scope="module")
def org():
    store = backends.new_store()
    build_org(store)
    yield store
    store.close()


ALL = Filters()


def reached_names(graph, node_label: tuple[str, str]) -> set[str]:
    node = graph.index[node_label]
    return {graph.name[n] for n in graph.nodes_in(graph.reach_of_every_node()[node])}


def test_a_failure_spreads_to_dependents_transitively_but_not_through_an_alternative(org):
    graph = graph_of(org)
    assert reached_names(graph, ("service", "svc-C")) == {"C", "B", "D", "E", "A", "F"}
    assert reached_names(graph, ("service", "svc-B")) == {"B", "A", "D"}
    assert reached_names(graph, ("service", "svc-A")) == {"A"}
    assert reached_names(graph, ("service", "svc-G")) == {"G"}
    assert reached_names(graph, ("supplier", "sup-S")) == {"S", "B", "A", "D", "G"}


def test_a_cycle_fails_as_one_and_is_walked_once(org):
    graph = graph_of(org)
    assert reached_names(graph, ("service", "svc-E")) == {"E", "F"}
    assert reached_names(graph, ("service", "svc-F")) == {"E", "F"}
    component_of, components = strongly_connected_components([[1], [2], [0], [0, 4], []])
    assert sorted(map(sorted, components)) == [[0, 1, 2], [3], [4]]
    assert component_of[0] == component_of[1] == component_of[2] != component_of[3]


def add_random_graph(store: Store, build: OrgBuilder, rng: random.Random, prefix: str = "") -> None:
    count = rng.randint(1, 40)
    successors = [sorted({rng.randrange(count) for _ in range(rng.randint(0, 3))} - {n}) for n in range(count)]
    ids = [build.service(None, service_id=f"{prefix}r{n}", tier=rng.choice([1, 2, 3, None])) for n in range(count)]
    for dependency, dependents in enumerate(successors):
        for dependent in dependents:
            depends(store, ids[dependent], ids[dependency], alternative=rng.random() < 0.1)


def assert_reach_is_a_walk_from_each_node(store: Store) -> None:
    graph = load_graph(store)
    for node, bits in enumerate(graph.reach_of_every_node()):
        assert bits == graph.reach([node])


@pytest.mark.long
def test_the_reach_of_every_node_equals_a_walk_from_each_on_random_graphs(tmp_path):
    rng = random.Random(7)
    for _ in range(20):   # each graph alone, in memory
        with Store() as store:
            add_random_graph(store, OrgBuilder(store), rng)
            assert_reach_is_a_walk_from_each_node(store)
    if not backends.on_ducklake():
        return
    # On DuckLake, the same twenty side by side read from a lake: built in a file and moved, one
    # transaction, where a lake per graph built a row at a time took minutes.
    rng, path = random.Random(7), tmp_path / "graphs.duckdb"
    with Store(path) as store:
        build = OrgBuilder(store)
        for number in range(20):
            add_random_graph(store, build, rng, prefix=f"g{number}-")
    with Store(backends.moved_here(path)) as store:
        assert_reach_is_a_walk_from_each_node(store)


def test_the_effective_rto_is_the_longest_recovery_on_the_chain_suppliers_included(org):
    table = analysis.effective_rto(org).set_index("service_id")
    expected = {   # effective, set by, gap
        "svc-A": (720, "S", 660), "svc-B": (720, "S", 600), "svc-C": (480, None, None),
        "svc-D": (720, "S", 690), "svc-E": (480, "C", 240), "svc-F": (480, "C", 420), "svc-G": (720, "S", 660),
    }
    for service_id, (effective, bottleneck, gap) in expected.items():
        row = table.loc[service_id]
        assert row["effective_rto_minutes"] == effective, service_id
        assert (row["bottleneck"] if row["rto_misaligned"] else None) == bottleneck, service_id
        assert (None if not row["rto_misaligned"] else row["gap_minutes"]) == gap, service_id


def test_the_misalignment_list_is_by_gap_within_the_filter(org):
    listed = analysis.misalignments(org, ALL)
    assert list(zip(listed["service"], listed["gap_minutes"], strict=True)) == [
        ("D", 690), ("A", 660), ("G", 660), ("B", 600), ("F", 420), ("E", 240)]
    tier_one = analysis.misalignments(org, Filters(tiers=(1,)))
    assert list(tier_one["service"]) == ["D", "A", "G"]


def test_a_scenario_with_a_chosen_duration(org):
    graph = graph_of(org)
    result = run_scenario(graph, resolve_failures(org, graph, [("service", "C")]), hours=10)
    assert result.summary == {
        "services_disrupted": 6, "critical_disrupted": 4,       # A, B, D, E
        "past_rto": 6, "past_mtpd": 3, "critical_past_mtpd": 3,  # A (4h), B (8h), D (2h) have MTPD < 10h
        "cost": 39_000.0,             # 10 h x (1000 + 500 + 100 + 2000 + 300), F unpriced
        "cost_beyond_rto": 34_000.0,  # A 9h x 1000 + B 8h x 500 + C 2h x 100 + D 9.5h x 2000 + E 6h x 300
        "unpriced": 1, "without_rto": 0, "without_mtpd": 1, "without_duration": 0,
    }
    rows = result.services.set_index("name")
    assert rows.loc["D", "hours_past_rto"] == 9.5 and rows.loc["D", "hours_past_mtpd"] == 8.0
    assert rows.loc["D", "cost"] == 20_000.0 and rows.loc["D", "cost_beyond_rto"] == 19_000.0
    assert rows.loc["F", "hours_past_rto"] == 9.0 and pd_isna(rows.loc["F", "cost"])
    assert list(result.services["name"])[:2] == ["D", "A"]        # costliest first


def pd_isna(value) -> bool:
    return value is None or value != value


def test_a_scenario_by_default_lasts_each_failed_nodes_own_recovery_time(org):
    """S (12 h) reaches B, A, D, G; C (8 h) reaches C, E, F and B, A, D again: the longer wins."""
    graph = graph_of(org)
    result = run_scenario(graph, resolve_failures(org, graph, [("supplier", "S"), ("service", "svc-C")]))
    hours = dict(zip(result.services["name"], result.services["hours"], strict=True))
    assert hours == {"A": 12.0, "B": 12.0, "D": 12.0, "G": 12.0, "C": 8.0, "E": 8.0, "F": 8.0}
    # 12 x (1000 + 500 + 2000 + 800) + 8 x (100 + 300)
    assert result.summary["cost"] == 12 * 4300 + 8 * 400
    assert result.failed == ["supplier:S", "service:C"]


def test_a_scenario_counts_only_the_services_in_the_filter(org):
    graph = graph_of(org)
    result = run_scenario(graph, resolve_failures(org, graph, [("service", "C")]), hours=10,
                          scope=analysis.services_in_scope(org, Filters(units=("Branches",))))
    assert set(result.services["name"]) == {"D", "E", "F"}
    assert result.summary["cost"] == 23_000.0


def test_a_unit_fails_with_all_its_live_services_and_unknown_names_are_refused(org):
    graph = graph_of(org)
    failed = resolve_failures(org, graph, [parse_failure("unit:branches")])
    assert sorted(graph.name[n] for n in failed) == ["D", "E", "F"]
    with pytest.raises(UnknownFailure):
        resolve_failures(org, graph, [("supplier", "Nobody")])
    with pytest.raises(UnknownFailure):
        parse_failure("rack:X")
    with pytest.raises(UnknownFailure):
        resolve_failures(org, graph, [parse_failure("asset:X")])


def test_single_points_of_failure_are_ranked_by_critical_services_then_cost_at_risk(org):
    table = analysis.single_points_of_failure(org, ALL)
    assert list(zip(table["name"], table["critical_reached_beyond_itself"], table["cost_per_hour_at_risk"],
                    strict=True)) == [
        ("S", 4, 4300.0),   # B, A, D, G
        ("C", 4, 3900.0),   # B, D, E, A (+ C itself and F, unpriced)
        ("B", 2, 3500.0),   # A, D
        ("F", 1, 300.0),    # E, through the cycle
    ]


def test_the_worst_single_failure_table_at_own_recovery_and_at_a_chosen_duration(org):
    table = analysis.worst_single_failures(org, ALL, hours=10).set_index("name")
    assert list(table.index[:3]) == ["S", "C", "B"]             # by cost at 10 h: 43000, 39000, 35000
    assert table.loc["S", "cost_at_chosen_hours"] == 43_000.0
    assert table.loc["S", "critical_past_mtpd_at_chosen_hours"] == 3          # A, B, D; not G (24 h)
    assert table.loc["S", "cost_at_own_recovery"] == 12 * 4300.0
    assert table.loc["S", "critical_past_mtpd_at_own_recovery"] == 3          # MTPD < 720 min: A, B, D
    assert table.loc["C", "cost_at_own_recovery"] == 8 * 3900.0
    assert table.loc["C", "critical_past_mtpd_at_own_recovery"] == 2   # A (240), D (120); B (480) is not past 8 h
    assert table.loc["C", "unpriced_reached"] == 1
    assert table.loc["F", "services_reached"] == 2


def test_supplier_concentration(org):
    row = analysis.supplier_concentration(org, ALL).iloc[0]
    assert (row["supplier"], row["services_direct"], row["services_reached"], row["critical_reached"]) == ("S", 2, 4, 4)
    assert row["share_of_critical_pct"] == 80.0                       # 4 of A, B, D, E, G
    assert row["cost_per_hour_at_risk"] == 4300.0
    assert (row["shortest_rto_minutes"], row["shortest_rto_service"], row["recovery_breach"]) == (30, "D", True)
    assert row["substitutability"] == "hard"
    tier_one = analysis.supplier_concentration(org, Filters(tiers=(1,))).iloc[0]
    assert (tier_one["critical_reached"], tier_one["share_of_critical_pct"]) == (3, 100.0)   # A, D, G of A, D, G
    flagged = analysis.concentration_flags(org, ALL, threshold_pct=80.0)
    assert list(flagged["supplier"]) == ["S"]
    assert analysis.concentration_flags(org, ALL, threshold_pct=80.1).empty


def test_the_graph_is_reloaded_after_a_write():
    store = backends.new_store()
    build = OrgBuilder(store)
    first = build.service(None, service_id="x1")
    second = build.service(None, service_id="x2")
    assert reached_names(graph_of(store), ("service", "x1")) == {graph_of(store).name[0]}
    depends(store, second, first)
    assert len(reached_names(graph_of(store), ("service", "x1"))) == 2


def test_a_saved_scenario_is_found_again_replaced_by_name_and_in_the_change_history():
    import datetime as dt

    from itscm.access import Actor
    from itscm.administration import change_history
    from itscm.resilience.saved import save_scenario, saved_scenarios

    manager = Actor("cm@example.com", "continuity manager")
    store = backends.new_store()
    save_scenario(manager, store, " Cloud outage ", ["supplier:sup-01", "unit:bu-ops"], 24.0,
                  now=dt.datetime(2026, 6, 1))
    save_scenario(manager, store, "Cloud outage", ["supplier:sup-01"], None, now=dt.datetime(2026, 6, 2))
    saved = saved_scenarios(store)
    assert list(saved["name"]) == ["Cloud outage"]          # trimmed, and replaced, not added
    assert list(saved["failed"]) == [["supplier:sup-01"]] and saved["hours"].isna().all()
    history = change_history(store)
    assert list(history["action"][:2]) == ["save scenario", "save scenario"]
    assert list(history["subject"][:2]) == ["Cloud outage", "Cloud outage"]
    with pytest.raises(ValueError):
        save_scenario(manager, store, "", ["service:x"], None)
    with pytest.raises(ValueError):
        save_scenario(manager, store, "Bad", ["rack:x"], None)
    store.close()


def test_the_chain_is_drawn_with_every_name_escaped_and_alternatives_dashed():
    from itscm.resilience.dot import chain_dot, dot_text

    store = backends.new_store()
    build = OrgBuilder(store)
    evil = build.service(None, name='Evil" ]; n0 -> n0 [label="pwned\\', rto_minutes=60)
    backend = build.service(None, name="Backend\nline two", rto_minutes=600)
    spare = build.service(None, name="Spare", rto_minutes=30)
    depends(store, evil, backend)
    depends(store, evil, spare, alternative=True)
    relies_on(store, backend, supplier(store, "sup-q", 'Quote "Co"', 120))
    graph = graph_of(store)
    dot = chain_dot(graph, graph.index[("service", evil)])
    assert dot_text('a"b\\c\nd') == 'a\\"b\\\\c d'
    assert 'Evil\\" ]; n0 -> n0 [label=\\"pwned\\\\' in dot        # one label, not new statements
    assert "Backend line two" in dot and 'Quote \\"Co\\"' in dot
    node_lines = [line for line in dot.splitlines() if line.strip().split(" ", 1)[-1].startswith("[label=")]
    assert len(node_lines) == 4                                    # three services and the supplier
    evil_node, backend_node, spare_node = (f"n{graph.index[('service', s)]}" for s in (evil, backend, spare))
    assert f"{evil_node} -> {backend_node};" in dot
    assert f'{evil_node} -> {spare_node} [style=dashed, label="alternative", fontsize=8];' in dot
    line_of = {line.split()[0]: line for line in node_lines}
    assert 'fillcolor="#9ecae1"' in line_of[evil_node]       # the chosen service
    assert 'fillcolor="#c7e9c0"' in line_of[spare_node]      # aligned
    assert 'fillcolor="#c7e9c0"' in line_of[backend_node]    # RTO 600, its supplier 120: aligned
    store.close()


# -- assets (docs/DESIGN.md §14.1) ---------------------------------------------------------------
#
# The organisation above, plus (dependent -> dependency):
#     A -> Server 1, G -> Server 1     a server shared by two critical services, no supplier
#     D -> Site X -> T                 D hosted on a site supplied by T (contracted recovery 1440 min)
#     F -> Old box                     a retired asset F is still linked to
# So: Server 1 reaches A, G;  Site X reaches D;  T reaches Site X, D;  Old box reaches F, E.

@pytest.fixture(scope="module")
def asset_org():
    store = backends.new_store()
    build_org(store)
    supplier(store, "sup-T", "T", 1440)
    asset(store, "SRV1", "Server 1")
    asset(store, "SITE-X", "Site X", supplier_id="sup-T")
    asset(store, "OLD", "Old box", lifecycle="retired")
    runs_on(store, "svc-A", "SRV1")
    runs_on(store, "svc-A", "SRV1", "depends on")        # a second relation to the same asset: one edge
    runs_on(store, "svc-G", "SRV1")
    runs_on(store, "svc-D", "SITE-X", "hosted on")
    runs_on(store, "svc-F", "OLD")
    yield store
    store.close()


def test_assets_are_nodes_a_failure_spreads_through(asset_org):
    graph = graph_of(asset_org)
    assert reached_names(graph, ("asset", "SRV1")) == {"Server 1", "A", "G"}
    assert reached_names(graph, ("asset", "SITE-X")) == {"Site X", "D"}
    assert reached_names(graph, ("supplier", "sup-T")) == {"T", "Site X", "D"}
    assert reached_names(graph, ("asset", "OLD")) == {"Old box", "F", "E"}     # retired, still a node
    assert graph.recovery_minutes[graph.index[("asset", "SRV1")]] is None
    runs_on_edges = [e for e in graph.edges if e[2] == "runs on"]
    assert len(runs_on_edges) == 4                                            # A -> Server 1 once
    assert [graph.name[e[0]] for e in graph.edges if e[2] == "supplied by"] == ["Site X"]


def test_a_supplier_behind_an_asset_sets_the_effective_rto(asset_org):
    table = analysis.effective_rto(asset_org).set_index("service_id")
    row = table.loc["svc-D"]
    # D (RTO 30) -> Site X -> T (1440): longer than S (720) through B
    assert (row["effective_rto_minutes"], row["bottleneck"], row["bottleneck_kind"], row["gap_minutes"]) == (
        1440, "T", "supplier", 1410)
    assert table.loc["svc-A", "effective_rto_minutes"] == 720       # Server 1 has no recovery time: S still sets it


def test_single_points_of_failure_include_assets(asset_org):
    table = analysis.single_points_of_failure(asset_org, ALL)
    assert list(zip(table["kind"], table["name"], table["critical_reached_beyond_itself"],
                    table["cost_per_hour_at_risk"], strict=True)) == [
        ("supplier", "S", 4, 4300.0),
        ("service", "C", 4, 3900.0),
        ("service", "B", 2, 3500.0),
        ("asset", "Server 1", 2, 1800.0),   # A 1000 + G 800
        ("asset", "Site X", 1, 2000.0),     # D; ties with T, asset before supplier
        ("supplier", "T", 1, 2000.0),
        ("asset", "Old box", 1, 300.0),     # E through F; ties with F, asset before service
        ("service", "F", 1, 300.0),
    ]


def test_an_asset_in_the_worst_single_failure_table_has_no_figures_at_its_own_recovery_time(asset_org):
    table = analysis.worst_single_failures(asset_org, ALL, hours=10).set_index("name")
    server = table.loc["Server 1"]
    assert server["kind"] == "asset" and server["cost_at_chosen_hours"] == 18_000.0
    assert server["critical_past_mtpd_at_chosen_hours"] == 1     # A (MTPD 4 h); G's is 24 h
    assert pd_isna(server["recovery_minutes"])                   # blank, not 0
    assert pd_isna(server["cost_at_own_recovery"]) and pd_isna(server["critical_past_mtpd_at_own_recovery"])
    assert table.loc["T", "cost_at_own_recovery"] == 24 * 2000.0 and table.loc["T", "services_reached"] == 1
    assert table.loc["Old box", "unpriced_reached"] == 1         # F


def test_a_failed_asset_for_a_chosen_duration(asset_org):
    graph = graph_of(asset_org)
    failed = resolve_failures(asset_org, graph, [parse_failure("asset:server 1")])   # a name, any case
    assert failed == resolve_failures(asset_org, graph, [("asset", "SRV1")])        # or the id
    result = run_scenario(graph, failed, hours=10)
    assert result.failed == ["asset:Server 1"]
    summary = result.summary
    assert (summary["services_disrupted"], summary["critical_disrupted"], summary["past_rto"],
            summary["past_mtpd"]) == (2, 2, 2, 1)
    assert summary["cost"] == 18_000.0                 # 10 h x (1000 + 800)
    assert summary["cost_beyond_rto"] == 16_200.0      # 9 h past RTO 60 min x (1000 + 800)


def test_a_failed_asset_by_default_has_no_duration_unless_another_failed_node_reaches_the_same(asset_org):
    graph = graph_of(asset_org)
    alone = run_scenario(graph, resolve_failures(asset_org, graph, [("asset", "SRV1")]))
    assert (alone.summary["services_disrupted"], alone.summary["without_duration"], alone.summary["cost"]) == (
        2, 2, 0.0)
    # S (12 h) reaches A and G too, so they are down 12 h
    both = run_scenario(graph, resolve_failures(asset_org, graph, [("asset", "SRV1"), ("supplier", "S")]))
    assert dict(zip(both.services["name"], both.services["hours"], strict=True)) == {
        "A": 12.0, "B": 12.0, "D": 12.0, "G": 12.0}
    assert both.summary["without_duration"] == 0
    # T's 24 h reaches D through Site X
    site = run_scenario(graph, resolve_failures(asset_org, graph, [("supplier", "T")]))
    assert site.summary["cost"] == 24 * 2000.0


def test_supplier_concentration_counts_the_services_behind_an_asset(asset_org):
    table = analysis.supplier_concentration(asset_org, ALL).set_index("supplier")
    t = table.loc["T"]
    assert (t["services_direct"], t["services_reached"], t["critical_reached"], t["share_of_critical_pct"]) == (
        0, 1, 1, 20.0)                                   # D only through Site X; 1 of A, B, D, E, G
    assert (t["shortest_rto_minutes"], t["recovery_breach"]) == (30, True)
    assert table.loc["S", "share_of_critical_pct"] == 80.0


def test_the_chain_draws_assets_and_their_suppliers(asset_org):
    from itscm.resilience.dot import STATE_COLOURS, chain_dot

    graph = graph_of(asset_org)
    dot = chain_dot(graph, graph.index[("service", "svc-D")])
    node = {name: f"n{graph.index[key]}" for name, key in [
        ("D", ("service", "svc-D")), ("Site X", ("asset", "SITE-X")), ("T", ("supplier", "sup-T"))]}
    assert f"{node['D']} -> {node['Site X']};" in dot and f"{node['Site X']} -> {node['T']};" in dot
    line_of = {line.split()[0]: line for line in dot.splitlines() if "[label=" in line}
    assert f'fillcolor="{STATE_COLOURS["asset"]}", shape=box3d' in line_of[node["Site X"]]
    assert 'label="Site X\\nasset"' in line_of[node["Site X"]]
    old = chain_dot(graph, graph.index[("service", "svc-F")])
    old_line = next(line for line in old.splitlines() if "Old box" in line)
    assert "asset · retired" in old_line and f'fillcolor="{STATE_COLOURS["retired asset"]}"' in old_line


def test_the_chain_goes_as_many_steps_each_way_as_asked_and_its_table_lists_every_node(asset_org):
    from itscm.resilience.analysis import chain_steps
    from itscm.resilience.dot import chain_dot

    graph = graph_of(asset_org)
    a, b = graph.index[("service", "svc-A")], graph.index[("service", "svc-B")]
    named = {way: {graph.name[n]: d for n, d in nodes.items()} for way, nodes in chain_steps(graph, a).items()}
    assert named == {"upstream": {"A": 0, "B": 1, "Server 1": 1, "C": 2, "S": 2}, "downstream": {"A": 0}}
    named = {way: {graph.name[n]: d for n, d in nodes.items()} for way, nodes in chain_steps(graph, b, steps=1).items()}
    assert named == {"upstream": {"B": 0, "C": 1, "S": 1}, "downstream": {"B": 0, "A": 1, "D": 1}}
    labelled = {line.split('label="')[1].split("\\n")[0] for line in chain_dot(graph, a, steps=1).splitlines()
                if "[label=" in line}
    assert labelled == {"A", "B", "Server 1"}                    # C and S are two steps away
    assert len([line for line in chain_dot(graph, a).splitlines() if "[label=" in line]) == 5

    table = analysis.service_chain(asset_org, "svc-A").sort_values(["steps", "name"])
    assert (table["tier"].dtype, table["recovery_minutes"].dtype) == ("Int64", "Int64")
    table = table.astype(object).where(table.notna(), None)
    assert list(analysis.CHAIN_COLUMNS) == list(table.columns)
    assert [tuple(row) for row in table[["direction", "steps", "kind", "name", "tier", "recovery_minutes",
                                         "state"]].itertuples(index=False)] == [
        ("depends on", 1, "service", "B", 2, 120, "RTO shorter than its chain"),    # B 120 min, S 720
        ("depends on", 1, "asset", "Server 1", None, None, "asset"),
        ("depends on", 2, "service", "C", 3, 480, "aligned"),
        ("depends on", 2, "supplier", "S", None, 720, "supplier"),
    ]
    downstream = analysis.service_chain(asset_org, "svc-C")
    assert set(downstream.loc[downstream["direction"] == "depended on by", "name"]) == {"A", "B", "D", "E", "F", "G"}
    assert dict(zip(downstream["name"], downstream["steps"], strict=True))["G"] == 1   # an alternative, still drawn


def test_an_admin_sets_the_concentration_threshold_and_it_is_in_the_change_history():
    import datetime as dt

    from itscm.access import AccessDenied, Actor
    from itscm.administration import ChangeRefused, change_history, set_concentration_threshold

    admin = Actor("boss@example.com", "admin")
    store = backends.new_store()
    build_org(store)
    assert analysis.concentration_threshold_pct(store) == 25.0                 # migration 9
    assert set_concentration_threshold(admin, store, 85, now=dt.datetime(2026, 6, 1)) == (25.0, 85.0)
    assert analysis.concentration_threshold_pct(store) == 85.0
    assert analysis.concentration_flags(store, ALL, analysis.concentration_threshold_pct(store)).empty  # S: 80 %
    assert set_concentration_threshold(admin, store, 85.0) is None             # no change, nothing logged
    history = change_history(store)
    assert list(history["action"]) == ["set concentration threshold"]
    assert history["detail"].iloc[0] == '{"pct": 25.0} -> {"pct": 85.0}'
    for wrong in (0, -5, 100.5, float("nan"), "many"):
        with pytest.raises(ChangeRefused):
            set_concentration_threshold(admin, store, wrong)
    with pytest.raises(AccessDenied):
        set_concentration_threshold(Actor("cm@example.com", "continuity manager"), store, 50)
    assert analysis.concentration_threshold_pct(store) == 85.0
    store.close()


def test_a_live_asset_is_failed_before_a_retired_one_of_the_same_name():
    store = backends.new_store()
    build = OrgBuilder(store)
    service = build.service(None, service_id="svc-x")
    asset(store, "OLD-1", "Rack 9", lifecycle="retired")
    asset(store, "NEW-1", "Rack 9")
    runs_on(store, service, "NEW-1")
    graph = graph_of(store)
    assert graph.retired_assets == {graph.index[("asset", "OLD-1")]}
    assert resolve_failures(store, graph, [("asset", "rack 9")]) == [graph.index[("asset", "NEW-1")]]
    store.close()
