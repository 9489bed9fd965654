"""Uniqueness without constraints: the schema declares no keys (DuckLake has none), so `verify`
checks the keys the writers keep unique, on either backend (`--backend ducklake`)."""

import datetime as dt
import json

from itscm import uniqueness
from tests import backends
from tests.builders import OrgBuilder
from tests.command_line import run_cli


def duplicates(store) -> list[dict]:
    with store.read_transaction() as cursor:
        return uniqueness.duplicate_keys(cursor)


def test_every_key_is_unique_as_the_writers_leave_it_and_a_repeated_id_is_named(tmp_path, capsys):
    org = OrgBuilder(backends.new_store(tmp_path / "keys.duckdb"))
    service = org.service(org.unit("Payments"))
    incident = org.incident(service, dt.datetime(2026, 5, 1, 9), restored_at=dt.datetime(2026, 5, 1, 10))
    org.incident(service, dt.datetime(2026, 5, 2, 9))
    assert duplicates(org.store) == []

    with org.store.transaction() as cursor:   # what a writer that forgot its key would leave
        cursor.execute("INSERT INTO incidents (incident_id, source, opened_at) VALUES (?, 'test', ?)",
                       [incident, dt.datetime(2026, 5, 3)])
        cursor.execute("INSERT INTO services (service_id, name) VALUES (?, 'Twin')", [service])
    assert duplicates(org.store) == [
        {"table": "services", "unique": "service_id", "rows": 1, "what": "values held by more than one row"},
        {"table": "incidents", "unique": "incident_id", "rows": 1, "what": "values held by more than one row"},
    ]

    target = org.store.path
    org.store.close()
    verify = run_cli(capsys, "verify", "--store", target, "--json")
    assert verify.returncode == 1, verify.stderr
    named = {(d["table"], d.get("unique")) for d in json.loads(verify.stdout)["differences"]}
    assert {("services", "service_id"), ("incidents", "incident_id")} <= named
