"""The lake's small tables copied into this process's memory, one copy per snapshot of the lake.

On DuckLake every read of a table asks the catalog for the table's files (3.5-4 ms of CPU, however
few its rows; docs/PERFORMANCE.md), and a measure's statement reads services, business units,
drills, plans and the rule several times over: on a 1M-incident lake, rto_attainment took three
times the file's CPU. Reads on a lake see the small tables below as copies in the in-memory
database the lake is attached to (its `memory` catalog), made again when the lake's snapshot has
moved, and the large tables (incidents, the rollup's months, changes and the histories) in the
lake itself. Only `itscm/store.py` uses this module; docs/DESIGN.md §19, "Small tables copied".

Consistent: a read runs in one transaction whose first statement reads both the lake's snapshot
and the snapshot the copies were made at; the statement runs only when they are the same, so it
never sees the small tables of one snapshot and the large ones of another. Otherwise the copies
are made again (under a lock, one refresh at a time in the process) and the read starts again.
Writes never see the copies: a reading cursor names them through its search path, and no write
runs on such a cursor (Store.transaction's cursor is another, with the lake's own search path).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import duckdb

from itscm import ducklake, lake_files

T = TypeVar("T")

# The tables copied: those the measures and the filter read that grow with the services, never
# with the incidents or the changes (at 10,000 services the largest have 20,000-30,000 rows). The
# incidents, the rollup's incident_months, changes, service_change_days, the uploads, change_log and
# the prior-version tables stay in the lake: copying them would cost more than their reads save.
COPIED_TABLES = (
    "business_units", "services", "dependencies", "suppliers", "service_suppliers",
    "plans", "plan_reviews", "drills", "drill_findings", "assets", "service_assets",
    "policy", "store_meta", "continuity_event_rule", "incident_month_marks", "incident_month_rtos",
)
MEMORY_CATALOG = "memory"   # an in-memory DuckDB's own catalog, beside the attached lake
SCHEMA = "lake_copies"
# Which snapshot of the lake the copies hold (-1: none yet): beside them, so that a read's view of
# the copies and of their snapshot are one (no table of the store has its name).
MARKER = f"{MEMORY_CATALOG}.{SCHEMA}.lake_copies_snapshot"
# Unqualified names find a copy first, else the lake's table.
SEARCH_PATH = f"{MEMORY_CATALOG}.{SCHEMA},{ducklake.CATALOG}.main"
# In one statement, so that the transaction's view of the lake and of the copies are taken together.
_SNAPSHOTS_SQL = f"SELECT (SELECT id FROM {ducklake.CATALOG}.current_snapshot()), (SELECT snapshot_id FROM {MARKER})"
# A read whose copies went stale again before it could use them (another process committing
# meanwhile, each time) reads the lake's tables instead after this many tries.
READ_ATTEMPTS = 3


class LakeCopies:
    """The copies of one lake in one process (one per `Store`): made on `root`'s database."""

    def __init__(self, root: duckdb.DuckDBPyConnection):
        self._root = root
        self._refresh_lock = threading.Lock()
        self._refresh_cursor: duckdb.DuckDBPyConnection | None = None   # used under the lock only
        self.refreshes = 0   # how many times the copies were made again, and the tables copied
        self.last_copied: tuple[str, ...] = ()   # the last time: what a test can watch
        # The large tables, read from their files where that is reading the table (lake_files).
        self.file_views = lake_files.FileViews(f"{MEMORY_CATALOG}.{SCHEMA}")
        root.execute(f"CREATE SCHEMA IF NOT EXISTS {MEMORY_CATALOG}.{SCHEMA}")
        root.execute(f"CREATE OR REPLACE TABLE {MARKER} AS SELECT -1::BIGINT AS snapshot_id")

    def reading_cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor whose unqualified table names find the copies first. For reads only."""
        cursor = self._root.cursor()
        cursor.execute(f"SET search_path = '{SEARCH_PATH}'")
        ducklake.say_on_ducklake(cursor)
        return cursor

    def read(self, cursor: duckdb.DuckDBPyConnection, fallback: duckdb.DuckDBPyConnection,
             run: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`run(cursor)` in a transaction that sees the copies of the snapshot it reads from the
        lake. `cursor`: from `reading_cursor`; `fallback`: one on the lake's own tables, used when
        the lake moves on faster than the copies can follow. `run` must fetch its whole result."""
        if not self.begin(cursor):
            return run(fallback)
        try:
            return run(cursor)
        finally:
            cursor.execute("ROLLBACK")   # it only read

    def begin(self, cursor: duckdb.DuckDBPyConnection) -> bool:
        """A transaction begun on `cursor` (from `reading_cursor`) that sees the copies of the
        snapshot it reads from the lake, the copies made again first where they are stale. False,
        with no transaction left open, when the lake moved on faster than the copies could follow."""
        for _ in range(READ_ATTEMPTS):
            cursor.execute("BEGIN TRANSACTION")
            try:
                lake_snapshot, copies_snapshot = cursor.execute(_SNAPSHOTS_SQL).fetchall()[0]
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            if lake_snapshot == copies_snapshot:
                return True
            cursor.execute("ROLLBACK")   # it only read
            self.refresh()
        return False

    def refresh(self) -> None:
        """The copies made again from the lake's latest snapshot, unless they already hold it: those
        of the tables whose rows changed since their snapshot, or every one when that cannot be told;
        and the views over the large tables' files (lake_files). One transaction: a read sees every
        copy and view of the old snapshot or every one of the new."""
        with self._refresh_lock:
            if self._refresh_cursor is None:
                self._refresh_cursor = self._root.cursor()
                ducklake.use_store(self._refresh_cursor)
            cursor = self._refresh_cursor
            cursor.execute("BEGIN TRANSACTION")
            try:
                snapshot = ducklake.snapshot_id(cursor)
                copied_at = cursor.execute(f"SELECT snapshot_id FROM {MARKER}").fetchall()[0][0]
                if copied_at != snapshot:
                    changed = _tables_changed(cursor, copied_at, snapshot)
                    self.last_copied = _copy_tables(cursor, COPIED_TABLES if changed is None else
                                                    tuple(table for table in COPIED_TABLES if table in changed))
                    # Every time: a snapshot that only merged files records no table as changed.
                    self.file_views.make(cursor, snapshot)
                    cursor.execute(f"UPDATE {MARKER} SET snapshot_id = $snapshot", {"snapshot": snapshot})
                    self.refreshes += 1
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                self.file_views.forget()
                raise

    def close(self) -> None:
        with self._refresh_lock:
            if self._refresh_cursor is not None:
                self._refresh_cursor.close()
                self._refresh_cursor = None


# The changes a snapshot records that leave every table's columns as they were: rows inserted,
# rows deleted (an update is both). Any other (a table created, altered or dropped) copies every table.
_ROW_CHANGES = frozenset({"tables_inserted_into", "tables_deleted_from"})


def _tables_changed(cursor: duckdb.DuckDBPyConnection, since: int, until: int) -> set[str] | None:
    """The names of the tables whose rows the snapshots after `since` up to `until` changed, as the
    lake records each snapshot's changes; None when that cannot be told: no copies yet, a snapshot
    between them expired (maintenance), or one that changed more than rows."""
    if since < 0:
        return None
    snapshots = cursor.execute(f"SELECT changes FROM {ducklake.CATALOG}.snapshots() "
                               "WHERE snapshot_id > $since AND snapshot_id <= $until",
                               {"since": since, "until": until}).fetchall()
    if len(snapshots) != until - since:
        return None
    table_ids: set[str] = set()
    for (changes,) in snapshots:
        if not set(changes) <= _ROW_CHANGES:
            return None
        for change in _ROW_CHANGES:
            table_ids.update(changes.get(change) or ())
    if not table_ids:
        return set()
    names = dict(cursor.execute(f"SELECT table_id::VARCHAR, table_name FROM {ducklake.METADATA_CATALOG}.ducklake_table "
                                "WHERE end_snapshot IS NULL").fetchall())
    if not table_ids <= names.keys():
        return None
    return {names[table_id] for table_id in table_ids}


def _copy_tables(cursor: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> tuple[str, ...]:
    """Copies `tables` (of COPIED_TABLES) from the lake as `cursor`'s transaction reads it."""
    if not tables:
        return tables
    # A store kept at an older schema (or not yet migrated) lacks some tables: those are not
    # copied, and a copy left from before is dropped, so that the name finds the lake's table.
    in_lake = {name for (name,) in cursor.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = $catalog AND table_schema = 'main'",
        {"catalog": ducklake.CATALOG}).fetchall()}
    for table in tables:
        if table in in_lake:
            cursor.execute(f"CREATE OR REPLACE TABLE {MEMORY_CATALOG}.{SCHEMA}.{table} AS "
                           f"SELECT * FROM {ducklake.CATALOG}.main.{table}")
        else:
            cursor.execute(f"DROP TABLE IF EXISTS {MEMORY_CATALOG}.{SCHEMA}.{table}")
    return tables
