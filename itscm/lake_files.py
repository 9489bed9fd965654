"""The lake's large tables read straight from their Parquet files, one file list per snapshot.

A read of a lake table asks the catalog, in that read, for the table's file list, its delete files
and a statistics query per filtered column: four to ten PostgreSQL round trips, 4-10 ms of a
measure that reads the incidents and the rollup's months (docs/PERFORMANCE.md, 3 December). The
rows of a snapshot lie in files that never change, so when `lake_copies` makes its copies for a
snapshot it also asks, once, for the files of each table below and puts beside the copies a view
of that name over `read_parquet` of exactly those files: reads through the copies' search path
then find the view and ask the catalog nothing more. The copies' check that a read's snapshot is
theirs covers the views too (docs/DESIGN.md §19, "Large tables read from their files").

Only where that is exactly the lake's table; otherwise no view, and the name finds the lake's own:
- no delete files (rows deleted since a file was written), no inlined rows, no partial or
  encrypted file, no file mapped by name (files added from outside), nothing but Parquet;
- every file holds every column of the table under the table's field id, name and type: a file
  written before a column was added (the lake gives its default), dropped and added again, renamed
  or retyped would read differently through `read_parquet`, which maps by name;
- at least one file (`read_parquet` of none is an error).
A file's columns never change, so each file is looked at once per process.
"""

from __future__ import annotations

import duckdb

from itscm import ducklake

# The tables read from their files: those the measures scan that grow with the incidents and the
# changes (the small ones are copied, itscm/lake_copies.py).
FILE_TABLES = ("incidents", "incident_months", "changes", "service_change_days")


def _live(alias: str) -> str:
    """Whether the catalog row `alias` (a table, schema, column or file) is there at $snapshot."""
    return f"{alias}.begin_snapshot <= $snapshot AND ({alias}.end_snapshot IS NULL OR {alias}.end_snapshot > $snapshot)"


# For each table: its id; its data files at the snapshot (their ids: what a view is made from);
# whether any of them is one `read_parquet` would not read as the lake does, and the merged files'
# pieces; whether rows were deleted from them; whether the lake keeps inlined rows for it.
_FILE_FACTS_SQL = f"""
SELECT t.table_name, t.table_id,
       coalesce(list(f.data_file_id ORDER BY f.data_file_id) FILTER (WHERE f.data_file_id IS NOT NULL), []),
       count(f.data_file_id) FILTER (WHERE f.mapping_id IS NOT NULL OR f.encryption_key IS NOT NULL
                                     OR f.file_format <> 'parquet'),
       coalesce(list(f.partial_file_info) FILTER (WHERE f.partial_file_info IS NOT NULL), []),
       EXISTS (SELECT 1 FROM {ducklake.METADATA_CATALOG}.ducklake_delete_file d
               WHERE d.table_id = t.table_id AND {_live('d')}),
       EXISTS (SELECT 1 FROM {ducklake.METADATA_CATALOG}.ducklake_inlined_data_tables i WHERE i.table_id = t.table_id)
FROM {ducklake.METADATA_CATALOG}.ducklake_table t
JOIN {ducklake.METADATA_CATALOG}.ducklake_schema s
  ON s.schema_id = t.schema_id AND s.schema_name = 'main' AND {_live('s')}
LEFT JOIN {ducklake.METADATA_CATALOG}.ducklake_data_file f ON f.table_id = t.table_id AND {_live('f')}
WHERE {_live('t')} AND list_contains($tables, t.table_name)
GROUP BY t.table_id, t.table_name
"""

# The tables' top-level columns at the snapshot, in order: DuckLake writes a column's id as its
# Parquet field id.
_COLUMNS_SQL = f"""
SELECT c.table_id, list((c.column_id, c.column_name, c.column_type) ORDER BY c.column_order)
FROM {ducklake.METADATA_CATALOG}.ducklake_column c
WHERE list_contains($table_ids, c.table_id) AND c.parent_column IS NULL AND {_live('c')}
GROUP BY c.table_id
"""

Columns = tuple[tuple[int, str, str], ...]   # (field id, name, DuckDB type) of each top-level column


class FileViews:
    """The views of one process's copies (one per `LakeCopies`), made in its refresh transaction."""

    def __init__(self, schema: str):
        self._schema = schema
        self._file_columns: dict[str, Columns] = {}   # by path: files never change
        # What each view was made from (file ids, columns as the catalog has them): a refresh leaves
        # a view whose table has the same (a commit to other tables) as it is.
        self._made_from: dict[str, tuple] = {}
        self.from_files: tuple[str, ...] = ()   # the tables the last refresh put views over: for tests

    def make(self, cursor: duckdb.DuckDBPyConnection, snapshot: int) -> tuple[str, ...]:
        """A view over the files of each table of FILE_TABLES that can be read so at `snapshot`
        (the snapshot `cursor`'s transaction reads), none over the others. Call `forget` if the
        transaction does not commit."""
        facts = {row[0]: row[1:] for row in cursor.execute(
            _FILE_FACTS_SQL, {"snapshot": snapshot, "tables": list(FILE_TABLES)}).fetchall()}
        columns = dict(cursor.execute(_COLUMNS_SQL, {"snapshot": snapshot, "table_ids": [
            table_id for table_id, *_ in facts.values()]}).fetchall()) if facts else {}
        made = []
        for table in FILE_TABLES:
            if table not in facts:
                self._drop(cursor, table)   # not in this store (an older schema)
                continue
            table_id, file_ids, odd_files, merged, deleted, inlined = facts[table]
            made_from = (tuple(file_ids), tuple(tuple(column) for column in columns.get(table_id, ())))
            readable = (file_ids and not odd_files and not deleted and not inlined
                        and all(_whole_at(pieces, snapshot) for pieces in merged))
            if not readable:
                self._drop(cursor, table)
            elif self._made_from.get(table) == made_from or self._make_view(cursor, snapshot, table, made_from[1]):
                self._made_from[table] = made_from
                made.append(table)
            else:
                self._drop(cursor, table)
        self.from_files = tuple(made)
        return self.from_files

    def forget(self) -> None:
        """The views made in a transaction that was rolled back: every one made afresh next time."""
        self._made_from.clear()
        self.from_files = ()

    def _drop(self, cursor: duckdb.DuckDBPyConnection, table: str) -> None:
        # Whatever `_made_from` says: after `forget`, a view of a committed refresh may be there.
        self._made_from.pop(table, None)
        cursor.execute(f"DROP VIEW IF EXISTS {self._schema}.{table}")

    def _make_view(self, cursor: duckdb.DuckDBPyConnection, snapshot: int, table: str,
                   catalog_columns: tuple[tuple[int, str, str], ...]) -> bool:
        """The view over the table's files, when each file holds every column of the table."""
        listed = cursor.execute(
            f"SELECT data_file, delete_file FROM ducklake_list_files("
            f"'{ducklake.CATALOG}', $table, schema => 'main', snapshot_version => $snapshot)",
            {"table": table, "snapshot": snapshot}).fetchall()
        if not listed or any(delete_file is not None for _, delete_file in listed):
            return False
        types = dict(cursor.execute(f"SELECT column_name, column_type FROM (DESCRIBE {ducklake.CATALOG}.main.{table})"
                                    ).fetchall())
        wanted = {(field_id, name, types.get(name)) for field_id, name, _ in catalog_columns}
        files = [path for path, _ in listed]
        if not all(wanted <= set(self._columns_of_file(cursor, path)) for path in files):
            return False
        names = ", ".join(_identifier(name) for _, name, _ in catalog_columns)
        paths = ", ".join(ducklake.sql_literal(path) for path in files)
        cursor.execute(f"CREATE OR REPLACE VIEW {self._schema}.{table} AS SELECT {names} FROM read_parquet([{paths}])")
        return True

    def _columns_of_file(self, cursor: duckdb.DuckDBPyConnection, path: str) -> Columns:
        columns = self._file_columns.get(path)
        if columns is None:
            columns = _top_level_columns(cursor, path)
            self._file_columns[path] = columns
        return columns


def _whole_at(partial_file_info: str, snapshot: int) -> bool:
    """Whether every row of a merged file is there at `snapshot`. A file merged from several
    snapshots' files keeps each row's snapshot and lists the pieces ("snapshot:rows|..."); the lake
    reads the rows of the snapshots up to the one read, read_parquet all of them. Anything else
    written there: not known to be whole."""
    try:
        return all(int(piece.split(":")[0]) <= snapshot for piece in partial_file_info.split("|"))
    except ValueError:
        return False


def _top_level_columns(cursor: duckdb.DuckDBPyConnection, path: str) -> Columns:
    """The file's top-level columns with their field ids and the types `read_parquet` reads."""
    schema = cursor.execute("SELECT name, field_id, num_children FROM parquet_schema($path)", {"path": path}).fetchall()
    # Depth first, the root first: a top-level column's children follow it, and are skipped.
    field_ids: dict[str, int | None] = {}
    index = 1
    while index < len(schema):
        name, field_id, _ = schema[index]
        field_ids[name] = field_id
        index = _after_subtree(schema, index)
    types = cursor.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet($path))",
                           {"path": path}).fetchall()
    return tuple((field_ids.get(name), name, column_type) for name, column_type in types)


def _after_subtree(schema: list[tuple], index: int) -> int:
    pending = 1
    while pending:
        pending += (schema[index][2] or 0) - 1
        index += 1
    return index


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
