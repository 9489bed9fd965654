"""Import throughput on a large ServiceNow-style export. Off in the normal suite; run with

    ITSCM_INGEST_SCALE=1000000 .venv/bin/pytest -q -s tests/test_ingest_scale.py

It prints the seconds spent reading and checking, committing, and re-importing a newer export
with 10% of the incidents changed, all into a store file (as the app uses it)."""

from __future__ import annotations

import os
from time import perf_counter

import duckdb
import pytest

from itscm import rollup
from itscm.access import Actor
from itscm.ingest import commit_upload, read_upload
from tests import backends

ROWS = int(os.environ.get("ITSCM_INGEST_SCALE", "0") or 0)
# A row count, not a switch: the newer export changes every tenth incident, so fewer than ten rows
# would change none.
pytestmark = pytest.mark.skipif(ROWS < 10, reason="set ITSCM_INGEST_SCALE=<rows>, at least 10, to measure "
                                                  "import throughput")
SERVICES = 2000
ANALYST = Actor("scale", "analyst")


def write_export(path, rows: int, changed_every: int = 0) -> None:
    """A ServiceNow list export: display-value priorities, a quoted title with a comma, and
    (with `changed_every`) every n-th incident restored an hour later than in the first export."""
    shift = f"CASE WHEN i % {changed_every} = 0 THEN 3600 ELSE 0 END" if changed_every else "0"
    stamp = "'%Y-%m-%d %H:%M:%S'"
    priorities = "['1 - Critical', '2 - High', '3 - Moderate', '4 - Low', '5 - Planning']"
    with duckdb.connect() as con:
        con.execute(
            f"""
            COPY (
                SELECT printf('INC%08d', i) AS number,
                       'Outage of component ' || i || ', users affected' AS short_description,
                       {priorities}[1 + i % 5] AS priority,
                       'Closed' AS state,
                       strftime(opened, {stamp}) AS opened_at,
                       strftime(opened + to_seconds(600 + i % 7200 + {shift}), {stamp}) AS u_restored_at,
                       strftime(opened + to_seconds(9000 + i % 7200), {stamp}) AS resolved_at,
                       strftime(opened + to_seconds(259200), {stamp}) AS closed_at,
                       'Service ' || (i % {SERVICES + 300}) AS business_service,
                       'ci-' || (i % 5000) AS cmdb_ci,
                       'Team ' || (i % 40) AS assignment_group
                FROM (SELECT i, TIMESTAMP '2023-01-01' + to_seconds(i * 60) AS opened FROM range({rows}) t(i))
            ) TO '{path}' (HEADER, DELIMITER ',')
            """
        )


def test_import_throughput(tmp_path):
    first, second = tmp_path / "export.csv", tmp_path / "export_newer.csv"
    write_export(first, ROWS)
    write_export(second, ROWS, changed_every=10)
    store = backends.new_store(tmp_path / "scale.duckdb")
    with store.transaction() as cur:
        cur.execute(
            f"INSERT INTO services (service_id, name, tier) "
            f"SELECT 'svc-' || i, 'Service ' || i, 1 + i % 4 FROM range({SERVICES}) t(i)"
        )
        rollup.after_services_changed(cur)
    try:
        timings = {}
        for label, path in (("first import", first), ("newer export", second)):
            data = path.read_bytes()
            started = perf_counter()
            preview = read_upload(data, path.name, store=store)
            read = perf_counter()
            result = commit_upload(ANALYST, store, preview)
            done = perf_counter()
            timings[label] = (read - started, done - read, done - started)
            rate = ROWS / (done - started)
            print(
                f"\n{label}: {ROWS:,} rows, {len(data) / 2**20:.0f} MB: read+check {read - started:.2f} s, "
                f"commit {done - read:.2f} s, total {done - started:.2f} s = {rate:,.0f} rows/s "
                f"(inserted {result.inserted:,}, updated {result.updated:,}, unchanged {result.unchanged:,})"
            )
            assert preview.rejected == 0 and preview.incidents == ROWS
        assert store.scalar("SELECT count(*) FROM incidents") == ROWS
        assert store.scalar("SELECT count(*) FROM incident_prior_versions") == ROWS // 10
    finally:
        store.close()
