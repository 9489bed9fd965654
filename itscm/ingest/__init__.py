"""Incident CSV import: read an export, show what was understood and rejected, commit it in one
transaction, undo it later (docs/DESIGN.md §7).

The flow, as the upload page and `python -m itscm ingest` use it::

    preview = read_upload(data, file_name, store=store)          # nothing written yet
    if preview.needs_mapping:                                     # header matches no known format
        preview = read_upload(data, file_name, store=store, mapping={"id": "Ticket", "opened": "Raised"})
    preview.problems, problems_csv(preview)                       # the report, as a frame or CSV bytes
    result = commit_upload(ana, store, preview)                   # all accepted rows or nothing
    undo_upload(ana, store, result.upload_id)                     # back to the state before it

(`ana` is the acting user, an `itscm.access.Actor`: every function here that writes takes it
first and refuses a role below analyst.)

Reading (`read_upload(data, file_name, *, store, format=None, tz="UTC", mapping=None,
mapping_name=None, date_order=None, max_bytes=200 MB, now=None) -> UploadPreview`):
    Raises `IngestError` (one-line message) only when the file cannot be read at all: too big,
    empty, header without rows, binary, undecodable, an unknown format/time zone/field, a mapping
    naming a column the file lacks. Anything else is reported in the preview:
    `format` (servicenow, jira, pagerduty, opsgenie, generic, custom) and `detected_formats`
    [(name, confidence)], `encoding`, `delimiter`, `columns`, `mapping` (field -> columns read),
    `needs_mapping` with `missing_fields` and `suggested_mapping`, `timezone`, `date_order`
    (day-first, month-first, unambiguous) with `date_order_basis` and `date_styles`,
    `rows_read`, `incidents`, `rejected`, `warnings`, `superseded_rows`, `blank_rows`, `notes`,
    `sample` (first rows as read), `accepted` (Arrow table in store layout plus the file `row`),
    `problems` (DataFrame: row, column, severity 'error'|'warning', reason, value; row is the
    spreadsheet row, header = 1; file-wide problems have no row), `unmatched_services()`.
    `format` overrides detection, `mapping` ({field: column}) overrides or completes the format's
    columns, `mapping_name` reads a saved mapping (or names the one being defined: it becomes the
    id prefix), `date_order` overrides detection, `tz` is the zone of times without an offset.

Committing:
    `commit_upload(actor, store, preview) -> UploadResult` (upload_id, inserted, updated,
    unchanged, rejected, warnings, unmatched_services, already_imported, message; `as_dict()` is
    the CLI's JSON). Identical re-upload: nothing written, `already_imported` names the upload.
    `diff_upload(store, preview)` is the same without writing (a dry run).
    `undo_upload(actor, store, upload_id) -> UndoResult`; refused (IngestError) when a later
    committed upload changed the same incidents again. `list_uploads(store)` lists uploads with
    counts, `incidents_now`, `can_undo` and `undo_blocked_by`.

Service names:
    `unmatched_service_names(store)` (service_name, incidents, first/last opened, sources);
    `map_service_name(actor, store, name, service_id)` adds the alias and fixes every incident.

Saved mappings:
    `save_mapping(actor, store, name, {field: column})`, `saved_mappings(store)`,
    `load_mapping(store, name)`, `delete_mapping(actor, store, name)`. A file whose header holds every
    column of a saved mapping (and matches no built-in format) is read with it unasked.

Incident ids are source-qualified (`servicenow:INC0012345`, `jira:ITSM-12`, `pagerduty:1234`,
`opsgenie:101`, `generic:X-1`, or `<mapping-name>:X-1`). The formats themselves are data, in
`formats.FORMATS`; the template for the generic format is data/templates/incidents_template.csv.

Modules, one job each: decode (bytes -> UTF-8, delimiter, header), reader (CSV -> scratch DuckDB
table), formats (header signatures, field columns, priorities), dates (timestamp parsing),
validate (checks, duplicates, store layout), preview (read_upload), commit (commit, undo,
uploads), services, mappings, report, command (the CLI).
"""

from itscm.ingest.commit import (
    UndoResult,
    UploadResult,
    commit_upload,
    diff_upload,
    list_uploads,
    undo_upload,
)
from itscm.ingest.decode import DEFAULT_MAX_BYTES
from itscm.ingest.errors import IngestError
from itscm.ingest.formats import FIELDS, FORMATS, FORMATS_BY_NAME, priority_level
from itscm.ingest.mappings import delete_mapping, load_mapping, save_mapping, saved_mappings
from itscm.ingest.preview import UploadPreview, read_upload
from itscm.ingest.report import problems_csv, problems_frame
from itscm.ingest.services import map_service_name, unmatched_service_names

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FIELDS",
    "FORMATS",
    "FORMATS_BY_NAME",
    "IngestError",
    "UndoResult",
    "UploadPreview",
    "UploadResult",
    "commit_upload",
    "delete_mapping",
    "diff_upload",
    "list_uploads",
    "load_mapping",
    "map_service_name",
    "priority_level",
    "problems_csv",
    "problems_frame",
    "read_upload",
    "save_mapping",
    "saved_mappings",
    "undo_upload",
    "unmatched_service_names",
]
