"""Preview, commit and undo of an inventory import, each checked at the action.

    preview = preview_inventory(store, [("inventory.xlsx", data)], retire_missing=False)   # writes nothing
    result = commit_inventory(actor, store, preview)          # all of it or nothing, recorded with who
    undo_inventory_import(actor, store, result.import_id)     # back to the rows as they were

A commit writes from the preview's plan, or plans again inside its transaction when a write was
committed since the preview (the store's data version moved). It writes every table, records
each row it replaced in `inventory_prior_rows` (the row before, as JSON of
every column; the columns it wrote after), the import in `inventory_imports` and one change_log
row, all in one transaction. Files that change nothing write nothing, not even a record. Undo
checks that nothing changed the rows since (and that no later import is still committed), then
puts the rows back exactly. Upserts are UPDATE ... FROM and DELETE + INSERT; ids are made in code
(docs/DESIGN.md: the store must also run on DuckLake, which has no constraints or sequences).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from itscm import access, change_days, rollup
from itscm.ingest.services import SERVICE_NAME_KEYS_SQL
from itscm.store import Store
from itscm.workbook.errors import WorkbookError
from itscm.workbook.plan import COUNT_KEYS, KEY_MACRO, PlanSummary, drop_plan, make_plan, restore_plan, saved_plan
from itscm.workbook.read import ReadResult, problems_frame, read_files
from itscm.workbook.sheets import SHEETS_BY_NAME
from itscm.workbook.targets import TARGETS

ROLE = "continuity manager"
ACTION = "change the inventory"
SHOWN_PROBLEMS = 100


@dataclass
class InventoryPreview:
    """What the files hold and what committing them would do; nothing is written."""
    read: ReadResult
    retire_missing: frozenset[str]         # the sheets whose stored rows absent from the files retire
    plan: PlanSummary
    # The plan's tables and the store's data version they were made at: a commit with no write
    # committed since writes from them instead of planning again.
    saved_plan: dict = field(default_factory=dict, repr=False)
    planned_at: int | None = None
    incidents_to_match: int = 0            # stored incidents without a service under a name the files add

    @property
    def problems(self) -> pd.DataFrame:
        """file, sheet, row (as the spreadsheet shows it: header = 1), column, severity, reason, value."""
        return problems_frame(self.read.problems + self.plan.problems)

    @property
    def tables(self) -> dict[str, dict[str, int]]:
        return self.plan.tables

    @property
    def rejected(self) -> int:
        return sum(counts["rejected"] for counts in self.plan.tables.values())

    @property
    def warnings(self) -> int:
        return sum(1 for problem in self.read.problems + self.plan.problems if problem["severity"] == "warning")

    def as_dict(self) -> dict:
        message = _summary_line(self.plan, dry_run=True)
        if self.incidents_to_match:
            message += f" {self.incidents_to_match:,} stored incident(s) would match the services they name."
        return _as_dict(self.read, self.plan, dry_run=True) | {"message": message,
                                                                "incidents_matched": self.incidents_to_match}


@dataclass
class ImportResult:
    import_id: str | None                  # None when the files changed nothing
    read: ReadResult
    plan: PlanSummary
    message: str
    notes: list[str] = field(default_factory=list)
    incidents_matched: int = 0             # stored incidents now matching a service the files name

    @property
    def problems(self) -> pd.DataFrame:
        return problems_frame(self.read.problems + self.plan.problems)

    def as_dict(self) -> dict:
        return _as_dict(self.read, self.plan, dry_run=False) | {"import_id": self.import_id, "message": self.message,
                                                                 "incidents_matched": self.incidents_matched}


@dataclass(frozen=True)
class UndoResult:
    import_id: str
    restored: dict[str, int]               # table -> rows put back or removed
    message: str


def _as_dict(read: ReadResult, plan: PlanSummary, *, dry_run: bool) -> dict:
    problems = problems_frame(read.problems + plan.problems)
    shown = problems.head(SHOWN_PROBLEMS).astype(object).where(problems.head(SHOWN_PROBLEMS).notna(), None)
    changes = plan.changes.head(SHOWN_PROBLEMS)
    return {
        "dry_run": dry_run,
        "files": [{"file": source.file, "format": source.format, "table": source.sheet.name,
                   "rows": source.rows, "reader": source.reader} for source in read.sources],
        "tables": plan.tables,
        "rejected": sum(counts["rejected"] for counts in plan.tables.values()),
        "warnings": int((problems["severity"] == "warning").sum()),
        "problems": shown.to_dict("records"),
        "changes": changes[["sheet", "row_key", "field", "old", "new"]].astype(object)
        .where(changes[["sheet", "row_key", "field", "old", "new"]].notna(), None).to_dict("records"),
        "notes": list(read.notes),
    }


def _summary_line(plan: PlanSummary, *, dry_run: bool) -> str:
    totals = {key: sum(counts[key] for counts in plan.tables.values()) for key in COUNT_KEYS}
    verb = "would be" if dry_run else "were"
    return (f"{totals['inserted']} row(s) {verb} added, {totals['updated']} changed, {totals['retired']} retired or "
            f"removed; {totals['unchanged']} unchanged, {totals['rejected']} rejected, {totals['absent']} stored "
            "row(s) absent from the files.")


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC).replace(tzinfo=None)


# -- preview --------------------------------------------------------------------------------------


def retire_sheets(retire_missing: bool | Iterable[str]) -> frozenset[str]:
    """The sheet names `retire_missing` means; an unknown name is refused (WorkbookError)."""
    if retire_missing is True:
        return frozenset(SHEETS_BY_NAME)
    if retire_missing is False or retire_missing is None:
        return frozenset()
    chosen = frozenset(retire_missing)
    unknown = sorted(chosen - set(SHEETS_BY_NAME))
    if unknown:
        raise WorkbookError(f"No sheet named {', '.join(map(repr, unknown))} to retire from; the sheets are "
                            + ", ".join(SHEETS_BY_NAME) + ".")
    return chosen


def preview_inventory(store: Store, files: list[tuple[str, bytes]], *,
                      retire_missing: bool | Iterable[str] = False) -> InventoryPreview:
    """Read the files and compare them with the store; raises WorkbookError (one line) for a file
    refused as a whole. `retire_missing`: True for every sheet, or the names of the sheets whose
    stored rows absent from the files are retired or removed."""
    retire_missing = retire_sheets(retire_missing)
    read = read_files(files)
    cursor = store.cursor()
    # Planning is some 240 statements. In one read transaction they see one committed state, and
    # on a lake they share one catalog snapshot: outside it, each statement naming a table was a
    # DuckLake transaction of its own, asking PostgreSQL for the latest snapshot (a small
    # workbook's preview: 1.1 CPU s in all, a quarter of it those). Its ROLLBACK drops the plan.
    cursor.execute("BEGIN TRANSACTION")
    try:
        planned_at = store.data_version(cursor)
        plan = make_plan(cursor, read, retire_missing=retire_missing)
        tables = saved_plan(cursor)
        to_match = cursor.execute(_TO_MATCH_SQL).fetchall()[0][0]
    finally:
        cursor.execute("ROLLBACK")   # it only read
    return InventoryPreview(read, retire_missing, plan, tables, planned_at, to_match)


# -- commit ---------------------------------------------------------------------------------------


class _NothingToWrite(Exception):
    def __init__(self, plan: PlanSummary):
        self.plan = plan


@access.writes(ROLE, ACTION)
def commit_inventory(actor: access.Actor, store: Store, preview: InventoryPreview, *,
                     now: datetime | None = None) -> ImportResult:
    """Write what the preview's files hold, planned again against the store as it is now, in one
    transaction recorded with `actor`; nothing is written when the files change nothing."""
    now = _now(now)
    cursor = store.cursor()

    def write_in(cur):
        if preview.saved_plan and store.data_version() == preview.planned_at:
            restore_plan(cur, preview.saved_plan)   # nothing committed since the preview planned
            plan = preview.plan
        else:
            plan = make_plan(cur, preview.read, retire_missing=preview.retire_missing)
        if not plan.writes:
            raise _NothingToWrite(plan)
        import_id = _new_import_id(cur, now)
        actions = _plan_actions(cur)
        for target in TARGETS:
            _write(cur, target, actions[target.table], import_id, actor.name, now)
        _count_open_findings(cur, import_id)
        # New services need their keys and changed RTOs their rollup rows (docs/DESIGN.md §6.5).
        rollup.after_services_changed(cur)
        links = plan.tables.get("service_assets", {})
        if any(links.get(written) for written in ("inserted", "updated", "retired")):
            change_days.refresh(cur)   # a change to an asset reaches the services running on it (§16.4)
        matched = _match_stored_incidents(cur, import_id)
        _record(cur, import_id, preview, plan, actor.name, now)
        return import_id, matched, plan
    try:

        import_id, matched, plan = store.write(write_in)
    except _NothingToWrite as nothing:
        return ImportResult(None, preview.read, nothing.plan, "The files change nothing: the store already holds "
                            "every row as they give it.")
    finally:
        drop_plan(cursor)
    message = f"Import {import_id}: " + _summary_line(plan, dry_run=False)
    if matched:
        message += f" {matched:,} stored incident(s) now match the services they name."
    return ImportResult(import_id, preview.read, plan, message, incidents_matched=matched)


def _new_import_id(cur, now: datetime) -> str:
    while True:   # readable and sortable; the loop makes uniqueness certain rather than likely
        import_id = f"inv-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        if not cur.execute("SELECT count(*) FROM inventory_imports WHERE import_id = $id",
                           {"id": import_id}).fetchall()[0][0]:
            return import_id


def _key_json(target, alias: str) -> str:
    return "to_json(struct_pack(" + ", ".join(f"{k} := {alias}.{k}" for k in target.key) + "))"


def _after_json(target, alias: str) -> str:
    columns = target.columns + (("recorded_by", "recorded_at") if target.stamped else ())
    return "to_json(struct_pack(" + ", ".join(f"{c} := {alias}.{c}" for c in columns) + "))"


def _key_match(target, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in target.key)


def _plan_actions(cur) -> dict[str, set[str]]:
    """Table -> the actions its plan holds, in one statement: a table's writes of a kind the plan
    lacks are not run (most imports write a few tables, and each statement has its cost)."""
    parts = [f"SELECT '{target.table}' AS table_name, action FROM inv_plan_{target.table} GROUP BY action"
             for target in TARGETS]
    actions: dict[str, set[str]] = {target.table: set() for target in TARGETS}
    for table, action in cur.execute(" UNION ALL ".join(parts)).fetchall():
        actions[table].add(action)
    return actions


def _write(cur, target, actions: set[str], import_id: str, by: str, now: datetime) -> None:
    """One table's inserts, updates, retirements and removals, each replaced row kept for undo."""
    table, plan = target.table, f"inv_plan_{target.table}"
    params = {"id": import_id, "table": table}
    stamps = {"by": by, "at": now} if target.stamped else {}
    changed = actions & {"update", "retire"}
    if changed or "delete" in actions:
        cur.execute(f"""
            INSERT INTO inventory_prior_rows (import_id, table_name, row_key, action, before_row)
            SELECT $id, $table, {_key_json(target, 's')}, p.action, to_json(s)
            FROM {table} s JOIN {plan} p ON {_key_match(target, 's', 'p')}
            WHERE p.action IN ('update', 'retire', 'delete')
        """, params)
    stamp = ", recorded_by = $by, recorded_at = $at" if target.stamped else ""
    if target.data and changed:
        sets = ", ".join(f"{c} = CASE WHEN p.has_{c} THEN p.{c} ELSE {table}.{c} END" for c in target.data)
        cur.execute(f"""
            UPDATE {table} SET {sets}{stamp} FROM {plan} p
            WHERE {_key_match(target, table, 'p')} AND p.action IN ('update', 'retire')
        """, stamps)
    if "delete" in actions:
        cur.execute(f"""
            DELETE FROM {table} s WHERE EXISTS (SELECT 1 FROM {plan} p WHERE p.action = 'delete'
                                               AND {_key_match(target, 's', 'p')})
        """)
    if "insert" in actions:
        _insert(cur, target, plan, params, stamps)
    if changed:
        cur.execute(f"""
            UPDATE inventory_prior_rows r SET after_row = a.after_row
            FROM (SELECT {_key_json(target, 's')} AS row_key, {_after_json(target, 's')} AS after_row FROM {table} s
                  WHERE EXISTS (SELECT 1 FROM {plan} p WHERE p.action IN ('update', 'retire')
                                AND {_key_match(target, 's', 'p')})) a
            WHERE r.import_id = $id AND r.table_name = $table AND r.row_key = a.row_key
        """, params)


def _insert(cur, target, plan: str, params: dict, stamps: dict) -> None:
    """The plan's new rows, and each recorded for undo with the row as stored. The rows are first
    typed as the table types them (a copy of its columns, empty): what is recorded is then what
    the table holds, without reading 100,000 rows back by their keys."""
    columns = ", ".join(target.columns + (("recorded_by", "recorded_at") if target.stamped else ()))
    values = [f"coalesce(p.{c}, {target.defaults[c]})" if c in target.defaults else f"p.{c}"
              for c in target.columns] + (["$by", "$at"] if target.stamped else [])
    # Made and dropped inside the write's transaction: a failed write leaves no trace of it.
    cur.execute(f"CREATE OR REPLACE TEMP TABLE inv_new_rows AS SELECT {columns} FROM {target.table} LIMIT 0")
    cur.execute(f"INSERT INTO inv_new_rows SELECT {', '.join(values)} FROM {plan} p WHERE p.action = 'insert'", stamps)
    cur.execute(f"INSERT INTO {target.table} ({columns}) SELECT {columns} FROM inv_new_rows")
    cur.execute(f"""
        INSERT INTO inventory_prior_rows (import_id, table_name, row_key, action, before_row, after_row)
        SELECT $id, $table, {_key_json(target, 'n')}, 'insert', NULL, {_after_json(target, 'n')}
        FROM inv_new_rows n
    """, params)
    cur.execute("DROP TABLE inv_new_rows")


# Incidents can arrive before the inventory names their service. An import that adds a service,
# a name or an alias matches the stored incidents under it that match no service yet, as an
# incident import matches names (itscm/ingest/services.py); it never moves an incident already
# matched. Each match is kept for undo, which unmatches it.
_INCIDENTS_PRIOR = "incidents.service_id"
_NEWLY_MATCHED_SQL = f"""
    SELECT i.incident_id, k.service_id, i.service_name, i.opened_at, i.restored_at, i.resolved_at, i.closed_at,
           i.priority, i.major
    FROM incidents i JOIN ({SERVICE_NAME_KEYS_SQL}) k ON k.name_key = lower(trim(i.service_name))
    WHERE i.service_id IS NULL AND i.service_name IS NOT NULL
"""
# The same count in a preview, from the names and aliases the plan would write.
_TO_MATCH_SQL = """
    SELECT count(*) FROM incidents
    WHERE service_id IS NULL AND lower(trim(service_name)) IN (
        SELECT lower(trim(name)) FROM inv_plan_services WHERE action IN ('insert', 'update')
        UNION SELECT lower(trim(alias_key)) FROM inv_plan_service_aliases WHERE action IN ('insert', 'update'))
"""


def _match_stored_incidents(cur, import_id: str) -> int:
    cur.execute(f"CREATE OR REPLACE TEMP TABLE inv_matched_incidents AS {_NEWLY_MATCHED_SQL}")
    try:
        matched = cur.execute("SELECT count(*) FROM inv_matched_incidents").fetchall()[0][0]
        if not matched:
            return 0
        cur.execute("""
            INSERT INTO inventory_prior_rows (import_id, table_name, row_key, action, before_row, after_row)
            SELECT $id, $table, to_json(struct_pack(incident_id := incident_id)), 'update',
                   '{"service_id": null}', to_json(struct_pack(service_id := service_id))
            FROM inv_matched_incidents
        """, {"id": import_id, "table": _INCIDENTS_PRIOR})
        cur.execute("""
            UPDATE incidents SET service_id = m.service_id,
                   service_key = (SELECT service_key FROM services s WHERE s.service_id = m.service_id)
            FROM inv_matched_incidents m WHERE incidents.incident_id = m.incident_id
        """)
        rollup.after_incidents_changed(cur, """
            SELECT NULL AS service_id, service_name, opened_at, restored_at, resolved_at, closed_at, priority,
                   major, -1 AS sign
            FROM inv_matched_incidents
            UNION ALL
            SELECT service_id, service_name, opened_at, restored_at, resolved_at, closed_at, priority, major, 1
            FROM inv_matched_incidents
        """)
        return matched
    finally:
        cur.execute("DROP TABLE IF EXISTS inv_matched_incidents")


def _unmatch_incidents(cur, import_id: str) -> None:
    """Undo's side of `_match_stored_incidents`; the rollup is refreshed after it."""
    cur.execute("""
        UPDATE incidents SET service_id = NULL, service_key = NULL
        FROM inventory_prior_rows r
        WHERE r.import_id = $id AND r.table_name = $table
          AND json_extract_string(r.row_key, '$.incident_id') = incidents.incident_id
    """, {"id": import_id, "table": _INCIDENTS_PRIOR})


# drills.open_findings is the count the demo and older stores carry (itscm/records.py keeps it
# equal to the drill's open findings): an import that writes findings counts them again for the
# drills they belong to (before and after), and keeps the counts it replaced for undo, under a
# table name of their own that the row-by-row restore and its checks never read.
_OPEN_FINDINGS_PRIOR = "drills.open_findings"
_FINDINGS_DRILLS_SQL = """
    SELECT drill_id FROM inv_plan_drill_findings WHERE action IN ('insert', 'update', 'delete')
    UNION SELECT old_drill_id FROM inv_plan_drill_findings WHERE action IN ('update', 'delete')
"""


def _count_open_findings(cur, import_id: str) -> None:
    cur.execute(f"""
        INSERT INTO inventory_prior_rows (import_id, table_name, row_key, action, before_row)
        SELECT $id, $table, to_json(struct_pack(drill_id := drill_id)), 'update',
               to_json(struct_pack(open_findings := open_findings))
        FROM drills WHERE drill_id IN ({_FINDINGS_DRILLS_SQL})
    """, {"id": import_id, "table": _OPEN_FINDINGS_PRIOR})
    cur.execute(f"""
        UPDATE drills SET open_findings = (
            SELECT count(*) FROM drill_findings f WHERE f.drill_id = drills.drill_id AND f.state = 'open')
        WHERE drill_id IN ({_FINDINGS_DRILLS_SQL})
    """)


def _restore_open_findings(cur, import_id: str) -> None:
    cur.execute("""
        UPDATE drills SET open_findings = json_extract(r.before_row, '$.open_findings')::INTEGER
        FROM inventory_prior_rows r
        WHERE r.import_id = $id AND r.table_name = $table
          AND json_extract_string(r.row_key, '$.drill_id') = drills.drill_id
    """, {"id": import_id, "table": _OPEN_FINDINGS_PRIOR})


def _record(cur, import_id: str, preview: InventoryPreview, plan: PlanSummary, by: str, now: datetime) -> None:
    files = [file.name for file in preview.read.files]
    counts = plan.tables
    cur.execute("""
        INSERT INTO inventory_imports (import_id, files, sha256s, imported_by, imported_at, retire_missing,
                                       rows_read, rejected, counts, state)
        VALUES ($id, $files, $sha256s, $by, $at, $retire, $rows, $rejected, $counts, 'committed')
    """, {"id": import_id, "files": json.dumps(files), "sha256s": json.dumps([f.sha256 for f in preview.read.files]),
          "by": by, "at": now, "retire": bool(preview.retire_missing),
          "rows": sum(source.rows for source in preview.read.sources),
          "rejected": sum(c["rejected"] for c in counts.values()), "counts": json.dumps(counts)})
    totals = {key: sum(c[key] for c in counts.values()) for key in ("inserted", "updated", "retired", "rejected")}
    cur.execute(
        "INSERT INTO change_log (changed_at, changed_by, action, subject, before, after) "
        "VALUES ($at, $by, 'inventory import', $id, '{}', $after)",
        {"at": now, "by": by, "id": import_id,
         "after": json.dumps({"files": files, **totals, "tables": counts})})


# -- undo -------------------------------------------------------------------------------------------


@access.writes(ROLE, ACTION)
def undo_inventory_import(actor: access.Actor, store: Store, import_id: str, *,
                          now: datetime | None = None) -> UndoResult:
    """Put back every row the import wrote as it was before, in one transaction. Refused when a
    later import is still committed or a row has changed since."""
    now = _now(now)

    def write_in(cur):
        restored: dict[str, int] = {}   # afresh on every run (Store.write)
        cur.execute(KEY_MACRO)
        found = cur.execute("SELECT state, imported_at, undone_at, undone_by FROM inventory_imports "
                            "WHERE import_id = $id", {"id": import_id}).fetchall()
        if not found:
            raise WorkbookError(f"No inventory import '{import_id}'.")
        state, imported_at, undone_at, undone_by = found[0]
        if state != "committed":
            raise WorkbookError(f"Inventory import {import_id} is already {state}"
                                + (f" since {undone_at:%Y-%m-%d %H:%M}" if undone_at else "")
                                + (f" by {undone_by}" if undone_by else "") + ".")
        later = [row[0] for row in cur.execute(
            "SELECT import_id FROM inventory_imports WHERE state = 'committed' AND import_id <> $id "
            "AND (imported_at, import_id) > ($at, $id) ORDER BY imported_at, import_id",
            {"id": import_id, "at": imported_at}).fetchall()]
        if later:
            raise WorkbookError(f"Inventory import {import_id} cannot be undone while later import(s) "
                                f"{', '.join(later)} are committed; undo those first.")
        _refuse_if_changed_since(cur, import_id)
        for target in reversed(TARGETS):
            restored[target.table] = _restore(cur, target, import_id)
        _restore_open_findings(cur, import_id)
        _unmatch_incidents(cur, import_id)
        cur.execute("DELETE FROM inventory_prior_rows WHERE import_id = $id", {"id": import_id})
        cur.execute("UPDATE inventory_imports SET state = 'undone', undone_at = $at, undone_by = $by "
                    "WHERE import_id = $id", {"id": import_id, "at": now, "by": actor.name})
        cur.execute("INSERT INTO change_log (changed_at, changed_by, action, subject, before, after) "
                    "VALUES ($at, $by, 'inventory undo', $id, '{}', $after)",
                    {"at": now, "by": actor.name, "id": import_id,
                     "after": json.dumps({table: n for table, n in restored.items() if n})})
        # Undo may remove services the import added and put back RTOs: incidents may lose their
        # service, so the general refresh (docs/DESIGN.md §6.5).
        rollup.refresh(cur)
        if restored.get("service_assets"):
            change_days.refresh(cur)   # the asset links put back (docs/DESIGN.md §16.4)
        return restored

    restored = store.write(write_in)
    total = sum(restored.values())
    return UndoResult(import_id, restored, f"Inventory import {import_id} undone: {total} row(s) put back as they "
                                           "were.")


def _refuse_if_changed_since(cur, import_id: str) -> None:
    changed = []
    for target in TARGETS:
        rows = cur.execute(f"""
            SELECT r.row_key FROM inventory_prior_rows r
            LEFT JOIN (SELECT {_key_json(target, 's')} AS row_key, {_after_json(target, 's')} AS after_row
                       FROM {target.table} s) c ON c.row_key = r.row_key
            WHERE r.import_id = $id AND r.table_name = $table
              AND CASE WHEN r.action = 'delete' THEN c.row_key IS NOT NULL
                       ELSE c.after_row IS DISTINCT FROM r.after_row END
            LIMIT 5
        """, {"id": import_id, "table": target.table}).fetchall()
        changed += [f"{target.table} {key}" for (key,) in rows]
    # Incidents matched to a service the import added, other than by the import itself (which
    # undo unmatches), or matched by it and moved since.
    matched = cur.execute("""
        SELECT count(*) FROM incidents i JOIN inventory_prior_rows r
          ON r.import_id = $id AND r.table_name = 'services' AND r.action = 'insert'
         AND r.row_key = to_json(struct_pack(service_id := i.service_id))
        WHERE NOT EXISTS (SELECT 1 FROM inventory_prior_rows m
                          WHERE m.import_id = $id AND m.table_name = $incidents
                            AND m.row_key = to_json(struct_pack(incident_id := i.incident_id)))
    """, {"id": import_id, "incidents": _INCIDENTS_PRIOR}).fetchall()[0][0]
    moved = cur.execute("""
        SELECT count(*) FROM inventory_prior_rows m JOIN incidents i
          ON json_extract_string(m.row_key, '$.incident_id') = i.incident_id
        WHERE m.import_id = $id AND m.table_name = $incidents
          AND i.service_id IS DISTINCT FROM json_extract_string(m.after_row, '$.service_id')
    """, {"id": import_id, "incidents": _INCIDENTS_PRIOR}).fetchall()[0][0]
    if moved:
        changed.append(f"{moved} incident(s) the import matched have been changed since")
    if matched:
        changed.append(f"{matched} incident(s) now matched to services the import added")
    if changed:
        raise WorkbookError(f"Inventory import {import_id} cannot be undone: rows it wrote have changed since ("
                            + "; ".join(changed[:5]) + (", ..." if len(changed) > 5 else "") + ").")


def _structure(cur, table: str) -> str:
    """The table's columns and types as json_transform reads them; names from the catalogue."""
    columns = cur.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $t "
                          "AND table_catalog = current_database() AND table_schema = 'main' "
                          "ORDER BY ordinal_position", {"t": table}).fetchall()
    return json.dumps(dict(columns)).replace("'", "''")


def _restore(cur, target, import_id: str) -> int:
    params = {"id": import_id, "table": target.table}
    count = cur.execute("SELECT count(*) FROM inventory_prior_rows WHERE import_id = $id AND table_name = $table",
                        params).fetchall()[0][0]
    if not count:
        return 0
    cur.execute(f"""
        DELETE FROM {target.table} s WHERE EXISTS (
            SELECT 1 FROM inventory_prior_rows r WHERE r.import_id = $id AND r.table_name = $table
            AND r.action <> 'delete' AND r.row_key = {_key_json(target, 's')})
    """, params)
    cur.execute(f"""
        INSERT INTO {target.table} BY NAME
        SELECT unnest(json_transform(r.before_row, '{_structure(cur, target.table)}'))
        FROM inventory_prior_rows r
        WHERE r.import_id = $id AND r.table_name = $table AND r.before_row IS NOT NULL
    """, params)
    return count


def list_inventory_imports(store: Store) -> pd.DataFrame:
    """Every inventory import, newest first: import_id, imported_at, imported_by, files, counts,
    state, undone_at, undone_by, and can_undo (committed, and no later import still committed)."""
    return store.df("""
        SELECT i.import_id, i.imported_at, i.imported_by, i.files, i.rows_read, i.rejected, i.counts,
               i.retire_missing, i.state, i.undone_at, i.undone_by,
               i.state = 'committed' AND NOT EXISTS (
                   SELECT 1 FROM inventory_imports l WHERE l.state = 'committed' AND l.import_id <> i.import_id
                   AND (l.imported_at, l.import_id) > (i.imported_at, i.import_id)) AS can_undo
        FROM inventory_imports i ORDER BY i.imported_at DESC, i.import_id DESC
    """)
