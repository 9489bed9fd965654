"""The export formats the import recognises, as data: how each is told from its header row, which
of its columns feeds which incident field, and how priorities are read.

Fields of an incident (what a column mapping maps to):

    id        the source system's incident number          required
    opened    when the incident was opened (outage start)  required
    restored  when the service was back (end of outage)
    resolved  when the incident was resolved
    closed    when the incident was closed
    priority  priority or severity, e.g. "1 - Critical", "P2", "High"
    service   the affected service, CI or component name
    title     short description
    updated   when this row's state was recorded (audit-style logs: the latest row of an id wins)

Header names are compared normalised (lower case, runs of spaces, '_' and '-' as one '_'), so
"Issue key", "issue_key" and "ISSUE-KEY" are the same column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from itscm import incident_columns
from itscm.ingest.errors import IngestError

# The fields: one per stored incident fact a file can carry (the `field` of the columns declared
# in itscm/incident_columns.py), and `updated`, which only orders an audit log's rows and is not
# stored. In the order the mapping form, the help and the suggestions take them (a suggestion
# claims a column before the fields after it): the required ones, the times as they happen.
FIELDS = ("id", "opened", "restored", "resolved", "closed", "priority", "service", "title", "major", "updated")
# A field is required when a NOT NULL column is read from it, a date when a TIMESTAMP column is.
REQUIRED_FIELDS = tuple(
    name for name in FIELDS if any(column.field == name and not column.nullable for column in incident_columns.COLUMNS)
)
DATE_FIELDS = tuple(
    name
    for name in FIELDS
    if name == "updated"
    or any(column.field == name and column.duckdb_type == "TIMESTAMP" for column in incident_columns.COLUMNS)
)
FIELD_LABELS = {
    "id": "incident id",
    "opened": "opened at",
    "restored": "restored at (service back)",
    "resolved": "resolved at",
    "closed": "closed at",
    "priority": "priority",
    "service": "service / CI / component",
    "title": "title",
    "major": "major incident (Accepted, yes, true)",
    "updated": "updated at (audit logs)",
}


def normalise_column(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class IncidentFormat:
    name: str  # what --format takes
    label: str
    source: str  # prefix of incident ids: servicenow:INC0012345
    signature: tuple[tuple[str, ...], ...]  # every group needs one of its columns in the header
    columns: dict[str, tuple[str, ...]]  # field -> candidate columns, preferred first
    patterns: dict[str, str] = field(default_factory=dict)  # field -> regex on names, when no candidate
    notes: str = ""

    def known_columns(self) -> set[str]:
        return {name for names in self.columns.values() for name in names}


FORMATS: tuple[IncidentFormat, ...] = (
    IncidentFormat(
        name="servicenow",
        label="ServiceNow export",
        source="servicenow",
        signature=(("number",), ("opened_at", "opened")),
        columns={
            "id": ("number",),
            "opened": ("opened_at", "opened", "sys_created_on"),
            "restored": (
                "u_restored_at",
                "u_restored",
                "u_service_restored",
                "u_service_restored_at",
                "u_restore_time",
                "u_restoration_time",
                "u_outage_end",
                "restored_at",
                "restored",
            ),
            "resolved": ("resolved_at", "resolved"),
            "closed": ("closed_at", "closed"),
            "priority": ("priority",),
            "service": ("business_service", "service", "u_business_service", "cmdb_ci", "configuration_item"),
            "title": ("short_description", "description"),
            # Major incident management's state: Proposed, Accepted, Rejected, Canceled.
            "major": ("major_incident_state",),
            # sys_updated_at: ServiceNow event logs as published for process mining (the UCI
            # "incident management process enriched event log", one row per update) name it so.
            "updated": ("sys_updated_on", "sys_updated_at", "updated"),
        },
        patterns={"restored": r"^u_.*restor"},
        notes="List exports and audit-style logs (one row per update: the latest sys_updated_on or "
        "sys_updated_at wins). "
        "Display values such as '1 - Critical' are read; the restore time comes from a custom field "
        "such as u_restored_at (any u_* column naming 'restor'). major_incident_state Accepted marks a major "
        "incident (Proposed, Rejected and Canceled do not).",
    ),
    IncidentFormat(
        name="jira",
        label="Jira Service Management export",
        source="jira",
        signature=(("issue_key",), ("created",)),
        columns={
            "id": ("issue_key",),
            "opened": ("created",),
            "restored": (
                "custom_field_(restored)",
                "custom_field_(restored_at)",
                "custom_field_(time_restored)",
            ),
            "resolved": ("resolved",),
            "priority": ("priority",),
            "service": (
                "component/s",
                "custom_field_(affected_services)",
                "custom_field_(affected_service)",
                "custom_field_(service)",
            ),
            "title": ("summary",),
            "updated": (),
        },
        patterns={"restored": r"^custom_field_\(.*restor.*\)$"},
        notes="Dates like 14/Jul/25 3:42 PM. Repeated columns (two 'Component/s') are all read: the "
        "first component matching a service wins, else the first one given.",
    ),
    IncidentFormat(
        name="pagerduty",
        label="PagerDuty incidents export",
        source="pagerduty",
        signature=(("incident_number",), ("created_on", "created_at", "created")),
        columns={
            "id": ("incident_number",),
            "opened": ("created_on", "created_at", "created"),
            "resolved": ("resolved_on", "resolved_at", "resolved"),
            "priority": ("priority", "urgency"),
            "service": ("service_name", "service", "service_summary"),
            "title": ("description", "title", "summary"),
        },
        notes="Priority P1-P5 when set, else urgency (high -> 2, low -> 4). No restore column: resolved "
        "serves as an estimate.",
    ),
    IncidentFormat(
        name="opsgenie",
        label="Opsgenie alerts export",
        source="opsgenie",
        signature=(("tinyid", "alias"), ("createdat", "created_at")),
        columns={
            "id": ("tinyid", "alias"),
            "opened": ("createdat", "created_at"),
            "resolved": ("resolvedat", "resolved_at", "closedat", "closed_at"),
            "closed": ("closedat", "closed_at"),
            "priority": ("priority",),
            "service": ("impactedservices", "impacted_services", "services", "service", "entity"),
            "title": ("message",),
            "updated": ("updatedat", "updated_at"),
        },
        notes="tinyId is the id when present, else alias; an alert's close time is its resolution.",
    ),
    IncidentFormat(
        name="generic",
        label="Generic incident template",
        source="generic",
        signature=(("incident_id",), ("opened_at",)),
        columns={
            "id": ("incident_id",),
            "opened": ("opened_at",),
            "restored": ("restored_at",),
            "resolved": ("resolved_at",),
            "closed": ("closed_at",),
            "priority": ("priority",),
            "service": ("service",),
            "title": ("title",),
            "major": ("major",),
            "updated": ("updated_at",),
        },
        notes="data/templates/incidents_template.csv, documented in data/templates/README.md.",
    ),
)
FORMATS_BY_NAME = {fmt.name: fmt for fmt in FORMATS}
CUSTOM = "custom"


@dataclass(frozen=True)
class FormatMatch:
    name: str
    confidence: float


def detect_formats(header: list[str]) -> list[FormatMatch]:
    """Formats whose signature the header carries, best first. Confidence is the share of the
    header's columns that the format knows, so a ServiceNow header with many custom columns still
    matches, just less confidently."""
    names = {normalise_column(name) for name in header}
    matches = []
    for fmt in FORMATS:
        if all(any(column in names for column in group) for group in fmt.signature):
            known = len(names & fmt.known_columns())
            matches.append(FormatMatch(fmt.name, round(min(1.0, 0.5 + 0.5 * known / max(len(names), 1)), 2)))
    return sorted(matches, key=lambda match: -match.confidence)


def resolve_columns(fmt: IncidentFormat | None, header: list[str]) -> dict[str, list[int]]:
    """field -> the header positions feeding it, preferred first (all repeats of a name)."""
    normalised = [normalise_column(name) for name in header]
    resolved: dict[str, list[int]] = {}
    if fmt is None:
        return resolved
    for name in FIELDS:
        positions = [
            i
            for candidate in fmt.columns.get(name, ())
            for i, col in enumerate(normalised)
            if col == candidate
        ]
        if not positions and name in fmt.patterns:
            pattern = re.compile(fmt.patterns[name])
            positions = [i for i, col in enumerate(normalised) if pattern.search(col)]
        if positions:
            resolved[name] = positions
    return resolved


def apply_mapping(
    resolved: dict[str, list[int]], header: list[str], mapping: dict[str, str]
) -> dict[str, list[int]]:
    """The user's field -> column choices over the format's. An empty column unmaps the field."""
    result = dict(resolved)
    for name, column in mapping.items():
        if name not in FIELDS:
            raise IngestError(
                f"Unknown field '{name}' in the column mapping; the fields are {', '.join(FIELDS)}."
            )
        if column is None or not str(column).strip():
            result.pop(name, None)
            continue
        positions = find_columns(header, str(column))
        if not positions:
            raise IngestError(
                f"The mapping sends {name} to column '{column}', which the file does not have; "
                f"its columns are: {describe_columns(header)}."
            )
        result[name] = positions
    return result


def find_columns(header: list[str], column: str) -> list[int]:
    exact = [i for i, name in enumerate(header) if name == column.strip()]
    if exact:
        return exact
    wanted = normalise_column(column)
    return [i for i, name in enumerate(header) if normalise_column(name) == wanted]


def describe_columns(header: list[str]) -> str:
    return ", ".join(repr(name) if name else f"(unnamed column {i + 1})" for i, name in enumerate(header))


# Guesses offered to the analyst for an unknown header, never applied without their say.
_SUGGESTION_PATTERNS = {
    "id": r"(^|_)(id|number|no|key|ref|reference|ticket|incident)($|_)",
    "opened": r"open|creat|start|report|raised|detect|begin",
    "restored": r"restor|recover|mitigat|(^|_)back($|_)|back_up",
    "resolved": r"resol|fixed|end",
    "closed": r"clos",
    "priority": r"prio|sev|urgen|impact",
    "service": r"service|app|component|(^|_)ci($|_)|system|product",
    "title": r"title|summary|subject|short|desc|message|name",
    "major": r"major",
    "updated": r"updat|modif|changed",
}


def suggest_mapping(header: list[str]) -> dict[str, str]:
    known = {name: {col for fmt in FORMATS for col in fmt.columns.get(name, ())} for name in FIELDS}
    normalised = [normalise_column(name) for name in header]
    used: set[int] = set()
    suggestion: dict[str, str] = {}
    for name in FIELDS:
        pattern = re.compile(_SUGGESTION_PATTERNS[name])
        # A column another format calls this field first, then a name that merely looks like it.
        for test in (known[name].__contains__, lambda col, pattern=pattern: bool(pattern.search(col))):
            hit = next((i for i, col in enumerate(normalised) if i not in used and col and test(col)), None)
            if hit is not None:
                suggestion[name] = header[hit]
                used.add(hit)
                break
    return suggestion


def source_prefix(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not slug:
        raise IngestError(f"'{name}' cannot name a mapping: use letters and digits.")
    return slug[:40]


# Priority levels: 1 = critical .. 4 = low. Level 5 and beyond (ServiceNow "5 - Planning",
# Opsgenie P5) are stored as 4; 0 (P0, Sev0) as 1.
_PRIORITY_WORDS = {
    "critical": 1,
    "blocker": 1,
    "highest": 1,
    "urgent": 1,
    "emergency": 1,
    "very high": 1,
    "major": 2,
    "high": 2,
    "medium": 3,
    "moderate": 3,
    "normal": 3,
    "minor": 3,
    "low": 4,
    "lowest": 4,
    "very low": 4,
    "trivial": 4,
    "planning": 4,
    "info": 4,
    "informational": 4,
}
_PRIORITY_NUMBER = re.compile(r"^(?:p|sev(?:erity)?|s|priority)?\s*[-_ ]?\s*(\d)(?!\d)", re.IGNORECASE)
_PRIORITY_PREFIX = re.compile(r"^\s*\d+\s*[-–:.)]\s*")


def priority_level(raw: str | None) -> int | None:
    """'1 - Critical' -> 1, 'P2' -> 2, 'High' -> 2, 'low' -> 4; None when not recognised."""
    if raw is None:
        return None
    text = raw.strip()
    number = _PRIORITY_NUMBER.match(text)
    if number:
        return min(max(int(number.group(1)), 1), 4)
    word = _PRIORITY_PREFIX.sub("", text).strip().lower()
    return _PRIORITY_WORDS.get(word)
