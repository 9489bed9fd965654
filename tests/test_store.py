"""The store: migrations, upgrades in place, refusals, locking and concurrent readers.

Run on both backends (`--backend ducklake`, tests/backends.py): every migration makes the same
schema on DuckLake, where each test's store is a new lake."""

import ast
import datetime as dt
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from itscm import ducklake, lake_copies, migrations, rollup
from itscm.store import Store, StoreError, StoreLockedError, StoreVersionError, open_store, resolve_store_path
from tests import backends
from tests.together import run_together


@pytest.fixture
def target(tmp_path):
    """Where a test's new store goes: a file, or a new lake with no tables yet."""
    return backends.new_target(tmp_path / "s.duckdb", migrated=False)


def test_new_store_has_latest_schema_and_default_policy(target):
    with Store(target) as store:
        assert store.schema_version() == migrations.LATEST_VERSION
        assert store.rows("SELECT tier, is_critical FROM policy ORDER BY tier") == [
            (1, True), (2, True), (3, False), (4, False)]
        assert store.rows("SELECT DISTINCT change_fails_review FROM policy") == [(True,)]
        if not store.on_ducklake:   # on DuckLake: the catalog's snapshot, moved by the migrations too
            assert store.data_version() == 0


def test_every_migration_makes_the_same_schema_on_both_backends(target):
    """The schema as the file makes it, written down: the lake's must be the same, column for
    column (names, types, nullability, literal defaults)."""
    with Store(target) as store:
        # the store's own cursor: current_database() is the store there (a lake's reads name the
        # in-memory catalog of their copies first, docs/DESIGN.md §19)
        columns = store.cursor().execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "ORDER BY table_name, ordinal_position").fetchall()
    with Store() as reference:
        expected = reference.rows(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "ORDER BY table_name, ordinal_position")
    assert len(columns) > 200
    assert [row[:4] for row in columns] == [row[:4] for row in expected]
    defaults = {(table, column): default for table, column, _, _, default in columns if default is not None}
    expected_defaults = {(table, column): default for table, column, _, _, default in expected if default is not None}
    assert defaults.keys() == expected_defaults.keys()


def test_an_older_store_upgrades_in_place_keeping_its_rows(target, monkeypatch):
    path = target
    # A store made by the program as it was at schema version 1.
    monkeypatch.setattr("itscm.store.LATEST_VERSION", 1)
    with Store(path) as old:
        assert old.schema_version() == 1
        with old.transaction() as cursor:
            cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, 'Ada')")
            cursor.execute("INSERT INTO incidents (incident_id, source, opened_at) "
                           "VALUES ('servicenow:INC1', 'servicenow', TIMESTAMP '2026-01-01 10:00')")
        assert "incident_prior_versions" not in old._user_tables()
    monkeypatch.undo()

    with Store(path) as upgraded:
        assert upgraded.schema_version() == migrations.LATEST_VERSION
        assert upgraded.rows("SELECT name, head FROM business_units") == [("Payments", "Ada")]
        assert upgraded.scalar("SELECT incident_id FROM incidents") == "servicenow:INC1"
        assert upgraded.scalar("SELECT count(*) FROM incident_prior_versions") == 0
        # the upgrade fills derived columns of existing rows: no outage end for an open incident
        assert upgraded.rows("SELECT outage_end, rta_minutes FROM incidents") == [(None, None)]
        assert upgraded.scalar("SELECT count(*) FROM services WHERE service_key IS NULL") == 0
        versions = upgraded.rows("SELECT version FROM schema_version ORDER BY version")
        assert versions == [(v,) for v, _, _ in migrations.MIGRATIONS]
        with upgraded.read_transaction() as cursor:
            assert rollup.differences(cursor) == []


def test_a_store_of_version_13_keeps_its_changes_keyed_by_source_and_number(target, monkeypatch):
    path = target
    monkeypatch.setattr("itscm.store.LATEST_VERSION", 13)   # changes still stored with change_id
    with Store(path) as old, old.transaction() as cursor:
        for table, extra in (("changes", "upload_id"), ("change_prior_versions", "prior_upload_id")):
            cursor.execute(f"INSERT INTO {table} (change_id, source, number, state, {extra}"
                           f"{', upload_id' if table == 'change_prior_versions' else ''}) "
                           f"VALUES ('servicenow:CHG1', 'servicenow', 'CHG1', 'closed', 'chg-1'"
                           f"{', ' + repr('chg-2') if table == 'change_prior_versions' else ''})")
    monkeypatch.undo()
    with Store(path) as upgraded:
        assert upgraded.schema_version() == migrations.LATEST_VERSION
        for table in ("changes", "change_prior_versions"):
            # the store's own cursor: on a lake, reads see their catalog as the copies' (lake_copies)
            columns = {name for (name,) in upgraded.cursor().execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $t "
                "AND table_catalog = current_database()", {"t": table}).fetchall()}
            assert "change_id" not in columns and {"source", "number"} <= columns
            assert upgraded.rows(f"SELECT source, number, state FROM {table}") == [("servicenow", "CHG1", "closed")]


def old_store_with_rows(path, version: int) -> None:
    """A store as the program made it at schema `version`, holding services and incidents whose
    derived columns (where the version has them) were never filled."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("itscm.store.LATEST_VERSION", version)
        with Store(path) as old, old.transaction() as cursor:
            cursor.execute("INSERT INTO services (service_id, name, tier, rto_minutes, impact_cost_per_hour) VALUES "
                           "('svc-a', 'Ledger', 1, 60, 1000), ('svc-b', 'Portal', 2, 240, NULL)")
            opened = dt.datetime(2026, 1, 30, 22)
            for n in range(40):
                cursor.execute(
                    "INSERT INTO incidents (incident_id, source, service_id, service_name, opened_at, restored_at, "
                    "resolved_at, closed_at) VALUES (?, 'test', ?, ?, ?, ?, ?, ?)",
                    [f"test:{n}", [None, "svc-a", "svc-b"][n % 3], ["LEGACY", "Ledger", "Portal"][n % 3],
                     opened + dt.timedelta(days=9 * n), opened + dt.timedelta(days=9 * n, hours=n % 7)
                     if n % 5 else None, opened + dt.timedelta(days=9 * n + n % 40) if n % 4 else None,
                     opened + dt.timedelta(days=9 * n + 50) if n % 6 else None])


@pytest.mark.parametrize("version", [1, 3, 5])
def test_an_old_store_upgrades_with_its_derived_data_filled_by_the_current_rebuild(target, version):
    path = target
    old_store_with_rows(path, version)
    with Store(path) as upgraded:
        assert upgraded.schema_version() == migrations.LATEST_VERSION
        assert upgraded.scalar("SELECT count(*) FROM incidents WHERE outage_end IS NOT NULL") > 20
        assert upgraded.scalar("SELECT count(*) FROM incident_months WHERE outage_seconds > 0") > 10
        with upgraded.read_transaction() as cursor:
            assert rollup.differences(cursor) == []


@pytest.mark.file_only   # it opens the file with DuckDB itself
def test_a_store_whose_derived_data_was_never_filled_is_filled_on_opening(tmp_path):
    path = tmp_path / "unfilled.duckdb"
    old_store_with_rows(path, migrations.LATEST_VERSION)   # migrated empty, rows written without upkeep
    with duckdb.connect(str(path)) as raw:   # as a program stopped between migrating and filling leaves it
        raw.execute("DELETE FROM store_meta WHERE key = $key", {"key": rollup.STAMP_KEY})
    with Store(path, read_only=True) as store, store.read_transaction() as cursor:
        assert {difference["table"] for difference in rollup.differences(cursor)} >= {"incidents", "store_meta"}
    with Store(path) as store, store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []


def test_migrations_are_frozen_literal_sql_importing_nothing():
    """What a schema version means never changes: each migration is a string literal, and the
    module imports nothing (in particular nothing of itscm that could change later)."""
    tree = ast.parse(Path(migrations.__file__).read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert [node.module for node in imports] == ["__future__"]
    literals = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    migration_names = {name for name, value in literals.items()
                       if isinstance(value, ast.Constant) and isinstance(value.value, str)}
    listed = next(node.value for node in tree.body if isinstance(node, ast.AnnAssign)
                  and node.target.id == "MIGRATIONS")
    for entry in listed.elts:
        sql = entry.elts[2]
        assert isinstance(sql, ast.Name) and sql.id in migration_names, ast.unparse(entry)
    assert len(listed.elts) == len(migrations.MIGRATIONS)


@pytest.mark.file_only   # it opens the file with DuckDB itself
def test_a_store_from_a_newer_program_is_refused_not_touched(tmp_path):
    path = tmp_path / "future.duckdb"
    with Store(path) as store, store.transaction() as cursor:
        cursor.execute("INSERT INTO schema_version VALUES (99, 'from the future', now()::TIMESTAMP)")
    with pytest.raises(StoreVersionError, match="newer than this program"):
        Store(path)
    with duckdb.connect(str(path)) as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 99


@pytest.mark.file_only
def test_a_foreign_duckdb_file_is_refused(tmp_path):
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as raw:
        raw.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StoreError, match="not an ITSCM store"):
        Store(path)


def test_read_only_open_of_an_old_store_asks_for_an_upgrade(target, monkeypatch):
    path = target
    monkeypatch.setattr("itscm.store.LATEST_VERSION", 1)
    Store(path).close()
    monkeypatch.undo()
    with pytest.raises(StoreVersionError, match="itscm init"):
        Store(path, read_only=True)


def test_missing_store_is_a_clear_error_when_not_creating(target):
    with pytest.raises(StoreError, match=r"No store (at|in)"):
        Store(target, create=False)


def test_a_failed_write_leaves_nothing_behind():
    store = backends.new_store()
    before = store.data_version()
    with pytest.raises(RuntimeError), store.transaction() as cursor:
        cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)")
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM business_units") == 0
    assert store.data_version() == before


@pytest.mark.file_only
def test_store_held_by_another_process_gives_a_message_naming_it(tmp_path):
    path = tmp_path / "held.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from itscm.store import Store
            store = Store({str(path)!r})
            print("holding", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreLockedError, match=rf"in use by another process \(PID {holder.pid}"):
            Store(path)
        cli = subprocess.run([sys.executable, "-m", "itscm", "summary", "--store", str(path)],
                             capture_output=True, text=True)
        assert cli.returncode != 0
        assert "in use by another process" in cli.stderr
        assert "Traceback" not in cli.stderr
    finally:
        holder.communicate("done\n", timeout=30)


def test_readers_on_many_threads_and_serialised_writers():
    store = backends.new_store()
    before = store.data_version()
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(20):
                with store.transaction() as cursor:
                    cursor.execute("INSERT INTO business_units VALUES (?, ?, NULL, NULL)",
                                   [f"bu-{worker}-{n}", f"Unit {worker}-{n}"])
        except BaseException as error:  # collected, asserted below
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(50):
                store.scalar("SELECT count(*) FROM business_units")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.scalar("SELECT count(*) FROM business_units") == 40
    assert store.data_version() == before + 40


def test_store_location_rule(monkeypatch):
    monkeypatch.delenv("ITSCM_STORE", raising=False)
    assert resolve_store_path().endswith("data/itscm.duckdb")
    monkeypatch.setenv("ITSCM_STORE", "/elsewhere/s.duckdb")
    assert resolve_store_path() == "/elsewhere/s.duckdb"
    assert resolve_store_path("/explicit.duckdb") == "/explicit.duckdb"


def test_open_store_shares_one_handle_per_path(tmp_path):
    target = backends.new_target(tmp_path / "shared.duckdb")
    first = open_store(target)
    try:
        assert open_store(str(target)) is first
    finally:
        first.close()


def read_once_on_new_threads(store: Store, threads: int, at_once: int = 1) -> None:
    for first in range(0, threads, at_once):
        batch = [threading.Thread(target=store.scalar, args=("SELECT count(*) FROM services",))
                 for _ in range(min(at_once, threads - first))]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join()


def test_cursors_of_ended_threads_are_released():
    # Streamlit runs every rerun on a new thread: a cursor kept per thread for good would grow
    # with every rerun of a long-running server.
    with backends.new_store() as store:
        read_once_on_new_threads(store, 500)
        assert store.open_cursors() == 1   # the last thread's, released when the next one reads
        read_once_on_new_threads(store, 500, at_once=8)
        assert store.open_cursors() <= 8


def test_a_cursor_is_never_shared_by_two_live_threads_and_a_long_lived_thread_keeps_its_own():
    with backends.new_store() as store:
        keeper_cursor = {}
        keeper_may_end = threading.Event()

        def keeper() -> None:
            keeper_cursor["first"] = store.cursor()
            keeper_may_end.wait(timeout=60)
            keeper_cursor["last"] = store.cursor()

        long_lived = threading.Thread(target=keeper)
        long_lived.start()
        while "first" not in keeper_cursor:
            time.sleep(0.01)
        read_once_on_new_threads(store, 50)   # threads come and go meanwhile

        cursors, both_hold = [], threading.Barrier(2)

        def hold() -> None:
            cursors.append(store.cursor())
            both_hold.wait(timeout=60)   # both alive, each with its cursor
            store.scalar("SELECT 1")

        pair = [threading.Thread(target=hold) for _ in range(2)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()
        keeper_may_end.set()
        long_lived.join()

        assert cursors[0] is not cursors[1]
        assert keeper_cursor["first"] not in cursors
        assert keeper_cursor["last"] is keeper_cursor["first"]
        assert store.cursor() not in [*cursors, keeper_cursor["first"]]


def test_close_closes_every_threads_cursor():
    store = backends.new_store()
    cursors = []
    alive = threading.Event()
    reader = threading.Thread(target=lambda: (cursors.append(store.cursor()), alive.wait(timeout=60)))
    reader.start()
    while not cursors:
        time.sleep(0.01)
    cursors.append(store.cursor())
    store.close()
    alive.set()
    reader.join()
    assert store.open_cursors() == 0
    for cursor in cursors:
        with pytest.raises(duckdb.ConnectionException):
            cursor.execute("SELECT 1")


@pytest.mark.ducklake_only
def test_a_ducklake_store_is_open_in_several_processes_and_each_sees_the_others_commits():
    """Held open here (as the app holds it), the store is read and written by another process;
    this process's cache key (the catalog's snapshot) moves with the other's commit."""
    target = backends.new_target()
    with Store(target) as held:
        with held.transaction() as cursor:
            cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)")
        before = held.data_version()
        other = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
                from itscm.store import Store
                with Store({target!r}) as store:
                    print(store.scalar("SELECT name FROM business_units"), flush=True)
                    with store.transaction() as cursor:
                        cursor.execute("INSERT INTO business_units VALUES ('bu2', 'Lending', NULL, NULL)")
            """)],
            capture_output=True, text=True, timeout=120)
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "Payments"
        assert held.data_version() > before
        assert held.rows("SELECT name FROM business_units ORDER BY unit_id") == [("Payments",), ("Lending",)]
        summary = subprocess.run([sys.executable, "-m", "itscm", "summary", "--json", "--store", target],
                                 capture_output=True, text=True, timeout=120)
        assert summary.returncode == 0, summary.stderr
        assert "Traceback" not in summary.stderr


def test_a_write_that_conflicts_is_run_again_and_one_that_keeps_conflicting_writes_nothing(monkeypatch):
    pauses = []
    monkeypatch.setattr("itscm.store.time.sleep", pauses.append)
    store = backends.new_store()
    runs = []

    def body(cursor):   # conflicts twice, as a commit would when another process got there first
        runs.append(1)
        cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)")
        if len(runs) < 3:
            raise duckdb.TransactionException("Failed to commit DuckLake transaction. Transaction conflict")
        return "written"

    assert store.write(body) == "written"
    assert len(runs) == 3 and len(pauses) == 2
    assert all(0 <= pause <= 0.05 * 2 ** n for n, pause in enumerate(pauses))
    assert store.rows("SELECT unit_id FROM business_units") == [("bu1",)]

    def always_conflicting(cursor):
        cursor.execute("INSERT INTO business_units VALUES ('bu2', 'Lending', NULL, NULL)")
        raise duckdb.TransactionException("Transaction conflict")

    with pytest.raises(StoreError, match="5 times"):
        store.write(always_conflicting)
    with pytest.raises(duckdb.TransactionException, match="cannot commit"):   # other errors are not retried
        store.write(lambda cursor: (_ for _ in ()).throw(duckdb.TransactionException("cannot commit")))
    assert store.rows("SELECT unit_id FROM business_units") == [("bu1",)]


COPY_OF_UNITS = f"{lake_copies.MEMORY_CATALOG}.{lake_copies.SCHEMA}.business_units"


@pytest.mark.ducklake_only
def test_reads_on_a_lake_see_the_small_tables_as_copies_made_once_per_snapshot():
    """The copies are what a read sees: changed behind the store's back, the read shows the
    change. They are made again only when the lake's snapshot moves (a commit), and then show it."""
    with backends.new_store() as store:
        store.write(lambda cursor: cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)"))
        assert store.scalar("SELECT name FROM business_units") == "Payments"
        made = store._copies.refreshes
        for _ in range(3):
            assert store.rows("SELECT count(*) FROM business_units") == [(1,)]
        assert store._copies.refreshes == made   # nothing committed: no copy made again
        store._root.execute(f"UPDATE {COPY_OF_UNITS} SET name = 'the copy'")
        assert store.scalar("SELECT name FROM business_units") == "the copy"
        assert store.scalar("SELECT count(*) FROM incidents") == 0   # a large table: the lake's
        store.write(lambda cursor: cursor.execute("INSERT INTO business_units VALUES ('bu2', 'Lending', NULL, NULL)"))
        assert store.rows("SELECT name FROM business_units ORDER BY unit_id") == [("Payments",), ("Lending",)]
        assert store._copies.refreshes == made + 1


@pytest.mark.ducklake_only
def test_only_the_copies_of_tables_whose_rows_changed_are_made_again():
    """The lake records which tables each snapshot changed: after a commit, only their copies are
    made again (none after one writing only incidents); after one that changed more than rows (a
    table created), every copy."""
    target = backends.new_target()
    with Store(target) as store, Store(target) as other:
        assert store.scalar("SELECT count(*) FROM services") == 0
        assert store._copies.last_copied == lake_copies.COPIED_TABLES   # the first copies: all of them
        other.write(lambda cursor: cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)"))
        other.write(lambda cursor: cursor.execute("UPDATE policy SET is_critical = NOT is_critical WHERE tier = 3"))
        assert store.rows("SELECT unit_id FROM business_units") == [("bu1",)]
        assert store.rows("SELECT is_critical FROM policy WHERE tier = 3") == [(True,)]
        assert store._copies.last_copied == ("business_units", "policy")
        build_service_and_incident(other)
        other.write(lambda cursor: cursor.execute("DELETE FROM incidents"))
        assert store.scalar("SELECT name FROM services") == "Payments"
        assert store._copies.last_copied == ("services",)
        other.write(lambda cursor: cursor.execute("INSERT INTO incidents (incident_id, source, opened_at) "
                                                  "VALUES ('INC-1', 'test', TIMESTAMP '2026-01-05 09:00')"))
        refreshes = store._copies.refreshes
        assert store.scalar("SELECT count(*) FROM incidents") == 1
        assert store._copies.refreshes == refreshes + 1 and store._copies.last_copied == ()
        other.write(lambda cursor: cursor.execute("CREATE TABLE scratch (x INTEGER)"))
        assert store.scalar("SELECT count(*) FROM business_units") == 1
        assert store._copies.last_copied == lake_copies.COPIED_TABLES


@pytest.mark.ducklake_only
def test_a_write_on_a_lake_reads_and_writes_the_lakes_tables_never_the_copies():
    """Inside `store.write`, the body's cursor and this thread's reads see the lake's own tables
    (and what the write has done so far), not the copies, which are stale here on purpose; what it
    writes lands in the lake: another handle (another DuckDB, as another process) reads it."""
    target = backends.new_target()
    with Store(target) as store, Store(target) as other:
        store.write(lambda cursor: cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)"))
        assert store.scalar("SELECT name FROM business_units") == "Payments"   # the copies made
        store._root.execute(f"UPDATE {COPY_OF_UNITS} SET name = 'the copy'")
        seen = {}

        def rename(cursor):
            seen["cursor"] = cursor.execute("SELECT name FROM business_units").fetchall()
            cursor.execute("UPDATE business_units SET name = name || ' and Lending'")
            seen["store"] = store.rows("SELECT name FROM business_units")

        store.write(rename)
        assert seen == {"cursor": [("Payments",)], "store": [("Payments and Lending",)]}
        assert other.scalar("SELECT name FROM business_units") == "Payments and Lending"
        assert store.scalar("SELECT name FROM business_units") == "Payments and Lending"
        other.write(lambda cursor: cursor.execute("INSERT INTO business_units VALUES ('bu2', 'Cards', NULL, NULL)"))
        assert store.rows("SELECT unit_id FROM business_units ORDER BY unit_id") == [("bu1",), ("bu2",)]


@pytest.mark.ducklake_only
def test_a_read_on_a_lake_sees_the_small_and_large_tables_of_one_snapshot(monkeypatch):
    """Another handle commits a service and its incident together: one statement joining them
    sees both or neither. And when the copies cannot follow the lake (each attempt finds them
    stale), the read reads the lake's own tables instead of stale copies."""
    target = backends.new_target()
    with Store(target) as store, Store(target) as other:
        joined = ("SELECT count(*) FROM incidents i JOIN services s ON s.service_id = i.service_id "
                  "WHERE s.service_id = 'SVC-9'")
        assert store.scalar(joined) == 0
        build_service_and_incident(other)
        assert store.scalar(joined) == 1
        other.write(lambda cursor: cursor.execute("UPDATE services SET name = 'Renamed' WHERE service_id = 'SVC-9'"))
        monkeypatch.setattr(lake_copies.LakeCopies, "refresh", lambda self: None)
        assert store.scalar("SELECT name FROM services WHERE service_id = 'SVC-9'") == "Renamed"


def build_service_and_incident(store: Store) -> None:
    def both(cursor):
        cursor.execute("INSERT INTO services (service_id, name, tier) VALUES ('SVC-9', 'Payments', 1)")
        cursor.execute("INSERT INTO incidents (incident_id, source, service_id, opened_at) "
                       "VALUES ('INC-9', 'test', 'SVC-9', TIMESTAMP '2026-01-05 09:00')")

    store.write(both)


@pytest.mark.ducklake_only
def test_a_real_conflict_with_a_writer_outside_the_lock_is_retried():
    """A connection of its own is another DuckDB instance, as another process is, and one that
    takes no writers lock (a hand-run SQL session): it commits an update of the same row while
    the store's writer is inside its transaction; the store's writer is run again."""
    target = backends.new_target()
    with Store(target) as store:
        with store.transaction() as cursor:
            cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, 'Ada')")
        runs = []

        def set_head(cursor):
            runs.append(cursor.execute("SELECT head FROM business_units").fetchall()[0][0])
            cursor.execute("UPDATE business_units SET head = head || ' and Bo' WHERE unit_id = 'bu1'")
            if len(runs) == 1:
                other = ducklake.connect(target, read_only=False, memory_limit="1GB")
                other.execute("UPDATE business_units SET head = 'Cy' WHERE unit_id = 'bu1'")
                other.close()

        store.write(set_head)
        assert runs == ["Ada", "Cy"]   # the second run read the other's commit
        assert store.scalar("SELECT head FROM business_units") == "Cy and Bo"


@pytest.mark.ducklake_only
def test_writers_of_two_handles_on_one_lake_take_turns_and_the_second_reads_the_firsts_commit():
    """Two handles are two DuckDB instances, as two processes are. While the first is inside its
    write, the second's write waits (the catalog's writers lock); once the first commits, the
    second runs, reading what the first wrote: no conflict, nothing run twice."""
    target = backends.new_target()
    with Store(target) as first, Store(target) as second:
        seen_by_second, second_runs = [], []

        def second_adds_a_unit(cursor):
            second_runs.append(1)
            seen_by_second.append(cursor.execute("SELECT count(*) FROM business_units").fetchall()[0][0])
            cursor.execute("INSERT INTO business_units VALUES ('bu2', 'Lending', NULL, NULL)")

        waiting = threading.Thread(target=second.write, args=(second_adds_a_unit,))

        def first_adds_a_unit(cursor):
            cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)")
            waiting.start()
            time.sleep(1.0)
            assert second_runs == [], "the second writer ran while the first held the lock"

        first.write(first_adds_a_unit)
        waiting.join(timeout=60)
        assert not waiting.is_alive()
        assert second_runs == [1] and seen_by_second == [1]
        assert first.rows("SELECT unit_id FROM business_units ORDER BY unit_id") == [("bu1",), ("bu2",)]


@pytest.mark.ducklake_only
def test_a_writer_that_waits_too_long_for_another_gives_up_with_a_clear_error(monkeypatch):
    monkeypatch.setattr(ducklake, "WRITERS_LOCK_WAIT_S", 0.5)
    target = backends.new_target()
    with Store(target) as first, Store(target) as second:
        with first.writers_excluded():
            started = time.monotonic()
            with pytest.raises(StoreError, match="Another process has been writing to the store"), \
                    second.transaction() as cursor:
                cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)")
            assert time.monotonic() - started < 30
        assert second.rows("SELECT unit_id FROM business_units") == []
        with second.transaction() as cursor:   # once the first lets go
            cursor.execute("INSERT INTO business_units VALUES ('bu1', 'Payments', NULL, NULL)")
        assert first.rows("SELECT unit_id FROM business_units") == [("bu1",)]


@pytest.mark.ducklake_only
def test_two_handles_opening_a_new_lake_at_once_migrate_it_once():
    """Two DuckDB instances, as two processes starting together are, open an empty catalog: one
    migrates it while the other waits for the writers lock, then finds nothing to do."""
    target = backends.new_target(migrated=False)
    opened, failures = [], []

    def open_it():
        try:
            opened.append(Store(target))
        except Exception as error:   # reported below, with the other thread's result
            failures.append(error)

    run_together(open_it, 2, timeout=600)
    assert failures == [] and len(opened) == 2
    assert sorted(store.made_now for store in opened) == [False, True]
    versions = opened[0].rows("SELECT version FROM schema_version ORDER BY version")
    assert versions == [(version,) for version, _, _ in sorted(migrations.MIGRATIONS)]
    for store in opened:
        store.close()
