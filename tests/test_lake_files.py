"""The lake's large tables read from their Parquet files (itscm/lake_files.py): only where that is
reading the table, and always the files of the snapshot the read sees."""

from __future__ import annotations

import datetime as dt

import pytest

from itscm import lake_copies, lake_files, maintenance
from itscm.demo import build_demo
from itscm.store import Store
from tests import backends

pytestmark = pytest.mark.ducklake_only

VIEWS_SQL = (f"SELECT view_name, sql FROM duckdb_views() WHERE database_name = '{lake_copies.MEMORY_CATALOG}' "
             f"AND schema_name = '{lake_copies.SCHEMA}'")


def insert_incident(store: Store, *incident_ids: str) -> None:
    """The incidents in one commit: one data file."""
    store.write(lambda cursor: cursor.execute(
        "INSERT INTO incidents (incident_id, source, opened_at) "
        "SELECT unnest($ids), 'test', TIMESTAMP '2026-01-05 09:00'", {"ids": list(incident_ids)}))


def incident_ids(store: Store) -> list[str]:
    return [incident_id for (incident_id,) in store.rows("SELECT incident_id FROM incidents ORDER BY incident_id")]


def view_of(store: Store, table: str) -> str | None:
    views = dict(store._root.execute(VIEWS_SQL).fetchall())
    return views.get(table)


def files_of(store: Store, table: str) -> list[str]:
    return [path for (path,) in store.cursor().execute(
        "SELECT data_file FROM ducklake_list_files('store', $table)", {"table": table}).fetchall()]


def test_every_large_table_reads_from_its_files_the_rows_the_lake_reads(tmp_path):
    """A demo organisation moved to a lake: each large table is a view over exactly its files,
    and reads every row and value the lake's own table gives (nested lists and timestamps too)."""
    path = tmp_path / "demo.duckdb"
    with Store(path) as store:
        build_demo(store, services=30, incidents=1_500, as_of=dt.date(2026, 11, 30))
    with Store(backends.moved_here(path)) as store:
        assert store.scalar("SELECT count(*) FROM incidents") == 1_500
        assert store._copies.file_views.from_files == lake_files.FILE_TABLES
        for table in lake_files.FILE_TABLES:
            view = view_of(store, table)
            assert view is not None and "read_parquet" in view
            assert all(path in view for path in files_of(store, table))
            columns = [name for (name,) in store.cursor().execute(
                f"SELECT column_name FROM (DESCRIBE store.main.{table})").fetchall()]
            through_view = store.df(f"SELECT * FROM {table} ORDER BY ALL")
            lake_own = store.cursor().execute(f"SELECT * FROM {table} ORDER BY ALL").df()
            assert list(through_view.columns) == columns and len(through_view) > 0
            assert through_view.equals(lake_own), table


def test_a_read_after_another_handles_commit_reads_the_new_files():
    """Another DuckDB (as another process) commits incidents: the next read sees them, the view
    now naming the new file too."""
    target = backends.new_target()
    with Store(target) as store, Store(target) as other:
        assert incident_ids(store) == []
        assert "incidents" not in store._copies.file_views.from_files   # no file yet: the lake's table
        insert_incident(other, "INC-1")
        assert incident_ids(store) == ["INC-1"]
        assert "incidents" in store._copies.file_views.from_files
        insert_incident(other, "INC-2")
        assert incident_ids(store) == ["INC-1", "INC-2"]
        assert len(files_of(store, "incidents")) == 2
        assert all(path in view_of(store, "incidents") for path in files_of(store, "incidents"))


def test_a_table_with_deleted_rows_is_read_from_the_lake_until_its_files_are_rewritten():
    """A row deleted from a file leaves a delete file: read_parquet would still see it, so the
    name finds the lake's table; and the files merged and the old ones removed by `maintain`
    (a snapshot that records no table's rows as changed), the read follows the new file."""
    target = backends.new_target()
    with Store(target) as store, Store(target) as other:
        insert_incident(other, "INC-1", "INC-2", "INC-3")
        assert incident_ids(store) == ["INC-1", "INC-2", "INC-3"]
        assert "incidents" in store._copies.file_views.from_files
        other.write(lambda cursor: cursor.execute("DELETE FROM incidents WHERE incident_id = 'INC-2'"))
        assert incident_ids(store) == ["INC-1", "INC-3"]
        assert "incidents" not in store._copies.file_views.from_files
        assert view_of(store, "incidents") is None
        other.write(lambda cursor: cursor.execute("DELETE FROM incidents"))
        insert_incident(other, "INC-4")
        insert_incident(other, "INC-5")
        assert incident_ids(store) == ["INC-4", "INC-5"]
        before = files_of(store, "incidents")
        maintenance.maintain(other, retention_days=0)   # merged, and the files replaced deleted
        after = files_of(store, "incidents")
        assert len(after) == 1 and not set(after) & set(before)
        assert incident_ids(store) == ["INC-4", "INC-5"]
        assert "incidents" in store._copies.file_views.from_files and after[0] in view_of(store, "incidents")


def test_a_file_written_before_a_column_was_added_is_read_through_the_lake():
    """A column added after a file was written: the lake gives the old rows the column's default,
    read_parquet would not find the column. The name finds the lake's table, which reads right,
    and so after newer files are written beside the old one."""
    target = backends.new_target()
    with Store(target) as store, Store(target) as other:
        insert_incident(other, "INC-1")
        assert incident_ids(store) == ["INC-1"] and "incidents" in store._copies.file_views.from_files
        other.write(lambda cursor: cursor.execute("ALTER TABLE incidents ADD COLUMN extra INTEGER DEFAULT 7"))
        assert store.rows("SELECT incident_id, extra FROM incidents") == [("INC-1", 7)]
        assert "incidents" not in store._copies.file_views.from_files
        other.write(lambda cursor: cursor.execute(
            "INSERT INTO incidents (incident_id, source, opened_at, extra) VALUES ('INC-2', 'test', now(), 8)"))
        assert store.rows("SELECT incident_id, extra FROM incidents ORDER BY 1") == [("INC-1", 7), ("INC-2", 8)]
        assert "incidents" not in store._copies.file_views.from_files


def test_a_new_lake_writes_its_files_with_lz4():
    """A store made in a lake sets the lake's Parquet compression before anything is written
    (itscm/ducklake.py: DATA_FILE_OPTIONS): the decoding the views pay at every read."""
    target = backends.new_target(migrated=False)
    with Store(target) as store:
        insert_incident(store, "INC-1")
        options = dict(store.cursor().execute("SELECT option_name, value FROM ducklake_options('store')").fetchall())
        assert options["parquet_compression"] == "lz4"
        files = files_of(store, "incidents")
        compressions = {codec for (codec,) in store.cursor().execute(
            "SELECT DISTINCT compression FROM parquet_metadata($files)", {"files": files}).fetchall()}
        assert compressions == {"LZ4_RAW"}
        assert incident_ids(store) == ["INC-1"]
