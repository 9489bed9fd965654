"""`python -m itscm scenario` and `python -m itscm checks` (docs/DESIGN.md §14.6)."""

from __future__ import annotations

import argparse
import json
import math

from itscm.filters import Filters
from itscm.measures.consistency import consistency_checks
from itscm.resilience.graph import graph_of
from itscm.resilience.scenario import UnknownFailure, parse_failure, resolve_failures, run_scenario
from itscm.store import Store

# The keys of `scenario --json`, and of each of its services, in this order.
SCENARIO_KEYS = ("failed", "hours", "services_disrupted", "critical_disrupted", "past_rto", "past_mtpd", "cost",
                 "unpriced", "services")
SERVICE_KEYS = ("id", "name", "unit", "tier", "rto_minutes", "mtpd_minutes", "hours_past_rto", "hours_past_mtpd",
                "cost")


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"hours must be above zero: {text!r}")
    return value


def add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail", action="append", required=True, metavar="KIND:NAME",
                        help="a failed node: service, supplier, asset or unit (all its live services), by id "
                             "or name (repeatable)")
    parser.add_argument("--hours", type=_hours, help="how long every reached service is down (default: each "
                                                     "failed node's own RTO or contracted recovery time; an "
                                                     "asset has none, so give --hours)")
    parser.add_argument("--json", action="store_true", help="one JSON object")


def add_checks_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object")


def _plain(value):
    """None for a missing number, a Python number otherwise (JSON has no NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value


def scenario_json(store: Store, specs: list[str], hours: float | None) -> dict:
    try:
        failures = [parse_failure(spec) for spec in specs]
        graph = graph_of(store)
        result = run_scenario(graph, resolve_failures(store, graph, failures), hours)
    except UnknownFailure as error:
        raise ValueError(str(error)) from None
    summary = result.summary
    services = [
        {"id": row.service_id, "name": row.name, "unit": _plain(row.unit), "tier": _plain(row.tier),
         "rto_minutes": _plain(row.rto_minutes), "mtpd_minutes": _plain(row.mtpd_minutes),
         "hours_past_rto": _plain(row.hours_past_rto), "hours_past_mtpd": _plain(row.hours_past_mtpd),
         "cost": _plain(row.cost)}
        for row in result.services.itertuples(index=False)]
    return {"failed": [f"{kind}:{name}" for kind, name in failures], "hours": hours,
            "services_disrupted": summary["services_disrupted"], "critical_disrupted": summary["critical_disrupted"],
            "past_rto": summary["past_rto"], "past_mtpd": summary["past_mtpd"], "cost": summary["cost"],
            "unpriced": summary["unpriced"], "services": services}


def _number(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def run_scenario_command(args: argparse.Namespace, store: Store) -> int:
    figures = scenario_json(store, args.fail, args.hours)
    if args.json:
        print(json.dumps(figures))
        return 0
    currency = store.currency()
    duration = f"{args.hours:g} h" if args.hours else "each failed node's own recovery time"
    print(f"Scenario: {', '.join(figures['failed'])} down for {duration}")
    if not args.hours and any(spec.startswith("asset:") for spec in figures["failed"]):
        print("  (an asset has no recovery time of its own: the services only it reaches count with --hours)")
    print(f"  services disrupted   {figures['services_disrupted']:>10,}  (critical {figures['critical_disrupted']:,})")
    print(f"  past their RTO       {figures['past_rto']:>10,}")
    print(f"  past their MTPD      {figures['past_mtpd']:>10,}")
    print(f"  cost                 {figures['cost']:>10,.0f} {currency}  "
          f"({figures['unpriced']:,} disrupted services without a cost per hour)")
    if figures["services"]:
        print(f"\n  {'service':<36}{'tier':>5}{'h past RTO':>12}{'h past MTPD':>13}{'cost':>14}")
        for service in figures["services"][:25]:
            print(f"  {service['name'][:35]:<36}{_number(service['tier'], 0):>5}"
                  f"{_number(service['hours_past_rto']):>12}{_number(service['hours_past_mtpd']):>13}"
                  f"{_number(service['cost'], 0):>14}")
        if len(figures["services"]) > 25:
            print(f"  ... and {len(figures['services']) - 25:,} more (--json lists them all)")
    return 0


def run_checks_command(args: argparse.Namespace, store: Store) -> int:
    results = consistency_checks(store, Filters())
    if args.json:
        print(json.dumps({
            "failing": sum(1 for r in results if r.count),
            "checks": [{"key": r.check.key, "check": r.check.title, "count": r.count} for r in results]}))
        return 0
    for result in results:
        print(f"  {result.count:>6,}  {result.check.title}")
    print(f"{sum(1 for r in results if r.count)} of {len(results)} checks fail.")
    return 0
