"""The failure graph: services, suppliers and assets as nodes, "depends on", "relies on", "runs on"
and "supplied by" as edges (docs/DESIGN.md §14.1).

A failure spreads from a node to everything that depends on it, transitively, except through an
edge marked as having a working alternative; cycles are walked once. The graph is loaded from a
declared list of node kinds and edge sources, so a new kind of node is one more entry in each
list, not new code.

Speed (docs/PERFORMANCE.md): the reach of every node at once is what the single-failure tables
need. A breadth-first walk per node is quadratic in Python, so the graph is condensed into its
strongly connected components (a cycle fails as one), and, in reverse topological order, a
component's reach is its own nodes OR the reach of the components it spreads to, each reach a
Python int used as a bitset. Bits are laid out so that the figures are masks: the live critical
services first, by MTPD ascending (so "critical past MTPD at D hours" is a prefix), then the
other live services, then everything else.
"""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass, field

import numpy as np

from itscm.store import Store


@dataclass(frozen=True)
class NodeKind:
    """One kind of node: `sql` returns key, name, recovery_minutes (the time it takes to come
    back after a failure: a service's RTO, a supplier's contracted recovery time; an asset has
    none)."""
    kind: str
    sql: str


@dataclass(frozen=True)
class EdgeSource:
    """One kind of edge: `sql` returns dependent (a key of `dependent_kind`), dependency (a key
    of `dependency_kind`) and has_alternative. A failure of the dependency spreads to the
    dependent unless has_alternative."""
    name: str
    dependent_kind: str
    dependency_kind: str
    sql: str


NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind("service", "SELECT service_id AS key, name, rto_minutes AS recovery_minutes FROM services"),
    NodeKind("supplier", "SELECT supplier_id AS key, name, contracted_recovery_minutes AS recovery_minutes "
                         "FROM suppliers"),
    # Retired assets stay: a service still linked to one runs on it as far as the records say, so
    # its failure spreads (and the link is a finding).
    NodeKind("asset", "SELECT asset_id AS key, name, NULL AS recovery_minutes FROM assets"),
)

EDGE_SOURCES: tuple[EdgeSource, ...] = (
    EdgeSource("depends on", "service", "service",
               "SELECT service_id AS dependent, depends_on_id AS dependency, "
               "coalesce(has_alternative, FALSE) AS has_alternative FROM dependencies"),
    EdgeSource("relies on", "service", "supplier",
               "SELECT service_id AS dependent, supplier_id AS dependency, FALSE AS has_alternative "
               "FROM service_suppliers"),
    # Every relation (runs on, hosted on, depends on): whatever the word, the service stops with it.
    EdgeSource("runs on", "service", "asset",
               "SELECT DISTINCT service_id AS dependent, asset_id AS dependency, FALSE AS has_alternative "
               "FROM service_assets"),
    EdgeSource("supplied by", "asset", "supplier",
               "SELECT asset_id AS dependent, supplier_id AS dependency, FALSE AS has_alternative "
               "FROM assets WHERE supplier_id IS NOT NULL"),
)

# What the figures need of each service; `critical` from the policy of its tier.
SERVICE_FACTS_SQL = """
SELECT s.service_id, s.name, s.unit_id, u.name AS unit, s.tier, s.owner, s.lifecycle,
       s.rto_minutes, s.mtpd_minutes, s.impact_cost_per_hour,
       coalesce(p.is_critical, FALSE) AS critical
FROM services s
LEFT JOIN business_units u ON u.unit_id = s.unit_id
LEFT JOIN policy p ON p.tier = s.tier
"""

# Retired assets, drawn apart (a service still linked to one is a finding).
RETIRED_ASSETS_SQL = "SELECT asset_id FROM assets WHERE lifecycle = 'retired'"

_NO_TIME = float("inf")   # a service without an MTPD is never past it


@dataclass
class Graph:
    """Nodes by index (`kind`, `key`, `name`, `recovery_minutes`); `spreads_to[i]` the nodes a
    failure of i spreads to directly; `service` the facts of each service node (None for others)."""
    kind: list[str]
    key: list[str]
    name: list[str]
    recovery_minutes: list[float | None]
    spreads_to: list[list[int]]
    depends_on: list[list[int]]
    service: list[dict | None]
    edges: list[tuple[int, int, str, bool]]      # dependent, dependency, source name, has_alternative
    retired_assets: set[int] = field(default_factory=set)
    index: dict[tuple[str, str], int] = field(init=False)
    _reach: list[int] | None = field(default=None, init=False, repr=False)
    _effective: list | None = field(default=None, init=False, repr=False)
    _edges_by_node: tuple | None = field(default=None, init=False, repr=False)
    _edge_ids: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {(kind, key): i for i, (kind, key) in enumerate(zip(self.kind, self.key, strict=True))}
        self._layout_bits()
        self._components = strongly_connected_components(self.spreads_to)

    def __len__(self) -> int:
        return len(self.kind)

    # -- the bit layout ----------------------------------------------------------------------

    def _layout_bits(self) -> None:
        live = [i for i, facts in enumerate(self.service) if facts and facts["lifecycle"] == "live"]
        critical = sorted((i for i in live if self.service[i]["critical"]), key=self._mtpd_or_never)
        others = [i for i in live if not self.service[i]["critical"]]
        rest = [i for i in range(len(self.kind)) if not (self.service[i] and self.service[i]["lifecycle"] == "live")]
        order = critical + others + rest
        self.node_at_bit = order                                # bit -> node
        self.bit = [0] * len(order)                             # node -> bit
        for position, node in enumerate(order):
            self.bit[node] = position
        self.critical_count = len(critical)
        self.live_count = len(live)
        self.critical_mtpd_minutes = [self._mtpd_or_never(i) for i in critical]
        self.critical_mask = (1 << self.critical_count) - 1
        self.live_mask = (1 << self.live_count) - 1
        cost = [self.service[node]["impact_cost_per_hour"] for node in order[: self.live_count]]
        self.cost_per_hour = np.array([0.0 if c is None else float(c) for c in cost], dtype=np.float64)
        self.unpriced_mask = self.mask(node for node in order[: self.live_count]
                                       if self.service[node]["impact_cost_per_hour"] is None)

    def _mtpd_or_never(self, node: int) -> float:
        mtpd = self.service[node]["mtpd_minutes"]
        return _NO_TIME if mtpd is None else float(mtpd)

    def mask(self, nodes) -> int:
        """A bitset of the given nodes."""
        bits = 0
        for node in nodes:
            bits |= 1 << self.bit[node]
        return bits

    def nodes_in(self, bits: int) -> list[int]:
        """The nodes of a bitset, in bit order."""
        nodes = []
        while bits:
            low = bits & -bits
            nodes.append(self.node_at_bit[low.bit_length() - 1])
            bits ^= low
        return nodes

    def scope_mask(self, service_ids: set[str] | None) -> int:
        """The live services among `service_ids` (all live services when None)."""
        if service_ids is None:
            return self.live_mask
        return self.mask(i for i in (self.index.get(("service", sid)) for sid in service_ids)
                         if i is not None) & self.live_mask

    def critical_past_mtpd_mask(self, hours: float) -> int:
        """The live critical services whose MTPD is shorter than `hours` (past it after that long)."""
        return (1 << bisect.bisect_left(self.critical_mtpd_minutes, hours * 60.0)) - 1

    def node_label(self, node: int) -> str:
        return f"{self.kind[node]}:{self.name[node]}"

    def all_edges_by_node(self) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """Every edge, alternatives included, as {dependent: [dependencies]} and {dependency:
        [dependents]}: for drawing a chain. Built once per graph."""
        if self._edges_by_node is None:
            upstream: dict[int, list[int]] = {}
            downstream: dict[int, list[int]] = {}
            edge_ids: dict[int, list[int]] = {}
            for i, (dependent, dependency, _source, _alternative) in enumerate(self.edges):
                upstream.setdefault(dependent, []).append(dependency)
                downstream.setdefault(dependency, []).append(dependent)
                edge_ids.setdefault(dependent, []).append(i)
            self._edges_by_node = (upstream, downstream)
            self._edge_ids = edge_ids
        return self._edges_by_node

    def edge_ids_of(self, dependent: int) -> list[int]:
        """The positions in `edges` of the edges from `dependent` to what it depends on."""
        self.all_edges_by_node()
        return self._edge_ids.get(dependent, [])

    # -- reach -------------------------------------------------------------------------------

    def reach_of_every_node(self) -> list[int]:
        """Per node, the bitset of the nodes its failure alone reaches (itself included).
        Computed once per graph."""
        if self._reach is None:
            component_of, components = self._components
            reach_of_component = [0] * len(components)
            # Tarjan emits a component after every component it reaches: children first.
            for c, members in enumerate(components):
                bits = self.mask(members)
                for member in members:
                    for target in self.spreads_to[member]:
                        child = component_of[target]
                        if child != c:
                            bits |= reach_of_component[child]
                reach_of_component[c] = bits
            self._reach = [reach_of_component[component_of[node]] for node in range(len(self.kind))]
        return self._reach

    def reach(self, failed: list[int]) -> int:
        """The bitset of the nodes a failure of all of `failed` reaches (a walk from them)."""
        return self.mask(self.walk(failed))

    def walk(self, failed: list[int], seen: set[int] | None = None) -> list[int]:
        """The nodes reached from `failed` that are not in `seen` (which it extends), in walk order."""
        seen = set() if seen is None else seen
        reached = []
        frontier = [node for node in failed if node not in seen]
        seen.update(frontier)
        while frontier:
            reached.extend(frontier)
            following = []
            for node in frontier:
                for target in self.spreads_to[node]:
                    if target not in seen:
                        seen.add(target)
                        following.append(target)
            frontier = following
        return reached

    def weighted_sums(self, reaches: list[int], weights: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Per bitset, the sum of `weights` (one per live-service bit) over its bits, in numpy: a
        table per byte position holds the sum of the weights of each of the 256 byte values, so a
        bitset's sum is one look-up per byte of it (exact, in float64). Equal bitsets (the members
        of one cycle) are summed once."""
        width = len(weights)
        if width == 0 or not reaches:
            return np.zeros(len(reaches))
        nbytes = (width + 7) // 8
        padded = np.zeros(nbytes * 8)
        padded[:width] = weights
        values = np.arange(256, dtype=np.uint8)
        bits_of_value = np.unpackbits(values[:, None], axis=1, bitorder="little").astype(np.float64)  # 256 x 8
        table = (padded.reshape(nbytes, 8) @ bits_of_value.T).ravel()     # [byte position * 256 + byte value]
        offsets = np.arange(nbytes, dtype=np.int64) * 256
        low_bits = (1 << width) - 1
        distinct = list(dict.fromkeys(bits & low_bits for bits in reaches))
        sums_of_distinct = np.empty(len(distinct), dtype=np.float64)
        for start in range(0, len(distinct), chunk):
            block = b"".join(bits.to_bytes(nbytes, "little") for bits in distinct[start:start + chunk])
            byte_matrix = np.frombuffer(block, dtype=np.uint8).reshape(-1, nbytes)
            sums_of_distinct[start:start + chunk] = table[byte_matrix + offsets].sum(axis=1)
        position = {bits: i for i, bits in enumerate(distinct)}
        return sums_of_distinct[[position[bits & low_bits] for bits in reaches]]

    def smallest_reached(self, values: list[float | None]) -> list[tuple[float | None, int | None]]:
        """Per node, the smallest of `values` (one per node, None for none) over the nodes its
        failure reaches, and the node holding it: a dynamic programme over the components."""
        component_of, components = self._components
        best: list[tuple[float, int | None]] = [(float("inf"), None)] * len(components)
        for c, members in enumerate(components):   # children first
            smallest, holder = float("inf"), None
            for member in members:
                value = values[member]
                if value is not None and value < smallest:
                    smallest, holder = value, member
                for target in self.spreads_to[member]:
                    child = component_of[target]
                    if child != c and best[child][0] < smallest:
                        smallest, holder = best[child]
            best[c] = (smallest, holder)
        return [(None, None) if best[component_of[n]][1] is None else best[component_of[n]]
                for n in range(len(self.kind))]

    # -- effective RTO -----------------------------------------------------------------------

    def effective_recovery(self) -> list[tuple[float | None, int | None]]:
        """Per node: the longest recovery time among itself and every node whose failure reaches
        it (its dependency chain), and the node setting it when that is longer than its own.
        Computed once per graph."""
        if self._effective is None:
            self._effective = self._effective_recovery()
        return self._effective

    def _effective_recovery(self) -> list[tuple[float | None, int | None]]:
        component_of, components = self._components
        best: list[tuple[float, int | None]] = [(-1.0, None)] * len(components)
        # Reverse emission order: every component that reaches this one comes before it.
        for c in range(len(components) - 1, -1, -1):
            longest, setter = best[c]
            for member in components[c]:
                minutes = self.recovery_minutes[member]
                if minutes is not None and minutes > longest:
                    longest, setter = minutes, member
            best[c] = (longest, setter)
            for member in components[c]:
                for target in self.spreads_to[member]:
                    child = component_of[target]
                    if child != c and longest > best[child][0]:
                        best[child] = (longest, setter)
        result = []
        for node in range(len(self.kind)):
            longest, setter = best[component_of[node]]
            own = self.recovery_minutes[node]
            if longest < 0:
                result.append((None, None))
            elif own is not None and longest <= own:
                result.append((own, None))
            else:
                result.append((longest, setter))
        return result


def strongly_connected_components(successors: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Tarjan's algorithm without recursion: (component of each node, components), a component
    listed after every component reachable from it."""
    count = len(successors)
    index_of = [-1] * count
    lowlink = [0] * count
    on_stack = [False] * count
    component_of = [-1] * count
    components: list[list[int]] = []
    stack: list[int] = []
    next_index = 0
    for root in range(count):
        if index_of[root] != -1:
            continue
        work = [(root, 0)]
        index_of[root] = lowlink[root] = next_index
        next_index += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            node, position = work[-1]
            children = successors[node]
            if position < len(children):
                work[-1] = (node, position + 1)
                child = children[position]
                if index_of[child] == -1:
                    index_of[child] = lowlink[child] = next_index
                    next_index += 1
                    stack.append(child)
                    on_stack[child] = True
                    work.append((child, 0))
                elif on_stack[child] and index_of[child] < lowlink[node]:
                    lowlink[node] = index_of[child]
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                if lowlink[node] < lowlink[parent]:
                    lowlink[parent] = lowlink[node]
            if lowlink[node] == index_of[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component_of[member] = len(components)
                    members.append(member)
                    if member == node:
                        break
                components.append(members)
    return component_of, components


def load_graph(store: Store) -> Graph:
    """The graph as the store holds it now, from NODE_KINDS and EDGE_SOURCES."""
    kinds, keys, names, recovery = [], [], [], []
    for node_kind in NODE_KINDS:
        for key, name, minutes in store.rows(node_kind.sql):
            kinds.append(node_kind.kind)
            keys.append(key)
            names.append(name)
            recovery.append(None if minutes is None else float(minutes))
    index = {(kind, key): i for i, (kind, key) in enumerate(zip(kinds, keys, strict=True))}
    facts: list[dict | None] = [None] * len(kinds)
    cursor = store.cursor().execute(SERVICE_FACTS_SQL)
    columns = [d[0] for d in cursor.description]
    for row in cursor.fetchall():
        node = index.get(("service", row[0]))
        if node is not None:
            facts[node] = dict(zip(columns, row, strict=True))
    spreads_to: list[list[int]] = [[] for _ in kinds]
    depends_on: list[list[int]] = [[] for _ in kinds]
    edges = []
    for source in EDGE_SOURCES:
        for dependent_key, dependency_key, has_alternative in store.rows(source.sql):
            dependent = index.get((source.dependent_kind, dependent_key))
            dependency = index.get((source.dependency_kind, dependency_key))
            if dependent is None or dependency is None or dependent == dependency:
                continue   # an edge to a node not in the store, or to itself, spreads nothing new
            edges.append((dependent, dependency, source.name, bool(has_alternative)))
            if not has_alternative:
                spreads_to[dependency].append(dependent)
                depends_on[dependent].append(dependency)
    retired_assets = {index[("asset", key)] for (key,) in store.rows(RETIRED_ASSETS_SQL) if ("asset", key) in index}
    return Graph(kinds, keys, names, recovery, spreads_to, depends_on, facts, edges, retired_assets)


_graphs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def graph_of(store: Store) -> Graph:
    """The store's graph, loaded once per data version (every write changes it)."""
    version = store.data_version()
    cached = _graphs.get(store)
    if cached is None or cached[0] != version:
        cached = (version, load_graph(store))
        _graphs[store] = cached
    return cached[1]


def forget_graphs() -> None:
    """Drop every loaded graph: the next `graph_of` loads it again (a cold page in the bench)."""
    _graphs.clear()
