"""Admin changes: a service's inventory facts, the policy per tier, the posture targets. Each is
checked, written, and recorded in change_log with who made it and the fields before and after,
all in one transaction, so a change and its record never part. Each takes the acting user first
and is an admin's to make (`@writes`, itscm/access.py), except a service's facts, which are the
continuity manager's (as are the other inventory records, itscm/records.py).

`change_history` reads every attributed change of the store as one list: these, uploads and
undos, mapped service names, role grants and saved column mappings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from itscm import rollup
from itscm.access import Actor, writes
from itscm.checks import LONGEST_OBJECTIVE_MINUTES, ChangeRefused, cost, one_of, text, whole_minutes  # noqa: F401
from itscm.filters import EVENT_SCOPES
from itscm.measures.coverage import DRILL_TYPES_WEAKEST_FIRST
from itscm.store import Store
from itscm.targets import TARGET_KEY_PREFIX, default_targets

RECOVERY_STRATEGIES = ("active-active", "hot", "warm", "cold", "manual", "none")
LIFECYCLES = ("live", "retired")
# LONGEST_OBJECTIVE_MINUTES (itscm/checks.py) is read from here too, by the workbook and the edit form.
TIERS = (1, 2, 3, 4)
LONGEST_INTERVAL_DAYS = 3660                 # ten years


class _NothingToChange(Exception):
    """Raised inside a transaction to roll it back: the store already says so, so the data
    version stays and the cached pages stay warm."""


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC).replace(tzinfo=None)


def _log(cursor, by: str, action: str, subject: str, before: dict, after: dict, now: datetime) -> None:
    cursor.execute(
        "INSERT INTO change_log (changed_at, changed_by, action, subject, before, after) "
        "VALUES ($at, $by, $action, $subject, $before, $after)",
        {"at": now, "by": by, "action": action, "subject": subject,
         "before": json.dumps(before, default=str), "after": json.dumps(after, default=str)},
    )


@writes("admin", "record a change in the history")
def record_change(actor: Actor, store: Store, action: str, subject: str, *, before: dict | None = None,
                  after: dict | None = None, now: datetime | None = None) -> None:
    """Record a change made outside this module (a backup taken from the app). The change log is
    the record of the inventory, policy, target and backup changes."""

    def write_in(cursor):
        _log(cursor, actor.name, action, subject, before or {}, after or {}, _now(now))

    store.write(write_in)


@dataclass(frozen=True)
class _Editable:
    """One kind of row an admin edits: its fields with their checks, and its statements, written
    here once, so a column name never comes from the caller's text."""
    table: str
    key_column: str
    action: str                                   # as the change log names it
    checks: dict[str, Callable]                   # field -> check, returning the value to store
    unknown_field: str                            # message for a field that is not editable

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.checks)

    def select_sql(self) -> str:
        return f"SELECT {', '.join(self.fields)} FROM {self.table} WHERE {self.key_column} = $key"

    def update_sql(self, field: str) -> str:
        return f"UPDATE {self.table} SET {field} = $value WHERE {self.key_column} = $key"


def checked_changes(kind: _Editable, changes: dict) -> dict:
    """`changes` ({field: value as given}) checked: {field: value to store}; ChangeRefused else."""
    unknown = set(changes) - set(kind.fields)
    if unknown:
        raise ChangeRefused(kind.unknown_field.format(fields=", ".join(sorted(unknown))))
    try:
        return {field: kind.checks[field](value) for field, value in changes.items()}
    except ChangeRefused:
        raise
    except (TypeError, ValueError) as error:
        raise ChangeRefused(f"Not a valid value: {error}.") from error


@dataclass(frozen=True)
class _RowEdit:
    key: object                                   # the row's key (a service id, a tier)
    changes: dict                                 # field -> wanted value, as given
    subject: str                                  # as the change log names the row
    missing: str                                  # message when there is no such row


def _edit(store: Store, kind: _Editable, edits: list[_RowEdit], *, by: str, now: datetime | None,
          check_in_store: Callable | None = None,
          after: Callable | None = None) -> dict[object, dict[str, tuple]]:
    """Check every edit, then apply the fields that differ from the rows as they are and log them
    with their before and after, all in one transaction: every edit or none. Returns
    {key: {field: (before, after)}} for the rows that changed; nothing changed writes nothing.
    `after(cursor, changed)` runs in the transaction once the rows are written."""
    wanted = [checked_changes(kind, edit.changes) for edit in edits]

    def write_in(cursor):
        done: dict[object, dict[str, tuple]] = {}   # afresh on every run (Store.write)
        for edit, fields in zip(edits, wanted, strict=True):
            rows = cursor.execute(kind.select_sql(), {"key": edit.key}).fetchall()
            if not rows:
                raise ChangeRefused(edit.missing)
            if check_in_store:
                check_in_store(cursor, fields)
            current = dict(zip(kind.fields, map(_plain, rows[0]), strict=True))
            changed = {field: (current[field], value) for field, value in fields.items() if current[field] != value}
            for field, (_, value) in changed.items():
                cursor.execute(kind.update_sql(field), {"value": value, "key": edit.key})
            if changed:
                _log(cursor, by, kind.action, edit.subject, {f: old for f, (old, _) in changed.items()},
                     {f: new for f, (_, new) in changed.items()}, _now(now))
                done[edit.key] = changed
        if not done:
            raise _NothingToChange
        if after:
            after(cursor, done)
        return done

    try:

        return store.write(write_in)
    except _NothingToChange:
        return {}


def _plain(value):
    """A value as JSON keeps it: numpy and pandas scalars become Python ones."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


# -- services -------------------------------------------------------------------------------------

# The facts of a service an admin may edit, each with the check that keeps a wrong value out. The
# service id is its identity (incidents, plans and drills point at it), so it is not editable.
SERVICE = _Editable("services", "service_id", "edit service", {
    "name": lambda v: text("Name", v, required=True),
    "unit_id": lambda v: text("Business unit", v),
    "tier": lambda v: one_of("Tier", None if v is None else int(v), TIERS),
    "owner": lambda v: text("Owner", v),
    "rto_minutes": lambda v: whole_minutes("RTO", v),
    "rpo_minutes": lambda v: whole_minutes("RPO", v),
    "mtpd_minutes": lambda v: whole_minutes("MTPD", v),
    "impact_cost_per_hour": cost,
    "recovery_strategy": lambda v: one_of("Recovery strategy", v, (*RECOVERY_STRATEGIES, None)),
    "lifecycle": lambda v: one_of("Lifecycle", v, LIFECYCLES),
}, unknown_field="{fields} cannot be edited here.")
SERVICE_FIELDS = SERVICE.fields
FIELD_LABELS = {"name": "name", "unit_id": "business unit", "tier": "tier", "owner": "owner", "rto_minutes": "RTO",
                "rpo_minutes": "RPO", "mtpd_minutes": "MTPD", "impact_cost_per_hour": "cost per hour",
                "recovery_strategy": "recovery strategy", "lifecycle": "lifecycle"}


def service_facts(store: Store, service_id: str) -> dict | None:
    """The editable facts of a service as they are now, or None if there is no such service."""
    rows = store.rows(SERVICE.select_sql(), {"key": service_id})
    return dict(zip(SERVICE_FIELDS, map(_plain, rows[0]), strict=True)) if rows else None


def business_units(store: Store) -> dict[str, str]:
    """unit_id -> name, by name: the choices for a service's business unit."""
    return dict(store.rows("SELECT unit_id, name FROM business_units ORDER BY name"))


def _unit_exists(cursor, wanted: dict) -> None:
    unit = wanted.get("unit_id")
    if unit is not None and not cursor.execute(
            "SELECT count(*) FROM business_units WHERE unit_id = $unit", {"unit": unit}).fetchall()[0][0]:
        raise ChangeRefused(f"There is no business unit {unit!r}.")


@writes("continuity manager", "edit the inventory")
def edit_service(actor: Actor, store: Store, service_id: str, changes: dict, *,
                 now: datetime | None = None) -> dict[str, tuple]:
    """Set the given facts of a service. Returns {field: (before, after)} for the fields that
    changed (empty when none did; nothing is written or logged then)."""
    edit = _RowEdit(service_id, changes, service_id, f"There is no service {service_id!r}.")
    return _edit(store, SERVICE, [edit], by=actor.name, now=now, check_in_store=_unit_exists,
                 after=_keep_rollup_current).get(service_id, {})


def _keep_rollup_current(cursor, changed: dict[object, dict[str, tuple]]) -> None:
    # Of a service's facts, the rollup reads only the RTO (attainment and breach time).
    if any("rto_minutes" in fields for fields in changed.values()):
        rollup.after_services_changed(cursor)


# -- policy per tier ------------------------------------------------------------------------------

POLICY = _Editable("policy", "tier", "edit policy", {
    "review_interval_days": lambda v: _days("Review interval", v),
    "test_interval_days": lambda v: _days("Test interval", v),
    "min_test_type": lambda v: one_of("Minimum test type", v, tuple(DRILL_TYPES_WEAKEST_FIRST)),
    "is_critical": lambda v: bool(one_of("Critical", v, (True, False))),
    # the top of the tier's RTO band (docs/DESIGN.md §14.5); empty: no band for the tier
    "rto_ceiling_minutes": lambda v: whole_minutes("RTO ceiling", v),
    "change_fails_review": lambda v: bool(one_of("A change since review fails the review control", v, (True, False))),
}, unknown_field="{fields} is not a policy setting.")
POLICY_FIELDS = POLICY.fields


def _days(label: str, value) -> int:
    if value is None or isinstance(value, bool) or not float(value).is_integer():
        raise ChangeRefused(f"{label} is a whole number of days.")
    days = int(value)
    if not 1 <= days <= LONGEST_INTERVAL_DAYS:
        raise ChangeRefused(f"{label} must be between 1 and {LONGEST_INTERVAL_DAYS:,} days.")
    return days


def policy(store: Store) -> pd.DataFrame:
    """tier, review_interval_days, test_interval_days, min_test_type, is_critical, rto_ceiling_minutes,
    change_fails_review."""
    return store.df(f"SELECT tier, {', '.join(POLICY_FIELDS)} FROM policy ORDER BY tier")


@writes("admin", "edit the policy")
def edit_policy(actor: Actor, store: Store, changes_by_tier: dict[int, dict], *,
                now: datetime | None = None) -> dict[int, dict[str, tuple]]:
    """Set the policy of one or more tiers, all or nothing; returns {tier: {field: (before,
    after)}} for the tiers that changed."""
    edits = [_RowEdit(tier, changes, f"tier {tier}", f"There is no policy for tier {tier!r}.")
             for tier, changes in changes_by_tier.items()]
    return _edit(store, POLICY, edits, by=actor.name, now=now)


# -- which incidents are continuity events ------------------------------------------------------

CONTINUITY_RULE_FIELDS = ("max_priority", "outage_past_rto", "marked_major", "default_events")
CONTINUITY_RULE_CHECKS: dict[str, Callable] = {
    "max_priority": lambda v: one_of("Highest priority number that is a continuity event",
                                     None if v is None else int(v), (*TIERS, None)),
    "outage_past_rto": lambda v: bool(one_of("Outage longer than the RTO", v, (True, False))),
    "marked_major": lambda v: bool(one_of("Marked major in the source", v, (True, False))),
    "default_events": lambda v: one_of("Scope shown by default", v, EVENT_SCOPES),
}


def continuity_event_rule(store: Store) -> dict:
    """{max_priority, outage_past_rto, marked_major, default_events}: which incidents are
    continuity events (priorities 1 to max_priority, None for none by priority; an outage longer
    than the service's RTO; marked major in the source) and the scope the pages and `summary`
    show unless asked (docs/DESIGN.md §17)."""
    row = store.rows(f"SELECT {', '.join(CONTINUITY_RULE_FIELDS)} FROM continuity_event_rule")[0]
    return dict(zip(CONTINUITY_RULE_FIELDS, map(_plain, row), strict=True))


def default_events(store: Store) -> str:
    """The scope shown unless asked: 'continuity' or 'all'."""
    return continuity_event_rule(store)["default_events"]


@writes("admin", "edit the continuity event rule")
def edit_continuity_event_rule(actor: Actor, store: Store, changes: dict, *,
                               now: datetime | None = None) -> dict[str, tuple]:
    """Set the rule's given fields, checked, in one transaction with its change-log entry; the
    monthly rollup is rebuilt when which incidents are continuity events changed (its rows are
    kept per scope). Returns {field: (before, after)} for the fields that changed."""
    unknown = set(changes) - set(CONTINUITY_RULE_FIELDS)
    if unknown:
        raise ChangeRefused(f"{', '.join(sorted(unknown))} is not part of the continuity event rule.")
    try:
        wanted = {field: CONTINUITY_RULE_CHECKS[field](value) for field, value in changes.items()}
    except (TypeError, ValueError) as error:
        raise ChangeRefused(f"Not a valid value: {error}.") from error

    def write_in(cursor):
        row = cursor.execute(f"SELECT {', '.join(CONTINUITY_RULE_FIELDS)} FROM continuity_event_rule").fetchall()
        current = dict(zip(CONTINUITY_RULE_FIELDS, map(_plain, row[0]), strict=True))
        changed = {field: (current[field], value) for field, value in wanted.items() if current[field] != value}
        if not changed:
            raise _NothingToChange
        # field names come from CONTINUITY_RULE_FIELDS only, never from the caller's text
        for field in CONTINUITY_RULE_FIELDS:
            if field in changed:
                cursor.execute(f"UPDATE continuity_event_rule SET {field} = $value", {"value": changed[field][1]})
        _log(cursor, actor.name, "edit continuity event rule", "continuity events",
             {field: before for field, (before, _) in changed.items()},
             {field: after for field, (_, after) in changed.items()}, _now(now))
        if changed.keys() & {"max_priority", "outage_past_rto", "marked_major"}:
            rollup.after_continuity_rule_changed(cursor)
        return changed
    try:

        changed = store.write(write_in)
    except _NothingToChange:
        return {}
    return changed


# -- posture targets ------------------------------------------------------------------------------


def _target(key: str, value) -> float:
    defaults = default_targets()
    if key not in defaults:
        raise ChangeRefused(f"Unknown target {key!r}; known: {', '.join(defaults)}.")
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise ChangeRefused(f"A target is a percentage, not {value!r}.") from error
    if not 0 <= value <= 100:
        raise ChangeRefused("A target is a percentage from 0 to 100.")
    return value


@writes("admin", "set the posture targets")
def set_targets(actor: Actor, store: Store, targets: dict[str, float], *,
                now: datetime | None = None) -> dict[str, tuple]:
    """Set posture targets (percentages), every one checked first, in one transaction, each
    change logged on its own; returns {key: (before, after)} for those that changed."""
    wanted = {key: _target(key, value) for key, value in targets.items()}

    def write_in(cursor):
        done: dict[str, tuple] = {}   # afresh on every run (Store.write)
        defaults = default_targets()
        for key, value in wanted.items():
            meta_key = TARGET_KEY_PREFIX + key
            rows = cursor.execute("SELECT value FROM store_meta WHERE key = $key", {"key": meta_key}).fetchall()
            before = float(rows[0][0]) if rows else defaults[key]
            if before == value:
                continue
            cursor.execute("DELETE FROM store_meta WHERE key = $key", {"key": meta_key})
            cursor.execute("INSERT INTO store_meta VALUES ($key, $value)", {"key": meta_key, "value": str(value)})
            _log(cursor, actor.name, "set target", key, {key: before}, {key: value}, _now(now))
            done[key] = (before, value)
        if not done:
            raise _NothingToChange
        return done

    try:

        return store.write(write_in)
    except _NothingToChange:
        return {}


# -- the organisation's name ---------------------------------------------------------------------

ORGANISATION_NAME_KEY = "organisation_name"   # its store_meta key; the board pack's title page shows it
LONGEST_ORGANISATION_NAME = 200


def organisation_name(store: Store) -> str:
    """The organisation's name as an admin set it, or "" where none is set."""
    return store.scalar("SELECT value FROM store_meta WHERE key = $key", {"key": ORGANISATION_NAME_KEY}) or ""


@writes("admin", "set the organisation's name")
def set_organisation_name(actor: Actor, store: Store, name: str, *, now: datetime | None = None) -> tuple | None:
    """Set the name the reports carry on their title page (blank clears it); logged with its
    before and after. Returns (before, after), or None when it already was that name."""
    wanted = " ".join(str(name or "").split())
    if len(wanted) > LONGEST_ORGANISATION_NAME:
        raise ChangeRefused(f"An organisation's name has at most {LONGEST_ORGANISATION_NAME} characters.")

    def write_in(cursor):
        key = {"key": ORGANISATION_NAME_KEY}
        rows = cursor.execute("SELECT value FROM store_meta WHERE key = $key", key).fetchall()
        before = rows[0][0] if rows else ""
        if before == wanted:
            return None
        cursor.execute("DELETE FROM store_meta WHERE key = $key", key)
        if wanted:
            cursor.execute("INSERT INTO store_meta VALUES ($key, $value)", {**key, "value": wanted})
        _log(cursor, actor.name, "set organisation name", "organisation", {"name": before}, {"name": wanted}, _now(now))
        return before, wanted

    return store.write(write_in)


# -- the supplier concentration threshold ---------------------------------------------------------

@writes("admin", "set the supplier concentration threshold")
def set_concentration_threshold(actor: Actor, store: Store, pct, *, now: datetime | None = None) -> tuple | None:
    """Set the share of the critical services one supplier may carry before the Resilience page and
    the Overview flag it (docs/DESIGN.md §14.4), above 0 and at most 100 %; logged with its before
    and after. Returns (before, after), or None when it already was that share."""
    from itscm.resilience.analysis import CONCENTRATION_KEY, DEFAULT_CONCENTRATION_PCT

    try:
        wanted = float(pct)
    except (TypeError, ValueError):
        raise ChangeRefused(f"Not a percentage: {pct!r}.") from None
    if not 0 < wanted <= 100:   # NaN fails this too
        raise ChangeRefused("The concentration threshold is a percentage above 0 and at most 100.")
    key = {"key": CONCENTRATION_KEY}

    def write_in(cursor):
        rows = cursor.execute("SELECT value FROM store_meta WHERE key = $key", key).fetchall()
        before = float(rows[0][0]) if rows else DEFAULT_CONCENTRATION_PCT
        if before == wanted:
            return None
        cursor.execute("DELETE FROM store_meta WHERE key = $key", key)
        cursor.execute("INSERT INTO store_meta VALUES ($key, $value)", {**key, "value": f"{wanted:g}"})
        _log(cursor, actor.name, "set concentration threshold", "supplier concentration", {"pct": before},
             {"pct": wanted}, _now(now))
        return before, wanted

    return store.write(write_in)


# -- every attributed change ----------------------------------------------------------------------

# when, who, what, subject, detail: newest first. Each source keeps its author in its own table.
CHANGE_HISTORY_SQL = """
SELECT * FROM (
    SELECT uploaded_at AS changed_at, uploaded_by AS changed_by, 'upload' AS action, file_name AS subject,
           format('{} inserted, {} updated, {} rejected ({})', inserted, updated, rejected, upload_id) AS detail
    FROM uploads
    UNION ALL
    SELECT undone_at, undone_by, 'undo upload', file_name, upload_id
    FROM uploads WHERE undone_at IS NOT NULL
    UNION ALL
    SELECT uploaded_at, uploaded_by, 'change upload', file_name,
           format('{} inserted, {} updated, {} rejected ({})', inserted, updated, rejected, upload_id)
    FROM change_uploads
    UNION ALL
    SELECT undone_at, undone_by, 'undo change upload', file_name, upload_id
    FROM change_uploads WHERE undone_at IS NOT NULL
    UNION ALL
    SELECT mapped_at, mapped_by, 'map change CI name', ci_name,
           format('now matches {}', coalesce('service ' || service_id, 'asset ' || asset_id))
    FROM change_ci_mappings
    UNION ALL
    SELECT mapped_at, mapped_by, 'map service name', alias, format('now matches service {}', service_id)
    FROM service_aliases WHERE mapped_at IS NOT NULL
    UNION ALL
    SELECT granted_at, granted_by, 'grant role', principal, role
    FROM role_grants
    UNION ALL
    SELECT created_at, created_by, 'save column mapping', name, mapping
    FROM column_mappings
    UNION ALL
    SELECT changed_at, changed_by, action, subject, format('{} -> {}', before, after)
    FROM change_log
)
ORDER BY changed_at DESC, action, subject
LIMIT $limit
"""


def change_history(store: Store, limit: int = 500) -> pd.DataFrame:
    """changed_at, changed_by, action, subject, detail: the latest `limit` changes."""
    return store.df(CHANGE_HISTORY_SQL, {"limit": limit})
