"""The change export formats, as data: how each is told from its header row, which of its columns
feeds which change field, and how types, states and close codes are read.

Fields of a change (what a column mapping maps to):

    id             the change number (CHG0030001, ITSM-42)          required
    ci             the configuration item, component or service it changed
    type           standard, normal or emergency
    state          the change's state or status
    close_code     successful, successful with issues, unsuccessful
    planned_start  the planned start of the change window
    planned_end    the planned end of the change window
    work_end       when the work actually ended
    closed         when the change was closed (or resolved)
    title          short description
    issue_type     Jira's Issue Type: rows that are not changes are rejected

Header names are compared normalised as the incident import does (lower case, runs of spaces,
'_' and '-' as one '_'): "Close code" and "close_code" are the same column. Sources of the field
names and values: data/fixtures/changes/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from itscm.ingest.errors import IngestError
from itscm.ingest.formats import normalise_column

FIELDS = ("id", "ci", "type", "state", "close_code", "planned_start", "planned_end", "work_end", "closed",
          "title", "issue_type")
REQUIRED_FIELDS = ("id",)
DATE_FIELDS = ("planned_start", "planned_end", "work_end", "closed")
FIELD_LABELS = {
    "id": "change number", "ci": "configuration item / service / asset", "type": "change type",
    "state": "state / status", "close_code": "close code", "planned_start": "planned start",
    "planned_end": "planned end", "work_end": "actual end (work end)", "closed": "closed at",
    "title": "title", "issue_type": "issue type (Jira)",
}

TYPES = ("standard", "normal", "emergency")
# planned: not started; in progress: being implemented; implemented: work done, under review;
# closed; cancelled. Implemented and closed changes are completed (itscm/measures/staleness.py).
STATES = ("planned", "in progress", "implemented", "closed", "cancelled")
COMPLETED_STATES = ("implemented", "closed")
CLOSE_CODES = ("successful", "successful with issues", "unsuccessful")


@dataclass(frozen=True)
class ChangeFormat:
    name: str  # what --format takes
    label: str
    source: str  # prefix of change ids: servicenow:CHG0030001
    signature: tuple[tuple[str, ...], ...]  # every group needs one of its columns in the header
    columns: dict[str, tuple[str, ...]]  # field -> candidate columns, preferred first
    notes: str = ""

    def known_columns(self) -> set[str]:
        return {name for names in self.columns.values() for name in names}


FORMATS: tuple[ChangeFormat, ...] = (
    ChangeFormat(
        name="servicenow",
        label="ServiceNow change_request export (field names)",
        source="servicenow",
        signature=(("number",), ("cmdb_ci", "start_date", "end_date", "work_end")),
        columns={
            "id": ("number",),
            # The affected CI first; the business service when no CI was recorded.
            "ci": ("cmdb_ci", "business_service", "u_affected_ci"),
            "type": ("type", "chg_model"),
            "state": ("state",),
            "close_code": ("close_code",),
            "planned_start": ("start_date",),
            "planned_end": ("end_date",),
            "work_end": ("work_end",),
            "closed": ("closed_at",),
            "title": ("short_description",),
        },
        notes="A list export of change_request with field names as the header; values as display values "
        "('Closed', 'Successful with issues') or as stored (3, successful_issues).",
    ),
    ChangeFormat(
        name="servicenow-labels",
        label="ServiceNow change_request export (column labels)",
        source="servicenow",
        signature=(("number",), ("configuration_item", "planned_start_date", "planned_end_date", "actual_end")),
        columns={
            "id": ("number",),
            "ci": ("configuration_item", "service"),
            "type": ("type", "model"),
            "state": ("state",),
            "close_code": ("close_code",),
            "planned_start": ("planned_start_date",),
            "planned_end": ("planned_end_date",),
            "work_end": ("actual_end", "actual_end_date"),
            "closed": ("closed",),
            "title": ("short_description",),
        },
        notes="The list's Export > Excel (or CSV) with the column labels as the header.",
    ),
    ChangeFormat(
        name="jira",
        label="Jira Service Management change requests",
        source="jira",
        signature=(("issue_key",), ("change_type", "custom_field_(change_type)", "change_start_date",
                                    "custom_field_(change_start_date)", "change_completion_date",
                                    "custom_field_(change_completion_date)")),
        columns={
            "id": ("issue_key",),
            "ci": ("component/s", "custom_field_(affected_services)", "affected_services",
                   "custom_field_(affected_service)"),
            "type": ("change_type", "custom_field_(change_type)"),
            "state": ("status",),
            "planned_start": ("change_start_date", "custom_field_(change_start_date)"),
            "planned_end": ("change_completion_date", "custom_field_(change_completion_date)"),
            "closed": ("resolved",),
            "title": ("summary",),
            "issue_type": ("issue_type",),
        },
        notes="Jira has no actual end: the change completion date (the planned end of the window) serves, "
        "else Resolved. Rows whose Issue Type is not a change are rejected.",
    ),
    ChangeFormat(
        name="generic",
        label="Generic change template",
        source="generic",
        signature=(("change_id",),),
        columns={
            "id": ("change_id",),
            "ci": ("ci", "service", "asset"),
            "type": ("change_type", "type"),
            "state": ("state",),
            "close_code": ("close_code",),
            "planned_start": ("planned_start",),
            "planned_end": ("planned_end",),
            "work_end": ("work_end",),
            "closed": ("closed_at",),
            "title": ("title",),
        },
        notes="data/templates/changes_template.csv, documented in data/templates/README.md.",
    ),
)
FORMATS_BY_NAME = {fmt.name: fmt for fmt in FORMATS}
CUSTOM = "custom"


def detect_formats(header: list[str]) -> list[tuple[str, float]]:
    """(format, confidence) whose signature the header carries, best first; confidence as the
    incident import computes it (the share of the header's columns the format knows)."""
    names = {normalise_column(name) for name in header}
    matches = []
    for fmt in FORMATS:
        if all(any(column in names for column in group) for group in fmt.signature):
            known = len(names & fmt.known_columns())
            matches.append((fmt.name, round(min(1.0, 0.5 + 0.5 * known / max(len(names), 1)), 2)))
    return sorted(matches, key=lambda match: -match[1])


def resolve_columns(fmt: ChangeFormat | None, header: list[str], mapping: dict[str, str]) -> dict[str, list[int]]:
    """field -> header positions feeding it, preferred first; the user's mapping over the format's
    (an empty column unmaps a field)."""
    normalised = [normalise_column(name) for name in header]
    resolved: dict[str, list[int]] = {}
    for name in FIELDS:
        positions = [i for candidate in (fmt.columns.get(name, ()) if fmt else ())
                     for i, col in enumerate(normalised) if col == candidate]
        if positions:
            resolved[name] = positions
    for name, column in mapping.items():
        if name not in FIELDS:
            raise IngestError(f"Unknown field '{name}' in the column mapping; the fields are {', '.join(FIELDS)}.")
        if column is None or not str(column).strip():
            resolved.pop(name, None)
            continue
        wanted = str(column).strip()
        positions = [i for i, col in enumerate(header) if col == wanted] or [
            i for i, col in enumerate(normalised) if col == normalise_column(wanted)]
        if not positions:
            raise IngestError(f"The mapping sends {name} to column '{column}', which the file does not have.")
        resolved[name] = positions
    return resolved


def _words(raw: str) -> str:
    return re.sub(r"[\s_\-]+", " ", raw.strip().lower())


# ServiceNow's stored state values (the legacy state model and the change models alike).
_SERVICENOW_STATE_VALUES = {"-5": "planned", "-4": "planned", "-3": "planned", "-2": "planned",
                            "-1": "in progress", "0": "implemented", "3": "closed", "4": "cancelled"}
_STATE_WORDS = {
    # ServiceNow display values
    "new": "planned", "assess": "planned", "authorize": "planned", "scheduled": "planned",
    "implement": "in progress", "review": "implemented", "closed": "closed", "canceled": "cancelled",
    # Jira Service Management change workflow statuses and common custom ones
    "open": "planned", "draft": "planned", "planning": "planned", "awaiting approval": "planned",
    "awaiting cab approval": "planned", "pending cab approval": "planned", "awaiting implementation": "planned",
    "pending implementation": "planned", "authorized": "planned", "approved": "planned", "requested": "planned",
    "implementing": "in progress", "in progress": "in progress", "work in progress": "in progress",
    "implemented": "implemented", "completed": "implemented", "complete": "implemented", "done": "implemented",
    "resolved": "implemented", "post implementation review": "implemented", "pir": "implemented",
    "failed": "closed",
    "cancelled": "cancelled", "declined": "cancelled", "rejected": "cancelled", "withdrawn": "cancelled",
    "denied": "cancelled",
}
# A state that says how the change ended, when the export has no close code.
STATE_IMPLIED_CLOSE_CODE = {"failed": "unsuccessful"}

_TYPE_WORDS = {"standard": "standard", "normal": "normal", "emergency": "emergency", "expedited": "emergency",
               "urgent": "emergency", "pre approved": "standard", "preapproved": "standard", "minor": "normal",
               "major": "normal", "significant": "normal", "comprehensive": "normal"}

_CLOSE_CODE_WORDS = {"successful": "successful", "success": "successful",
                     "successful with issues": "successful with issues", "successful issues": "successful with issues",
                     "unsuccessful": "unsuccessful", "failed": "unsuccessful", "backed out": "unsuccessful",
                     "rolled back": "unsuccessful", "backout": "unsuccessful"}


def change_state(raw: str | None) -> str | None:
    """'Closed' -> closed, '-1' -> in progress, 'Awaiting implementation' -> planned; None when the
    state is not clear (a custom state is kept raw, and such a change counts as not completed)."""
    if raw is None:
        return None
    text = raw.strip()
    if text in _SERVICENOW_STATE_VALUES:
        return _SERVICENOW_STATE_VALUES[text]
    return _STATE_WORDS.get(_words(text))


def change_type(raw: str | None) -> str | None:
    """'Standard' -> standard, 'Emergency change' -> emergency; None when not recognised."""
    if raw is None:
        return None
    words = _words(raw).removesuffix(" change").removeprefix("change ")
    return _TYPE_WORDS.get(words)


def close_code(raw: str | None) -> str | None:
    """'Successful with issues' / 'successful_issues' -> successful with issues; None otherwise."""
    if raw is None:
        return None
    return _CLOSE_CODE_WORDS.get(_words(raw))


def implied_close_code(raw_state: str | None) -> str | None:
    return None if raw_state is None else STATE_IMPLIED_CLOSE_CODE.get(_words(raw_state))


def is_change_issue_type(raw: str | None) -> bool:
    """Jira's Issue Type of a change request: 'Change', 'Change request', 'Emergency change', ..."""
    return raw is None or "change" in raw.lower()
