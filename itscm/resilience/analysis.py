"""The figures of the Resilience page over the failure graph (docs/DESIGN.md §14): effective RTO
and misalignment, single points of failure, the worst-single-failure table and supplier
concentration. Each takes the store and the filter; the graph is the whole store's (a failure
spreads across units), the figures count the live services the filter keeps."""

from __future__ import annotations

import pandas as pd

from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.resilience.graph import Graph, graph_of
from itscm.resilience.scenario import ScenarioResult, parse_failure, resolve_failures, run_scenario
from itscm.store import Store

DEFAULT_SCENARIO_HOURS = 24.0


def services_in_scope(store: Store, filters: Filters | None) -> set[str] | None:
    """The ids of the services the filter keeps; None when it keeps all of them."""
    if filters is None or (not filters.units and not filters.tiers):
        return None
    return {service_id for (service_id,) in store.rows(
        f"SELECT s.service_id FROM services s WHERE {SERVICE_SCOPE_SQL}", filters.scope_params(store))}


def effective_rto(store: Store) -> pd.DataFrame:
    """Per service: effective_rto_minutes (the longest recovery time on its dependency chain,
    suppliers' contracted recovery times included, itself included), bottleneck (the name of the
    node setting it when longer than its own RTO, else None), bottleneck_kind, rto_misaligned and
    gap_minutes (effective - own; None when aligned)."""
    graph = graph_of(store)
    rows = []
    for node, (longest, setter) in enumerate(graph.effective_recovery()):
        if graph.kind[node] != "service":
            continue
        own = graph.recovery_minutes[node]
        misaligned = setter is not None and own is not None
        rows.append({
            "service_id": graph.key[node],
            "effective_rto_minutes": None if longest is None else int(longest),
            "bottleneck": None if setter is None else graph.name[setter],
            "bottleneck_kind": None if setter is None else graph.kind[setter],
            "rto_misaligned": misaligned,
            "gap_minutes": int(longest - own) if misaligned else None,
        })
    return pd.DataFrame(rows, columns=["service_id", "effective_rto_minutes", "bottleneck", "bottleneck_kind",
                                       "rto_misaligned", "gap_minutes"])


def misalignments(store: Store, filters: Filters) -> pd.DataFrame:
    """Live services in the filter whose effective RTO is longer than their own, largest gap first:
    service_id, service, unit, tier, rto_minutes, effective_rto_minutes, gap_minutes, bottleneck,
    bottleneck_kind."""
    graph = graph_of(store)
    scope = graph.scope_mask(services_in_scope(store, filters))
    frame = effective_rto(store)
    frame = frame[frame["rto_misaligned"]]
    rows = []
    for record in frame.itertuples(index=False):
        node = graph.index[("service", record.service_id)]
        if not (scope >> graph.bit[node]) & 1:
            continue
        facts = graph.service[node]
        rows.append({"service_id": record.service_id, "service": facts["name"], "unit": facts["unit"],
                     "tier": facts["tier"], "rto_minutes": facts["rto_minutes"],
                     "effective_rto_minutes": record.effective_rto_minutes, "gap_minutes": record.gap_minutes,
                     "bottleneck": record.bottleneck, "bottleneck_kind": record.bottleneck_kind})
    columns = ["service_id", "service", "unit", "tier", "rto_minutes", "effective_rto_minutes", "gap_minutes",
               "bottleneck", "bottleneck_kind"]
    return (pd.DataFrame(rows, columns=columns)
            .sort_values(["gap_minutes", "tier", "service"], ascending=[False, True, True], kind="stable")
            .reset_index(drop=True))


SINGLE_FAILURE_COLUMNS = [
    "kind", "key", "name", "recovery_minutes", "services_reached", "critical_reached", "critical_reached_beyond_itself",
    "cost_per_hour_at_risk", "unpriced_reached", "cost_at_own_recovery", "critical_past_mtpd_at_own_recovery",
    "cost_at_chosen_hours", "critical_past_mtpd_at_chosen_hours",
]


def single_failures(graph: Graph, hours: float = DEFAULT_SCENARIO_HOURS, scope: set[str] | None = None) -> pd.DataFrame:
    """The worst-single-failure table: every node (retired services left out) failed alone, for
    D = its own recovery time and for D = `hours`, with what it reaches among the live services in
    `scope`. Costs are D x the cost per hour of the services reached; a node without a recovery
    time has no figures at its own recovery time. Computed from the reach of every node at once."""
    reach = graph.reach_of_every_node()
    scope_bits = graph.scope_mask(scope)
    candidates = [n for n in range(len(graph)) if not (graph.service[n] and graph.service[n]["lifecycle"] != "live")]
    reached = [reach[n] & scope_bits for n in candidates]
    cost_per_hour = graph.weighted_sums(reached, graph.cost_per_hour)
    chosen_mask = graph.critical_past_mtpd_mask(hours)
    rows = []
    for position, node in enumerate(candidates):
        bits = reached[position]
        critical = (bits & graph.critical_mask).bit_count()
        own_bit_critical = graph.bit[node] < graph.critical_count and (scope_bits >> graph.bit[node]) & 1
        minutes = graph.recovery_minutes[node]
        own_hours = None if minutes is None else minutes / 60.0
        rows.append((
            graph.kind[node], graph.key[node], graph.name[node], minutes, bits.bit_count(), critical,
            critical - (1 if own_bit_critical else 0), cost_per_hour[position],
            (bits & graph.unpriced_mask).bit_count(),
            None if own_hours is None else own_hours * cost_per_hour[position],
            None if own_hours is None else (bits & graph.critical_past_mtpd_mask(own_hours)).bit_count(),
            hours * cost_per_hour[position], (bits & chosen_mask).bit_count(),
        ))
    frame = pd.DataFrame(rows, columns=SINGLE_FAILURE_COLUMNS)
    return frame.sort_values(["cost_at_chosen_hours", "critical_past_mtpd_at_chosen_hours", "kind", "name"],
                             ascending=[False, False, True, True], kind="stable").reset_index(drop=True)


# The worst-single-failure table's two rankings (the issue's "by cost and by critical services
# past MTPD"): the columns sorted on, each largest first, then kind and name.
WORST_RANKINGS = {
    "cost": ["cost_at_chosen_hours", "critical_past_mtpd_at_chosen_hours"],
    "critical_past_mtpd": ["critical_past_mtpd_at_chosen_hours", "cost_at_chosen_hours"],
}


def worst_single_failures(store: Store, filters: Filters, hours: float = DEFAULT_SCENARIO_HOURS,
                          rank_by: str = "cost") -> pd.DataFrame:
    """`single_failures` for the filter, ranked by cost at `hours` or by critical services past
    their MTPD at `hours` (WORST_RANKINGS)."""
    frame = single_failures(graph_of(store), hours, services_in_scope(store, filters))
    return frame.sort_values([*WORST_RANKINGS[rank_by], "kind", "name"], ascending=[False, False, True, True],
                             kind="stable").reset_index(drop=True)


def single_points_of_failure(store: Store, filters: Filters) -> pd.DataFrame:
    """Nodes whose failure alone reaches at least one critical service other than themselves (the
    failure does not cross an edge with a working alternative), ranked by those critical services,
    then by the cost per hour at risk."""
    table = single_failures(graph_of(store), DEFAULT_SCENARIO_HOURS, services_in_scope(store, filters))
    table = table[table["critical_reached_beyond_itself"] > 0]
    columns = ["kind", "key", "name", "recovery_minutes", "critical_reached_beyond_itself", "critical_reached",
               "services_reached", "cost_per_hour_at_risk", "unpriced_reached"]
    return (table[columns].sort_values(["critical_reached_beyond_itself", "cost_per_hour_at_risk", "kind", "name"],
                                       ascending=[False, False, True, True], kind="stable")
            .reset_index(drop=True))


SUPPLIER_COLUMNS = ["supplier_id", "supplier", "services_direct", "services_reached", "critical_reached",
                    "share_of_critical_pct", "cost_per_hour_at_risk", "contracted_recovery_minutes",
                    "shortest_rto_minutes", "shortest_rto_service", "recovery_breach", "substitutability",
                    "contract_end"]


def supplier_concentration(store: Store, filters: Filters) -> pd.DataFrame:
    """Per supplier: the live services in the filter relying on it directly and through
    dependencies (its failure's reach), the critical ones and their share of all critical services
    in the filter, the cost per hour at risk, its contracted recovery time against the shortest RTO
    among the services reached (a breach when longer), substitutability and contract end."""
    graph = graph_of(store)
    scope_bits = graph.scope_mask(services_in_scope(store, filters))
    reach = graph.reach_of_every_node()
    suppliers = [n for n in range(len(graph)) if graph.kind[n] == "supplier"]
    reached = [reach[n] & scope_bits for n in suppliers]
    cost = graph.weighted_sums(reached, graph.cost_per_hour)
    all_critical = (scope_bits & graph.critical_mask).bit_count()
    details = {row[0]: row[1:]
               for row in store.rows("SELECT supplier_id, substitutability, contract_end FROM suppliers")}
    # the shortest RTO among the live services in the filter that the supplier's failure reaches
    shortest_rto = graph.smallest_reached([
        facts["rto_minutes"] if facts and (scope_bits >> graph.bit[n]) & 1 else None
        for n, facts in enumerate(graph.service)])
    rows = []
    for position, node in enumerate(suppliers):
        bits = reached[position]
        critical = (bits & graph.critical_mask).bit_count()
        rto, holder = shortest_rto[node]
        shortest = (None, None) if holder is None else (int(rto), graph.name[holder])
        contracted = graph.recovery_minutes[node]
        direct = sum(1 for n in graph.spreads_to[node] if (scope_bits >> graph.bit[n]) & 1)
        substitutability, contract_end = details.get(graph.key[node], (None, None))
        rows.append((
            graph.key[node], graph.name[node], direct, bits.bit_count(), critical,
            round(100.0 * critical / all_critical, 1) if all_critical else None, float(cost[position]),
            contracted, shortest[0], shortest[1],
            bool(contracted is not None and shortest[0] is not None and contracted > shortest[0]),
            substitutability, contract_end,
        ))
    frame = pd.DataFrame(rows, columns=SUPPLIER_COLUMNS)
    return frame.sort_values(["critical_reached", "cost_per_hour_at_risk", "supplier"],
                             ascending=[False, False, True], kind="stable").reset_index(drop=True)


def concentration_flags(store: Store, filters: Filters, threshold_pct: float) -> pd.DataFrame:
    """The suppliers carrying at least `threshold_pct` of the critical services in the filter."""
    table = supplier_concentration(store, filters)
    return table[table["share_of_critical_pct"].fillna(0) >= threshold_pct].reset_index(drop=True)


def chain_steps(graph: Graph, node: int, limit: int = 60,
                steps: int | None = None) -> dict[str, dict[int, int]]:
    """A node's chain, each way: {"upstream": what it depends on, "downstream": what depends on
    it}, each {node: steps from `node`} in the order a breadth-first walk meets them, `node`
    itself at 0. Edges with an alternative are walked too (the chart shows them dashed). At most
    `limit` nodes and `steps` steps each way (None: every step)."""
    upstream_of, downstream_of = graph.all_edges_by_node()

    def walk(step: dict[int, list[int]]) -> dict[int, int]:
        distance, frontier = {node: 0}, [node]
        while frontier and len(distance) < limit and (steps is None or distance[frontier[0]] < steps):
            following = []
            for n in frontier:
                for m in step.get(n, ()):
                    if m not in distance and len(distance) < limit:
                        distance[m] = distance[n] + 1
                        following.append(m)
            frontier = following
        return distance

    return {"upstream": walk(upstream_of), "downstream": walk(downstream_of)}


def chain_of(graph: Graph, node: int, limit: int = 60,
             steps: int | None = None) -> tuple[list[int], list[tuple[int, int, str, bool]]]:
    """A node's chain upstream (what it depends on) and downstream (what depends on it), at most
    `limit` nodes and `steps` steps each way: the nodes and the edges among them."""
    ways = chain_steps(graph, node, limit, steps)
    nodes = list(dict.fromkeys([*ways["upstream"], *ways["downstream"]]))
    members = set(nodes)
    edges = [graph.edges[i] for n in nodes for i in graph.edge_ids_of(n)
             if graph.edges[i][0] == n and graph.edges[i][1] in members]
    return nodes, edges


def node_state(graph: Graph, node: int, chosen: int, effective: list[tuple[float | None, int | None]]) -> str:
    """What the chain's chart colours a node by (dot.STATE_COLOURS) and its table says."""
    if node == chosen:
        return "chosen"
    if graph.kind[node] == "supplier":
        return "supplier"
    if graph.kind[node] == "asset":
        return "retired asset" if node in graph.retired_assets else "asset"
    facts = graph.service[node]
    if facts is None:
        return "aligned"
    if facts["lifecycle"] != "live":
        return "retired"
    if facts["rto_minutes"] is None:
        return "no RTO"
    if effective[node][1] is not None:
        return "RTO shorter than its chain"
    return "aligned"


CHAIN_COLUMNS = ["direction", "steps", "kind", "key", "name", "tier", "recovery_minutes", "state"]
CHAIN_LIMIT = 500   # nodes each way in the chain's table; the chart draws fewer


def service_chain(store: Store, service_id: str, limit: int = CHAIN_LIMIT) -> pd.DataFrame:
    """Everything on a service's chain, one row per node and direction ("depends on": upstream,
    "depended on by": downstream), nearest first: kind, key, name, tier (services), recovery
    minutes (an RTO, a supplier's contracted recovery time; none for an asset) and state (as the
    chart colours it). The service itself is not a row."""
    graph = graph_of(store)
    node = graph.index[("service", service_id)]
    effective = graph.effective_recovery()
    ways = chain_steps(graph, node, limit)
    rows = []
    for way, direction in (("upstream", "depends on"), ("downstream", "depended on by")):
        for n, distance in ways[way].items():
            if n == node:
                continue
            facts = graph.service[n]
            recovery = graph.recovery_minutes[n]
            rows.append((direction, distance, graph.kind[n], graph.key[n], graph.name[n],
                         facts["tier"] if facts else None, None if recovery is None else int(recovery),
                         node_state(graph, n, node, effective)))
    return pd.DataFrame(rows, columns=CHAIN_COLUMNS).astype({"steps": "int64", "tier": "Int64",
                                                            "recovery_minutes": "Int64"})


# Columns: service_id, service, unit, tier, depends_on_id, depends_on, problem.
CRITICAL_DEPENDENCY_GAPS_SQL = f"""
SELECT s.service_id, s.name AS service, u.name AS unit, s.tier, d.service_id AS depends_on_id,
       d.name AS depends_on,
       CASE WHEN d.lifecycle = 'retired' THEN 'retired'
            WHEN d.rto_minutes IS NULL THEN 'no RTO'
            ELSE 'no approved plan' END AS problem
FROM services s
JOIN dependencies e ON e.service_id = s.service_id
JOIN services d ON d.service_id = e.depends_on_id
LEFT JOIN business_units u ON u.unit_id = s.unit_id
WHERE s.lifecycle = 'live' AND s.tier IN (SELECT tier FROM policy WHERE is_critical) AND {SERVICE_SCOPE_SQL}
  AND (d.lifecycle = 'retired' OR d.rto_minutes IS NULL
       OR NOT EXISTS (SELECT 1 FROM plans p WHERE p.service_id = d.service_id AND p.status = 'approved'))
ORDER BY s.tier, s.name, d.name
"""


def critical_dependency_gaps(store: Store, filters: Filters) -> pd.DataFrame:
    """Live critical services in the filter depending on a retired service, on one without an
    RTO, or on one without an approved plan (the first that applies)."""
    return store.df(CRITICAL_DEPENDENCY_GAPS_SQL, filters.scope_params(store))


def scenario(store: Store, filters: Filters, failed: tuple[str, ...], hours: float | None = None) -> ScenarioResult:
    """The scenario of `failed` ("kind:key or name" texts) for `hours` (None: each failed node's
    own recovery time), counting the services in the filter (a ScenarioResult)."""
    graph = graph_of(store)
    nodes = resolve_failures(store, graph, [parse_failure(text) for text in failed])
    return run_scenario(graph, nodes, hours, services_in_scope(store, filters))


CONCENTRATION_KEY = "supplier_concentration_pct"   # store_meta; migration 9 sets 25
DEFAULT_CONCENTRATION_PCT = 25.0


def concentration_threshold_pct(store: Store) -> float:
    value = store.scalar("SELECT value FROM store_meta WHERE key = $key", {"key": CONCENTRATION_KEY})
    return DEFAULT_CONCENTRATION_PCT if value is None else float(value)
