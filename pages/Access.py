"""Access: who has which role when people sign in, and granting roles (admins only)."""

import streamlit as st

from itscm import access, ui

page = ui.setup_page("Access", ":material/admin_panel_settings:")
st.title("Access")
user = page.user

if not ui.sign_in_configured():
    st.info("Single-user local mode: sign-in is not configured, so whoever runs the app has every role. "
            "Roles granted here apply once `[auth]` is set in .streamlit/secrets.toml and people sign in.",
            icon=":material/person:")
st.caption("Viewers see the posture; analysts also upload, undo and map service names; admins also grant roles "
           "and take backups. A grant to an email wins over one to its domain (@example.com); anyone signed "
           "in without a grant is a viewer.")

grants = ui.cached_read(access.role_grants, page.store)
if grants.empty:
    ui.explain_empty("No role granted yet.")
else:
    st.dataframe(grants, hide_index=True, column_config={
        "principal": "Email or domain", "role": "Role", "granted_by": "Granted by",
        "granted_at": st.column_config.DatetimeColumn("Granted (UTC)", format="YYYY-MM-DD HH:mm")})

if ui.require_role(user, "admin", "grant roles"):
    with st.form("grant-role"):
        principal = st.text_input("Email, or @domain for everyone in it", key="grant-principal",
                                  placeholder="ana@example.com or @example.com")
        role = st.selectbox("Role", access.ROLES, index=1, key="grant-role-choice")
        if st.form_submit_button("Grant role", type="primary"):
            try:
                granted = access.grant_role(user, page.store, principal, role)
            except (ValueError, access.AccessDenied) as error:
                st.error(ui.plain(str(error)))
            else:
                st.session_state["grant-last-result"] = f"{granted} now has the {role} role."
                st.rerun()
if "grant-last-result" in st.session_state:
    st.success(ui.plain(st.session_state.pop("grant-last-result")), icon=":material/how_to_reg:")
