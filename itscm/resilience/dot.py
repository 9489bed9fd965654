"""A node's dependency chain as Graphviz DOT text, for `st.graphviz_chart` (docs/DESIGN.md §14.2.1).

Built in code from the graph; every name is escaped, so a name can never end a label or add
DOT statements. Node ids are positions in the graph (`n12`), never names."""

from __future__ import annotations

from itscm.resilience.analysis import chain_of, node_state
from itscm.resilience.graph import Graph, graph_of
from itscm.store import Store

# state -> fill colour; also the legend under the chart
STATE_COLOURS = {
    "chosen": "#9ecae1",
    "retired": "#d9d9d9",
    "no RTO": "#fcbba1",
    "RTO shorter than its chain": "#fdd49e",
    "aligned": "#c7e9c0",
    "supplier": "#dadaeb",
    "asset": "#fff7bc",
    "retired asset": "#d9d9d9",
}


def dot_text(text: object) -> str:
    """`text` as the inside of a double-quoted DOT string: backslashes, quotes and line breaks
    escaped, so the string ends where the code ends it."""
    return (str(text).replace("\\", "\\\\").replace('"', '\\"')
            .replace("\r", " ").replace("\n", " "))


def _minutes(value: float | None) -> str:
    if value is None:
        return "no RTO"
    minutes = int(value)
    return f"{minutes // 60} h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes} min"


# Nodes each way the chart draws at most (the chosen node included); the chain's table lists more.
CHART_LIMIT = 60


def chain_dot(graph: Graph, node: int, limit: int = CHART_LIMIT, steps: int | None = None) -> str:
    """The chain of `node` upstream and downstream (at most `limit` nodes and `steps` steps each
    way), an arrow from each service or asset to what it depends on (runs on, is supplied by),
    dashed when it has a working alternative."""
    nodes, edges = chain_of(graph, node, limit, steps)
    effective = graph.effective_recovery()
    lines = ['digraph chain {', '  rankdir=LR;', '  node [style="filled,rounded", shape=box, fontname="Helvetica", '
             'fontsize=10];', '  edge [color="#636363"];']
    for n in nodes:
        state = node_state(graph, n, node, effective)
        kind = "supplier" if graph.kind[n] == "supplier" else f"tier {graph.service[n]['tier'] or '-'}" \
            if graph.service[n] else graph.kind[n]
        if graph.kind[n] == "asset":   # an asset has no recovery time of its own
            label = f"{graph.name[n]}\\nasset{' · retired' if n in graph.retired_assets else ''}"
        else:
            recovery = "recovers in" if graph.kind[n] == "supplier" else "RTO"
            label = f"{graph.name[n]}\\n{kind} · {recovery} {_minutes(graph.recovery_minutes[n])}"
        shape = {"supplier": ", shape=component", "asset": ", shape=box3d"}.get(graph.kind[n], "")
        pen = ", penwidth=2.5" if n == node else ""
        # The label is escaped except for the \n the code adds between its two lines.
        escaped = "\\n".join(dot_text(part) for part in label.split("\\n"))
        lines.append(f'  n{n} [label="{escaped}", fillcolor="{STATE_COLOURS[state]}"{shape}{pen}];')
    for dependent, dependency, _source, alternative in edges:
        style = ' [style=dashed, label="alternative", fontsize=8]' if alternative else ""
        lines.append(f"  n{dependent} -> n{dependency}{style};")
    lines.append("}")
    return "\n".join(lines)


def service_chain_dot(store: Store, service_id: str, steps: int | None = None, limit: int = CHART_LIMIT) -> str:
    """The DOT text of a service's chain in the store's current graph (cached by the page)."""
    graph = graph_of(store)
    return chain_dot(graph, graph.index[("service", service_id)], limit, steps)
