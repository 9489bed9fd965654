"""What-if scenarios (docs/DESIGN.md §14.3): a set of failed nodes and a duration D.

Every live service the failure reaches is disrupted for D hours: the chosen D, or by default the
recovery time of the failed node that reaches it (its RTO, a supplier's contracted recovery
time; the longest when several failed nodes reach it). An asset has no recovery time of its own,
so a failed asset needs the chosen D: by default the services only it reaches have no duration.
Per service: hours past RTO = max(0, D - RTO), hours past MTPD = max(0, D - MTPD), cost = D x
cost per hour, of which beyond RTO = hours past RTO x cost per hour. Services without a cost per
hour, an RTO, an MTPD (or, by default, reached only by failed nodes without a recovery time) are
counted apart, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from itscm.filters import unit_ids_under
from itscm.resilience.graph import Graph
from itscm.store import Store

KINDS = ("service", "supplier", "asset", "unit")

SERVICE_COLUMNS = ["service_id", "name", "unit", "tier", "critical", "rto_minutes", "mtpd_minutes",
                   "impact_cost_per_hour", "hours", "hours_past_rto", "hours_past_mtpd", "cost", "cost_beyond_rto"]


class UnknownFailure(ValueError):
    """A KIND:NAME that names nothing in the store."""


@dataclass(frozen=True)
class ScenarioResult:
    failed: list[str]                 # kind:name of each failed node
    hours: float | None               # the chosen D, None when each failed node's own recovery time
    summary: dict
    services: pd.DataFrame            # one row per disrupted service, SERVICE_COLUMNS


def parse_failure(text: str) -> tuple[str, str]:
    """'KIND:NAME' -> (kind, name); KIND one of service, supplier, asset, unit."""
    kind, sep, name = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS or not name.strip():
        raise UnknownFailure(f"'{text}': write KIND:NAME with KIND one of {', '.join(KINDS)}")
    return kind, name.strip()


def resolve_failures(store: Store, graph: Graph, failures: list[tuple[str, str]]) -> list[int]:
    """The graph nodes named by (kind, id or name) pairs; a unit stands for its live services and
    those of every unit below it. Names match ignoring case."""
    nodes: list[int] = []
    for kind, name in failures:
        if kind == "unit":
            unit_names = [n for (n,) in store.rows(
                "SELECT name FROM business_units WHERE unit_id = $name OR lower(name) = lower($name)",
                {"name": name})]
            if not unit_names:
                raise UnknownFailure(f"no business unit '{name}'")
            unit_ids = set(unit_ids_under(store, tuple(unit_names)))
            nodes.extend(i for i, facts in enumerate(graph.service)
                         if facts and facts["lifecycle"] == "live" and facts["unit_id"] in unit_ids)
            continue
        node = graph.index.get((kind, name))
        if node is None:
            matches = [i for i, (k, n) in enumerate(zip(graph.kind, graph.name, strict=True))
                       if k == kind and n.lower() == name.lower()]
            # a live service (or asset) before a retired one of the same name
            matches.sort(key=lambda i: i in graph.retired_assets
                         or (graph.service[i] is not None and graph.service[i]["lifecycle"] != "live"))
            if not matches:
                raise UnknownFailure(f"no {kind} '{name}'")
            node = matches[0]
        nodes.append(node)
    return list(dict.fromkeys(nodes))


def run_scenario(graph: Graph, failed: list[int], hours: float | None = None,
                 scope: set[str] | None = None) -> ScenarioResult:
    """The scenario's figures over the live services reached (those of `scope` only, when given:
    the failure spreads through every service, the figures count the ones in scope)."""
    duration_of: dict[int, float | None] = {}
    if hours is not None:
        for node in graph.walk(failed):
            duration_of[node] = float(hours)
    else:
        # Longest recovery first: a node is reached first by the longest failure reaching it.
        seen: set[int] = set()
        by_recovery = sorted(failed, key=lambda n: -1.0 if graph.recovery_minutes[n] is None
                             else graph.recovery_minutes[n], reverse=True)
        for node in by_recovery:
            minutes = graph.recovery_minutes[node]
            for reached in graph.walk([node], seen):
                duration_of[reached] = None if minutes is None else minutes / 60.0
    scope_bits = graph.scope_mask(scope)
    rows = []
    for node, duration in duration_of.items():
        facts = graph.service[node]
        if facts is None or not (scope_bits >> graph.bit[node]) & 1:
            continue
        rto, mtpd, cost_per_hour = facts["rto_minutes"], facts["mtpd_minutes"], facts["impact_cost_per_hour"]
        past_rto = None if duration is None or rto is None else max(0.0, duration - rto / 60.0)
        past_mtpd = None if duration is None or mtpd is None else max(0.0, duration - mtpd / 60.0)
        rows.append({
            "service_id": facts["service_id"], "name": facts["name"], "unit": facts["unit"], "tier": facts["tier"],
            "critical": bool(facts["critical"]), "rto_minutes": rto, "mtpd_minutes": mtpd,
            "impact_cost_per_hour": cost_per_hour, "hours": duration,
            "hours_past_rto": past_rto, "hours_past_mtpd": past_mtpd,
            "cost": None if duration is None or cost_per_hour is None else duration * cost_per_hour,
            "cost_beyond_rto": None if past_rto is None or cost_per_hour is None else past_rto * cost_per_hour,
        })
    services = pd.DataFrame(rows, columns=SERVICE_COLUMNS)
    if len(services):
        services = services.sort_values(["cost", "tier", "name"], ascending=[False, True, True],
                                        na_position="last", kind="stable").reset_index(drop=True)
    summary = {
        "services_disrupted": len(services),
        "critical_disrupted": int(services["critical"].sum()),
        "past_rto": int((services["hours_past_rto"] > 0).sum()),
        "past_mtpd": int((services["hours_past_mtpd"] > 0).sum()),
        "critical_past_mtpd": int(((services["hours_past_mtpd"] > 0) & services["critical"]).sum()),
        "cost": float(services["cost"].sum()),
        "cost_beyond_rto": float(services["cost_beyond_rto"].sum()),
        "unpriced": int(services["impact_cost_per_hour"].isna().sum()),
        "without_rto": int(services["rto_minutes"].isna().sum()),
        "without_mtpd": int(services["mtpd_minutes"].isna().sum()),
        "without_duration": int(services["hours"].isna().sum()),
    }
    return ScenarioResult([graph.node_label(n) for n in failed], hours, summary, services)


def by_unit_and_tier(services: pd.DataFrame) -> pd.DataFrame:
    """A scenario's disrupted services summed by business unit and tier."""
    frame = services.assign(unit=services["unit"].fillna("(no unit)"),
                            past_rto=services["hours_past_rto"] > 0, past_mtpd=services["hours_past_mtpd"] > 0)
    return (frame.groupby(["unit", "tier"], dropna=False)
            .agg(services=("service_id", "count"), critical=("critical", "sum"), past_rto=("past_rto", "sum"),
                 past_mtpd=("past_mtpd", "sum"), cost=("cost", "sum"), cost_beyond_rto=("cost_beyond_rto", "sum"))
            .reset_index().sort_values(["cost", "services"], ascending=False, kind="stable")
            .reset_index(drop=True))
