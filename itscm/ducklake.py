"""The store on DuckLake: a PostgreSQL catalog and a folder (or object store) of Parquet files.

`--store ducklake:postgres:<libpq connection string>` (or ITSCM_STORE) names the catalog;
ITSCM_DATA_PATH the folder its data files go to (needed when the catalog is new; an existing one
remembers its own). Several processes, on one machine or several, open the same store at once.

Only `itscm/store.py` calls this module: it opens the connection and knows what differs from the
file (docs/DESIGN.md §19). The extensions come from the pinned PyPI packages duckdb-ext-ducklake
and duckdb-ext-postgres and are loaded from their folder, never downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

PREFIX = "ducklake:"
SUPPORTED_PREFIX = "ducklake:postgres:"
DATA_PATH_ENV_VAR = "ITSCM_DATA_PATH"
# The name the lake is attached under in every connection; `USE` makes it the default catalog, so
# the product's SQL names its tables without a catalog, as on the file.
CATALOG = "store"
# Where the metadata tables live: DuckLake attaches the PostgreSQL database under this name.
METADATA_CATALOG = f"__ducklake_metadata_{CATALOG}"
# The PostgreSQL advisory lock every writer of the store holds from before its transaction begins
# until after its COMMIT (docs/DESIGN.md §19): one for the whole store, since nearly every write
# also writes the change history or an import's batch. Advisory locks are per database, and a
# catalog is a database of its own, so one constant key serves every store. ("itscm" in ASCII.)
WRITERS_LOCK_KEY = 0x697473636D
# How long a writer waits for the one before it: far longer than any import's commit takes, short
# enough that a writer stuck behind a hung process says so instead of waiting for ever.
WRITERS_LOCK_WAIT_S = 600
# DuckDB checks both extensions' signatures at every LOAD: 0.7 CPU seconds per store opened. The
# test suite, which opens hundreds of lakes, turns the check off (tests/backends.py); the product
# never does.
VERIFY_EXTENSION_SIGNATURES = True


class DuckLakeError(Exception):
    """The lake cannot be opened as asked; one line for the user (the store wraps it)."""


def is_ducklake(target: str) -> bool:
    return target.startswith(PREFIX)


def extension_directory() -> str:
    """The folder DuckDB loads ducklake and postgres_scanner from: the one the pinned packages
    installed (site-packages/duckdb_ext/extensions)."""
    spec = importlib.util.find_spec("duckdb_ext")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        extensions = Path(folder) / "extensions"
        if extensions.is_dir():
            return str(extensions)
    raise DuckLakeError("A DuckLake store needs the packages duckdb-ext-ducklake and duckdb-ext-postgres "
                        "(requirements.txt); install them with `make` or pip.")


def connection_string(target: str) -> str:
    """The libpq connection string of `ducklake:postgres:<string>`; other catalogs are refused."""
    if not target.startswith(SUPPORTED_PREFIX) or not target[len(SUPPORTED_PREFIX):].strip():
        raise DuckLakeError(f"{describe(target)}: a DuckLake store is named ducklake:postgres:<libpq connection "
                            "string>, e.g. ducklake:postgres:dbname=itscm host=db.internal user=itscm.")
    return target[len(SUPPORTED_PREFIX):]


def describe(target: str) -> str:
    """The store's name for messages, without a password the connection string may carry."""
    words = [word if not word.lower().startswith("password=") else "password=***" for word in target.split()]
    return " ".join(words)


def data_path() -> str | None:
    return os.environ.get(DATA_PATH_ENV_VAR) or None


def sql_literal(text: str) -> str:
    # ATTACH and a view's body take no parameters; what goes there comes from the operator's
    # configuration (the connection string, the data path) or the catalog (a data file's path), and
    # is quoted all the same.
    return "'" + text.replace("'", "''") + "'"


# DuckDB's worker threads of a lake's connection: two, as the file's (DuckDB's default on our two
# cores). Until the large tables were read from their files (lake_files), every statement ran three
# to ten catalog queries, each of which woke the second thread, so the lake ran on one. Now a
# measure's statement runs one catalog query (the snapshot check, once per measure:
# Store.one_snapshot) and then decodes Parquet, which two threads do in about half the time: at 1M
# incidents the worst measure went from 1.91-1.95x the file to 1.63-1.77x (docs/PERFORMANCE.md,
# 3 December 12:01). The cost is in the small statements of writes: 10-30 % more CPU per commit.
THREADS = 2


def connect(target: str, *, read_only: bool, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as `store` and made the default catalog."""
    catalog = connection_string(target)
    folder = data_path()
    con = duckdb.connect(config={
        "memory_limit": memory_limit,
        "threads": THREADS,
        "extension_directory": extension_directory(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_unsigned_extensions": not VERIFY_EXTENSION_SIGNATURES,
    })
    try:
        con.execute("LOAD ducklake")
        con.execute("LOAD postgres")
        # The footers of the data files kept between reads (a file never changes): the large
        # tables' views read them with `read_parquet` at every statement (itscm/lake_files.py).
        # A setting of the parquet extension, which ducklake loads: not known before.
        con.execute("SET GLOBAL parquet_metadata_cache = true")
        options = []
        if folder:
            if "://" not in folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
            options.append(f"DATA_PATH {sql_literal(folder)}")
        if read_only:
            options.append("READ_ONLY")
        attach = f"ATTACH {sql_literal(SUPPORTED_PREFIX + catalog)} AS {CATALOG}"
        con.execute(attach + (f" ({', '.join(options)})" if options else ""))
        use_store(con)
    except BaseException:
        con.close()
        raise
    return con


def use_store(cursor: duckdb.DuckDBPyConnection) -> None:
    """Each DuckDB cursor is a connection of its own whose default catalog is the in-memory one."""
    cursor.execute(f"USE {CATALOG}")
    say_on_ducklake(cursor)


# A variable of the cursor's own, true on a lake: the one place SQL may take another path there
# (itscm/rollup.py: incidents_scan). DuckDB folds getvariable() into the plan like a constant, so a
# branch it rules out is dropped before any table is read; unset (a file), it is NULL.
ON_DUCKLAKE_VARIABLE = "itscm_on_ducklake"


def say_on_ducklake(cursor: duckdb.DuckDBPyConnection) -> None:
    cursor.execute(f"SET VARIABLE {ON_DUCKLAKE_VARIABLE} = TRUE")


@contextmanager
def writers_lock(root: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Hold the store's writers lock while the block runs: another process's writer waits until
    it ends. The lock is transaction-level (`pg_advisory_xact_lock`) in a PostgreSQL transaction of
    its own, opened by a DuckDB transaction on a cursor of its own; it is released when that
    transaction ends, or when the connection drops with a killed process. (A session-level lock
    could be released on another of the extension's pooled connections; a transaction holds one.)"""
    wait_s = WRITERS_LOCK_WAIT_S
    cursor = root.cursor()
    try:
        cursor.execute("BEGIN TRANSACTION")
        try:
            cursor.execute(f"CALL postgres_execute('{METADATA_CATALOG}', "
                           f"'SET LOCAL lock_timeout = ''{int(wait_s * 1000)}ms''; "
                           f"SELECT pg_advisory_xact_lock({WRITERS_LOCK_KEY})')")
        except duckdb.Error as error:
            if "lock timeout" in str(error):
                raise DuckLakeError(f"Another process has been writing to the store for over {wait_s:g} s; "
                                    "nothing was written. Try again, or see which process holds it.") from None
            raise
        yield
    finally:
        with suppress(duckdb.Error):
            cursor.execute("ROLLBACK")   # it only held the lock
        cursor.close()


# How the lake writes its Parquet files, set when a store is made in it (init, migrate-store, a
# restore into a new lake); kept in the catalog, so every process writes so. LZ4 rather than
# DuckLake's default Snappy: the measures' reads of the large tables decode their files at every
# statement (itscm/lake_files.py), and LZ4 decodes faster for 7 % more bytes (1M incidents: 90.4
# against 84.8 MB; docs/PERFORMANCE.md, 3 December). A lake made before keeps what it has until
# its options are set by hand (`CALL store.set_option(...)`); its old files stay as written.
DATA_FILE_OPTIONS = {"parquet_compression": "lz4"}


def set_data_file_options(con: duckdb.DuckDBPyConnection) -> None:
    for name, value in DATA_FILE_OPTIONS.items():
        con.execute(f"CALL {CATALOG}.set_option({sql_literal(name)}, {sql_literal(value)})")


def snapshot_id(cursor: duckdb.DuckDBPyConnection) -> int:
    """The lake's latest snapshot, which every commit of any process moves on (inside a
    transaction: the snapshot that transaction reads)."""
    return int(cursor.execute(f"SELECT id FROM {CATALOG}.current_snapshot()").fetchall()[0][0])


def explain_open_failure(target: str, error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "Unable to connect to Postgres" in text or "connection to server" in text:
        return (f"Cannot reach the DuckLake catalog of {describe(target)}: {text} "
                "Check the connection string and that PostgreSQL is running.")
    if "DATA_PATH" in text or "data path" in text.lower():
        return (f"The DuckLake catalog {describe(target)} is new and needs a folder for its data files: "
                f"set {DATA_PATH_ENV_VAR}. ({text})")
    return f"Cannot open the DuckLake store {describe(target)}: {text}"
