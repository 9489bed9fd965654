"""Readers and writers at once: the measures keep working while analysts import and undo, no
reader ever sees half an upload, and the store ends exactly as if the same changes ran one by one."""

from __future__ import annotations

import datetime as dt
import threading
import time

from itscm import access, ingest
from itscm.filters import Filters
from itscm.ingest import IngestError, read_upload
from itscm.measures.posture import measures_snapshot, unit_gaps
from itscm.store import Store
from tests import backends
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents
from tests.together import run_together

ANALYST = access.Actor(name="ana@example.com", role="analyst")
FILTERS = Filters(as_of=SMALL_ORG_AS_OF)
WRITERS, READERS = 2, 8
RUN_SECONDS = 3.0
MAX_CYCLES = 40            # per writer, so a fast machine also stops
FIRST, ADDED, UPDATED = 30, 10, 5   # incidents of file A; file B adds ADDED and updates UPDATED of A's
T0 = dt.datetime(2026, 7, 1, 8, 0)


def incident_csv(writer: int, version: str) -> bytes:
    """File A holds a writer's incidents 1..FIRST; file B changes the titles of the first UPDATED
    of them and adds ADDED more. Each writer has its own ids, so the two writers' changes commute."""
    ids = range(1, FIRST + 1) if version == "A" else [*range(1, UPDATED + 1), *range(FIRST + 1, FIRST + ADDED + 1)]
    lines = ["incident_id,title,service,priority,opened_at,restored_at"]
    for n in ids:
        day = SMALL_ORG_AS_OF - dt.timedelta(days=n % 200 + 1)
        lines.append(f"W{writer}-{n},{version} outage {n},Core Ledger,{n % 4 + 1},{day} 10:00,{day} {10 + n % 9}:30")
    return ("\n".join(lines) + "\n").encode()


# The states a writer's incidents can be in, as (incidents, of which file B's titles): nothing,
# file A, files A and B. Anything else would be half an upload or half an undo.
WHOLE_STATES = {(0, 0), (FIRST, 0), (FIRST + ADDED, UPDATED + ADDED)}


def writer_state(cursor, writer: int) -> tuple[int, int]:
    return cursor.execute(
        "SELECT count(*), count(*) FILTER (WHERE title LIKE 'B %') FROM incidents WHERE incident_id LIKE $prefix",
        {"prefix": f"generic:W{writer}-%"},
    ).fetchone()


def run_cycle(store: Store, previews: dict, writer: int, clock, log: list) -> None:
    """Import A, import B, undo B, undo A: each step one transaction, logged as it succeeded."""
    a = ingest.commit_upload(ANALYST, store, previews["A"], now=clock())
    log.append(("commit", "A", a.upload_id))
    b = ingest.commit_upload(ANALYST, store, previews["B"], now=clock())
    log.append(("commit", "B", b.upload_id))
    for upload_id in (b.upload_id, a.upload_id):
        ingest.undo_upload(ANALYST, store, upload_id, now=clock())
        log.append(("undo", None, upload_id))


def writer_clock(writer: int):
    # Deterministic times: writer w's n-th change happens at T0 + w days + n seconds.
    ticks = iter(range(10_000))
    return lambda: T0 + dt.timedelta(days=writer, seconds=next(ticks))


def test_readers_never_see_half_an_upload_and_the_end_state_is_the_serial_one(small_org_path, tmp_path):
    concurrent_path = backends.copy_store(small_org_path, tmp_path / "concurrent.duckdb")
    serial_path = backends.copy_store(small_org_path, tmp_path / "serial.duckdb")
    store = Store(concurrent_path)
    previews = {w: {v: read_upload(incident_csv(w, v), f"w{w}-{v}.csv", store=store) for v in "AB"}
                for w in range(WRITERS)}
    assert all(p.incidents and not p.rejected for files in previews.values() for p in files.values())

    errors: list[BaseException] = []
    logs: dict[int, list] = {w: [] for w in range(WRITERS)}
    writers_done = threading.Event()
    reads = [0] * READERS
    deadline = time.monotonic() + RUN_SECONDS

    def write(writer: int) -> None:
        clock = writer_clock(writer)
        try:
            for _ in range(MAX_CYCLES):
                if time.monotonic() > deadline:
                    break
                run_cycle(store, previews[writer], writer, clock, logs[writer])
        except BaseException as error:  # collected, asserted below
            errors.append(error)

    def read(reader: int) -> None:
        cursor = store.cursor()
        try:
            last_version = -1
            while not writers_done.is_set() or reads[reader] == 0:
                if reader % 2:
                    snapshot = measures_snapshot(store, FILTERS)
                    assert snapshot["coverage"]["in_scope"] > 0
                    unit_gaps(store, FILTERS)
                # One read transaction: every check below sees the same committed state.
                cursor.execute("BEGIN TRANSACTION")
                try:
                    version = int(cursor.execute(
                        "SELECT value FROM store_meta WHERE key = 'data_version'").fetchone()[0])
                    assert version >= last_version, "the data version went backwards"
                    last_version = version
                    for writer in range(WRITERS):
                        state = writer_state(cursor, writer)
                        assert state in WHOLE_STATES, f"writer {writer}'s incidents half written: {state}"
                    orphans = cursor.execute(
                        """SELECT count(*) FROM incidents i LEFT JOIN uploads u USING (upload_id)
                           WHERE i.upload_id IS NOT NULL AND u.state IS DISTINCT FROM 'committed'""").fetchone()[0]
                    assert orphans == 0, "incidents held by an upload that is not committed"
                finally:
                    cursor.execute("COMMIT")
                reads[reader] += 1
        except BaseException as error:
            errors.append(error)

    writer_threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    reader_threads = [threading.Thread(target=read, args=(r,)) for r in range(READERS)]
    for thread in reader_threads + writer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join(timeout=120)
    writers_done.set()
    for thread in reader_threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in reader_threads + writer_threads)
    assert errors == [], errors
    assert all(logs.values()) and all(reads), (logs, reads)

    # The same changes, one at a time, on a fresh copy: the writers' changes commute (disjoint
    # ids), so replaying each writer's log in turn is a serial order of what happened.
    serial = Store(serial_path)
    id_map: dict[str, str] = {}
    for writer in range(WRITERS):
        clock = writer_clock(writer)
        for action, version, upload_id in logs[writer]:
            if action == "commit":
                result = ingest.commit_upload(ANALYST, serial, previews[writer][version], now=clock())
                id_map[upload_id] = result.upload_id
            else:
                ingest.undo_upload(ANALYST, serial, id_map[upload_id], now=clock())
    assert serial.data_version() == store.data_version()
    assert table_contents(store, id_map) == table_contents(serial)
    store.close()
    serial.close()


def test_an_undo_refused_under_concurrency_changes_nothing(small_org_path, tmp_path):
    """Two analysts race to undo the same upload: exactly one succeeds, the other is told why."""
    path = backends.copy_store(small_org_path, tmp_path / "race.duckdb")
    store = Store(path)
    preview = read_upload(incident_csv(0, "A"), "w0-A.csv", store=store)
    upload_id = ingest.commit_upload(ANALYST, store, preview, now=T0).upload_id
    version = store.data_version()
    outcomes: list[object] = []
    start = threading.Barrier(4)

    def undo() -> None:
        start.wait()
        try:
            outcomes.append(ingest.undo_upload(ANALYST, store, upload_id, now=T0))
        except IngestError as refused:
            outcomes.append(refused)

    run_together(undo, 4, timeout=60)
    refusals = [o for o in outcomes if isinstance(o, IngestError)]
    assert len(outcomes) == 4 and len(refusals) == 3
    assert all("already undone" in str(r) for r in refusals)
    assert store.data_version() == version + 1
    assert writer_state(store.cursor(), 0) == (0, 0)
    store.close()
