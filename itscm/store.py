"""The continuity store: one DuckDB database, opened once per process.

Every SQL statement of the product goes through a `Store`, the one place that knows which
backend it talks to: an embedded DuckDB file, or a DuckLake catalog in PostgreSQL with its data
files in a folder (`ducklake:postgres:...`, itscm/ducklake.py, docs/DESIGN.md §19), which several
processes open at once. The schema and the SQL are the same on both.

Concurrency inside a process: reads run on a cursor per thread (DuckDB cursors are separate
connections to the same database, safe to use from their own thread), closed once its thread has
ended; writes are serialised by a lock and run in one transaction each. On DuckLake, reads outside
a write see the lake's small tables as copies in this process, made again when its snapshot moves
(itscm/lake_copies.py, docs/DESIGN.md §19); writers of every process take turns too (a lock in the
catalog's PostgreSQL database, docs/DESIGN.md §19). Another process holding
the file gets a `StoreLockedError` with a message saying who holds it, never a DuckDB traceback
(a DuckLake store has no such lock).
"""

from __future__ import annotations

import functools
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from itscm import change_days, ducklake, lake_copies, rollup
from itscm.migrations import CHANGE_DAYS_VERSIONS, DERIVED_DATA_VERSIONS, LATEST_VERSION, MIGRATIONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STORE_PATH = PROJECT_ROOT / "data" / "itscm.duckdb"
STORE_ENV_VAR = "ITSCM_STORE"
IN_MEMORY = ":memory:"
# DuckDB's own default is 80 % of the machine; the app shares its machine, so it gets a budget.
MEMORY_LIMIT = os.environ.get("ITSCM_DUCKDB_MEMORY", "1GB")


# A write conflicting with another process's is run again this many times in all, after a random
# pause of up to 0.05, 0.1, 0.2, 0.4 s: longer than a commit takes, short beside a person waiting.
WRITE_ATTEMPTS = 5
RETRY_PAUSE_S = 0.05
T = TypeVar("T")


def is_write_conflict(error: duckdb.Error) -> bool:
    """A commit refused because another transaction committed a change to the same data first."""
    return isinstance(error, duckdb.TransactionException) and "conflict" in str(error).lower()


# Rows in one of DuckDB's row groups (its storage default). A large INSERT writes the row groups
# of each batch of its source as it goes, and a batch that is not a whole number of row groups
# leaves a part-filled one at its end; the commit's checkpoint then merges and rewrites those,
# which cost more than the insert itself (a million changes: 7-8 CPU seconds against 4).
ROW_GROUP_ROWS = 122_880


def in_row_group_batches(table: pa.Table) -> pa.Table:
    """`table` as batches of exactly ROW_GROUP_ROWS rows (the last one shorter), so that a large
    INSERT from it, or from a temporary table made from it, fills whole row groups. A table
    already so cut is returned as it is; otherwise the rows are copied once."""
    lengths = [batch.num_rows for batch in table.to_batches()]
    if all(length == ROW_GROUP_ROWS for length in lengths[:-1]) and (not lengths or lengths[-1] <= ROW_GROUP_ROWS):
        return table
    return pa.Table.from_batches(table.combine_chunks().to_batches(max_chunksize=ROW_GROUP_ROWS), table.schema)


class StoreError(Exception):
    """A problem with the store that the user can act on; its message is one line."""


class StoreLockedError(StoreError):
    pass


class StoreVersionError(StoreError):
    pass


def resolve_store_path(explicit: str | os.PathLike | None = None) -> str:
    """`--store PATH`, else the ITSCM_STORE environment variable, else data/itscm.duckdb. A path,
    or `ducklake:postgres:<libpq connection string>` for a store on DuckLake."""
    if explicit:
        return str(explicit)
    from_env = os.environ.get(STORE_ENV_VAR)
    if from_env:
        return from_env
    return str(DEFAULT_STORE_PATH)


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


def _explain_open_failure(path: str, error: duckdb.Error) -> StoreError:
    text = str(error)
    held = _LOCK_HOLDER.search(text)
    if held:
        return StoreLockedError(
            f"The store {path} is in use by another process (PID {held['pid']}, "
            f"{Path(held['exe']).name}); stop that process or point this one at another store."
        )
    if "not a valid DuckDB database" in text or "Unable to open database" in text:
        return StoreError(f"{path} is not a DuckDB store this version can open: {text.splitlines()[0]}")
    if "newer" in text and "version" in text.lower():
        return StoreVersionError(f"{path} was written by a newer DuckDB than this one (1.4): {text.splitlines()[0]}")
    return StoreError(f"Cannot open the store {path}: {text.splitlines()[0]}")


class Store:
    """A handle on one store. Use `open_store()` to share one handle per path in a process."""

    def __init__(self, path: str | os.PathLike = IN_MEMORY, *, read_only: bool = False, create: bool = True):
        self.path = str(path)
        self.read_only = read_only
        self.on_ducklake = ducklake.is_ducklake(self.path)
        self._root = self._connect_ducklake() if self.on_ducklake else self._connect_file(create)
        if self.on_ducklake and not create and self.schema_version() == 0:
            self._root.close()
            raise StoreError(f"No store in {ducklake.describe(self.path)}; create it with "
                             "`python -m itscm init --store ...`.")
        self._write_lock = threading.RLock()
        self._writers_excluded_here = False   # the writers lock is held (by the thread holding _write_lock)
        # Write transactions this handle committed: what a version held for a while (a page run's,
        # itscm/ui/cache.py) is checked against, so that a run sees its own writes at once.
        self.commits_here = 0
        self._local = threading.local()
        # By the thread using them: its cursor, and on a lake its reading cursor (lake_copies).
        self._cursors: dict[threading.Thread, list[duckdb.DuckDBPyConnection]] = {}
        self._cursors_lock = threading.Lock()
        # On a lake, reads see its small tables as copies in this process (docs/DESIGN.md §19).
        self._copies = lake_copies.LakeCopies(self._root) if self.on_ducklake else None
        try:
            if self.on_ducklake and not self.read_only and not self._up_to_date():
                # Two processes opening a new lake migrate it once: the second, let in after the
                # first, finds nothing to do. An up-to-date lake opens without waiting for a writer.
                with self.writers_excluded():
                    self._migrate()
            else:
                self._migrate()
        except Exception:
            self._root.close()
            raise

    def _connect_file(self, create: bool) -> duckdb.DuckDBPyConnection:
        if self.path != IN_MEMORY:
            if not create and not Path(self.path).exists():
                raise StoreError(f"No store at {self.path}; create it with `python -m itscm init --store {self.path}`.")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            return duckdb.connect(self.path, read_only=self.read_only, config={"memory_limit": MEMORY_LIMIT})
        except duckdb.Error as error:
            raise _explain_open_failure(self.path, error) from None

    def _connect_ducklake(self) -> duckdb.DuckDBPyConnection:
        try:
            return ducklake.connect(self.path, read_only=self.read_only, memory_limit=MEMORY_LIMIT)
        except ducklake.DuckLakeError as error:
            raise StoreError(str(error)) from None
        except duckdb.Error as error:
            raise StoreError(ducklake.explain_open_failure(self.path, error)) from None

    # -- connections -------------------------------------------------------------------------

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._root.cursor()
        if self.on_ducklake:
            ducklake.use_store(cursor)
        return cursor

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor on the store, never used by another thread while this one lives.

        Streamlit runs every rerun on a new thread, so cursors kept for good would grow with use:
        the cursors of threads that have ended are closed whenever a thread takes its first one.
        Long-lived threads (the measures' query workers) keep theirs."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._first_cursor_of_this_thread()
        return cursor

    def _first_cursor_of_this_thread(self) -> duckdb.DuckDBPyConnection:
        cursor = self._thread_cursor(self._new_cursor)
        self._local.cursor = cursor
        return cursor

    def _reading_cursor(self) -> duckdb.DuckDBPyConnection:
        """On a lake, this thread's cursor for reads that see the copies of the small tables
        (lake_copies); never used to write."""
        cursor = getattr(self._local, "reading_cursor", None)
        if cursor is None:
            cursor = self._thread_cursor(self._copies.reading_cursor)
            self._local.reading_cursor = cursor
        return cursor

    def _thread_cursor(self, make: Callable[[], duckdb.DuckDBPyConnection]) -> duckdb.DuckDBPyConnection:
        with self._cursors_lock:
            self._close_cursors_of_ended_threads()
            cursor = make()
            self._cursors.setdefault(threading.current_thread(), []).append(cursor)
        return cursor

    def _close_cursors_of_ended_threads(self) -> None:
        # An ended thread runs no more code, so its cursors are idle and nobody will use them again;
        # closing them also ends whatever they left open (an unread result, a temporary table).
        for thread in [thread for thread in self._cursors if not thread.is_alive()]:
            for cursor in self._cursors.pop(thread):
                with suppress(duckdb.Error):
                    cursor.close()

    def open_cursors(self) -> int:
        """How many threads hold cursors on the store now (one each on the file; on a lake up to
        two, the second for reads of the copies; a `read_transaction`'s own cursor, closed when it
        ends, is not counted): what a long-running server must keep bounded."""
        with self._cursors_lock:
            return len(self._cursors)

    def close(self) -> None:
        with self._cursors_lock:
            for cursors in self._cursors.values():
                for cursor in cursors:
                    with suppress(duckdb.Error):
                        cursor.close()
            self._cursors.clear()
        if self._copies is not None:
            with suppress(duckdb.Error):
                self._copies.close()
        self._root.close()
        _forget(self)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    def df(self, sql: str, params: dict | list | None = None) -> pd.DataFrame:
        return self._read(sql, params, lambda result: result.df())

    def arrow(self, sql: str, params: dict | list | None = None) -> pa.Table:
        return self._read(sql, params, lambda result: result.fetch_arrow_table())

    def rows(self, sql: str, params: dict | list | None = None) -> list[tuple]:
        # fetchall, not fetchone: a result left unread keeps its transaction open, and an open
        # transaction on any connection stops DuckDB from checkpointing (the WAL only grows).
        return self._read(sql, params, lambda result: result.fetchall())

    def scalar(self, sql: str, params: dict | list | None = None):
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def _read(self, sql: str, params: dict | list | None, fetch: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """One statement's whole result. On a lake, outside this thread's write, with the small
        tables read from their copies (docs/DESIGN.md §19); inside a write, on the write's own
        cursor, which sees what the write has done so far and the lake's own tables; inside
        `one_snapshot`, in the block's transaction."""
        def run(cursor: duckdb.DuckDBPyConnection) -> T:
            return fetch(cursor.execute(sql, params or {}))

        if self._copies is None or getattr(self._local, "writing", False):
            return run(self.cursor())
        held = getattr(self._local, "snapshot_held", None)
        if held is None:
            return self._copies.read(self._reading_cursor(), self.cursor(), run)
        cursor = self._reading_cursor()
        if not held:
            if not self._copies.begin(cursor):   # the lake moves on faster than the copies: its own tables
                return run(self.cursor())
            self._local.snapshot_held = True
        try:
            return run(cursor)
        except BaseException:
            # A statement that failed ends DuckDB's transaction: the block's next read begins another.
            self._end_held_snapshot()
            raise

    @contextmanager
    def one_snapshot(self) -> Iterator[None]:
        """This thread's reads inside the block all see one committed state of the store. On a
        lake each read otherwise begins a transaction of its own and checks the lake's snapshot
        against its copies' (a query of the catalog, 3-4 ms of CPU): a measure of several reads
        pays it once (docs/DESIGN.md §19). A commit of this thread inside the block ends the
        snapshot, so the reads after it see the commit. Blocks nest (the outermost holds); on the
        file, where a read costs no such check, nothing changes."""
        if self._copies is None or getattr(self._local, "snapshot_held", None) is not None:
            yield
            return
        self._local.snapshot_held = False   # begun at the block's first read
        try:
            yield
        finally:
            self._end_held_snapshot()
            self._local.snapshot_held = None

    def _end_held_snapshot(self) -> None:
        if getattr(self._local, "snapshot_held", None):
            with suppress(duckdb.Error):
                self._reading_cursor().execute("ROLLBACK")   # it only read
            self._local.snapshot_held = False

    @contextmanager
    def read_transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Several reads that must see one committed state (a backup): a cursor of their own in
        one transaction, so commits landing meanwhile are wholly seen or not at all."""
        cursor = self._new_cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            try:
                yield cursor
            finally:
                cursor.execute("ROLLBACK")   # it only read
        finally:
            cursor.close()

    # -- writing -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One all-or-nothing write, the one place a write transaction opens; writers call `write`,
        which runs it again when the COMMIT conflicts. Writers queue (`writers_excluded`); readers
        keep reading the last committed state (MVCC) until COMMIT. A writer that changes what the
        derived columns or the rollup summarise keeps them current itself, inside the transaction
        (itscm/rollup.py); nothing else runs here, so a write that changes none of it pays nothing."""
        if self.read_only:
            raise StoreError(f"The store {self.path} is open read-only.")
        with self.writers_excluded():
            cursor = self.cursor()
            cursor.execute("BEGIN TRANSACTION")
            self._local.writing = True   # this thread's reads meanwhile go through `cursor`
            try:
                yield cursor
                if not self.on_ducklake:
                    # DuckLake counts commits itself (its snapshots), and one row every writer
                    # updated would make any two processes' commits conflict.
                    cursor.execute(
                        "UPDATE store_meta SET value = CAST(CAST(value AS BIGINT) + 1 AS VARCHAR) "
                        "WHERE key = 'data_version'"
                    )
                cursor.execute("COMMIT")
                self.commits_here += 1   # under the write lock
                self._end_held_snapshot()   # this thread's reads see the commit
            except BaseException:
                # A COMMIT that failed (a conflict on DuckLake) has ended the transaction already.
                with suppress(duckdb.TransactionException):
                    cursor.execute("ROLLBACK")
                raise
            finally:
                self._local.writing = False

    @contextmanager
    def writers_excluded(self) -> Iterator[None]:
        """No other writer runs while the block does: of this process (a lock), nor on DuckLake of
        any other (the catalog's writers lock, taken before the block's transaction begins, so that
        it reads what the writer before it committed, and released after its COMMIT). Every write
        transaction runs inside it; maintenance too. The file needs no more: one process holds it."""
        with self._write_lock:
            if not self.on_ducklake or self._writers_excluded_here:
                yield
                return
            try:
                with ducklake.writers_lock(self._root):
                    self._writers_excluded_here = True
                    try:
                        yield
                    finally:
                        self._writers_excluded_here = False
            except ducklake.DuckLakeError as error:
                raise StoreError(str(error)) from None

    def write(self, body: Callable[[duckdb.DuckDBPyConnection], T], *, attempts: int = WRITE_ATTEMPTS) -> T:
        """`body(cursor)` in one write transaction (`transaction`), run again from its start when
        the COMMIT conflicts with another process's commit (on DuckLake, two processes changing
        rows of one data file), after a random pause that grows with each attempt, so that two
        writers retrying do not meet again. `body` must read what it writes on, so that a run
        again sees the other commit. Gives up with a `StoreError` after `attempts`."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as cursor:
                    return body(cursor)
            except duckdb.TransactionException as error:
                if not is_write_conflict(error):
                    raise
                if attempt == attempts:
                    raise StoreError(f"The write met another process's writes {attempts} times running; "
                                     "nothing was written. Try again.") from error
                time.sleep(random.uniform(0, RETRY_PAUSE_S * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")

    def data_version(self, cursor: duckdb.DuckDBPyConnection | None = None) -> int:
        """A number that changes with every committed write, of this process or (on DuckLake)
        any other: the key for cached results. `cursor`: as that cursor's transaction sees it."""
        cursor = cursor or self.cursor()
        if self.on_ducklake:
            return ducklake.snapshot_id(cursor)
        return int(cursor.execute("SELECT value FROM store_meta WHERE key = 'data_version'").fetchall()[0][0])

    def currency(self) -> str:
        return self.scalar("SELECT value FROM store_meta WHERE key = 'currency'") or "EUR"

    # -- schema ------------------------------------------------------------------------------

    def schema_version(self) -> int:
        # fetchall throughout: see `scalar`.
        if "schema_version" not in self._user_tables():
            return 0
        version = self._root.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
        return int(version or 0)

    def _migrate(self) -> None:
        target = LATEST_VERSION
        current = self.schema_version()
        self.made_now = current == 0   # no store was there: this opening made it
        if current > target:
            raise StoreVersionError(
                f"The store {self.path} has schema version {current}, newer than this program's "
                f"({target}); upgrade the program instead of opening it with this one."
            )
        # A store made while a migration number was still unused (version 4 shipped before 3)
        # has a gap: apply every missing migration, not only those above the highest one.
        applied = self._applied_versions()
        missing = [m for m in MIGRATIONS if m[0] <= target and m[0] not in applied]
        if missing:
            if self.on_ducklake and current == 0 and not self.read_only:
                ducklake.set_data_file_options(self._root)   # before any data file is written
            self._apply_missing(current, target, missing)
        self._fill_derived_data(applied | {m[0] for m in missing}, {m[0] for m in missing})

    def _up_to_date(self) -> bool:
        """Every migration applied and the derived data built: opening has nothing to write."""
        applied = self._applied_versions()
        return (all(version in applied for version, _, _ in MIGRATIONS if version <= LATEST_VERSION)
                and rollup.is_built(self._root) and change_days.is_built(self._root))

    def _apply_missing(self, current: int, target: int, missing: list[tuple[int, str, str]]) -> None:
        if self.read_only:
            raise StoreVersionError(
                f"The store {self.path} has schema version {current} and needs upgrading to "
                f"{target}; run `python -m itscm init --store {self.path}` once."
            )
        if current == 0 and self._user_tables() - {"schema_version"}:
            raise StoreError(f"{self.path} holds tables but no schema version: not an ITSCM store.")
        for version, description, sql in missing:
            self._apply(version, description, sql)

    def _fill_derived_data(self, versions: set[int], just_applied: set[int]) -> None:
        """Migrations add derived columns and tables, never their data: the current rebuild fills
        them (itscm/rollup.py, itscm/change_days.py) after a migration that needs it, or when they
        were never filled."""
        if self.read_only:
            return   # a read-only store is left as it is
        # a store kept at an older version (tests make them) is left without what it lacks
        fill_rollup = set(DERIVED_DATA_VERSIONS) <= versions and (
            bool(just_applied & set(DERIVED_DATA_VERSIONS)) or not rollup.is_built(self._root))
        fill_change_days = set(CHANGE_DAYS_VERSIONS) <= versions and (
            bool(just_applied & set(CHANGE_DAYS_VERSIONS)) or not change_days.is_built(self._root))
        if not fill_rollup and not fill_change_days:
            return
        con = self._root
        con.execute("BEGIN TRANSACTION")
        try:
            if fill_rollup:
                rollup.rebuild(con)
            if fill_change_days:
                change_days.rebuild(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _applied_versions(self) -> set[int]:
        if "schema_version" not in self._user_tables():
            return set()
        return {int(v) for (v,) in self._root.execute("SELECT version FROM schema_version").fetchall()}

    def _user_tables(self) -> set[str]:
        return user_tables(self._root)

    def _apply(self, version: int, description: str, sql: str) -> None:
        con = self._root
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER NOT NULL, description TEXT, applied_at TIMESTAMP NOT NULL)"
            )
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, now()::TIMESTAMP)", [version, description]
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def reads_one_snapshot(function: Callable[..., T]) -> Callable[..., T]:
    """`function(store, ...)` with every read it makes in one `store.one_snapshot()` block: for
    the measures, which read a filter's units, a rule or a policy before their main statement."""
    @functools.wraps(function)
    def in_one_snapshot(store: Store, *args, **kwargs) -> T:
        with store.one_snapshot():
            return function(store, *args, **kwargs)
    return in_one_snapshot


def user_tables(cursor: duckdb.DuckDBPyConnection) -> set[str]:
    """The store's own tables (on DuckLake the catalog's metadata tables are attached too)."""
    rows = cursor.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


_open_stores: dict[tuple[str, bool], Store] = {}
_open_stores_lock = threading.Lock()


def open_store(path: str | os.PathLike | None = None, *, read_only: bool = False) -> Store:
    """The process-wide handle on the store at `path` (resolved by `resolve_store_path`)."""
    resolved = resolve_store_path(path)
    same_path = resolved == IN_MEMORY or ducklake.is_ducklake(resolved)
    key = (resolved if same_path else str(Path(resolved).resolve()), read_only)
    with _open_stores_lock:
        store = _open_stores.get(key)
        if store is None:
            store = Store(resolved, read_only=read_only)
            _open_stores[key] = store
        return store


def _forget(store: Store) -> None:
    with _open_stores_lock:
        for key, value in list(_open_stores.items()):
            if value is store:
                del _open_stores[key]
