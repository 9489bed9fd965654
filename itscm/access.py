"""Who may change the store. Every function that changes it is declared with `@writes(role,
action)`: its first parameter is the acting user, whose role the declaration checks before the
function runs, and every change records who made it. There is no unchecked twin to call instead;
`WRITES` lists them all (tests/test_writes_are_checked.py refuses each to a viewer, and fails if a
public function opening a write transaction is missing from it).

Two modes (itscm/ui/signin.py picks one): without sign-in configured, the single local user has
every role; with sign-in (`[auth]` in .streamlit/secrets.toml, OIDC through `st.login`), a
person's role comes from `role_grants` in the store: a grant to their email, else to their
email's domain ('@example.com'), else viewer. Grants are a history: the latest one for a
principal wins, the earlier ones stay as the record of who granted what and when. The command
line acts as `command_line_actor`.
"""

from __future__ import annotations

import functools
import getpass
import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

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


def command_line_actor(name: str | None = None) -> Actor:
    """Who acts from `python -m itscm`: `name` (--as), else the OS user, is what the change history
    shows. They act with every role: whoever can open the store file from a shell holds every row
    of it already; roles keep the app's signed-in visitors apart."""
    return Actor(name=name or _os_user(), role="admin")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):   # no login name in the environment or the password database
        return os.environ.get("USER") or "cli"


def require(actor: Actor, role: str, action: str) -> None:
    if not isinstance(actor, Actor):
        raise TypeError(f"To {action} takes the acting user (an Actor) first, not {type(actor).__name__}.")
    if not actor.can(role):
        raise AccessDenied(f"{actor.name} has the {actor.role} role; to {action} needs the {role} role.")


# -- the writes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    function: Callable   # as callers call it: checks the role, then runs
    role: str            # the least role allowed
    action: str          # what it does, as a refusal says it ("commit an upload")


WRITES: dict[str, Write] = {}   # "module.function" -> its declaration, filled as modules are imported


def writes(role: str, action: str) -> Callable[[Callable], Callable]:
    """Declare a function that changes the store: `actor` is its first parameter, and an actor
    without `role` is refused (AccessDenied) before anything runs."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")

    def declare(function: Callable) -> Callable:
        first = next(iter(inspect.signature(function).parameters), None)
        if first != "actor":
            raise TypeError(f"{function.__qualname__} changes the store: its first parameter must be `actor`.")

        @functools.wraps(function)
        def checked(actor: Actor, *args, **kwargs):
            require(actor, role, action)
            return function(actor, *args, **kwargs)

        WRITES[f"{function.__module__}.{function.__qualname__}"] = Write(checked, role, action)
        return checked

    return declare


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


@writes("admin", "grant roles")
def grant_role(actor: Actor, store: Store, principal: str, role: str, *, now: datetime | None = None) -> str:
    """Give `principal` (an email or '@domain') `role`, recorded with who granted it and when.
    Granting 'viewer' takes a higher role back. Returns the principal as stored."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
    key = principal_key(principal)
    if key == actor.name and not Actor(actor.name, role).can("admin"):
        # Otherwise the last admin can lock everyone out of granting roles.
        raise AccessDenied("An admin cannot take the admin role from themselves; ask another admin.")

    def write_in(cursor):
        cursor.execute(
            "INSERT INTO role_grants (principal, role, granted_by, granted_at) VALUES ($p, $role, $by, $at)",
            {"p": key, "role": role, "by": actor.name, "at": now or datetime.now(UTC).replace(tzinfo=None)},
        )

    store.write(write_in)
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
