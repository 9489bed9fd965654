"""Helpers shared by the incident import tests (no tests here; named to sit with them)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from itscm import rollup
from itscm.ingest import read_upload
from itscm.store import Store
from tests import backends

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
# Fixtures are dated July-August 2025; "now" is pinned so the future-date checks do not drift.
NOW = datetime(2025, 9, 1, 12, 0)

SERVICES = [
    ("svc-pay", "Payments Gateway", 1),
    ("svc-mail", "Email", 2),
    ("svc-crm", "CRM", 2),
    ("svc-hr", "HR Portal", 3),
]
ALIASES = [
    ("pay-gw-prod", "svc-pay", "cmdb"),
    ("Payments API", "svc-pay", "pagerduty"),
    ("exchange-online", "svc-mail", "cmdb"),
    ("Salesforce CRM", "svc-crm", "jira"),
]
TABLES = ("incidents", "incident_prior_versions", "uploads", "service_aliases", "column_mappings")


def make_store() -> Store:
    return _with_services(backends.new_store())


def _with_services(store: Store) -> Store:
    with store.transaction() as cur:
        for service_id, name, tier in SERVICES:
            cur.execute(
                "INSERT INTO services (service_id, name, tier) VALUES ($id, $name, $tier)",
                {"id": service_id, "name": name, "tier": tier},
            )
        for alias, service_id, origin in ALIASES:
            cur.execute(
                "INSERT INTO service_aliases (alias, alias_key, service_id, origin) "
                "VALUES ($alias, lower(trim($alias)), $id, $origin)",
                {"alias": alias, "id": service_id, "origin": origin},
            )
        rollup.after_services_changed(cur)
    return store


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def preview_of(store: Store, name: str, **options):
    return read_upload(fixture(name), name, store=store, now=NOW, **options)


def snapshot(store: Store, tables=TABLES) -> dict[str, list[tuple]]:
    """Every row of the tables an upload touches, in a stable order: for exact before/after checks."""
    return {table: sorted(store.rows(f"SELECT * FROM {table}"), key=repr) for table in tables}


def incidents(store: Store) -> dict[str, dict]:
    frame = store.df("SELECT * FROM incidents ORDER BY incident_id")
    return {row["incident_id"]: row for row in frame.to_dict("records")}


class FailingStore(Store):
    """A store whose write transactions fail at the first statement containing `fail_on`, after
    the statements before it have run: to prove a commit or undo leaves nothing behind."""

    fail_on: str | None = None

    @contextmanager
    def transaction(self):
        with super().transaction() as cur:
            yield _FailingCursor(cur, self.fail_on)


class _FailingCursor:
    def __init__(self, cursor, fail_on):
        self._cursor = cursor
        self._fail_on = fail_on

    def execute(self, sql, *params):
        if self._fail_on and self._fail_on in sql:
            raise RuntimeError(f"injected failure before: {self._fail_on}")
        return self._cursor.execute(sql, *params)

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def make_failing_store() -> FailingStore:
    """The services and aliases of `make_store`, written straight into the failing store (no
    second store to copy them from: on DuckLake each is a lake of its own)."""
    return _with_services(FailingStore(backends.new_target()))
