"""Changes: the plans whose service changed since their review, the changes behind them, and
change exports in (preview, commit, undo, unmatched CI names)."""

import streamlit as st

from itscm import access, changes, ui
from itscm.changes.formats import FIELD_LABELS, FIELDS, FORMATS_BY_NAME, REQUIRED_FIELDS
from itscm.measures.staleness import staleness_summary

page = ui.setup_page("Changes", ":material/published_with_changes:")
st.title("Changes")
st.caption("Changes to services and to the assets behind them, from ServiceNow, Jira Service Management or the "
           "generic template (data/templates/changes_template.csv). A plan whose service changed after its last "
           "review is stale until it is reviewed again.")
user = page.user

st.subheader("Plans changed since review")
st.caption(ui.filter_scope_caption(page.filters))
summary = page.measure(staleness_summary)
behind = ui.changes_behind(page.store, page.filters)
tiles = st.columns(4)
tiles[0].metric("Plans changed since review", f"{summary['changed_since_review']:,}", border=True,
                help="Their service, or an asset it runs on, had a change completed (implemented or closed, not "
                     "cancelled) after the plan's last review. Overdue and never tested plans are counted there.")
tiles[1].metric("Changes behind stale plans", f"{behind.changes:,}", border=True)
tiles[2].metric("Emergency", f"{behind.emergency:,}", border=True)
tiles[3].metric("Unsuccessful", f"{behind.unsuccessful:,}", border=True)
if behind.head.total == 0:
    ui.explain_empty(f"No plan in scope has a change completed since its review (as of {page.filters.as_of:%Y-%m-%d}).")
else:
    ui.changes_behind_table(page.store, page.filters, behind, key="changes-behind")

upload_tab, history_tab, names_tab = st.tabs(["Upload a change export", "Upload history", "Unmatched CI names"])

with upload_tab:
    file = st.file_uploader("Change export (CSV or Excel)", type=["csv", "txt", "xlsx"], key="changes-file")
    options = st.columns(3)
    format_names = ["Detect from the header", *FORMATS_BY_NAME]
    chosen_format = options[0].selectbox("Format", format_names, key="changes-format")
    timezone = options[1].selectbox("Time zone of the file's times", ui.TIME_ZONES, key="changes-tz")
    date_order = options[2].selectbox("Date order", ["Detect", "day-first", "month-first"], key="changes-dates")
    read_options = {"format": None if chosen_format == format_names[0] else chosen_format, "tz": timezone,
                    "date_order": None if date_order == "Detect" else date_order,
                    "mapping": st.session_state.get("changes-column-mapping")}
    committed = ui.committed_change_upload(page.store, file.file_id if file else None)
    if file is None:
        ui.explain_empty("Choose a change export to see how it is read before anything is stored.")
    elif committed is not None:
        st.success(ui.plain(committed[1]), icon=":material/task_alt:")
        st.caption(f"This file is committed (upload {ui.plain(committed[0])}). Undo it under Upload history.")
    else:
        try:
            preview = ui.read_change_preview(page.store, file.getvalue(), file.name, read_options)
        except changes.IngestError as error:
            st.error(ui.plain(str(error)), icon=":material/block:")
            st.stop()
        if preview.needs_mapping:
            st.warning(ui.plain(preview.notes[0]), icon=":material/table_view:")
            with st.form("changes-mapping"):
                columns = ["(none)", *preview.columns]
                chosen = {field: st.selectbox(FIELD_LABELS[field] + (" (required)" if field in REQUIRED_FIELDS
                                                                     else ""), columns, key=f"changes-map-{field}")
                          for field in FIELDS}
                if st.form_submit_button("Read the file with this mapping", type="primary"):
                    st.session_state["changes-column-mapping"] = {
                        field: column for field, column in chosen.items() if column != "(none)"}
                    st.rerun()
            st.stop()
        ui.change_preview_summary(preview)
        dry_run = changes.diff_changes(page.store, preview)
        st.info(ui.plain(dry_run.message), icon=":material/preview:")
        if ui.require_role(user, "analyst", "commit change uploads"):
            nothing = ("No change was accepted." if preview.changes == 0 else
                       "The store already holds this file as it is." if dry_run.already_imported else None)
            if st.button(f"Commit {preview.changes:,} changes", type="primary", key="changes-commit",
                         disabled=nothing is not None, help=nothing):
                try:
                    result = changes.commit_changes(user, page.store, preview)
                except (changes.IngestError, access.AccessDenied) as error:
                    st.error(ui.plain(str(error)))
                else:
                    ui.remember_change_commit(file.file_id, result)
                    st.session_state.pop("changes-column-mapping", None)
                    st.rerun()

with history_tab:
    uploads = ui.cached_read(changes.list_change_uploads, page.store)
    if uploads.empty:
        ui.explain_empty("No change upload yet. Upload a change export to flag the plans whose services changed "
                         "since their review.")
    else:
        st.dataframe(uploads, hide_index=True, key="change-uploads", column_order=[
            "uploaded_at", "uploaded_by", "file_name", "format", "rows_read", "inserted", "updated", "rejected",
            "state", "changes_now", "undone_at", "undone_by", "undo_blocked_by"], column_config={
            "uploaded_at": st.column_config.DatetimeColumn("Uploaded (UTC)", format="YYYY-MM-DD HH:mm"),
            "undone_at": st.column_config.DatetimeColumn("Undone (UTC)", format="YYYY-MM-DD HH:mm"),
            "uploaded_by": "By", "file_name": "File", "format": "Format", "rows_read": "Rows read",
            "inserted": "Inserted", "updated": "Updated", "rejected": "Rejected", "state": "State",
            "changes_now": "Changes held", "undone_by": "Undone by", "undo_blocked_by": "Undo blocked by"})
        undoable = uploads[uploads["can_undo"]]
        if not undoable.empty and ui.require_role(user, "analyst", "undo change uploads"):
            labels = {row.upload_id: f"{row.file_name} · {row.uploaded_at:%Y-%m-%d %H:%M} · {row.upload_id}"
                      for row in undoable.itertuples()}
            ui.confirmed_undo(labels, lambda target: changes.undo_change_upload(user, page.store, target),
                              (changes.IngestError, access.AccessDenied), choose="Change upload to undo",
                              confirm="Yes, put the changes back as they were before this upload",
                              button="Undo change upload",
                              keys=("changes-undo-target", "changes-undo-confirm", "changes-undo-button"),
                              result_key="changes-undo-last-result")
    ui.show_message("changes-undo-last-result", ":material/undo:")

with names_tab:
    unmatched = ui.cached_read(changes.unmatched_change_cis, page.store)
    if unmatched.empty:
        ui.explain_empty("Every stored change names a known service or asset (or none at all).")
    else:
        st.caption("CI names in change exports that match no service (name or alias) and no asset (id or name). "
                   "Mapping a name matches every stored change under it and the next uploads.")
        st.dataframe(unmatched, hide_index=True, key="unmatched-cis")
        if ui.require_role(user, "analyst", "map CI names"):
            targets = ui.shared_read(ui.ci_name_targets, page.store)
            kind = st.radio("Map a CI name to", list(targets), horizontal=True, key="map-ci-kind",
                            disabled=not targets["an asset"])
            name = ui.search_selectbox(st, "CI name in the changes", dict.fromkeys(unmatched["ci_name"]),
                                       key="map-ci-name", noun="CI names")
            to_service = kind == "a service"
            target = ui.search_selectbox(st, "Service or asset", targets[kind],
                                         key="map-ci-service" if to_service else "map-ci-asset",
                                         noun="services" if to_service else "assets")
            if st.button("Map CI name", key="map-ci", disabled=name is None or target is None):
                _kind, _, key = targets[kind][target].partition(":")
                try:
                    matched = changes.map_change_ci(user, page.store, name,
                                                    *((key, None) if to_service else (None, key)))
                except (changes.IngestError, access.AccessDenied) as error:
                    st.error(ui.plain(str(error)))
                else:
                    ui.rerun_with_message("map-ci-last-result", f"{matched:,} changes now matched to {target}.")
    ui.show_message("map-ci-last-result", ":material/link:")
