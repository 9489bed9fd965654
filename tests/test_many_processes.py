"""Many processes on one DuckLake store at once (issue #16): two app servers serving it while
command-line processes import incidents (two of them the same file), undo an upload and write
records, all at the same time. Nothing fails, the same incidents are never stored twice, the
final state is the one the same steps make run one after another, and each server shows the
other processes' commits on its next rerun.

The servers are real `streamlit run` processes, driven through Streamlit's own websocket protocol
(tests/browser/stream_client.py); the writers are real `python -m itscm` processes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from itscm.store import Store
from tests import backends
from tests.browser.conftest import StreamlitServer
from tests.browser.stream_client import StreamClient
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents

pytestmark = pytest.mark.ducklake_only

ROOT = Path(__file__).resolve().parent.parent
AS_OF = f"as_of={SMALL_ORG_AS_OF.isoformat()}"
NEW_SERVICE_ID, NEW_SERVICE_NAME = "svc-many", "Many Processes Gateway"
TIMEOUT_S = 600

# Records written by a process of their own, at a fixed time so that two runs write the same rows.
RECORDS = textwrap.dedent(f"""
    import datetime as dt, sys
    from itscm import records
    from itscm.access import Actor
    from itscm.store import open_store
    store, manager = open_store(sys.argv[1]), Actor("cm@example.com", "continuity manager")
    at = dt.datetime(2026, 6, 29, 12)
    records.create_service(manager, store, {{"name": {NEW_SERVICE_NAME!r}, "tier": 1}},
                           service_id={NEW_SERVICE_ID!r}, now=at)
    supplier = records.add_supplier(manager, store, "Acme Hosting", now=at)
    records.link_supplier(manager, store, {NEW_SERVICE_ID!r}, supplier, now=at)
    records.record_drill(manager, store, {NEW_SERVICE_ID!r}, dt.date(2026, 6, 28), "tabletop", "passed", now=at)
""")
UNDO = textwrap.dedent("""
    import datetime as dt, sys
    from itscm.access import Actor
    from itscm.ingest import undo_upload
    from itscm.store import open_store
    undo_upload(Actor("ana@example.com", "analyst"), open_store(sys.argv[1]), sys.argv[2],
                now=dt.datetime(2026, 6, 29, 13))
""")


def _incidents_csv(path: Path, prefix: str, services: list[str], count: int) -> Path:
    """A ServiceNow list export of `count` incidents of the given services, ids starting `prefix`."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["number", "short_description", "priority", "state", "opened_at", "u_restored_at",
                         "resolved_at", "closed_at", "business_service"])
        for n in range(count):
            opened = dt.datetime(2026, 1, 1, 8) + dt.timedelta(hours=13 * n)
            writer.writerow([f"INC{prefix}{n:05d}", f"Outage {n}", f"{1 + n % 4} - Priority", "Closed",
                             opened, opened + dt.timedelta(minutes=30 + n % 300), opened + dt.timedelta(hours=6),
                             opened + dt.timedelta(days=2), services[n % len(services)]])
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, f"{process.args}:\n{err}"
    assert "Traceback" not in err, err
    return out


def _run(*argv: str) -> str:
    return _finish(_start(*argv))


def _writers(store: str, files: dict[str, Path], undone: str) -> list[tuple[str, ...]]:
    """The writes of the test, each a process's command line."""
    def ingest(file: Path) -> tuple[str, ...]:
        return ("-m", "itscm", "ingest", str(file), "--store", store, "--as", "ana@example.com", "--json")

    return [ingest(files["A"]), ingest(files["A"]), ingest(files["B"]),
            ("-c", UNDO, store, undone), ("-c", RECORDS, store)]


def _summary(store: str) -> dict:
    return json.loads(_run("-m", "itscm", "summary", "--json", "--as-of", SMALL_ORG_AS_OF.isoformat(),
                           "--store", store))


def _comparable(store: str) -> dict[str, list]:
    """Every table's rows, with what differs between two runs of the same steps taken out: when
    each import ran (its time, its id's random tail: ids become the file's hash)."""
    with Store(store) as opened:
        names = dict(opened.rows("SELECT upload_id, sha256 FROM uploads"))
        contents = table_contents(opened, names)
    timeless = {}
    for table, rows in contents.items():
        timeless[table] = sorted((tuple(None if isinstance(value, dt.datetime) else value for value in row)
                                  for row in rows), key=repr)
    return timeless


def _card_texts(client: StreamClient) -> list[str]:
    return client.rerun("Services", f"{AS_OF}&service={NEW_SERVICE_ID}").texts


@pytest.mark.long
def test_two_servers_and_command_line_writers_at_once_end_as_the_serial_replay(small_org_path, tmp_path):
    base = backends.new_target(migrated=False)
    _run("-m", "itscm", "migrate-store", "--from", str(small_org_path), "--to", base)
    with Store(base) as store:
        services = [name for (name,) in store.rows(
            "SELECT name FROM services WHERE lifecycle = 'live' ORDER BY service_id LIMIT 3")]
    files = {name: _incidents_csv(tmp_path / f"{name}.csv", name, services, 300) for name in "ABC"}
    undone = json.loads(_run("-m", "itscm", "ingest", str(files["C"]), "--store", base, "--as", "ana@example.com",
                             "--json"))["upload_id"]
    replay = backends.copy_of(base)   # the same start, for the serial replay

    servers = [StreamlitServer(base, tmp_path / f"server{n}.log") for n in (1, 2)]
    try:
        clients = [StreamClient(server.url) for server in servers]
        for client in clients:
            assert NEW_SERVICE_NAME not in _card_texts(client)
        writers = [_start(*argv) for argv in _writers(base, files, undone)]
        while any(writer.poll() is None for writer in writers):   # the servers serve while they write
            for client in clients:
                client.rerun("Overview", AS_OF)
        outputs = [_finish(writer) for writer in writers]
        for client in clients:   # each server's next rerun shows what the other processes committed
            assert NEW_SERVICE_NAME in _card_texts(client)
            client.close()
    finally:
        for server in servers:
            server.stop()

    imports_of_a = [json.loads(out) for out in outputs[:2]]
    assert sorted(result["inserted"] for result in imports_of_a) == [0, 300]   # one inserted them, once
    assert sorted(result["unchanged"] for result in imports_of_a) == [0, 300]

    for argv in _writers(replay, files, undone):
        _run(*argv)
    assert _summary(base) == _summary(replay)
    assert _comparable(base) == _comparable(replay)
    with Store(base) as store:
        assert store.scalar("SELECT count(*) FROM incidents WHERE incident_id LIKE 'servicenow:INCA%'") == 300
        assert store.scalar("SELECT count(*) FROM incidents WHERE incident_id LIKE 'servicenow:INCC%'") == 0
    _run("-m", "itscm", "verify", "--store", base)
