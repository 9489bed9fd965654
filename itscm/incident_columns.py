"""The columns of the stored incidents, declared once.

The import (the mapping fields, the validated rows, the preview), the commit (what it compares,
writes and keeps for undo), the demo and the tests take their incident column lists from here, so
a new column is declared in one place and every writer follows or fails loudly.

Each column has its name, its DuckDB type (as `information_schema.columns` names it), the Arrow
type DuckDB hands it to Python as, whether it may be NULL, what it means, and its kind:

- `fact`: what the incident is, as the source system logged it: read from an upload (or made by
  the demo), with the service the logged name matched. Every upload writes all of them, a commit
  compares them to tell an update from an unchanged incident, and `incident_prior_versions`
  keeps them for every version an upload replaced, so undo can put it back exactly.
- `provenance`: which upload wrote the version stored.
- `derived`: computed from the facts so the measures' hot paths stay cheap (itscm/derived.py);
  every write transaction keeps them current. Never imported, never kept per version.

The migrations that create these tables stay literal SQL: they are history, and a store migrated
long ago must come out as it did. tests/test_incident_columns.py checks a fresh store's tables
against this declaration, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

FACT = "fact"
PROVENANCE = "provenance"
DERIVED = "derived"


@dataclass(frozen=True)
class IncidentColumn:
    name: str
    duckdb_type: str  # as information_schema.columns.data_type names it
    arrow_type: pa.DataType  # as DuckDB returns it to Arrow
    kind: str  # FACT, PROVENANCE or DERIVED
    nullable: bool
    # The mapping field (itscm/ingest/formats.py) whose file column it is read from; None when
    # no file column feeds it directly.
    field: str | None
    meaning: str  # one line, for the docs


_TEXT = ("VARCHAR", pa.string())
_INTEGER = ("INTEGER", pa.int32())
_DOUBLE = ("DOUBLE", pa.float64())
_BOOLEAN = ("BOOLEAN", pa.bool_())
_TIME = ("TIMESTAMP", pa.timestamp("us"))  # every stored time is UTC

# The `incidents` table, in its column order.
COLUMNS: tuple[IncidentColumn, ...] = (
    IncidentColumn("incident_id", *_TEXT, FACT, False, "id", "source-qualified id, e.g. servicenow:INC0012345"),
    IncidentColumn("source", *_TEXT, FACT, False, None, "the system that logged it: the upload's format or mapping"),
    IncidentColumn("service_id", *_TEXT, FACT, True, None,
                   "the service that service_name names (its name or an alias, any case); NULL when none does"),
    IncidentColumn("service_name", *_TEXT, FACT, True, "service",
                   "the service, CI or component as the source logged it"),
    IncidentColumn("title", *_TEXT, FACT, True, "title", "short description"),
    IncidentColumn("priority", *_INTEGER, FACT, True, "priority",
                   "1 (critical) to 4 (low), read from priority_raw; NULL when not recognised"),
    IncidentColumn("priority_raw", *_TEXT, FACT, True, "priority", "the priority or severity as the source logged it"),
    IncidentColumn("opened_at", *_TIME, FACT, False, "opened", "when the incident was opened: the outage start"),
    IncidentColumn("restored_at", *_TIME, FACT, True, "restored",
                   "when the service was back: the outage end that RTO is measured against"),
    IncidentColumn("resolved_at", *_TIME, FACT, True, "resolved",
                   "when the incident was resolved; the outage end, as an estimate, without restored_at"),
    IncidentColumn("closed_at", *_TIME, FACT, True, "closed", "when the incident record was closed"),
    IncidentColumn("upload_id", *_TEXT, PROVENANCE, True, None,
                   "the upload that wrote this version; NULL when none did (the demo's incidents)"),
    IncidentColumn("service_key", *_INTEGER, DERIVED, True, None,
                   "services.service_key of service_id, for the measures' integer joins"),
    IncidentColumn("outage_end", *_TIME, DERIVED, True, None, "restored_at, else resolved_at (an estimate)"),
    IncidentColumn("rta_minutes", *_DOUBLE, DERIVED, True, None, "outage_end - opened_at, in minutes"),
    IncidentColumn("active_until", *_TIME, DERIVED, True, None,
                   "the outage end, else closed_at, else 'infinity' (still open)"),
    # Added by migration 12, so after the columns that were there before it.
    IncidentColumn("major", *_BOOLEAN, FACT, True, "major",
                   "the source marked it a major incident (ServiceNow major_incident_state Accepted); "
                   "NULL when the file does not say"),
)
BY_NAME = {column.name: column for column in COLUMNS}

# What an upload writes per incident and what a replaced version keeps, in table order.
FACT_COLUMNS: tuple[str, ...] = tuple(column.name for column in COLUMNS if column.kind == FACT)
DERIVED_COLUMNS: tuple[str, ...] = tuple(column.name for column in COLUMNS if column.kind == DERIVED)
FACTS_ARROW_SCHEMA = pa.schema([(column.name, column.arrow_type) for column in COLUMNS if column.kind == FACT])

# The facts the derived columns and the monthly rollup are computed from: a change to any of them
# must reach the rollup's upkeep (the changes a writer hands it and the facts stamp it checks);
# a change to the others (title, priority_raw, ...) need not. The priority decides whether an
# incident is a continuity event, which keys the rollup (docs/DESIGN.md §17).
DERIVED_FROM: tuple[str, ...] = (
    "service_id", "service_name", "opened_at", "restored_at", "resolved_at", "closed_at", "priority", "major",
)

# `incident_prior_versions`, in its column order: a version of an incident that an upload replaced,
# kept so that undoing that upload puts it back. Facts added by a later migration come after
# prior_upload_id, where that migration added them.
_FACTS_ADDED_LATER = ("major",)
PRIOR_VERSION_COLUMNS: tuple[IncidentColumn, ...] = (
    IncidentColumn("upload_id", *_TEXT, PROVENANCE, False, None, "the upload that replaced this version"),
    *(BY_NAME[name] for name in FACT_COLUMNS if name not in _FACTS_ADDED_LATER),
    IncidentColumn("prior_upload_id", *_TEXT, PROVENANCE, True, None,
                   "the upload this version came from (its upload_id while it was stored)"),
    *(BY_NAME[name] for name in _FACTS_ADDED_LATER),
)

# The mapping fields that feed a stored column, in table order.
FILE_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(column.field for column in COLUMNS if column.field))
