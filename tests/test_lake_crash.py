"""A writer killed (SIGKILL) on a DuckLake store, before, inside or right after its transaction:
the change is all there or not at all (tests/test_crash.py's points, on a lake), the writers lock
it held is free again, and `maintain` (the command line's, run in this process) deletes the data
files the killed writer wrote and no snapshot knows."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from itscm.cli import main
from itscm.ducklake import METADATA_CATALOG
from itscm.ingest import undo_upload
from itscm.store import Store
from tests import backends
from tests.crash_child import killed_at_each_point
from tests.store_contents import table_contents, upload_names
from tests.test_crash import CHILD, CRASH_TEST, EARLIER, FIXTURES, NEWER, POINTS, T_CHILD, T_EARLIER, commit_file

pytestmark = pytest.mark.ducklake_only

@pytest.fixture(scope="module", params=["commit", "undo"])
def lakes(request, small_org_path, tmp_path_factory):
    """For one action (an instance each: under pytest-xdist the two tests usually run on different
    workers), the lake before the child's change (copied for each kill) and the contents the change
    leaves when it completes."""
    folder = tmp_path_factory.mktemp("lake-crash")
    (folder / "child.py").write_text(CHILD)
    action = request.param
    before = backends.copy_of(small_org_path)   # the organisation moved to a lake once, for the session
    with Store(before) as store:
        commit_file(store, EARLIER, T_EARLIER)
        argument = str(FIXTURES / NEWER)
        if action == "undo":
            argument = commit_file(store, NEWER, T_EARLIER + dt.timedelta(hours=1))
    after = backends.copy_of(before)
    with Store(after) as store:
        if action == "commit":
            commit_file(store, NEWER, T_CHILD)
        else:
            undo_upload(CRASH_TEST, store, argument, now=T_CHILD)
    return folder, action, before, contents(after), argument


def contents(target: str) -> dict:
    with Store(target) as store:
        return table_contents(store, upload_names(store))


def orphaned_files(store: Store) -> set[Path]:
    """Parquet files in the lake's data folder that the catalog names nowhere. The catalog names a
    file relative to its table's folder; the names themselves are unique (a UUID each)."""
    folder = Path(store.scalar(f"SELECT value FROM {METADATA_CATALOG}.ducklake_metadata WHERE key = 'data_path'"))
    known = {Path(path).name for (path,) in store.rows(
        f"SELECT path FROM {METADATA_CATALOG}.ducklake_data_file UNION ALL "
        f"SELECT path FROM {METADATA_CATALOG}.ducklake_delete_file")}
    return {file for file in folder.rglob("*.parquet") if file.name not in known}


@pytest.mark.long
def test_a_writer_killed_on_a_lake_leaves_all_or_nothing_and_maintain_deletes_what_it_left(lakes):
    folder, action, before, after_contents, argument = lakes
    before_contents = contents(before)
    children = killed_at_each_point(folder / "child.py", before, folder, action, argument, POINTS[action], T_CHILD,
                                    copy=lambda source, _n: backends.copy_of(source))
    left_files = 0
    for point, state, lake, _ in children:
        assert contents(lake) == (after_contents if state == "after" else before_contents), point
        with Store(lake) as store:
            started = time.monotonic()
            with store.transaction() as cursor:   # the killed writer's lock went with its connection
                cursor.execute("INSERT INTO business_units VALUES ('bu-after-kill', 'After', NULL, NULL)")
            assert time.monotonic() - started < 30, point
            orphans = orphaned_files(store)
            left_files += len(orphans)
        # The command line's own entry point, in this process: a new interpreter per kill point
        # (a dozen) cost seconds each and proves nothing more about what maintain deletes.
        assert main(["maintain", "--store", lake, "--retention-days", "0"]) == 0
        with Store(lake) as store:
            assert orphaned_files(store) == set(), point
            assert store.scalar("SELECT count(*) FROM business_units WHERE unit_id = 'bu-after-kill'") == 1
    assert left_files > 0, "no kill left a file behind: the test no longer reaches inside a write"
