"""Who may change the store. Checked where the change happens (the commit, the undo, the
mapping), not only by hiding a button, and every change records who made it."""

from __future__ import annotations

from dataclasses import dataclass

from itscm import ingest
from itscm.store import Store

ROLES = ("viewer", "analyst", "admin")   # each role can do all that the ones before it can


class AccessDenied(Exception):
    pass


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


LOCAL_USER = Actor(name="local user", role="admin")


def require(actor: Actor, role: str, action: str) -> None:
    if not actor.can(role):
        raise AccessDenied(f"{actor.name} has the {actor.role} role; to {action} needs the {role} role.")


def commit_upload_as(actor: Actor, store: Store, preview: ingest.UploadPreview) -> ingest.UploadResult:
    require(actor, "analyst", "commit an upload")
    return ingest.commit_upload(store, preview, uploaded_by=actor.name)


def undo_upload_as(actor: Actor, store: Store, upload_id: str) -> ingest.UndoResult:
    require(actor, "analyst", "undo an upload")
    return ingest.undo_upload(store, upload_id, undone_by=actor.name)


def map_service_name_as(actor: Actor, store: Store, name: str, service_id: str) -> int:
    require(actor, "analyst", "map a service name")
    return ingest.map_service_name(store, name, service_id, by=actor.name)
