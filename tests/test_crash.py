"""A process killed (SIGKILL) before, during or right after a commit or an undo: on reopening, the
change is all there or not at all, everything before it is intact, and the store opens normally
(DuckDB replays its write-ahead log).

On DuckLake the same kills leave the same all-or-nothing: the lake's catalog commits in one
PostgreSQL transaction, and the child opens the lake as any process does.

The child process pauses at a chosen point and waits on stdin, so each kill lands at a known
place. The pause points are set up by the child script below, by wrapping the store's write
cursor; the product code has no test hooks.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from itscm.access import Actor
from itscm.ingest import commit_upload, read_upload, undo_upload
from itscm.store import Store, StoreLockedError
from tests import backends
from tests.crash_child import PAUSING_STORE, killed_at_each_point, start_child
from tests.store_contents import table_contents, upload_names

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "ingest"
EARLIER, NEWER = "servicenow_list.csv", "servicenow_list_v2.csv"   # NEWER updates EARLIER's incidents
T_EARLIER, T_CHILD = dt.datetime(2026, 7, 1, 9, 0), dt.datetime(2026, 7, 2, 9, 0)
CRASH_TEST = Actor("crash test", "analyst")

CHILD = textwrap.dedent("""
    import datetime as dt
    import sys
    from contextlib import contextmanager
    from pathlib import Path

    from itscm.access import Actor
    from itscm.ingest import commit_upload, read_upload, undo_upload
    from itscm.store import Store

    CRASH_TEST = Actor("crash test", "analyst")
""") + PAUSING_STORE + textwrap.dedent("""
    if action == "commit":
        preview = read_upload(Path(argument).read_bytes(), Path(argument).name, store=store)
        pause_at("before")
        commit_upload(CRASH_TEST, store, preview, now=NOW)
    else:
        pause_at("before")
        undo_upload(CRASH_TEST, store, argument, now=NOW)
    pause_at("after")
    print("finished", flush=True)
""")


def commit_file(store: Store, name: str, now: dt.datetime) -> str:
    preview = read_upload((FIXTURES / name).read_bytes(), name, store=store)
    return commit_upload(CRASH_TEST, store, preview, now=now).upload_id


@pytest.fixture(scope="module", params=["commit", "undo"])
def stores(request, small_org_path, tmp_path_factory):
    """The store before the child's change, and the store as the change leaves it when it
    completes (made in this process), for a commit or for an undo: one action an instance, since
    under pytest-xdist the two actions' tests usually run on different workers, each of which
    made both when one fixture held both."""
    folder = tmp_path_factory.mktemp("crash")
    (folder / "child.py").write_text(CHILD)
    action = request.param
    before = backends.copy_store(small_org_path, folder / f"{action}-before.duckdb")
    with Store(before) as store:
        commit_file(store, EARLIER, T_EARLIER)
        argument = str(FIXTURES / NEWER)
        if action == "undo":
            argument = commit_file(store, NEWER, T_EARLIER + dt.timedelta(hours=1))
        if not store.on_ducklake:
            store.cursor().execute("CHECKPOINT")   # so a copy's log holds only the child's change
    after = backends.copy_store(before, folder / f"{action}-after.duckdb")
    with Store(after) as store:
        if action == "commit":
            commit_file(store, NEWER, T_CHILD)
        else:
            undo_upload(CRASH_TEST, store, argument, now=T_CHILD)
    return folder, action, before, after, argument


def contents(path: Path | str) -> dict:
    with Store(path) as store:
        return table_contents(store, upload_names(store))


# Each point with the state a kill there must leave: the one before the change or the one after.
POINTS = {
    "commit": [("before", "before"), ("sql:INSERT INTO incident_prior_versions", "before"),
               ("sql:MERGE INTO incidents", "before"), ("sql:INSERT INTO uploads", "before"),
               ("sql:INSERT INTO incident_months", "before"), ("after", "after")],   # the rollup, last
    "undo": [("before", "before"), ("sql:DELETE FROM incidents", "before"), ("sql:INSERT INTO incidents", "before"),
             ("sql:UPDATE uploads SET state", "before"), ("sql:INSERT INTO incident_months", "before"),
             ("after", "after")],
}


@pytest.mark.long
def test_a_killed_change_is_all_or_nothing(stores, tmp_path):
    folder, action, before, after, argument = stores
    expected = {"before": contents(before), "after": contents(after)}
    assert expected["before"] != expected["after"]

    for point, state, path, _ in killed_at_each_point(folder / "child.py", before, tmp_path, action, argument,
                                                      POINTS[action], T_CHILD):
        if state == "after" and not backends.on_ducklake():
            # The committed change is only in the write-ahead log: reopening must replay it.
            assert Path(f"{path}.wal").stat().st_size > 0
        with Store(path) as reopened:   # opens without error: the log of the killed process is replayed
            assert reopened.scalar("SELECT count(*) FROM store_meta WHERE key = 'data_version'") == 1
        assert contents(path) == expected[state], f"killed at {point}: the store is not the {state} state"


@pytest.mark.file_only   # a lake has no lock: other processes read and write it meanwhile
@pytest.mark.parametrize("stores", ["commit"], indirect=True)
def test_a_second_process_during_a_write_is_told_which_process_holds_the_store(stores, tmp_path):
    folder, _, before, _, argument = stores
    path = backends.copy_store(before, tmp_path / "held.duckdb")
    child = start_child(folder / "child.py", path, "commit", argument, "sql:MERGE INTO incidents", T_CHILD)
    try:
        assert child.stdout.readline().strip() == "paused"   # inside its write transaction
        with pytest.raises(StoreLockedError, match=rf"in use by another process \(PID {child.pid}\b"):
            Store(path)
        for command in (["summary"], ["ingest", str(FIXTURES / EARLIER)], ["init"]):
            cli = subprocess.run([sys.executable, "-m", "itscm", *command, "--store", str(path)],
                                 capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert cli.returncode != 0, command
            assert f"PID {child.pid}" in cli.stderr, (command, cli.stderr)
            assert "Traceback" not in cli.stderr + cli.stdout, command
            assert len(cli.stderr.strip().splitlines()) == 1, (command, cli.stderr)
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert contents(path) == contents(before)


@pytest.mark.parametrize("stores", ["commit"], indirect=True)
def test_a_store_reopened_after_a_kill_takes_the_change_again(stores, tmp_path):
    """After a kill mid-commit nothing is left half-done that would block doing it again."""
    folder, _, before, after, argument = stores
    path = backends.copy_store(before, tmp_path / "again.duckdb")
    child = start_child(folder / "child.py", path, "commit", argument, "sql:MERGE INTO incidents", T_CHILD)
    try:
        assert child.stdout.readline().strip() == "paused"
    finally:
        child.kill()
        child.communicate(timeout=30)
    with Store(path) as store:
        commit_file(store, NEWER, T_CHILD)
    assert contents(path) == contents(after)
