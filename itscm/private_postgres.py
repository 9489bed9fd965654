"""A private PostgreSQL for the DuckLake tests and `bench --backend ducklake`: a cluster of its
own in a temporary folder, listening only on a Unix socket in that folder, stopped and removed at
the end.

Made from the machine's Debian packages (postgresql-15: `make postgres` installs them). As root
(CI), the cluster runs as the `postgres` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import duckdb

from itscm import ducklake

BIN_FOLDERS = ("/usr/lib/postgresql/15/bin",)
# Every lake is a database of its own (7 MB of PostgreSQL's catalog) and a folder: the tests make
# hundreds, and on a disk writing and deleting them was most of a DuckLake run's time. They ask for
# memory where the machine offers it; the bench does not (its lakes are large, and a lake in memory
# would be timed against a file on disk).
MEMORY_FOLDER = Path("/dev/shm")


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None where PostgreSQL 15 is not installed."""
    for folder in BIN_FOLDERS:
        if (Path(folder) / "initdb").is_file():
            return Path(folder)
    return None


class PrivatePostgres:
    def __init__(self, bin_folder: Path, *, in_memory: bool = False):
        self.bin = bin_folder
        # Not under pytest's own temporary folders: as root those are closed to the postgres user.
        memory = MEMORY_FOLDER if in_memory and MEMORY_FOLDER.is_dir() and os.access(MEMORY_FOLDER, os.W_OK) else None
        self.folder = Path(tempfile.mkdtemp(prefix="itscm-pg-", dir=memory))
        self.cluster = self.folder / "cluster"
        self.lakes = self.folder / "lakes"
        self._numbers = itertools.count(1)
        self._as_root = os.geteuid() == 0
        self._admin_connection: duckdb.DuckDBPyConnection | None = None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, text=True, cwd=self.folder)

    def start(self) -> PrivatePostgres:
        self.folder.chmod(0o755)
        self.lakes.mkdir()
        if self._as_root:
            shutil.chown(self.folder, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.cluster), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")
        # No TCP at all: the socket in the folder is the only way in. fsync off: a test cluster.
        options = f"-k {self.folder} -c listen_addresses='' -c fsync=off -c max_connections=200"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.cluster), "-o", options,
                  "-l", str(self.folder / "server.log"), "-w", "start")
        return self

    def stop(self) -> None:
        if self._admin_connection is not None:
            self._admin_connection.close()
            self._admin_connection = None
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.cluster), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def connection_string(self, database: str) -> str:
        return f"dbname={database} host={self.folder} user=postgres"

    def new_lake(self, copy_of: str | None = None) -> tuple[str, Path]:
        """A new catalog database and a data folder for it: the store's target
        (`ducklake:postgres:...`) and the folder to set as ITSCM_DATA_PATH when it is created.
        `copy_of`: a lake made by an earlier call (closed by every process), copied whole, which
        takes a fraction of a second where making a store (its migrations) takes seconds."""
        name = f"lake_{next(self._numbers)}"
        data = self.lakes / name
        template = "" if copy_of is None else f" TEMPLATE {copy_of}"
        self._execute("postgres", f"CREATE DATABASE {name}{template}")
        if copy_of is None:
            data.mkdir()
        else:
            # The catalog names its data files relative to its data path, which it keeps in
            # ducklake_metadata: the copy's files are found in the copied folder once it names it.
            shutil.copytree(self.lakes / copy_of, data)
            self._execute(name, "UPDATE ducklake_metadata SET value = " + ducklake.sql_literal(f"{data}/")
                          + " WHERE key = 'data_path'")
        return f"ducklake:postgres:{self.connection_string(name)}", data

    def drop_lake(self, name: str) -> None:
        """Removes a lake made by `new_lake`, its catalog and its data folder, whoever still has it
        open (their connections are ended)."""
        self._execute("postgres", f"DROP DATABASE {name} WITH (FORCE)")
        shutil.rmtree(self.lakes / name, ignore_errors=True)

    def _execute(self, database: str, statement: str) -> None:
        """`statement` run on its own (no transaction: CREATE and DROP DATABASE refuse one) in
        `database` of the cluster. Through one DuckDB connection kept open, with PostgreSQL's
        databases attached by its postgres extension, not a createdb, psql or dropdb process each
        (as root through runuser): the tests make and drop a lake per test, hundreds a run, and
        the processes took twice the time of the SQL they sent."""
        if self._admin_connection is None:
            self._admin_connection = duckdb.connect(config={
                "extension_directory": ducklake.extension_directory(),
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_unsigned_extensions": not ducklake.VERIFY_EXTENSION_SIGNATURES,
            })
            self._admin_connection.execute("LOAD postgres")
        con = self._admin_connection
        alias = f"admin_{database}"
        catalog = ducklake.sql_literal(self.connection_string(database))
        con.execute(f"ATTACH IF NOT EXISTS {catalog} AS {alias} (TYPE postgres)")
        try:
            con.execute("CALL postgres_execute($alias, $statement, use_transaction=false)",
                        {"alias": alias, "statement": statement})
        finally:
            if database != "postgres":   # a lake's catalog is attached for one statement, then let go
                con.execute(f"DETACH {alias}")

    @staticmethod
    def lake_name(target: str) -> str:
        return target.split("dbname=")[1].split()[0]
