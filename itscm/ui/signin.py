"""Who is using the app: sign-in (OIDC through st.login, when `[auth]` is configured), their role
from the store's grants, and whether to show a control. The action itself checks the role again
(itscm/access.py)."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAuthError

from itscm.access import LOCAL_USER, ROLES, Actor, actor_for
from itscm.store import Store
from itscm.ui.widgets import plain


def sign_in_configured() -> bool:
    """Whether `[auth]` is set in .streamlit/secrets.toml (OIDC sign-in through st.login)."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def configured_admins() -> tuple[str, ...]:
    """Emails that are admins whatever the grants say (`[access] admins = [...]` in secrets):
    without them, a freshly configured app would have nobody able to grant the first role."""
    section = st.secrets.get("access", {}) if st.secrets.load_if_toml_exists() else {}
    admins = section.get("admins", ()) if hasattr(section, "get") else ()
    return tuple(str(email) for email in ([admins] if isinstance(admins, str) else admins))


def current_user(store: Store) -> Actor:
    """The person using the app, with their role, and who they are in the sidebar.

    Without sign-in configured the app runs in single-user local mode, and says so. With it, a
    visitor who is not signed in gets a sign-in button and nothing else; a signed-in person's
    role comes from the grants in the store (itscm.access.role_for)."""
    if not sign_in_configured():
        st.sidebar.caption(":material/person: Single-user local mode: no sign-in is configured, so you have "
                           f"every role ({', '.join(ROLES)}).")
        return LOCAL_USER
    if not st.user.get("is_logged_in", False):
        st.info("Sign in to see the continuity posture.", icon=":material/login:")
        if st.button("Sign in", type="primary", key="sign-in"):
            try:
                st.login()
            except StreamlitAuthError as error:
                # A deployment mistake (Authlib missing, [auth] incomplete): say so in one line.
                st.error(f"Sign-in is configured but cannot start: {str(error).splitlines()[0]}")
        st.stop()
    email = str(st.user.get("email") or "").strip()
    if not email:
        st.error("Your sign-in did not give an email address, which roles are granted to; ask the identity "
                 "provider's administrator to release the email claim.")
        st.stop()
    user = actor_for(store, email, admins=configured_admins())
    st.sidebar.caption(f":material/person: Signed in as {plain(email)} ({user.role}).")
    if st.sidebar.button("Sign out", key="sign-out"):
        st.logout()
    return user


def require_role(user: Actor, role: str, action: str) -> bool:
    """Whether to show a control; the action itself checks again (itscm.access)."""
    if user.can(role):
        return True
    st.caption(f":material/lock: To {action} you need the {role} role; you are a {user.role}.")
    return False
