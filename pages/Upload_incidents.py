"""Upload incidents: a CSV export in, what was understood and rejected, commit or undo."""

import streamlit as st

from itscm import access, ingest, ui
from itscm.ingest.formats import FIELD_LABELS, FIELDS, REQUIRED_FIELDS
from itscm.inventory import incident_count

page = ui.setup_page("Upload incidents", ":material/upload_file:")
st.title("Upload incidents")
st.caption("Exports from ServiceNow, Jira Service Management, PagerDuty, Opsgenie, or the generic template "
           "(data/templates/incidents_template.csv). Nothing is stored until you commit.")

user = page.user
upload_tab, history_tab, names_tab = st.tabs(["Upload a file", "Upload history", "Unmatched service names"])

with upload_tab:
    file = st.file_uploader("Incident export (CSV)", type=["csv", "txt", "tsv"], key="upload-file",
                            help=f"Up to {ingest.DEFAULT_MAX_BYTES // 2**20} MB.")
    options = st.columns(4)
    format_names = ["Detect from the header", *ingest.FORMATS_BY_NAME]
    chosen_format = options[0].selectbox("Format", format_names, key="upload-format")
    timezone = options[1].selectbox("Time zone of the file's times", ui.TIME_ZONES, key="upload-tz",
                                    help="Times are stored in UTC.")
    date_order = options[2].selectbox("Date order", ["Detect", "day-first", "month-first"], key="upload-dates",
                                      help="For dates like 03/04/2026.")
    mappings = ui.cached_read(ingest.saved_mappings, page.store)
    mapping_names = ["None", *mappings["name"]] if not mappings.empty else ["None"]
    mapping_name = options[3].selectbox("Saved column mapping", mapping_names, key="upload-mapping")

    read_options = {
        "format": None if chosen_format == format_names[0] else chosen_format,
        "tz": timezone,
        "date_order": None if date_order == "Detect" else date_order,
        "mapping_name": None if mapping_name == "None" else mapping_name,
        "mapping": st.session_state.get("upload-column-mapping"),
    }
    committed = ui.committed_upload(page.store, file.file_id if file else None, read_options)
    if file is None:
        ui.explain_empty("Choose a CSV file to see how it is read before anything is stored.")
    elif committed is not None:
        ui.committed_upload_summary(committed)
    else:
        data = file.getvalue()
        try:
            preview = ui.read_upload_preview(page.store, data, file.name, read_options)
        except ingest.IngestError as error:
            st.error(ui.plain(str(error)), icon=":material/block:")
            st.stop()

        if preview.needs_mapping:
            st.warning("This header matches no known export. Say which column holds each field; the "
                       "mapping can be saved for the next file like it.", icon=":material/table_view:")
            st.caption("Columns found: " + ", ".join(ui.plain(c) for c in preview.columns))
            with st.form("column-mapping"):
                columns = ["(none)", *preview.columns]
                chosen = {}
                for field in (f for f in FIELDS if f != "updated"):
                    suggested = preview.suggested_mapping.get(field)
                    index = columns.index(suggested) if suggested in columns else 0
                    label = FIELD_LABELS[field] + (" (required)" if field in REQUIRED_FIELDS else "")
                    chosen[field] = st.selectbox(label, columns, index=index, key=f"map-{field}")
                may_save = user.can("analyst")
                save_as = st.text_input("Save this mapping as (optional)", key="map-save-as", disabled=not may_save,
                                        help=None if may_save else "Saving a mapping needs the analyst role.")
                if st.form_submit_button("Read the file with this mapping", type="primary"):
                    mapping = {field: column for field, column in chosen.items() if column != "(none)"}
                    missing = [FIELD_LABELS[f] for f in REQUIRED_FIELDS if f not in mapping]
                    if missing:
                        st.error("Choose a column for: " + ", ".join(missing))
                    else:
                        if save_as.strip():
                            try:
                                ingest.save_mapping(user, page.store, save_as.strip(), mapping)
                            except (ingest.IngestError, access.AccessDenied) as error:
                                st.error(ui.plain(str(error)))
                                st.stop()
                        st.session_state["upload-column-mapping"] = mapping
                        st.rerun()
            st.stop()

        ui.upload_preview_summary(preview)
        dry_run = ingest.diff_upload(page.store, preview)
        st.info(ui.plain(dry_run.message), icon=":material/preview:")
        may_commit = ui.require_role(user, "analyst", "commit uploads")
        nothing_to_commit = ("No incident was accepted." if preview.incidents == 0 else
                             "The store already holds this file as it is." if dry_run.already_imported else None)
        if may_commit and st.button(f"Commit {preview.incidents:,} incidents", type="primary", key="upload-commit",
                                    disabled=nothing_to_commit is not None, help=nothing_to_commit):
            try:
                result = ingest.commit_upload(user, page.store, preview)
            except (ingest.IngestError, access.AccessDenied) as error:
                st.error(ui.plain(str(error)))
            else:
                ui.remember_commit(file.file_id, read_options, preview, result)
                st.session_state.pop("upload-column-mapping", None)
                st.rerun()

with history_tab:
    uploads = ui.cached_read(ingest.list_uploads, page.store)
    if uploads.empty:
        held = ui.cached_read(incident_count, page.store)
        ui.explain_empty(f"No upload yet. The store holds {held:,} incidents, loaded with it (the demo store "
                         "comes with its organisation's)." if held else
                         "No upload yet. The store holds no incidents: upload an export above, and its incidents "
                         "are matched to the services of the inventory.")
    else:
        st.dataframe(uploads, hide_index=True, column_order=[
            "uploaded_at", "uploaded_by", "file_name", "format", "rows_read", "inserted", "updated", "rejected",
            "state", "incidents_now", "undone_at", "undone_by", "undo_blocked_by", "sha256"], column_config={
            "uploaded_at": st.column_config.DatetimeColumn("Uploaded (UTC)", format="YYYY-MM-DD HH:mm"),
            "undone_at": st.column_config.DatetimeColumn("Undone (UTC)", format="YYYY-MM-DD HH:mm"),
            "uploaded_by": "By", "file_name": "File", "format": "Format", "rows_read": "Rows read",
            "inserted": "Inserted", "updated": "Updated", "rejected": "Rejected", "state": "State",
            "incidents_now": "Incidents held", "undone_by": "Undone by", "undo_blocked_by": "Undo blocked by",
            "sha256": "SHA-256"})
        undoable = uploads[uploads["can_undo"]]
        if not undoable.empty and ui.require_role(user, "analyst", "undo uploads"):
            labels = {row.upload_id: f"{row.file_name} · {row.uploaded_at:%Y-%m-%d %H:%M} · {row.upload_id}"
                      for row in undoable.itertuples()}
            ui.confirmed_undo(labels, lambda target: ingest.undo_upload(user, page.store, target),
                              (ingest.IngestError, access.AccessDenied), choose="Upload to undo",
                              confirm="Yes, restore the store to its state before this upload", button="Undo upload",
                              keys=("undo-target", "undo-confirm", "undo-button"), result_key="undo-last-result")
    ui.show_message("undo-last-result", ":material/undo:")

with names_tab:
    unmatched = ui.cached_read(ingest.unmatched_service_names, page.store)
    if unmatched.empty:
        ui.explain_empty("Every incident names a known service or alias.")
    else:
        st.caption("Names in incident logs that match no service or alias. Mapping a name adds it as an alias "
                   "and matches every incident under it.")
        st.dataframe(unmatched, hide_index=True)
        if ui.require_role(user, "analyst", "map service names"):
            services = ui.service_choices(page.store)
            with st.form("map-name"):
                name = st.selectbox("Name in the logs", list(unmatched["service_name"]), key="map-name-choice")
                service_id = st.selectbox("Is the service", list(services), format_func=services.get,
                                          key="map-service-choice")
                if st.form_submit_button("Map name to service"):
                    try:
                        matched = ingest.map_service_name(user, page.store, name, service_id)
                    except (ingest.IngestError, access.AccessDenied) as error:
                        st.error(ui.plain(str(error)))
                    else:
                        ui.rerun_with_message("map-last-result",
                                              f"{matched:,} incidents now matched to {services[service_id]}.")
    ui.show_message("map-last-result", ":material/link:")
