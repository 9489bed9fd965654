"""`python -m itscm maintain`: keeping a store compact, to run after a large import and daily.

On DuckLake every commit writes Parquet files of its own and no file is ever deleted by a write,
so small files pile up (an aggregate over 755 of them took twice as long as over the merged ones)
and replaced data stays for time travel. Maintenance merges the small files, rewrites files with
many deleted rows, expires the snapshots older than the retention, deletes the files only those
snapshots used, and deletes files no snapshot knows (left by a writer killed mid-commit). Files
younger than the retention are kept, so a query another process is running never loses a file.
On the file store it is a CHECKPOINT (the write-ahead log into the file).
"""

from __future__ import annotations

import argparse
import json

from itscm.ducklake import CATALOG, METADATA_CATALOG
from itscm.store import Store

DEFAULT_RETENTION_DAYS = 7

# Run in this order: merging and rewriting schedule the replaced files for deletion, expiring
# snapshots schedules the files only they used, and the cleanup deletes what is scheduled.
_LAKE_STEPS = (
    ("merged", f"CALL ducklake_merge_adjacent_files('{CATALOG}')"),
    ("rewritten", f"CALL ducklake_rewrite_data_files('{CATALOG}')"),
    ("snapshots_expired", f"SELECT count(*) FROM ducklake_expire_snapshots('{CATALOG}', "
                          "older_than => now() - to_days(CAST($days AS INTEGER)))"),
    ("old_files_deleted", f"SELECT count(*) FROM ducklake_cleanup_old_files('{CATALOG}', "
                          "older_than => now() - to_days(CAST($days AS INTEGER)))"),
    ("orphaned_files_deleted", f"SELECT count(*) FROM ducklake_delete_orphaned_files('{CATALOG}', "
                               "older_than => now() - to_days(CAST($days AS INTEGER)))"),
)


def maintain(store: Store, retention_days: int = DEFAULT_RETENTION_DAYS) -> dict:
    """Run the maintenance of the store's backend; what it did, step by step."""
    if retention_days < 0:
        raise ValueError("The retention is a number of days, 0 or more.")
    cursor = store.cursor()
    if not store.on_ducklake:
        cursor.execute("CHECKPOINT")
        return {"backend": "file", "checkpoint": True}
    # Merging and rewriting replace files writers may be deleting rows from: writers wait.
    with store.writers_excluded():
        done: dict = {"backend": "ducklake", "retention_days": retention_days,
                      "data_files_before": _data_files(cursor)}
        for step, sql in _LAKE_STEPS:
            params = {"days": retention_days} if "$days" in sql else {}
            rows = cursor.execute(sql, params).fetchall()
            if not sql.startswith("CALL"):   # the merge and the rewrite say nothing countable
                done[step] = int(rows[0][0])
        done["data_files_after"] = _data_files(cursor)
    return done


def _data_files(cursor) -> int:
    """The data files the latest snapshot reads, from the catalog's own table."""
    return int(cursor.execute(f"SELECT count(*) FROM {METADATA_CATALOG}.ducklake_data_file "
                              "WHERE end_snapshot IS NULL").fetchall()[0][0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retention-days", type=int, default=DEFAULT_RETENTION_DAYS, metavar="DAYS",
                        help="DuckLake: keep snapshots (time travel) and replaced files this many days "
                             f"(default {DEFAULT_RETENTION_DAYS}); longer than any query or import runs")
    parser.add_argument("--json", action="store_true", help="one JSON object")


def run(args: argparse.Namespace, store: Store) -> int:
    done = maintain(store, args.retention_days)
    if args.json:
        print(json.dumps(done))
    elif done["backend"] == "file":
        print("Checkpointed the store file.")
    else:
        print(f"Data files read: {done['data_files_before']:,} before, {done['data_files_after']:,} after merging; "
              f"expired {done['snapshots_expired']:,} snapshots older than {args.retention_days} days; deleted "
              f"{done['old_files_deleted']:,} replaced and {done['orphaned_files_deleted']:,} orphaned files.")
    return 0
