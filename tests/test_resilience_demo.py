"""The scenario's figures on the demo store against an independent computation over the store's
tables (plain SQL and a plain Python walk, none of the product's graph code), and the `scenario`
and `checks` commands."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import pytest

from itscm.cli import main
from itscm.demo import build_demo
from itscm.store import Store
from tests import backends

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory):
    """The demo on the chosen backend: built in a file and moved (one commit on a lake)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    store = Store(path)
    build_demo(store, services=300, incidents=2_000, as_of=AS_OF)
    store.close()
    return backends.moved_here(path)


def independent_scenario(path, failed_suppliers: list[str], failed_services: list[str], hours: float,
                         failed_assets: list[str] = ()) -> dict:
    """Everything reached from the failed nodes through edges without an alternative (a service
    runs on its assets, an asset is supplied by its supplier), each live service down `hours`: the
    figures of docs/DESIGN.md §14.3, from the tables."""
    with Store(path, read_only=True) as store:
        dependants = defaultdict(list)
        for service_id, depends_on_id, alternative in store.rows(
                "SELECT service_id, depends_on_id, has_alternative FROM dependencies"):
            if not alternative:
                dependants[depends_on_id].append(service_id)
        relying = defaultdict(list)
        for service_id, supplier_id in store.rows("SELECT service_id, supplier_id FROM service_suppliers"):
            relying[supplier_id].append(("service", service_id))
        for asset_id, supplier_id in store.rows("SELECT asset_id, supplier_id FROM assets "
                                                "WHERE supplier_id IS NOT NULL"):
            relying[supplier_id].append(("asset", asset_id))
        running = defaultdict(list)
        for service_id, asset_id in store.rows("SELECT service_id, asset_id FROM service_assets"):
            running[asset_id].append(service_id)
        services = {row[0]: row for row in store.rows(
            "SELECT s.service_id, s.rto_minutes, s.mtpd_minutes, s.impact_cost_per_hour, s.lifecycle, "
            "coalesce(p.is_critical, false) FROM services s LEFT JOIN policy p ON p.tier = s.tier")}
    reached = set(failed_services)
    failed_assets = set(failed_assets)
    for supplier_id in failed_suppliers:
        reached.update(key for kind, key in relying[supplier_id] if kind == "service")
        failed_assets.update(key for kind, key in relying[supplier_id] if kind == "asset")
    for asset_id in failed_assets:
        reached.update(running[asset_id])
    stack = list(reached)
    while stack:
        for dependant in dependants[stack.pop()]:
            if dependant not in reached:
                reached.add(dependant)
                stack.append(dependant)
    live = [services[s] for s in reached if services[s][4] == "live"]
    figures = {"services_disrupted": len(live), "critical_disrupted": sum(1 for s in live if s[5]),
               "past_rto": sum(1 for s in live if s[1] is not None and hours * 60 > s[1]),
               "past_mtpd": sum(1 for s in live if s[2] is not None and hours * 60 > s[2]),
               "cost": sum(hours * s[3] for s in live if s[3] is not None),
               "unpriced": sum(1 for s in live if s[3] is None)}
    return figures, {s[0] for s in live}


def scenario(capsys, path, *args) -> dict:
    assert main(["scenario", "--store", str(path), *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("hours", [4.0, 24.0, 72.0])
def test_a_scenario_on_the_demo_equals_an_independent_computation(demo_path, capsys, hours):
    with Store(demo_path, read_only=True) as store:
        biggest_supplier = store.scalar("SELECT supplier_id FROM service_suppliers GROUP BY ALL "
                                        "ORDER BY count(*) DESC, supplier_id LIMIT 1")
        platform = store.scalar("SELECT depends_on_id FROM dependencies GROUP BY ALL "
                                "ORDER BY count(*) DESC, depends_on_id LIMIT 1")
    figures = scenario(capsys, demo_path, "--fail", f"supplier:{biggest_supplier}", "--fail",
                       f"service:{platform}", "--hours", str(hours))
    expected, reached = independent_scenario(demo_path, [biggest_supplier], [platform], hours)
    assert expected["services_disrupted"] > 20       # the scenario is worth comparing
    for key, value in expected.items():
        assert figures[key] == pytest.approx(value), key
    assert {service["id"] for service in figures["services"]} == reached


@pytest.mark.parametrize("hours", [4.0, 48.0])
def test_a_failed_site_on_the_demo_equals_an_independent_computation(demo_path, capsys, hours):
    """The demo's primary data centre, by name, and a database cluster, by id."""
    with Store(demo_path, read_only=True) as store:
        site = store.scalar("SELECT name FROM assets WHERE asset_id = 'SITE-LON1'")
    figures = scenario(capsys, demo_path, "--fail", f"asset:{site.upper()}", "--fail", "asset:DB-ORA-01",
                       "--hours", str(hours))
    assert figures["failed"] == [f"asset:{site.upper()}", "asset:DB-ORA-01"]
    expected, reached = independent_scenario(demo_path, [], [], hours, ["SITE-LON1", "DB-ORA-01"])
    assert expected["services_disrupted"] > 50
    for key, value in expected.items():
        assert figures[key] == pytest.approx(value), key
    assert {service["id"] for service in figures["services"]} == reached


def test_scenario_json_has_exactly_the_documented_keys(demo_path, capsys):
    figures = scenario(capsys, demo_path, "--fail", "unit:Group HR")
    assert list(figures) == ["failed", "hours", "services_disrupted", "critical_disrupted", "past_rto", "past_mtpd",
                             "cost", "unpriced", "services"]
    assert figures["failed"] == ["unit:Group HR"] and figures["hours"] is None
    assert list(figures["services"][0]) == ["id", "name", "unit", "tier", "rto_minutes", "mtpd_minutes",
                                            "hours_past_rto", "hours_past_mtpd", "cost"]
    assert figures["services_disrupted"] >= sum(1 for s in figures["services"] if s["unit"] == "Group HR") > 0


def test_scenario_text_and_refusals(demo_path, capsys):
    assert main(["scenario", "--store", str(demo_path), "--fail", "supplier:sup-01", "--hours", "24"]) == 0
    out = capsys.readouterr().out
    assert "services disrupted" in out and "past their MTPD" in out
    assert main(["scenario", "--store", str(demo_path), "--fail", "supplier:No such supplier"]) == 2
    assert "no supplier 'No such supplier'" in capsys.readouterr().err
    assert main(["scenario", "--store", str(demo_path), "--fail", "rack:R1"]) == 2
    assert main(["scenario", "--store", str(demo_path), "--fail", "asset:No such rack"]) == 2
    assert "no asset 'No such rack'" in capsys.readouterr().err
    assert main(["scenario", "--store", str(demo_path), "--fail", "asset:SITE-LD5", "--hours", "24"]) == 0
    assert "Scenario: asset:SITE-LD5 down for 24 h" in capsys.readouterr().out
    assert main(["scenario", "--store", str(demo_path), "--fail", "asset:SITE-LD5"]) == 0
    assert "an asset has no recovery time of its own" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["scenario", "--store", str(demo_path), "--fail", "service:x", "--hours", "-3"])


def test_checks_command_prints_each_check_with_its_count(demo_path, capsys):
    assert main(["checks", "--store", str(demo_path), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert len(figures["checks"]) == 7
    assert figures["failing"] == sum(1 for check in figures["checks"] if check["count"])
    assert main(["checks", "--store", str(demo_path)]) == 0
    assert "RTO longer than the MTPD" in capsys.readouterr().out
