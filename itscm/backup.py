"""Backing up the store to a folder of Parquet files, and restoring a store from one.

A backup is one Parquet file per table plus `manifest.json` (format, schema version and the
migrations applied, row counts, data version, when and by whom). It is consistent: every table
is read inside one read transaction on one cursor, so a commit landing meanwhile is either wholly
in the backup or not at all. It is written to a hidden folder beside the target and renamed into
place at the end, so a half-written backup never looks like a backup.

A restore builds the new store beside its target: the schema by the same migrations the backup
was made under (so types, defaults and NOT NULLs are the store's, not Parquet's), the rows from
the files, the row counts checked against the manifest, and then the migrations added since, so
an older backup comes back as a current store. A backup from a newer program is refused. Only
then does the restored file replace the target.

Parquet rather than a copy of the DuckDB file: readable by any tool and by future DuckDB
versions, and the same files would load into a DuckLake catalog (docs/DESIGN.md §9, §10.2).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from itscm import change_days, ducklake, rollup
from itscm.access import Actor, writes
from itscm.administration import record_change
from itscm.migrations import CHANGE_DAYS_VERSIONS, DERIVED_DATA_VERSIONS, LATEST_VERSION, MIGRATIONS
from itscm.store import (
    DEFAULT_STORE_PATH,
    Store,
    StoreError,
    StoreLockedError,
    StoreVersionError,
    resolve_store_path,
    user_tables,
)

MANIFEST = "manifest.json"
BACKUP_FORMAT = "itscm-backup/1"


class BackupError(StoreError):
    """A backup or restore refused or failed; one line for the user."""


def _quoted(identifier: str) -> str:
    # Table names come from the store's own catalogue, never from a user; quoted all the same.
    return '"' + identifier.replace('"', '""') + '"'


def _applied_migrations(cursor: duckdb.DuckDBPyConnection) -> list[int]:
    return sorted(int(v) for (v,) in cursor.execute("SELECT version FROM schema_version").fetchall())


# -- backup -------------------------------------------------------------------------------------


def backup_store(store: Store, to_dir: str | os.PathLike, *, created_by: str | None = None,
                 now: datetime | None = None) -> dict:
    """Write a consistent backup of `store` into the folder `to_dir` (absent or empty) and return
    its manifest."""
    target = Path(to_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} already exists and is not an empty folder; choose a new folder for the backup.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        manifest = _write_tables(store, staging)
        manifest |= {
            "created_at": (now or datetime.now(UTC).replace(tzinfo=None)).isoformat(timespec="seconds"),
            "created_by": created_by,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            target.rmdir()   # empty, checked above; rename will not replace a folder on every OS
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


@writes("admin", "back up the store")
def take_backup(actor: Actor, store: Store, to_dir: str | os.PathLike, *, now: datetime | None = None) -> dict:
    """A backup taken from inside the app, which holds the store (the CLI cannot open it then),
    and recorded in the change history. Admin-only: a backup is a full copy of every table,
    incident titles included."""
    manifest = backup_store(store, to_dir, created_by=actor.name, now=now)
    record_change(actor, store, "backup", str(to_dir), after={"rows": sum(manifest["tables"].values())}, now=now)
    return manifest


def _write_tables(store: Store, folder: Path) -> dict:
    with store.read_transaction() as cursor:
        tables = [name for (name,) in cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()]
        rows = {}
        for table in tables:
            _copy_table(cursor, table, folder / f"{table}.parquet")
            rows[table] = int(cursor.execute(f"SELECT count(*) FROM {_quoted(table)}").fetchall()[0][0])
        applied = _applied_migrations(cursor)
        data_version = store.data_version(cursor)
    return {
        "format": BACKUP_FORMAT,
        "schema_version": max(applied),
        "migrations": applied,
        "data_version": data_version,
        "duckdb_version": duckdb.__version__,
        "tables": rows,
    }


def _copy_table(cursor: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    cursor.execute(f"COPY {_quoted(table)} TO $path (FORMAT parquet)", {"path": str(path)})


def backups_folder(store_path: str | os.PathLike) -> Path:
    """Where the app puts the backups an admin takes: $ITSCM_BACKUP_DIR, else `backups/` beside
    the store (a DuckLake store has no folder of its own: the default store's, data/backups)."""
    configured = os.environ.get("ITSCM_BACKUP_DIR")
    if configured:
        return Path(configured)
    if ducklake.is_ducklake(str(store_path)):
        return DEFAULT_STORE_PATH.parent / "backups"
    return Path(store_path).resolve().parent / "backups"


def new_backup_folder(store_path: str | os.PathLike, now: datetime | None = None) -> Path:
    """A fresh folder name for a backup of this store, sortable by time."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = "ducklake" if ducklake.is_ducklake(str(store_path)) else Path(store_path).stem
    return backups_folder(store_path) / f"{name}-{stamp}-{secrets.token_hex(2)}"


def list_backups(folder: str | os.PathLike) -> list[dict]:
    """The backups in `folder`, newest first: folder, created_at, created_by, schema_version,
    rows. Folders without a readable manifest (a partial one, anything else) are left out."""
    found = []
    for candidate in Path(folder).iterdir() if Path(folder).is_dir() else ():
        if candidate.name.startswith(".") or not candidate.is_dir():
            continue
        try:
            manifest = read_manifest(candidate)
        except BackupError:
            continue
        found.append({"folder": str(candidate), "created_at": manifest.get("created_at"),
                      "created_by": manifest.get("created_by"), "schema_version": manifest.get("schema_version"),
                      "rows": sum(manifest.get("tables", {}).values())})
    return sorted(found, key=lambda backup: backup["created_at"] or "", reverse=True)


# -- restore ------------------------------------------------------------------------------------


def read_manifest(from_dir: str | os.PathLike) -> dict:
    source = Path(from_dir)
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: not a backup of a continuity store.") from None
    except (OSError, ValueError) as error:
        raise BackupError(f"Cannot read {source / MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{source / MANIFEST} is not a manifest this program knows ({BACKUP_FORMAT}).")
    return manifest


def restore_store(from_dir: str | os.PathLike, path: str | os.PathLike, overwrite: bool = False) -> dict:
    """Make the store at `path` from the backup in `from_dir`; returns the backup's manifest.
    Refuses an existing store unless `overwrite`, a newer schema, and row counts that differ."""
    source, target = Path(from_dir), Path(path)   # `target` a file, unless `path` names a lake
    manifest = read_manifest(source)
    version = int(manifest["schema_version"])
    if version > LATEST_VERSION:
        raise StoreVersionError(
            f"The backup in {source} has schema version {version}, newer than this program's "
            f"({LATEST_VERSION}); restore it with the program that made it, or a later one."
        )
    if ducklake.is_ducklake(str(path)):
        return _restore_into_lake(source, str(path), manifest, overwrite)
    if target.exists():
        if not overwrite:
            raise BackupError(f"A store already exists at {target}; pass --overwrite to replace it with the backup.")
        Store(target).close()   # refuses (StoreLockedError, naming the process) a store in use
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.restoring-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        _load(source, staging, manifest)
        Store(staging).close()   # the migrations added since the backup; closing checkpoints
        Path(f"{target}.wal").unlink(missing_ok=True)   # a stale log would be replayed onto the new file
        os.replace(staging, target)
    finally:
        for partial in (staging, Path(f"{staging}.wal")):
            partial.unlink(missing_ok=True)
    return manifest


def _load_rows(cursor: duckdb.DuckDBPyConnection, source: Path, tables: dict[str, int]) -> None:
    """Every table of the store at `cursor` emptied and filled from the backup's files, each
    row count checked against the manifest's, inside the caller's transaction."""
    present = user_tables(cursor)
    unknown = set(tables) - present
    if unknown:
        raise BackupError("The backup holds tables its schema version does not have: "
                          f"{', '.join(sorted(unknown))}.")
    for table in sorted(present):
        file = source / f"{table}.parquet"
        if table not in tables or not file.is_file():
            raise BackupError(f"The backup in {source} lacks the table {table}.")
        cursor.execute(f"DELETE FROM {_quoted(table)}")   # rows the migrations seed (policy, store_meta)
        cursor.execute(f"INSERT INTO {_quoted(table)} BY NAME SELECT * FROM read_parquet($file)", {"file": str(file)})
        count = cursor.execute(f"SELECT count(*) FROM {_quoted(table)}").fetchall()[0][0]
        if count != tables[table]:
            raise BackupError(
                f"The backup's {table} holds {count} rows where its manifest says {tables[table]}; "
                "the backup is damaged, nothing was restored."
            )


def _restore_into_lake(source: Path, target: str, manifest: dict, overwrite: bool) -> dict:
    """A DuckLake store made from the backup in one transaction: the schema by this program's
    migrations, then every table's rows. Only a backup of the current schema: an older one is
    first restored into a file, which upgrades it, then moved (`migrate-store`)."""
    if int(manifest["schema_version"]) != LATEST_VERSION or set(manifest.get("migrations") or []) != {
            v for v, _, _ in MIGRATIONS}:
        raise BackupError(
            f"The backup in {source} has schema version {manifest['schema_version']}; a DuckLake store is "
            f"restored from a backup of version {LATEST_VERSION} only. Restore it into a file first (which "
            "upgrades it), then move that with `python -m itscm migrate-store`.")
    with Store(target) as store:
        if not store.made_now and not overwrite:
            raise BackupError(f"A store already exists in {ducklake.describe(target)}; pass --overwrite to "
                              "replace its contents with the backup.")

        def write_in(cursor):
            _load_rows(cursor, source, manifest["tables"])
            rollup.refresh(cursor)
            change_days.refresh(cursor)
        try:

            store.write(write_in)
        except duckdb.Error as error:
            raise BackupError(f"The backup in {source} cannot be restored: {str(error).splitlines()[0]}") from None
    return manifest


def _load(source: Path, staging: Path, manifest: dict) -> None:
    applied = set(manifest.get("migrations") or [v for v, _, _ in MIGRATIONS if v <= manifest["schema_version"]])
    tables: dict[str, int] = manifest["tables"]
    con = duckdb.connect(str(staging))
    try:
        con.execute("BEGIN TRANSACTION")
        for version, _, sql in MIGRATIONS:
            if version in applied:
                con.execute(sql)
        con.execute("CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER NOT NULL, description TEXT, applied_at TIMESTAMP NOT NULL)")
        _load_rows(con, source, tables)
        # The data version goes on from the backup's (the manifest's). A lake's own row in
        # store_meta is not it: a lake counts its commits in catalog snapshots and leaves the row
        # at what the file held when it moved there, which a file restored from it would take up.
        con.execute("UPDATE store_meta SET value = $version WHERE key = 'data_version'",
                    {"version": str(manifest["data_version"])})
        if set(DERIVED_DATA_VERSIONS) <= applied:
            # The backup's derived data checked against the facts restored, and refreshed if they
            # disagree. (An older schema gets it from the migrations still to apply: itscm/store.py.)
            rollup.refresh(con)
        if set(CHANGE_DAYS_VERSIONS) <= applied:
            change_days.refresh(con)
        con.execute("COMMIT")
    except duckdb.Error as error:
        raise BackupError(f"The backup in {source} cannot be restored: {str(error).splitlines()[0]}") from None
    finally:
        con.close()


# -- moving a store between backends ------------------------------------------------------------


def migrate_store(source: str, target: str) -> dict:
    """A new store at `target` holding what the store at `source` holds, either on the file or on
    DuckLake: a backup of the source (one read transaction) restored at the target (one
    transaction on DuckLake, a file renamed into place). The source is only read; a target that
    already holds a store is refused. Returns the backup's manifest."""
    if source == target:
        raise BackupError("--from and --to name the same store.")
    with tempfile.TemporaryDirectory(prefix="itscm-move-") as folder:
        try:
            store = Store(source, read_only=True, create=False)
        except StoreLockedError as error:
            raise BackupError(f"{error} A store file is open in one process at a time: stop the app "
                              "while the store moves.") from None
        with store:
            manifest = backup_store(store, Path(folder) / "copy", created_by=_os_user())
        restore_store(Path(folder) / "copy", target)
    return manifest


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="STORE",
                        help="the store to copy: a file, or ducklake:postgres:<libpq connection string>")
    parser.add_argument("--to", dest="target", required=True, metavar="STORE",
                        help="the new store: a file that does not exist yet, or a DuckLake catalog holding no store "
                             "(a new one needs $ITSCM_DATA_PATH)")
    parser.add_argument("--json", action="store_true", help="print the copied tables' row counts as one JSON object")


def run_migrate(args: argparse.Namespace) -> int:
    manifest = migrate_store(args.source, args.target)
    if args.json:
        print(json.dumps({"tables": manifest["tables"], "schema_version": manifest["schema_version"]}))
    else:
        print(f"Copied {len(manifest['tables'])} tables ({sum(manifest['tables'].values()):,} rows) from "
              f"{ducklake.describe(args.source)} to {ducklake.describe(args.target)}.")
    return 0


# -- command line -------------------------------------------------------------------------------


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="FOLDER", help="a new (or empty) folder for the backup")
    parser.add_argument("--json", action="store_true", help="print the manifest as one JSON object")


def run_backup(args: argparse.Namespace) -> int:
    # Read-only: a backup must not upgrade the store it copies.
    try:
        store = Store(resolve_store_path(args.store), read_only=True, create=False)
    except StoreLockedError as error:
        # DuckDB lets one process hold a store it writes to; the app's own backup reads it there.
        raise BackupError(f"{error} While the app runs, an admin takes the backup in the app: "
                          "Administration page, Backup tab.") from None
    with store:
        manifest = backup_store(store, args.to, created_by=_os_user())
    if args.json:
        print(json.dumps(manifest))
    else:
        total = sum(manifest["tables"].values())
        print(f"Backed up {len(manifest['tables'])} tables ({total:,} rows, schema version "
              f"{manifest['schema_version']}, data version {manifest['data_version']}) to {args.to}.")
    return 0


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, metavar="FOLDER",
                        help="a folder made by `python -m itscm backup`")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store at --store")


def run_restore(args: argparse.Namespace) -> int:
    path = resolve_store_path(args.store)
    manifest = restore_store(args.source, path, overwrite=args.overwrite)
    print(f"Restored {path} from the backup of {manifest['created_at']} (schema version "
          f"{manifest['schema_version']}, now {LATEST_VERSION}); {sum(manifest['tables'].values()):,} rows.",
          file=sys.stdout)
    return 0


def _os_user() -> str | None:
    try:
        import getpass

        return getpass.getuser()
    except (OSError, KeyError):
        return os.environ.get("USER")
