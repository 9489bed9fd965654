"""`python -m itscm`: init, summary and their errors."""

import datetime as dt
import json
import subprocess
import sys

import pytest

from itscm.cli import build_parser, main
from itscm.store import Store
from tests import backends
from tests.builders import OrgBuilder, at

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture
def store_path(tmp_path):
    path = backends.new_target(tmp_path / "org.duckdb")
    org = OrgBuilder(Store(path))
    payments = org.unit("Payments")
    retail = org.unit("Retail")
    covered = org.covered_service(payments, AS_OF, impact_cost_per_hour=2000.0)
    org.service(retail, tier=2)
    opened = at(dt.date(2026, 3, 1), 9)
    org.incident(covered, opened, restored_at=opened + dt.timedelta(hours=2))        # RTO 240: attained
    org.incident(None, opened, restored_at=opened + dt.timedelta(hours=1), service_name="ghost")
    org.store.close()
    return str(path)


def run_json(capsys, *args):
    assert main(["summary", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_summary_json_has_the_documented_shape_and_values(store_path, capsys):
    result = run_json(capsys, "--store", store_path, "--as-of", str(AS_OF))
    assert result == {
        "events": "all",   # the store's rule as a new store has it
        "coverage": {"in_scope": 2, "covered": 1, "pct": 50.0},
        "rto_attainment": {"events": 2, "attained": 2, "pct": 100.0, "without_rto": 1},
        "downtime_cost": {"total": 4000.0, "unpriced_hours": 1.0, "continuity_cost": 4000.0, "continuity_pct": 100.0},
        "staleness": {"plans": 1, "current": 1, "due_soon": 0, "changed_since_review": 0, "overdue": 0,
                      "never_tested": 0, "services_without_plan": 1},
        "inventory_currency": {"assets": 0, "verified": 0, "pct": None},   # no assets: no percentage
    }


def test_summary_filters_by_unit_and_tier(store_path, capsys):
    retail = run_json(capsys, "--store", store_path, "--as-of", str(AS_OF), "--unit", "Retail")
    assert retail["coverage"] == {"in_scope": 1, "covered": 0, "pct": 0.0}
    assert retail["rto_attainment"]["events"] == 0 and retail["rto_attainment"]["pct"] is None
    tier_3 = run_json(capsys, "--store", store_path, "--as-of", str(AS_OF), "--tier", "3")
    assert tier_3["coverage"]["pct"] is None


def test_summary_text_is_readable(store_path, capsys):
    assert main(["summary", "--store", store_path, "--as-of", str(AS_OF)]) == 0
    out = capsys.readouterr().out
    assert "Critical-service coverage" in out and "50.0 %" in out
    assert "4,000 EUR" in out


@pytest.mark.parametrize(("args", "message"), [
    (["summary", "--unit", "Nowhere"], "unknown business unit 'Nowhere'; known units: Payments, Retail"),
    (["summary", "--since", "2026-07-01", "--until", "2026-06-01"], "starts (2026-07-01) after it ends"),
])
def test_bad_filters_are_one_line_errors(store_path, capsys, args, message):
    assert main([*args, "--store", store_path]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["summary", "--tier", "9"],
    ["summary", "--as-of", "yesterday"],
    ["frobnicate"],
])
def test_bad_arguments_exit_non_zero_without_traceback(store_path, args, capsys):
    # The command line's entry point in this process: argparse's own exit, and nothing raised past
    # it (an exception would fail the test here, as it would print a traceback from the process).
    with pytest.raises(SystemExit) as exited:
        main([*args, "--store", store_path])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error" in err


def test_missing_store_file(tmp_path):
    # The one test that runs `python -m itscm` as its own process: its exit code is main's.
    result = subprocess.run([sys.executable, "-m", "itscm", "summary", "--store", str(tmp_path / "none.duckdb")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: No store at")
    assert not (tmp_path / "none.duckdb").exists()


def test_init_creates_then_never_wipes(store_path, tmp_path, capsys):
    fresh = tmp_path / "fresh.duckdb"
    assert main(["init", "--store", str(fresh)]) == 0
    assert fresh.exists()
    assert main(["init", "--store", store_path]) == 0
    assert "schema version" in capsys.readouterr().out
    assert run_json(capsys, "--store", store_path, "--as-of", str(AS_OF))["coverage"]["in_scope"] == 2


def test_store_from_environment(store_path, monkeypatch, capsys):
    monkeypatch.setenv("ITSCM_STORE", store_path)
    assert run_json(capsys, "--as-of", str(AS_OF))["coverage"]["covered"] == 1


def test_demo_builds_a_new_store_and_refuses_an_existing_one(tmp_path, capsys):
    path = backends.new_target(tmp_path / "demo.duckdb", migrated=False)
    assert main(["demo", "--store", path, "--services", "40", "--incidents", "2000", "--as-of", "2026-06-30",
                 "--quiet"]) == 0
    assert "2,000 incidents" in capsys.readouterr().out
    assert main(["demo", "--store", path, "--quiet"]) == 2
    assert "already holds services" in capsys.readouterr().err
    assert run_json(capsys, "--store", path, "--as-of", "2026-06-30")["coverage"]["in_scope"] > 0


def test_every_command_is_offered():
    # `ingest` once hid behind an ImportError guard and could vanish from the list unnoticed.
    (commands,) = [action for action in build_parser()._actions if action.dest == "command"]
    assert {"init", "demo", "summary", "bench", "backup", "restore", "ingest", "ingest-changes", "uploads",
            "undo"} <= set(commands.choices)
