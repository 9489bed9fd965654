"""Incident and change uploads side by side, for the command line's `uploads` and `undo`
(itscm/upload_command.py).

Each kind keeps its own tables, listing and undo (docs/DESIGN.md §7.10, §16.2), which the Upload
incidents and Changes pages call; this module only lays the two listings out as one, newest
first, and hands an undo to the kind whose table holds the id. Nothing here reads or writes an
upload's incidents or changes itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from itscm import changes, ingest
from itscm.access import Actor, writes
from itscm.ingest.errors import IngestError
from itscm.store import Store

INCIDENTS, CHANGES = "incidents", "changes"
KINDS = (INCIDENTS, CHANGES)

# One listing's columns, in the order shown: `held_now` is what the upload holds now (its
# incidents or its changes, by `kind`); `can_undo` and `undo_blocked_by` as the pages show them.
COLUMNS = ("kind", "upload_id", "uploaded_at", "uploaded_by", "file_name", "format", "rows_read", "inserted",
           "updated", "rejected", "state", "undone_at", "undone_by", "held_now", "can_undo", "undo_blocked_by",
           "sha256")


@dataclass(frozen=True)
class _Kind:
    listing: Callable[[Store], pd.DataFrame]   # the page's listing of this kind's uploads
    held_column: str                           # its column of the rows the upload holds now
    undo: Callable                             # the page's undo: (actor, store, upload_id) -> a result


_BY_KIND = {
    INCIDENTS: _Kind(ingest.list_uploads, "incidents_now", ingest.undo_upload),
    CHANGES: _Kind(changes.list_change_uploads, "changes_now", changes.undo_change_upload),
}


def list_all_uploads(store: Store, kinds: tuple[str, ...] = KINDS) -> pd.DataFrame:
    """The uploads of `kinds`, newest first, in COLUMNS."""
    listed = pd.concat([_BY_KIND[kind].listing(store).rename(columns={_BY_KIND[kind].held_column: "held_now"})
                        .assign(kind=kind)[list(COLUMNS)] for kind in kinds], ignore_index=True)
    return listed.sort_values(["uploaded_at", "upload_id"], ascending=False, ignore_index=True)


def upload_kind(store: Store, upload_id: str) -> str | None:
    """Which kind of upload `upload_id` is (INCIDENTS or CHANGES), None if neither table holds it."""
    rows = store.rows(
        """
        SELECT 'incidents' FROM uploads WHERE upload_id = $id
        UNION ALL
        SELECT 'changes' FROM change_uploads WHERE upload_id = $id
        """,
        {"id": upload_id},
    )
    return rows[0][0] if rows else None


@dataclass(frozen=True)
class UndoneUpload:
    kind: str
    upload_id: str
    deleted: int    # rows the upload had inserted, removed
    restored: int   # rows it had replaced, put back as they were
    message: str

    def as_dict(self) -> dict:
        """The `undo --json` object."""
        return {"kind": self.kind, "upload_id": self.upload_id, "deleted": self.deleted, "restored": self.restored,
                "message": self.message}


@writes("analyst", "undo an upload")
def undo_any_upload(actor: Actor, store: Store, upload_id: str) -> UndoneUpload:
    """Undo the incident or change upload `upload_id` with its kind's own undo, which checks the
    role again and refuses (IngestError, nothing changed) an upload already undone or one that a
    later committed upload changed again, naming it."""
    kind = upload_kind(store, upload_id)
    if kind is None:
        raise IngestError(f"No incident or change upload '{upload_id}'.")
    result = _BY_KIND[kind].undo(actor, store, upload_id)
    return UndoneUpload(kind, result.upload_id, result.deleted, result.restored, result.message)
