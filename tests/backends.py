"""Which backend the tests' stores are made on: the embedded file (the default) or DuckLake with
a private PostgreSQL catalog (`pytest --backend ducklake`, tests/conftest.py).

`new_store()` is what the builders and the store tests call for a fresh store: in memory on the
file backend, a new lake on DuckLake (a copy of one migrated once per session, so each costs a
database copy rather than every migration).
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import duckdb

from itscm import ducklake
from itscm.ducklake import DATA_PATH_ENV_VAR
from itscm.store import IN_MEMORY, Store
from tests.private_postgres import PrivatePostgres

FILE, DUCKLAKE = "file", "ducklake"
PRODUCT_LAKE_THREADS = ducklake.THREADS
BACKENDS = (FILE, DUCKLAKE)

chosen = FILE
_postgres: PrivatePostgres | None = None
_migrated_lake: str | None = None


def on_ducklake() -> bool:
    return chosen == DUCKLAKE


_lakes_made: list[str] = []


def use(backend: str, postgres: PrivatePostgres | None = None) -> None:
    global chosen, _postgres, _migrated_lake
    chosen, _postgres, _migrated_lake = backend, postgres, None
    _lakes_made.clear()
    # Checking the extensions' signatures costs 0.7 CPU s a store opened; the tests open hundreds.
    # Children the tests start (the command line, the crash child) still check them.
    ducklake.VERIFY_EXTENSION_SIGNATURES = backend != DUCKLAKE
    # The tests' statements are small ones, mostly writes, on small stores: a lake's second DuckDB
    # thread (ducklake.THREADS, for the measures' large reads) only wakes for each and cost the
    # lake pass 30 % more CPU (test_ingest_commit, test_pages, test_inventory_import: 115 -> 150 s).
    # What the threads run is DuckDB's to get right, and the file pass runs every statement on two;
    # children the tests start (the servers, the command line) keep the product's two.
    ducklake.THREADS = 1 if backend == DUCKLAKE else PRODUCT_LAKE_THREADS


@contextmanager
def data_path(folder: Path):
    """ITSCM_DATA_PATH set to `folder` while a new lake is made (an existing lake keeps its own)."""
    before = os.environ.get(DATA_PATH_ENV_VAR)
    os.environ[DATA_PATH_ENV_VAR] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_PATH_ENV_VAR, None)
        else:
            os.environ[DATA_PATH_ENV_VAR] = before


def new_target(file_path: str | os.PathLike = IN_MEMORY, *, migrated: bool = True) -> str:
    """Where a new store goes: `file_path` on the file backend; on DuckLake a new lake, already
    migrated (a copy) unless `migrated` is False (an empty catalog, for tests of the migrations)."""
    if not on_ducklake():
        return str(file_path)
    assert _postgres is not None, "the private PostgreSQL is started by the session fixture"
    global _migrated_lake
    if not migrated:
        return _made(_empty_lake())
    if _migrated_lake is None:   # kept for the whole session, whichever test first needs it
        target = _empty_lake()
        Store(target).close()
        _migrated_lake = _postgres.lake_name(target)
    return _made(_postgres.new_lake(copy_of=_migrated_lake)[0])


def copy_of(target: str) -> str:
    """A new lake holding what the lake `target` holds (closed by every process by now)."""
    assert _postgres is not None, "the private PostgreSQL is started by the session fixture"
    return _postgres.new_lake(copy_of=_postgres.lake_name(target))[0]


def _empty_lake() -> str:
    """A lake with no tables yet, its data folder recorded in its catalog, so that opening it
    later needs no ITSCM_DATA_PATH."""
    target, folder = _postgres.new_lake()
    with data_path(folder):
        ducklake.connect(target, read_only=False, memory_limit="1GB").close()
    return target


def copy_store(source: str | os.PathLike, file_path: str | os.PathLike) -> str | Path:
    """A private copy of the store at `source`, which no process holds open: the file copied to
    `file_path`, or on DuckLake a new lake copied from the one `source` names."""
    if not on_ducklake():
        shutil.copy(source, file_path)
        return Path(file_path)
    assert _postgres is not None, "the private PostgreSQL is started by the session fixture"
    return _made(_postgres.new_lake(copy_of=_postgres.lake_name(str(source)))[0])


def moved_here(file_path: str | os.PathLike) -> str | Path:
    """The store file at `file_path` on the chosen backend: the file itself, or a new lake it is
    moved to (`migrate-store`). Shared fixtures build their organisations on the file and move
    them: one transaction on the lake, where building there commits once a row."""
    if not on_ducklake():
        return Path(file_path)
    from itscm.backup import migrate_store

    target = new_target(migrated=False)
    migrate_store(str(file_path), target)
    return target


def _made(target: str) -> str:
    _lakes_made.append(_postgres.lake_name(target))
    return target


def lakes_made() -> int:
    """How many lakes this session has made so far (none on the file)."""
    return len(_lakes_made)


def drop_lakes_made_since(count: int) -> None:
    """Removes the lakes made after the first `count`: a test's own, once it has ended, so that a
    session of hundreds of tests keeps only the lakes its shared fixtures made."""
    while len(_lakes_made) > count:
        _postgres.drop_lake(_lakes_made.pop())


def raw_connection(target: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection on the store at `target`, behind the store module's back (no
    migrations, no bookkeeping): for tests that corrupt a store or make an old one."""
    if ducklake.is_ducklake(str(target)):
        return ducklake.connect(str(target), read_only=False, memory_limit="1GB")
    return duckdb.connect(str(target))


def new_store(file_path: str | os.PathLike = IN_MEMORY) -> Store:
    """A new, empty store of the chosen backend."""
    return Store(new_target(file_path))
