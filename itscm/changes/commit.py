"""Committing a change preview, listing change uploads, undoing one, and mapping a CI name.

As the incident commit (itscm/ingest/commit.py): one transaction, every accepted change or none;
each change classified against the store inside it as insert (new id), update (stored with other
values: the stored version is copied to change_prior_versions first, so undo puts it back
exactly) or unchanged (left alone, keeping the upload it came from). CI names are matched again
inside the transaction, against the services, assets and mappings as they are then. An identical
re-upload (same sha256 as a committed change upload, nothing to insert or update) writes
nothing and names the upload that holds the file. Undo refuses an upload that a later, still
committed upload changed again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow.compute as pc

from itscm import change_days
from itscm.access import Actor, writes
from itscm.changes.read import CHANGE_COLUMNS, CI_KEYS_SQL, ChangePreview
from itscm.ingest.errors import IngestError
from itscm.store import Store, in_row_group_batches

KEY = ("source", "number")   # a change's key (migration 14)
_DATA_COLUMNS = [c for c in CHANGE_COLUMNS if c not in KEY]
_STAGED = "change_staged"
_SAME_AS_STORED = " AND ".join(f"s.{c} IS NOT DISTINCT FROM c.{c}" for c in _DATA_COLUMNS)
_TIMESTAMPS = {"planned_start", "planned_end", "work_end", "closed_at", "completed_at"}


def _typed(alias: str, name: str) -> str:
    return f"CAST({alias}.{name} AS {'TIMESTAMP' if name in _TIMESTAMPS else 'VARCHAR'}) AS {name}"


# The change versions a commit wrote and replaced (change_days.UPLOAD_VERSIONS_SQL's rows), read
# from the plan rather than from `changes`: DuckDB reads a table slowly inside the transaction that
# has just written a million rows into it (0.5 CPU s, loaded, for this scan alone).
_WRITTEN_VERSIONS_SQL = """
    SELECT service_id, asset_id FROM change_plan WHERE action IN ('insert', 'update')
    UNION ALL
    SELECT service_id, asset_id FROM change_prior_versions WHERE upload_id = $upload_id
"""
_STAGED_COPY = "change_staged_rows"  # the staged rows copied into a temp table by a commit


def _plan_sql(staged: str, *, any_stored: bool, match_cis: bool) -> str:
    """The staged changes classified against the stored ones: insert, update or unchanged. With
    `match_cis`, the CI names are matched as the store is now (else the preview's matches are
    kept: the caller knows no write committed since). Without `any_stored` (none of the staged ids
    is stored) every change is an insert and the join with the stored ones is left out."""
    if match_cis:
        columns = ", ".join(_typed("st", c) if c not in ("service_id", "asset_id") else f"k.{c}"
                            for c in CHANGE_COLUMNS)
        source = f"""
            WITH ci_keys AS ({CI_KEYS_SQL})
            SELECT {columns} FROM {staged} st LEFT JOIN ci_keys k ON k.name_key = lower(trim(st.ci_name))"""
    else:
        source = f"SELECT {', '.join(_typed('st', c) for c in CHANGE_COLUMNS)} FROM {staged} st"
    if not any_stored:
        return f"SELECT *, 'insert' AS action FROM ({source})"
    return f"""
        SELECT s.*, CASE WHEN c.number IS NULL THEN 'insert' WHEN {_SAME_AS_STORED} THEN 'unchanged'
                         ELSE 'update' END AS action
        FROM ({source}) s LEFT JOIN changes c ON c.source = s.source AND c.number = s.number
    """


def _make_plan(cur, preview: ChangePreview, *, match_cis: bool) -> None:
    """change_plan from the staged rows. A look-up of the staged ids alone first tells whether any
    is stored: a file of new changes, the usual large import, then needs no comparison, and with
    the preview's CI matches the plan is a view of the registered rows themselves (copying a
    million rows into a temp table cost about 1 CPU second). Otherwise the rows are copied once,
    for the joins: DuckDB joins its own table faster than a registered Arrow table."""
    any_stored = _any_stored(cur, preview)
    _drop_plan(cur)
    if not any_stored and not match_cis:
        cur.execute(f"CREATE TEMP VIEW change_plan AS {_plan_sql(_STAGED, any_stored=False, match_cis=False)}")
        return
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGED_COPY} AS SELECT * FROM {_STAGED}")
    cur.execute(f"CREATE TEMP TABLE change_plan AS "
                f"{_plan_sql(_STAGED_COPY, any_stored=bool(any_stored), match_cis=match_cis)}")


def _any_stored(cur, preview: ChangePreview) -> bool:
    """Whether a staged change is stored already. Numbers are given in sequence, so an export of
    new changes usually lies wholly above the stored ones: no stored number of the upload's source
    between its smallest and largest answers without looking up each staged id (a hash join of a
    million, 0.14 CPU s; this is a scan of the zone maps)."""
    bounds = {f"{column}_{end}": bound.as_py() for column in KEY
              for end, bound in pc.min_max(preview.accepted.column(column)).items()}
    if bounds["number_min"] is None or not cur.execute(
            "SELECT count(*) FROM changes WHERE source BETWEEN $source_min AND $source_max "
            "AND number BETWEEN $number_min AND $number_max", bounds).fetchall()[0][0]:
        return False
    return bool(cur.execute(
        f"SELECT count(*) FROM changes WHERE EXISTS (SELECT 1 FROM {_STAGED} s "
        "WHERE s.source = changes.source AND s.number = changes.number)").fetchall()[0][0])


def _drop_plan(cur) -> None:
    is_view = cur.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'change_plan'").fetchall()[0][0]
    cur.execute(f"DROP {'VIEW' if is_view else 'TABLE'} IF EXISTS change_plan")


@dataclass
class ChangeUploadResult:
    upload_id: str | None  # None for a dry run or when nothing was written
    format: str
    rows_read: int
    changes: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    warnings: int
    unmatched_cis: pd.DataFrame  # ci_name, changes
    already_imported: str | None = None
    dry_run: bool = False
    message: str = ""

    def as_dict(self) -> dict:
        """The `ingest-changes --json` object: the incident import's keys, changes for incidents."""
        return {
            "format": self.format, "rows_read": self.rows_read, "changes": self.changes,
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "rejected": self.rejected, "warnings": self.warnings,
            "unmatched_cis": [{"name": name, "changes": int(count)} for name, count in
                              zip(self.unmatched_cis["ci_name"], self.unmatched_cis["changes"], strict=True)],
            "upload_id": self.upload_id, "already_imported": self.already_imported,
            "dry_run": self.dry_run, "message": self.message,
        }


def _check(preview: ChangePreview) -> None:
    if preview.needs_mapping:
        raise IngestError(f"{preview.file_name} needs a column mapping for {', '.join(preview.missing_fields)} "
                          "before it can be committed.")
    if (preview.matched_at() is None and preview.accepted.num_rows
            and len(pc.unique(preview.accepted.column("number"))) != preview.changes):
        raise IngestError("The preview holds the same change number twice; read the file again.")


def _staged(preview: ChangePreview):
    return in_row_group_batches(preview.accepted.select(CHANGE_COLUMNS))


def _counts_and_unmatched(cur) -> tuple[dict, pd.DataFrame]:
    counts = dict(cur.execute("SELECT action, count(*) FROM change_plan GROUP BY action").fetchall())
    unmatched = cur.execute(
        """SELECT ci_name, count(*) AS changes FROM change_plan
           WHERE service_id IS NULL AND asset_id IS NULL AND ci_name IS NOT NULL
           GROUP BY ci_name ORDER BY changes DESC, ci_name"""
    ).df()
    return counts, unmatched


def _earlier_upload(cur, sha256: str) -> str | None:
    rows = cur.execute(
        "SELECT upload_id FROM change_uploads WHERE sha256 = $sha AND state = 'committed' "
        "ORDER BY uploaded_at DESC LIMIT 1", {"sha": sha256}).fetchall()
    return rows[0][0] if rows else None


def _result(preview: ChangePreview, upload_id, counts: dict, unmatched, *, dry_run: bool) -> ChangeUploadResult:
    return ChangeUploadResult(
        upload_id=upload_id, format=preview.format, rows_read=preview.rows_read, changes=preview.changes,
        inserted=int(counts.get("insert", 0)), updated=int(counts.get("update", 0)),
        unchanged=int(counts.get("unchanged", 0)), rejected=preview.rejected, warnings=preview.warnings,
        unmatched_cis=unmatched, dry_run=dry_run)


def diff_changes(store: Store, preview: ChangePreview) -> ChangeUploadResult:
    """What committing would do, without writing: a dry run."""
    _check(preview)
    cursor = store.cursor()
    cursor.register(_STAGED, _staged(preview))
    try:
        _make_plan(cursor, preview, match_cis=preview.matched_at() != store.data_version())
        counts, unmatched = _counts_and_unmatched(cursor)
        earlier = _earlier_upload(cursor, preview.sha256)
    finally:
        _drop_plan(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGED_COPY}")
        cursor.unregister(_STAGED)
    result = _result(preview, None, counts, unmatched, dry_run=True)
    if earlier and not counts.get("insert") and not counts.get("update"):
        result.already_imported = earlier
        result.message = (f"Dry run: {preview.file_name} was already imported as upload {earlier}; "
                          "committing would change nothing.")
    else:
        result.message = (f"Dry run: would insert {result.inserted}, update {result.updated}, "
                          f"leave {result.unchanged} unchanged; nothing committed.")
    return result


class _NothingChanged(Exception):
    def __init__(self, upload_id: str):
        self.upload_id = upload_id


# Analyst, like incident uploads: a change export is operational data from the ITSM tool, read
# as it is; what it changes in the plans' states is derived, never an edit of a plan or review.
@writes("analyst", "commit a change upload")
def commit_changes(actor: Actor, store: Store, preview: ChangePreview, *,
                   now: datetime | None = None) -> ChangeUploadResult:
    """Write the preview's accepted changes in one transaction, uploaded by `actor`."""
    _check(preview)
    empty = pd.DataFrame({"ci_name": pd.Series(dtype=object), "changes": pd.Series(dtype="int64")})
    if preview.changes == 0:
        result = _result(preview, None, {}, empty, dry_run=False)
        result.message = f"No change was accepted from {preview.file_name}; nothing was committed."
        return result
    now = now or datetime.now(UTC).replace(tzinfo=None)
    cursor = store.cursor()  # the one the transaction below uses: this thread's
    cursor.register(_STAGED, _staged(preview))
    try:
        # Classified before the write transaction, as the incident commit does: DuckDB reads a
        # table made inside a transaction several times slower than a committed one (a
        # million-row insert from it took 6 CPU seconds, not 1). The transaction classifies
        # again if any write committed in between.
        planned_at = store.data_version()
        _make_plan(cursor, preview, match_cis=preview.matched_at() != planned_at)

        def write_in(cur):
            if store.data_version() != planned_at:
                _make_plan(cur, preview, match_cis=True)
            upload_id, counts, unmatched, earlier = _write(cur, preview, actor.name, now)
            return counts, earlier, unmatched, upload_id

        counts, earlier, unmatched, upload_id = store.write(write_in)
    except _NothingChanged as same:
        result = _result(preview, None, {"unchanged": preview.changes}, preview.unmatched_cis(), dry_run=False)
        result.already_imported = same.upload_id
        result.message = f"{preview.file_name} was already imported as upload {same.upload_id}; nothing changed."
        return result
    finally:
        _drop_plan(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGED_COPY}")
        cursor.unregister(_STAGED)
    result = _result(preview, upload_id, counts, unmatched, dry_run=False)
    result.message = (f"Change upload {upload_id}: {result.inserted} inserted, {result.updated} updated, "
                      f"{result.unchanged} unchanged, {result.rejected} rejected.")
    if earlier:
        result.message += (f" The same file was imported before as upload {earlier}; changes edited since "
                           "then were set back to this file's values.")
    return result


def _write(cur, preview: ChangePreview, by: str | None, now: datetime):
    counts, unmatched = _counts_and_unmatched(cur)
    earlier = _earlier_upload(cur, preview.sha256)
    if earlier and not counts.get("insert") and not counts.get("update"):
        raise _NothingChanged(earlier)
    upload_id = _new_upload_id(cur, preview.sha256, now)
    params = {"upload_id": upload_id}
    columns = ", ".join(CHANGE_COLUMNS)
    if counts.get("update"):
        cur.execute(
            f"""
            INSERT INTO change_prior_versions (upload_id, {columns}, prior_upload_id)
            SELECT $upload_id, {", ".join("c." + name for name in CHANGE_COLUMNS)}, c.upload_id
            FROM changes c JOIN change_plan p ON p.source = c.source AND p.number = c.number
            WHERE p.action = 'update'
            """, params)
        cur.execute("DELETE FROM changes WHERE EXISTS (SELECT 1 FROM change_plan p WHERE p.action = 'update' "
                    "AND p.source = changes.source AND p.number = changes.number)")
    cur.execute(
        f"INSERT INTO changes ({columns}, upload_id) SELECT {columns}, $upload_id FROM change_plan "
        "WHERE action IN ('insert', 'update')", params)
    cur.execute(
        """
        INSERT INTO change_uploads (upload_id, file_name, sha256, format, uploaded_by, uploaded_at,
                                    rows_read, inserted, updated, rejected, state)
        VALUES ($upload_id, $file_name, $sha256, $format, $by, $at, $rows_read, $inserted, $updated,
                $rejected, 'committed')
        """,
        params | {"file_name": preview.file_name, "sha256": preview.sha256, "format": preview.format, "by": by,
                  "at": now, "rows_read": preview.rows_read, "inserted": counts.get("insert", 0),
                  "updated": counts.get("update", 0), "rejected": preview.rejected})
    change_days.after_changes_changed(cur, _WRITTEN_VERSIONS_SQL, params)
    return upload_id, counts, unmatched, earlier


def _new_upload_id(cur, sha256: str, now: datetime) -> str:
    while True:
        upload_id = f"chg-{now:%Y%m%dT%H%M%S}-{sha256[:8]}-{secrets.token_hex(3)}"
        if not cur.execute("SELECT count(*) FROM change_uploads WHERE upload_id = $id",
                           {"id": upload_id}).fetchone()[0]:
            return upload_id


@dataclass(frozen=True)
class ChangeUndoResult:
    upload_id: str
    deleted: int
    restored: int
    message: str


@writes("analyst", "undo a change upload")
def undo_change_upload(actor: Actor, store: Store, upload_id: str, *,
                       now: datetime | None = None) -> ChangeUndoResult:
    """Put the changes back as they were before `upload_id`, in one transaction."""
    now = now or datetime.now(UTC).replace(tzinfo=None)

    def write_in(cur):
        row = cur.execute("SELECT state, file_name, undone_at, undone_by FROM change_uploads WHERE upload_id = $id",
                          {"id": upload_id}).fetchone()
        if row is None:
            raise IngestError(f"No change upload '{upload_id}'.")
        state, file_name, undone_at, was_undone_by = row
        if state != "committed":
            raise IngestError(f"Change upload {upload_id} ({file_name}) is already {state}"
                              + (f" since {undone_at:%Y-%m-%d %H:%M}" if undone_at else "")
                              + (f" by {was_undone_by}" if was_undone_by else "") + ".")
        later = cur.execute(
            """
            SELECT p.upload_id, any_value(u.file_name), count(*)
            FROM change_prior_versions p JOIN change_uploads u ON u.upload_id = p.upload_id
            WHERE p.prior_upload_id = $id AND u.state = 'committed'
            GROUP BY p.upload_id ORDER BY p.upload_id
            """, {"id": upload_id}).fetchall()
        if later:
            listed = ", ".join(f"{later_id} ({name}, {count} change(s))" for later_id, name, count in later)
            raise IngestError(f"Change upload {upload_id} cannot be undone: later upload(s) changed its changes "
                              f"again: {listed}. Undo those first.")
        restored = cur.execute("SELECT count(*) FROM change_prior_versions WHERE upload_id = $id",
                               {"id": upload_id}).fetchone()[0]
        change_days.note_changes(cur, change_days.UPLOAD_VERSIONS_SQL, {"upload_id": upload_id})
        touched = cur.execute("DELETE FROM changes WHERE upload_id = $id", {"id": upload_id}).fetchone()[0]
        columns = ", ".join(CHANGE_COLUMNS)
        cur.execute(f"INSERT INTO changes ({columns}, upload_id) SELECT {columns}, prior_upload_id "
                    "FROM change_prior_versions WHERE upload_id = $id", {"id": upload_id})
        cur.execute("DELETE FROM change_prior_versions WHERE upload_id = $id", {"id": upload_id})
        cur.execute("UPDATE change_uploads SET state = 'undone', undone_at = $at, undone_by = $by "
                    "WHERE upload_id = $id", {"id": upload_id, "at": now, "by": actor.name})
        change_days.after_changes_changed(cur)
        return restored, touched

    restored, touched = store.write(write_in)
    deleted = touched - restored
    return ChangeUndoResult(upload_id, deleted, restored,
                            f"Change upload {upload_id} undone: {deleted} change(s) removed, "
                            f"{restored} put back as they were.")


def list_change_uploads(store: Store) -> pd.DataFrame:
    """Every change upload, newest first, with the changes it holds now and what blocks its undo."""
    return store.df(
        """
        WITH holding AS (SELECT upload_id, count(*) AS changes_now FROM changes GROUP BY upload_id),
        blockers AS (
            SELECT p.prior_upload_id AS upload_id, string_agg(DISTINCT p.upload_id, ', ') AS undo_blocked_by
            FROM change_prior_versions p JOIN change_uploads later ON later.upload_id = p.upload_id
            WHERE later.state = 'committed' AND p.prior_upload_id IS NOT NULL
            GROUP BY p.prior_upload_id
        )
        SELECT u.upload_id, u.uploaded_at, u.uploaded_by, u.file_name, u.sha256, u.format, u.rows_read, u.inserted,
               u.updated, u.rejected, u.state, u.undone_at, u.undone_by, coalesce(h.changes_now, 0) AS changes_now,
               b.undo_blocked_by, u.state = 'committed' AND b.undo_blocked_by IS NULL AS can_undo
        FROM change_uploads u LEFT JOIN holding h USING (upload_id) LEFT JOIN blockers b USING (upload_id)
        ORDER BY u.uploaded_at DESC, u.upload_id DESC
        """
    )


def unmatched_change_cis(store: Store) -> pd.DataFrame:
    """ci_name, changes, sources: stored CI names that reach no service and no asset."""
    return store.df(
        """
        SELECT ci_name, count(*) AS changes, string_agg(DISTINCT source, ', ' ORDER BY source) AS sources
        FROM changes WHERE service_id IS NULL AND asset_id IS NULL AND ci_name IS NOT NULL
        GROUP BY ci_name ORDER BY changes DESC, ci_name
        """
    )


@writes("analyst", "map a change CI name")
def map_change_ci(actor: Actor, store: Store, ci_name: str, service_id: str | None = None,
                  asset_id: str | None = None, *, now: datetime | None = None) -> int:
    """Say which service or asset a CI name means: recorded (who, when) for later uploads, and
    every stored change under the name fixed, in one transaction. Returns the changes updated."""
    key = (ci_name or "").strip().lower()
    if not key:
        raise IngestError("A CI name to map is needed.")
    if (service_id is None) == (asset_id is None):
        raise IngestError("Map a CI name to one service or one asset.")
    now = now or datetime.now(UTC).replace(tzinfo=None)

    def write_in(cur):
        table, column, value = ("services", "service_id", service_id) if service_id else ("assets", "asset_id",
                                                                                         asset_id)
        if not cur.execute(f"SELECT count(*) FROM {table} WHERE {column} = $id", {"id": value}).fetchone()[0]:
            raise IngestError(f"No {'service' if service_id else 'asset'} with id '{value}'.")
        cur.execute("INSERT INTO change_ci_mappings VALUES ($key, $name, $service, $asset, $by, $at)",
                    {"key": key, "name": ci_name.strip(), "service": service_id, "asset": asset_id,
                     "by": actor.name, "at": now})
        params = {"key": key, "service": service_id, "asset": asset_id}
        named = "SELECT service_id, asset_id FROM changes WHERE lower(trim(ci_name)) = $key"
        change_days.note_changes(cur, named, {"key": key})   # the services the name reached before
        updated = cur.execute(
            "UPDATE changes SET service_id = $service, asset_id = $asset WHERE lower(trim(ci_name)) = $key",
            params).fetchone()[0]
        # Prior versions too, so undoing an upload later does not bring an unmatched change back.
        cur.execute("UPDATE change_prior_versions SET service_id = $service, asset_id = $asset "
                    "WHERE lower(trim(ci_name)) = $key", params)
        change_days.after_changes_changed(cur, named, {"key": key})
        return updated

    updated = store.write(write_in)
    return int(updated)
