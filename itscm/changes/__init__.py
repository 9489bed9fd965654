"""Change import: ServiceNow change_request, Jira Service Management change requests and the
generic template read, previewed, committed in one transaction and undone (docs/DESIGN.md §16),
with the incident import's discipline (itscm/ingest/)::

    preview = read_changes(data, file_name, store=store)       # nothing written yet
    preview.problems                                           # row, column, severity, reason, value
    result = commit_changes(ana, store, preview)               # all accepted changes or none
    undo_change_upload(ana, store, result.upload_id)           # back to the state before it
    map_change_ci(ana, store, "PAYDB01", asset_id="AST-1")     # an unmatched CI name, answered

Change ids are source-qualified (`servicenow:CHG0030001`, `jira:ITSM-42`, `generic:C-1`). Each
change keeps its type, state and close code as written (`*_raw`) beside the normalised value
(formats.TYPES, STATES, CLOSE_CODES); `completed_at` is set for implemented and closed changes:
work end, else planned end, else closed at. What a completed change does to a plan is in
itscm/measures/staleness.py.
"""

from itscm.changes.commit import (
    ChangeUndoResult,
    ChangeUploadResult,
    commit_changes,
    diff_changes,
    list_change_uploads,
    map_change_ci,
    undo_change_upload,
    unmatched_change_cis,
)
from itscm.changes.read import ChangePreview, read_changes
from itscm.ingest.errors import IngestError

__all__ = [
    "ChangePreview",
    "ChangeUndoResult",
    "ChangeUploadResult",
    "IngestError",
    "commit_changes",
    "diff_changes",
    "list_change_uploads",
    "map_change_ci",
    "read_changes",
    "undo_change_upload",
    "unmatched_change_cis",
]
