"""Administration: roles, posture targets and policy, backups, and the history of every change.
Everyone sees it; only admins change anything, and each change checks that again itself."""

import streamlit as st

from itscm import access, administration, backup, ui
from itscm.filters import EVENT_SCOPE_LABELS
from itscm.measures.registry import headline_measures
from itscm.resilience.analysis import concentration_threshold_pct
from itscm.targets import posture_targets

page = ui.setup_page("Administration", ":material/admin_panel_settings:")
st.title("Administration")
user = page.user
is_admin = user.can("admin")
if not ui.sign_in_configured():
    st.info("Single-user local mode: sign-in is not configured, so whoever runs the app has every role. "
            "Roles granted here apply once `[auth]` is set in .streamlit/secrets.toml and people sign in.",
            icon=":material/person:")
elif not is_admin:
    st.caption(f":material/lock: You can read everything here; changing it needs the admin role (you are a "
               f"{user.role}).")

roles_tab, policy_tab, backups_tab, history_tab = st.tabs(
    ["Roles", "Targets and policy", "Backups", "Change history"])


with roles_tab:
    st.caption("Viewers see every page; analysts also upload, undo and map service names; the recovery team also "
               "records drills and their findings; continuity managers also keep the inventory, plans, reviews, "
               "dependencies and suppliers; admins also set the targets and the policy, grant roles and take "
               "backups. A grant to an email wins over one to its domain (@example.com); anyone signed in without a "
               "grant is a viewer.")
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
                    ui.rerun_with_message("grant-last-result", f"{granted} now has the {role} role.")
    ui.show_message("grant-last-result", ":material/how_to_reg:")

with policy_tab:
    st.subheader("Posture targets")
    st.caption("An Overview tile is on target when its figure is at least (or, where less is better, at most) its "
               "percentage here.")
    targets = posture_targets(page.store)
    labels = {measure.key: measure.target_label for measure in headline_measures()}
    with st.form("posture-targets"):
        wanted = {key: st.number_input(labels[key], 0.0, 100.0, float(target), step=1.0, key=f"target-{key}",
                                       disabled=not is_admin) for key, target in targets.items()}
        if st.form_submit_button("Save targets", disabled=not is_admin):
            try:
                changed = administration.set_targets(user, page.store, wanted)   # all in one transaction
            except (ValueError, access.AccessDenied) as error:
                st.error(ui.plain(str(error)))
            else:
                saved = f"Saved {len(changed)} target{'' if len(changed) == 1 else 's'}."
                ui.rerun_with_message("targets-last-result", saved if changed else "No target changed.")
    ui.show_message("targets-last-result", ":material/flag:")

    st.subheader("Organisation")
    organisation = administration.organisation_name(page.store)
    st.caption(f"The report's title page names the organisation: {ui.plain(organisation) or 'not set yet'}.")
    if ui.require_role(user, "admin", "set the organisation's name"):
        with st.form("organisation-name"):
            name = st.text_input("Organisation's name", organisation, key="organisation-name",
                                 max_chars=administration.LONGEST_ORGANISATION_NAME)
            if st.form_submit_button("Save name"):
                try:
                    changed = administration.set_organisation_name(user, page.store, name)
                except (ValueError, access.AccessDenied) as error:
                    st.error(ui.plain(str(error)))
                else:
                    ui.rerun_with_message("organisation-last-result", "Saved the name." if changed else "No change.")
    ui.show_message("organisation-last-result", ":material/badge:")

    st.subheader("Supplier concentration")
    threshold = concentration_threshold_pct(page.store)
    st.caption("The Resilience page and the Overview flag a supplier whose failure reaches at least this share of "
               "the critical services.")
    with st.form("concentration-threshold"):
        wanted_pct = st.number_input("Flag a supplier carrying at least (% of the critical services)", 0.5, 100.0,
                                     float(threshold), step=1.0, key="concentration-threshold", disabled=not is_admin)
        if st.form_submit_button("Save threshold", disabled=not is_admin):
            try:
                changed = administration.set_concentration_threshold(user, page.store, wanted_pct)
            except (ValueError, access.AccessDenied) as error:
                st.error(ui.plain(str(error)))
            else:
                ui.rerun_with_message("concentration-last-result",
                                      "Saved the threshold." if changed else "No change.")
    ui.show_message("concentration-last-result", ":material/hub:")

    st.subheader("Policy per tier")
    st.caption("How often plans are reviewed and tested, the weakest drill that counts as a test, and which tiers are "
               "critical (in scope for coverage). Every measure uses these at once.")
    current_policy = ui.cached_read(administration.policy, page.store)
    edited = st.data_editor(
        current_policy, key="policy-editor", hide_index=True, disabled=["tier"] if is_admin else True,
        column_config={
            "tier": st.column_config.NumberColumn("Tier", format="%d"),
            "review_interval_days": st.column_config.NumberColumn("Review every (days)", min_value=1,
                                                                  max_value=administration.LONGEST_INTERVAL_DAYS,
                                                                  step=1, required=True),
            "test_interval_days": st.column_config.NumberColumn("Test every (days)", min_value=1,
                                                                max_value=administration.LONGEST_INTERVAL_DAYS,
                                                                step=1, required=True),
            "min_test_type": st.column_config.SelectboxColumn(
                "Weakest drill that counts", options=list(administration.DRILL_TYPES_WEAKEST_FIRST), required=True),
            "is_critical": st.column_config.CheckboxColumn("Critical tier"),
            "rto_ceiling_minutes": st.column_config.NumberColumn(
                "RTO ceiling (min)", min_value=0, max_value=administration.LONGEST_OBJECTIVE_MINUTES, step=1,
                help="The longest RTO the tier allows; the consistency checks flag an RTO above it or below the "
                     "ceiling of the tier above."),
            "change_fails_review": st.column_config.CheckboxColumn(
                "Change since review fails review", help="A plan whose service or an asset behind it changed "
                "after the plan's last review fails the coverage control 'Plan reviewed in interval'."),
        })
    if is_admin and st.button("Save policy", key="policy-save", disabled=edited.equals(current_policy)):
        # Every tier as edited: the store compares, so what did not change is neither written nor logged.
        wanted = {int(row["tier"]): {field: row[field] for field in administration.POLICY_FIELDS}
                  for row in edited.to_dict("records")}
        try:
            changes = sum(map(len, administration.edit_policy(user, page.store, wanted).values()))
        except (ValueError, access.AccessDenied) as error:
            st.error(ui.plain(str(error)))
        else:
            ui.rerun_with_message("policy-last-result", f"Saved {changes} policy setting{'' if changes == 1 else 's'}.")
    ui.show_message("policy-last-result", ":material/policy:")

    st.subheader("Continuity events")
    st.caption("Which incidents are continuity events: RTO attainment counts them (or every incident, as each page's "
               "sidebar chooses); downtime cost counts every incident and shows their share. Minor technical "
               "issues belong to incident management.")
    rule = ui.cached_read(administration.continuity_event_rule, page.store)
    priorities = [None, *administration.TIERS]
    with st.form("continuity-event-rule"):
        max_priority = st.selectbox(
            "Incidents of priority 1 to", priorities, index=priorities.index(rule["max_priority"]),
            format_func=lambda p: "none by priority" if p is None else f"priority {p}", disabled=not is_admin)
        outage_past_rto = st.checkbox("An outage longer than the service's RTO", value=rule["outage_past_rto"],
                                      disabled=not is_admin)
        marked_major = st.checkbox("Marked major in the source (ServiceNow major incident state Accepted)",
                                   value=rule["marked_major"], disabled=not is_admin)
        scopes = list(EVENT_SCOPE_LABELS)
        default_scope = st.radio("Shown by default", scopes, index=scopes.index(rule["default_events"]),
                                 format_func=EVENT_SCOPE_LABELS.get, horizontal=True, disabled=not is_admin)
        if st.form_submit_button("Save continuity events", disabled=not is_admin):
            try:
                changed = administration.edit_continuity_event_rule(user, page.store, {
                    "max_priority": max_priority, "outage_past_rto": outage_past_rto, "marked_major": marked_major,
                    "default_events": default_scope})
            except (ValueError, access.AccessDenied) as error:
                st.error(ui.plain(str(error)))
            else:
                saved = f"Saved {len(changed)} setting{'' if len(changed) == 1 else 's'} of the continuity event rule."
                ui.rerun_with_message("rule-last-result", saved if changed else "Nothing changed.")
    ui.show_message("rule-last-result", ":material/policy:")

with backups_tab:
    folder = backup.backups_folder(page.store.path)
    st.caption(f"A backup is a Parquet file per table and a manifest, copied from one consistent state while the app "
               f"keeps serving. Backups taken here go to `{ui.plain(folder)}` (set ITSCM_BACKUP_DIR to change it); "
               "restore one with `python -m itscm restore --from FOLDER --store PATH`.")
    if ui.require_role(user, "admin", "take a backup") and st.button("Back up now", key="backup-now",
                                                                       icon=":material/backup:"):
        with st.spinner("Backing up…"):
            try:
                target = backup.new_backup_folder(page.store.path)
                manifest = backup.take_backup(user, page.store, target)
            except (OSError, backup.BackupError, access.AccessDenied) as error:
                st.error(ui.plain(f"The backup failed: {error}"))
            else:
                rows = sum(manifest["tables"].values())
                ui.rerun_with_message("backup-last-result", f"Backed up {rows:,} rows to {target}.")
    ui.show_message("backup-last-result", ":material/backup:")
    existing = backup.list_backups(folder)
    if existing:
        st.dataframe(existing, hide_index=True, column_config={
            "folder": "Folder", "created_at": "Taken (UTC)", "created_by": "By",
            "schema_version": "Schema", "rows": st.column_config.NumberColumn("Rows", format="localized")})
    else:
        ui.explain_empty("No backup in that folder yet.")

with history_tab:
    st.caption("Every change to the store and who made it: uploads and undos, mapped service names, saved column "
               "mappings, role grants, inventory and policy edits, targets and backups. Newest first.")
    history = ui.cached_read(administration.change_history, page.store)
    if history.empty:
        ui.explain_empty("Nothing has been changed in this store yet.")
    else:
        st.dataframe(history, hide_index=True, column_config={
            "changed_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "changed_by": "Who", "action": "What", "subject": "On", "detail": "Detail"})
        ui.download_csv(history, "change_history.csv")
