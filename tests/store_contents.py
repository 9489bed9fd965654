"""Whole-store comparisons for the reliability tests (no tests here)."""

from __future__ import annotations

from itscm.store import Store


def table_contents(store: Store, id_map: dict[str, str] | None = None, *,
                   data_version: bool = True) -> dict[str, list]:
    """Every row of every table in a stable order, text values renamed by `id_map` (upload ids
    end in a random tail, so two stores doing the same things name their uploads differently).
    schema_version is left out: its applied_at is when that copy was made. `data_version` False
    leaves out store_meta's data version too, to compare a lake with a file: a lake counts its
    commits in its catalog, and its row stays at what the file held when it moved there."""
    id_map = id_map or {}
    contents = {}
    # One read transaction: every table as of one commit, and on a lake one catalog snapshot
    # instead of a catalog transaction per table (a lake of the small organisation: 0.13 -> 0.09
    # CPU s a call, 0.2-0.4 -> 0.1-0.2 s wall); the crash tests compare whole stores at every
    # kill point. Read from the store itself: on a lake, its own tables, not the process's copies.
    with store.read_transaction() as cursor:
        tables = [name for (name,) in cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = 'main' ORDER BY table_name").fetchall()]
        for table in tables:
            if table == "schema_version":
                continue
            rows = cursor.execute(f"SELECT * FROM {table}").fetchall()   # a name from the catalogue, not a user
            if table == "store_meta" and not data_version:
                rows = [row for row in rows if row[0] != "data_version"]
            contents[table] = sorted(
                (tuple(id_map.get(value, value) if isinstance(value, str) else value for value in row)
                 for row in rows),
                key=repr,
            )
    return contents


def upload_names(store: Store) -> dict[str, str]:
    """Upload id -> a name that two stores importing the same files at the same times share."""
    return {upload_id: f"{sha256}@{uploaded_at:%Y-%m-%dT%H:%M:%S}"
            for upload_id, sha256, uploaded_at in store.rows("SELECT upload_id, sha256, uploaded_at FROM uploads")}
