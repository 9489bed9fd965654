"""Committing a preview to the store, listing uploads, and undoing one.

A commit is one transaction: every accepted incident or none. Each incident is classified against
the store as it is inside that transaction: `insert` (new id), `update` (stored with different
values) or `unchanged` (identical: left alone, it keeps the upload it came from). Before an update
the stored version is copied to `incident_prior_versions` (with the upload it came from), so undo
can put it back exactly. Changed incidents are written with MERGE INTO and ids are made here,
never by constraints or sequences (docs/DESIGN.md §10.2: the store must also run on DuckLake, which
has neither).

An identical re-upload (same sha256 as a committed upload, and nothing to insert or update) writes
nothing, not even an uploads row, and says which upload already holds the file.

Undo refuses an upload that a later, still committed upload built on (it updated the same
incidents again): undoing the later one first keeps every restore exact.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from itscm.access import Actor, writes
from itscm.incident_columns import BY_NAME, DERIVED_FROM, FACT_COLUMNS
from itscm.ingest.errors import IngestError
from itscm.ingest.preview import UploadPreview
from itscm.ingest.services import SERVICE_NAME_KEYS_SQL
from itscm.rollup import after_incidents_changed, derived_values_sql
from itscm.store import Store

INCIDENT_COLUMNS = list(FACT_COLUMNS)  # what an upload writes per incident and undo keeps
_DATA_COLUMNS = INCIDENT_COLUMNS[1:]
_STAGED = "ingest_staged"  # the preview's accepted rows, registered (an Arrow table)
_STAGED_COPY = "ingest_staged_rows"  # the same copied into a temp table by a commit
_SAME_AS_STORED = " AND ".join(f"staged.{c} IS NOT DISTINCT FROM i.{c}" for c in _DATA_COLUMNS)
# What the rollup's upkeep is told about each incident version written or replaced.
_ROLLUP_FACTS = ", ".join(DERIVED_FROM)


def _staged_columns(alias: str, service_id: str) -> str:
    """The staged incidents' facts in the store's column order and types (a preview's table may
    have been replaced by one of other widths; a cast to the type a column has is free), with
    `service_id` as the caller matched it."""
    sources = {name: f"{alias}.{name}" for name in INCIDENT_COLUMNS} | {"service_id": service_id}
    return ", ".join(
        f"CAST({sources[name]} AS {BY_NAME[name].duckdb_type}) AS {name}" for name in INCIDENT_COLUMNS
    )


def _plan_sql(staged: str, *, any_stored: bool = True, match_services: bool = True) -> str:
    """Staged incidents classified against the stored ones; service ids matched as the store is
    now. The service names are matched once each, not once per incident. Without `any_stored`
    (none of the staged ids is in the store) every incident is an insert and the join with the
    stored incidents, which holds every staged row in its hash table, is left out. Without
    `match_services` the staged service ids are kept: the caller knows they were matched against
    the store as it is now."""
    classified = (
        f"""
        SELECT staged.*,
               CASE WHEN i.incident_id IS NULL THEN 'insert'
                    WHEN {_SAME_AS_STORED} THEN 'unchanged'
                    ELSE 'update' END AS action
        FROM staged LEFT JOIN incidents i ON i.incident_id = staged.incident_id
        """
        if any_stored
        else "SELECT staged.*, 'insert' AS action FROM staged"
    )
    if not match_services:
        return f"""
        WITH staged AS (
            SELECT {_staged_columns("s", "s.service_id")}
            FROM {staged} s
        )
        {classified}
    """
    return f"""
        WITH name_keys AS ({SERVICE_NAME_KEYS_SQL}),
        name_services AS (
            SELECT n.service_name, k.service_id
            FROM (SELECT DISTINCT service_name FROM {staged} WHERE service_name IS NOT NULL) n
            JOIN name_keys k ON k.name_key = lower(trim(n.service_name))
        ),
        staged AS (
            SELECT {_staged_columns("s", "n.service_id")}
            FROM {staged} s LEFT JOIN name_services n ON n.service_name = s.service_name
        )
        {classified}
    """


_PLAN_SQL = _plan_sql(_STAGED)


@dataclass
class UploadResult:
    upload_id: str | None  # None for a dry run or when nothing was written
    format: str
    rows_read: int
    incidents: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    warnings: int
    unmatched_services: pd.DataFrame  # service_name, incidents
    already_imported: str | None = None  # the upload that already holds this very file
    dry_run: bool = False
    message: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The `ingest --json` object."""
        return {
            "format": self.format,
            "rows_read": self.rows_read,
            "incidents": self.incidents,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "unmatched_services": [
                {"name": name, "incidents": int(count)}
                for name, count in zip(
                    self.unmatched_services["service_name"], self.unmatched_services["incidents"], strict=True
                )
            ],
            "upload_id": self.upload_id,
            "already_imported": self.already_imported,
            "dry_run": self.dry_run,
            "message": self.message,
        }


class _NothingChanged(Exception):
    def __init__(self, upload_id: str):
        self.upload_id = upload_id


def diff_upload(store: Store, preview: UploadPreview) -> UploadResult:
    """What committing would do, without writing: a dry run."""
    _check_committable(preview)
    cursor = store.cursor()
    cursor.register(_STAGED, preview.accepted)
    try:
        counts = dict(
            cursor.execute(f"SELECT action, count(*) FROM ({_PLAN_SQL}) GROUP BY action").fetchall()
        )
        unmatched = _unmatched(cursor, f"({_PLAN_SQL})")
        earlier = _earlier_upload(cursor, preview.sha256)
    finally:
        cursor.unregister(_STAGED)
    result = _result(preview, None, counts, unmatched, dry_run=True)
    if earlier and not counts.get("insert") and not counts.get("update"):
        result.already_imported = earlier
        result.message = (
            f"Dry run: {preview.file_name} was already imported as upload {earlier}; committing would change nothing."
        )
    else:
        result.message = (
            f"Dry run: would insert {result.inserted}, update {result.updated}, "
            f"leave {result.unchanged} unchanged; nothing committed."
        )
    return result


@writes("analyst", "commit an upload")
def commit_upload(
    actor: Actor, store: Store, preview: UploadPreview, *, now: datetime | None = None
) -> UploadResult:
    """Write the preview's accepted incidents in one transaction, uploaded by `actor`; see the
    module docstring."""
    uploaded_by = actor.name
    _check_committable(preview)
    if preview.incidents == 0:
        result = _result(preview, None, {}, _no_unmatched(), dry_run=False)
        result.message = f"No incident was accepted from {preview.file_name}; nothing was committed."
        return result
    now = now or datetime.now(UTC).replace(tzinfo=None)
    cursor = store.cursor()  # the one the transaction below uses: this thread's
    cursor.register(_STAGED, preview.accepted)
    try:
        # Copied once into a temp table: DuckDB builds a table from a join over a registered
        # Arrow table far slower than from its own table, and the plan below and the write that
        # joins it with the services read this copy (through a table built from it, or a view).
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGED_COPY} AS SELECT * FROM {_STAGED}")
        vouched = preview.vouched()
        if vouched is None:  # not the rows read_upload made and checked
            duplicates = cursor.execute(
                f"SELECT count(*) - count(DISTINCT incident_id) FROM {_STAGED_COPY}"
            ).fetchone()[0]
            if duplicates:
                raise IngestError("The preview holds the same incident id twice; read the file again.")
        # Classified before the write transaction: DuckDB reads a table made inside a transaction
        # (its transaction-local storage) several times slower than a committed one, and the plan
        # is read by every write below. The transaction classifies again if any write committed
        # in between (the store's data version moved), so the plan always matches what it writes.
        # The preview's service matches are kept only if no write committed since it matched.
        planned_at = store.data_version()
        _make_plan(cursor, match_services=vouched is None or vouched.services_version != planned_at)

        def write_in(cur):   # run again from here, classified afresh, if another process's commit conflicts
            if store.data_version() != planned_at:
                _make_plan(cur, match_services=True)
            return _write(cur, preview, uploaded_by, now)

        upload_id, counts, unmatched, earlier = store.write(write_in)
    except _NothingChanged as same:
        result = _result(
            preview, None, {"unchanged": preview.incidents}, preview.unmatched_services(), dry_run=False
        )
        result.already_imported = same.upload_id
        result.message = (
            f"{preview.file_name} was already imported as upload {same.upload_id}; nothing changed."
        )
        return result
    finally:
        _drop_plan(cursor)
        cursor.execute(f"DROP TABLE IF EXISTS {_STAGED_COPY}")
        cursor.unregister(_STAGED)
    result = _result(preview, upload_id, counts, unmatched, dry_run=False)
    result.message = (
        f"Upload {upload_id}: {result.inserted} inserted, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.rejected} rejected."
    )
    if earlier:
        result.message += (
            f" The same file was imported before as upload {earlier}; incidents changed since then "
            "were set back to this file's values."
        )
    return result


def _make_plan(cur, *, match_services: bool) -> None:
    """ingest_plan from the staged copy. A look-up of the staged ids alone (a narrow join, whose
    id range often lets DuckDB skip most of the stored ones) first tells whether any is stored: a
    file of new incidents, the usual large import, then needs no comparison with stored ones."""
    any_stored = cur.execute(
        f"SELECT count(*) FROM incidents WHERE incident_id IN (SELECT incident_id FROM {_STAGED_COPY})"
    ).fetchall()[0][0]
    plan = _plan_sql(_STAGED_COPY, any_stored=bool(any_stored), match_services=match_services)
    _drop_plan(cur)
    # New incidents with the preview's services are the staged copy as it is, plus their action:
    # read through a view rather than copied a second time (0.15 s for a million rows).
    kind = "VIEW" if not any_stored and not match_services else "TABLE"
    cur.execute(f"CREATE TEMP {kind} ingest_plan AS {plan}")


def _drop_plan(cur) -> None:
    is_view = cur.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = 'ingest_plan'"
    ).fetchall()[0][0]
    cur.execute(f"DROP {'VIEW' if is_view else 'TABLE'} IF EXISTS ingest_plan")


def _write(cur, preview: UploadPreview, uploaded_by: str | None, now: datetime):
    try:
        counts = dict(cur.execute("SELECT action, count(*) FROM ingest_plan GROUP BY action").fetchall())
        earlier = _earlier_upload(cur, preview.sha256)
        if earlier and not counts.get("insert") and not counts.get("update"):
            raise _NothingChanged(earlier)
        upload_id = _new_upload_id(cur, preview.sha256, now)
        params = {"upload_id": upload_id}
        columns = ", ".join(INCIDENT_COLUMNS)
        cur.execute(
            f"""
            INSERT INTO incident_prior_versions (upload_id, {columns}, prior_upload_id)
            SELECT $upload_id, {", ".join("i." + c for c in INCIDENT_COLUMNS)}, i.upload_id
            FROM incidents i JOIN ingest_plan p ON p.incident_id = i.incident_id
            WHERE p.action = 'update'
            """,
            params,
        )
        # New incidents are appended (the plan proved them new inside this very transaction);
        # changed ones are updated with MERGE. Both fill the derived columns as they write.
        derived = derived_values_sql("s")
        derived_names = ", ".join(derived)
        cur.execute(
            f"""
            INSERT INTO incidents ({columns}, upload_id, service_key, {derived_names})
            SELECT {", ".join("s." + c for c in INCIDENT_COLUMNS)}, $upload_id, k.service_key,
                   {", ".join(derived.values())}
            FROM ingest_plan s LEFT JOIN services k ON k.service_id = s.service_id
            WHERE s.action = 'insert'
            """,
            params,
        )
        if counts.get("update"):
            # Every 'update' row was found stored by the plan, which matches this transaction's
            # view of the store (commit_upload makes it again if any write committed since), and
            # the append above adds only other ids: every row is matched, so there is no NOT
            # MATCHED branch. MERGE rather than UPDATE ... FROM: it is the form checked on
            # DuckLake (docs/DESIGN.md §10.2), where the store may move.
            cur.execute(
                f"""
                MERGE INTO incidents USING (
                    SELECT s.*, k.service_key, {", ".join(f"{sql} AS {name}" for name, sql in derived.items())}
                    FROM ingest_plan s LEFT JOIN services k ON k.service_id = s.service_id
                    WHERE s.action = 'update'
                ) AS s
                ON incidents.incident_id = s.incident_id
                WHEN MATCHED THEN UPDATE SET {", ".join(f"{c} = s.{c}" for c in _DATA_COLUMNS)},
                    upload_id = $upload_id, service_key = s.service_key,
                    {", ".join(f"{name} = s.{name}" for name in derived)}
                """,
                params,
            )
        # The rollup learns exactly what changed: the versions written, the ones they replaced.
        after_incidents_changed(
            cur,
            f"""
            SELECT {_ROLLUP_FACTS}, 1 AS sign FROM ingest_plan WHERE action <> 'unchanged'
            UNION ALL
            SELECT {_ROLLUP_FACTS}, -1 FROM incident_prior_versions WHERE upload_id = $upload_id
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO uploads (upload_id, file_name, sha256, format, uploaded_by, uploaded_at,
                                 rows_read, inserted, updated, rejected, state)
            VALUES ($upload_id, $file_name, $sha256, $format, $by, $at,
                    $rows_read, $inserted, $updated, $rejected, 'committed')
            """,
            params
            | {
                "file_name": preview.file_name,
                "sha256": preview.sha256,
                "format": preview.stored_format,
                "by": uploaded_by,
                "at": now,
                "rows_read": preview.rows_read,
                "inserted": counts.get("insert", 0),
                "updated": counts.get("update", 0),
                "rejected": preview.rejected,
            },
        )
        unmatched = _unmatched(cur, "ingest_plan")
    finally:
        _drop_plan(cur)
    return upload_id, counts, unmatched, earlier


def _check_committable(preview: UploadPreview) -> None:
    if preview.needs_mapping:
        raise IngestError(
            f"{preview.file_name} needs a column mapping for {', '.join(preview.missing_fields)} "
            "before it can be committed."
        )


def _earlier_upload(cur, sha256: str) -> str | None:
    rows = cur.execute(
        "SELECT upload_id FROM uploads WHERE sha256 = $sha AND state = 'committed' "
        "ORDER BY uploaded_at DESC LIMIT 1",
        {"sha": sha256},
    ).fetchall()
    # fetchall: a result left unread on the reader's cursor keeps a transaction open, which
    # stops DuckDB from checkpointing.
    return rows[0][0] if rows else None


def _new_upload_id(cur, sha256: str, now: datetime) -> str:
    # Readable and sortable; the random tail keeps two uploads of one file in one second apart,
    # and the loop makes uniqueness certain rather than likely.
    while True:
        upload_id = f"upl-{now:%Y%m%dT%H%M%S}-{sha256[:8]}-{secrets.token_hex(3)}"
        taken = cur.execute(
            "SELECT count(*) FROM uploads WHERE upload_id = $id", {"id": upload_id}
        ).fetchone()[0]
        if not taken:
            return upload_id


def _unmatched(cur, relation: str) -> pd.DataFrame:
    return cur.execute(
        f"""
        SELECT service_name, count(*) AS incidents FROM {relation}
        WHERE service_id IS NULL AND service_name IS NOT NULL
        GROUP BY service_name ORDER BY incidents DESC, service_name
        """
    ).df()


def _no_unmatched() -> pd.DataFrame:
    return pd.DataFrame({"service_name": pd.Series(dtype=object), "incidents": pd.Series(dtype="int64")})


def _result(
    preview: UploadPreview, upload_id, counts: dict, unmatched: pd.DataFrame, *, dry_run: bool
) -> UploadResult:
    return UploadResult(
        upload_id=upload_id,
        format=preview.stored_format,
        rows_read=preview.rows_read,
        incidents=preview.incidents,
        inserted=int(counts.get("insert", 0)),
        updated=int(counts.get("update", 0)),
        unchanged=int(counts.get("unchanged", 0)),
        rejected=preview.rejected,
        warnings=preview.warnings,
        unmatched_services=unmatched,
        dry_run=dry_run,
        notes=list(preview.notes),
    )


@dataclass(frozen=True)
class UndoResult:
    upload_id: str
    deleted: int  # incidents the upload had inserted
    restored: int  # incidents put back to their version before the upload
    message: str


@writes("analyst", "undo an upload")
def undo_upload(actor: Actor, store: Store, upload_id: str, *, now: datetime | None = None) -> UndoResult:
    """Put the store back as it was before `upload_id`, in one transaction, undone by `actor`."""
    undone_by = actor.name
    now = now or datetime.now(UTC).replace(tzinfo=None)

    def undo_in(cur) -> tuple[int, int]:   # run again from here if another process's commit conflicts
        row = cur.execute(
            "SELECT state, file_name, undone_at, undone_by FROM uploads WHERE upload_id = $id",
            {"id": upload_id},
        ).fetchone()
        if row is None:
            raise IngestError(f"No upload '{upload_id}'.")
        state, file_name, undone_at, was_undone_by = row
        if state != "committed":
            raise IngestError(
                f"Upload {upload_id} ({file_name}) is already {state}"
                + (f" since {undone_at:%Y-%m-%d %H:%M}" if undone_at else "")
                + (f" by {was_undone_by}" if was_undone_by else "")
                + "."
            )
        later = cur.execute(
            """
            SELECT p.upload_id, any_value(u.file_name), count(*)
            FROM incident_prior_versions p JOIN uploads u ON u.upload_id = p.upload_id
            WHERE p.prior_upload_id = $id AND u.state = 'committed'
            GROUP BY p.upload_id ORDER BY p.upload_id
            """,
            {"id": upload_id},
        ).fetchall()
        if later:
            listed = ", ".join(f"{later_id} ({name}, {count} incident(s))" for later_id, name, count in later)
            raise IngestError(
                f"Upload {upload_id} cannot be undone: later upload(s) changed its incidents again: "
                f"{listed}. Undo those first."
            )
        restored = cur.execute(
            "SELECT count(*) FROM incident_prior_versions WHERE upload_id = $id", {"id": upload_id}
        ).fetchone()[0]
        # What the undo changes, kept for the rollup: the upload's versions go, the prior ones return.
        cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE undo_changes AS
            SELECT {_ROLLUP_FACTS}, -1 AS sign FROM incidents WHERE upload_id = $id
            UNION ALL
            SELECT {_ROLLUP_FACTS}, 1 FROM incident_prior_versions WHERE upload_id = $id
            """,
            {"id": upload_id},
        )
        touched = cur.execute("DELETE FROM incidents WHERE upload_id = $id", {"id": upload_id}).fetchone()[0]
        columns = ", ".join(INCIDENT_COLUMNS)
        derived = derived_values_sql("p")
        cur.execute(
            f"""
            INSERT INTO incidents ({columns}, upload_id, service_key, {", ".join(derived)})
            SELECT {", ".join("p." + c for c in INCIDENT_COLUMNS)}, p.prior_upload_id, k.service_key,
                   {", ".join(derived.values())}
            FROM incident_prior_versions p LEFT JOIN services k ON k.service_id = p.service_id
            WHERE p.upload_id = $id
            """,
            {"id": upload_id},
        )
        cur.execute("DELETE FROM incident_prior_versions WHERE upload_id = $id", {"id": upload_id})
        after_incidents_changed(cur, "SELECT * FROM undo_changes")
        cur.execute("DROP TABLE undo_changes")   # a failure rolls its creation back with the rest
        cur.execute(
            "UPDATE uploads SET state = 'undone', undone_at = $at, undone_by = $by WHERE upload_id = $id",
            {"id": upload_id, "at": now, "by": undone_by},
        )
        return touched, restored

    touched, restored = store.write(undo_in)
    deleted = touched - restored
    return UndoResult(
        upload_id,
        deleted,
        restored,
        f"Upload {upload_id} undone: {deleted} incident(s) removed, {restored} put back as they were.",
    )


def list_uploads(store: Store) -> pd.DataFrame:
    """Every upload, newest first, with its counts, the incidents it holds now, and what (if
    anything) blocks undoing it."""
    return store.df(
        """
        WITH holding AS (
            SELECT upload_id, count(*) AS incidents_now FROM incidents GROUP BY upload_id
        ),
        blockers AS (
            SELECT p.prior_upload_id AS upload_id, string_agg(DISTINCT p.upload_id, ', ') AS undo_blocked_by
            FROM incident_prior_versions p JOIN uploads later ON later.upload_id = p.upload_id
            WHERE later.state = 'committed' AND p.prior_upload_id IS NOT NULL
            GROUP BY p.prior_upload_id
        )
        SELECT u.upload_id, u.uploaded_at, u.uploaded_by, u.file_name, u.sha256, u.format,
               u.rows_read, u.inserted, u.updated, u.rejected, u.state, u.undone_at, u.undone_by,
               coalesce(h.incidents_now, 0) AS incidents_now, b.undo_blocked_by,
               u.state = 'committed' AND b.undo_blocked_by IS NULL AS can_undo
        FROM uploads u LEFT JOIN holding h USING (upload_id) LEFT JOIN blockers b USING (upload_id)
        ORDER BY u.uploaded_at DESC, u.upload_id DESC
        """
    )
