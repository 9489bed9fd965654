"""Dependency cycles: the strongly connected components of the dependency graph, found by
Tarjan's algorithm (iterative, so a long chain cannot exhaust Python's stack). An import reports
them and keeps them (itscm/workbook/plan.py)."""

from __future__ import annotations


def strongly_connected(edges: list[tuple[str, str]]) -> list[list[str]]:
    """The cycles of a directed graph, as its strongly connected components of more than one
    node (or a node depending on itself), each in a walking order; Tarjan's algorithm, iterative."""
    graph: dict[str, list[str]] = {}
    for source, target in edges:
        graph.setdefault(source, []).append(target)
        graph.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(_walk(sorted(component), graph))
    return found


def _walk(component: list[str], graph: dict[str, list[str]]) -> list[str]:
    """The component's members in an order that follows its edges from its smallest member, as far
    as a simple path goes (enough to show the loop)."""
    members, path = set(component), [component[0]]
    while True:
        following = next((n for n in sorted(graph[path[-1]]) if n in members and n not in path), None)
        if following is None:
            return path + [n for n in component if n not in path]
        path.append(following)
