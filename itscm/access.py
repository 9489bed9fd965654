"""Who may change the store. Checked where the change happens (the commit, the undo, the
mapping, a grant, a backup), not only by hiding a button, and every change records who made it.

Two modes (itscm/ui.py picks one): without sign-in configured, the single local user has every
role; with sign-in (`[auth]` in .streamlit/secrets.toml, OIDC through `st.login`), a person's role
comes from `role_grants` in the store: a grant to their email, else to their email's domain
('@example.com'), else viewer. Grants are a history: the latest one for a principal wins, the
earlier ones stay as the record of who granted what and when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from itscm import administration, ingest
from itscm.store import Store

ROLES = ("viewer", "analyst", "recovery team", "continuity manager", "admin")   # each can do all the ones before can
DEFAULT_SIGNED_IN_ROLE = "viewer"        # signed in but granted nothing: may look, not change

# Deliberately loose: the identity provider has already checked the address; this only keeps
# typos such as a missing '@' or a space out of the grants.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^@[^@\s]+\.[^@\s]+$")


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


# -- roles of signed-in people ------------------------------------------------------------------


def principal_key(principal: str) -> str:
    """An email or '@domain' as grants store it: trimmed, lower case (addresses are matched
    case-insensitively by every provider we know). Raises ValueError for anything else."""
    key = (principal or "").strip().lower()
    if not (_EMAIL.match(key) or _DOMAIN.match(key)):
        raise ValueError(f"{principal!r} is neither an email address nor a domain written as '@example.com'.")
    return key


def role_for(store: Store, email: str, *, admins: tuple[str, ...] | list[str] = ()) -> str:
    """The role of a signed-in person: a grant to their email wins over one to their domain;
    without either, viewer. `admins` (emails from the deployment's secrets) are always admins,
    so a freshly configured app has someone who can grant the first roles."""
    key = (email or "").strip().lower()
    if not key:
        return DEFAULT_SIGNED_IN_ROLE
    if key in {admin.strip().lower() for admin in admins}:
        return "admin"
    domain = "@" + key.rpartition("@")[2] if "@" in key else None
    rows = store.rows(
        """
        SELECT role FROM role_grants
        WHERE principal = $email OR principal = $domain
        ORDER BY principal = $email DESC, granted_at DESC, role DESC
        LIMIT 1
        """,
        {"email": key, "domain": domain},
    )
    role = rows[0][0] if rows else DEFAULT_SIGNED_IN_ROLE
    return role if role in ROLES else DEFAULT_SIGNED_IN_ROLE


def actor_for(store: Store, email: str, *, admins: tuple[str, ...] | list[str] = ()) -> Actor:
    return Actor(name=(email or "").strip().lower(), role=role_for(store, email, admins=admins))


def grant_role(actor: Actor, store: Store, principal: str, role: str, *, now: datetime | None = None) -> str:
    """Give `principal` (an email or '@domain') `role`, recorded with who granted it and when.
    Granting 'viewer' takes a higher role back. Returns the principal as stored."""
    require(actor, "admin", "grant roles")
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
    key = principal_key(principal)
    if key == actor.name and not Actor(actor.name, role).can("admin"):
        # Otherwise the last admin can lock everyone out of granting roles.
        raise AccessDenied("An admin cannot take the admin role from themselves; ask another admin.")
    with store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO role_grants (principal, role, granted_by, granted_at) VALUES ($p, $role, $by, $at)",
            {"p": key, "role": role, "by": actor.name, "at": now or datetime.now(UTC).replace(tzinfo=None)},
        )
    return key


def role_grants(store: Store) -> pd.DataFrame:
    """The grants in force (the latest per principal): principal, role, granted_by, granted_at."""
    return store.df(
        """
        SELECT principal, arg_max(role, granted_at) AS role, arg_max(granted_by, granted_at) AS granted_by,
               max(granted_at) AS granted_at
        FROM role_grants GROUP BY principal ORDER BY principal
        """
    )


# -- changes, each checked here -----------------------------------------------------------------


def commit_upload_as(
    actor: Actor, store: Store, preview: ingest.UploadPreview, *, now: datetime | None = None
) -> ingest.UploadResult:
    require(actor, "analyst", "commit an upload")
    return ingest.commit_upload(store, preview, uploaded_by=actor.name, now=now)


def undo_upload_as(actor: Actor, store: Store, upload_id: str, *, now: datetime | None = None) -> ingest.UndoResult:
    require(actor, "analyst", "undo an upload")
    return ingest.undo_upload(store, upload_id, undone_by=actor.name, now=now)


def map_service_name_as(actor: Actor, store: Store, name: str, service_id: str) -> int:
    require(actor, "analyst", "map a service name")
    return ingest.map_service_name(store, name, service_id, by=actor.name)


def save_mapping_as(actor: Actor, store: Store, name: str, mapping: dict[str, str]) -> None:
    require(actor, "analyst", "save a column mapping")
    ingest.save_mapping(store, name, mapping, by=actor.name)


def backup_store_as(actor: Actor, store: Store, to_dir: str | Path) -> dict:
    """A backup taken from inside the app, which holds the store (the CLI cannot open it then).
    Admin-only: a backup is a full copy of every table, incident titles included."""
    require(actor, "admin", "back up the store")
    from itscm.backup import backup_store

    manifest = backup_store(store, to_dir, created_by=actor.name)
    administration.record_change(store, actor.name, "backup", str(to_dir),
                                 after={"rows": sum(manifest["tables"].values())})
    return manifest


def edit_service_as(actor: Actor, store: Store, service_id: str, changes: dict) -> dict[str, tuple]:
    require(actor, "admin", "edit the inventory")
    return administration.edit_service(store, service_id, changes, by=actor.name)


def edit_policy_as(actor: Actor, store: Store, changes_by_tier: dict[int, dict]) -> dict[int, dict[str, tuple]]:
    require(actor, "admin", "edit the policy")
    return administration.edit_policy(store, changes_by_tier, by=actor.name)


def set_target_as(actor: Actor, store: Store, key: str, value: float) -> tuple | None:
    require(actor, "admin", "set the posture targets")
    return administration.set_target(store, key, value, by=actor.name)
