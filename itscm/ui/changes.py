"""The Changes page's parts: the change export read once per file and options, what the preview
understood, the commit remembered across reruns, and the table of changes behind stale plans."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from itscm import changes
from itscm.store import Store
from itscm.ui.cache import cached_read
from itscm.ui.upload import session_preview
from itscm.ui.widgets import plain

_PREVIEW = "changes-preview"
_COMMITTED = "changes-committed"


def read_change_preview(store: Store, data: bytes, file_name: str, options: dict) -> changes.ChangePreview:
    """The preview of this file with these options, read once and kept for the session's reruns."""
    return session_preview(_PREVIEW, changes.read_changes, store, data, file_name, options)


def change_preview_summary(preview: changes.ChangePreview) -> None:
    """What was understood: format, counts, the problems with their rows, a sample, unmatched CIs."""
    tiles = st.columns(4)
    tiles[0].metric("Rows read", f"{preview.rows_read:,}", border=True)
    tiles[1].metric("Changes accepted", f"{preview.changes:,}", border=True)
    tiles[2].metric("Rows rejected", f"{preview.rejected:,}", border=True)
    tiles[3].metric("Warnings", f"{preview.warnings:,}", border=True)
    confidence = dict(preview.detected_formats).get(preview.format)
    detected = f" (detected, {confidence:.0%} of its columns known)" if confidence else ""
    st.markdown(f"**Format** {plain(preview.format_label)}{detected} · **dates** {preview.date_order} · "
                f"**time zone** {plain(preview.timezone)}")
    for note in preview.notes:
        st.caption(plain(note))
    with st.expander("Column mapping used"):
        st.dataframe(pd.DataFrame([(field, ", ".join(columns)) for field, columns in preview.mapping.items()],
                                  columns=["field", "columns read"]), hide_index=True)
    if not preview.problems.empty:
        shown = "" if len(preview.problems) <= 50 else "first 50 of "
        st.markdown(f"**Problems** ({shown}{len(preview.problems):,}): each with its row number in the file "
                    "(the header is row 1), the column and the reason.")
        st.dataframe(preview.problems.head(50), hide_index=True, key="change-problems")
    if preview.changes:
        st.markdown("**Accepted changes** (first 20, times in UTC)")
        st.dataframe(preview.accepted.slice(0, 20).to_pandas(), hide_index=True, column_order=[
            "row", "number", "title", "ci_name", "service_id", "asset_id", "change_type", "state", "state_raw",
            "close_code", "completed_at"])
    unmatched = preview.unmatched_cis()
    if not unmatched.empty:
        st.caption(f"{len(unmatched):,} CI names in this file match no service and no asset; their changes are "
                   "kept and can be mapped after the commit (Unmatched CI names).")


def remember_change_commit(file_id: str, result: changes.ChangeUploadResult) -> None:
    st.session_state[_COMMITTED] = (file_id, result.upload_id or result.already_imported, result.message)
    st.session_state.pop(_PREVIEW, None)


def committed_change_upload(store: Store, file_id: str | None) -> tuple[str, str] | None:
    """(upload id, message) of the commit made from this very file while its upload stands."""
    committed = st.session_state.get(_COMMITTED)
    if committed is None:
        return None
    committed_file, upload_id, message = committed
    uploads = cached_read(changes.list_change_uploads, store)
    states = uploads.loc[uploads["upload_id"] == upload_id, "state"]
    if committed_file != file_id or states.empty or states.iloc[0] != "committed":
        del st.session_state[_COMMITTED]
        return None
    return upload_id, message


CHANGE_COLUMNS_CONFIG = {
    "state": "Plan state", "owner": "Owner", "plan": "Plan", "service": "Service", "number": "Change",
    "title": "Title", "ci_name": "CI", "reached_through": "Reached through", "change_type": "Type",
    "close_code": "Close code",
    "completed_at": st.column_config.DatetimeColumn("Completed (UTC)", format="YYYY-MM-DD HH:mm"),
    "emergency": st.column_config.CheckboxColumn("Emergency"),
    "unsuccessful": st.column_config.CheckboxColumn("Unsuccessful"),
}


def changes_behind_table(behind: pd.DataFrame, key: str) -> None:
    """The changes behind plans changed since review; emergency and unsuccessful ones ticked."""
    st.dataframe(behind, hide_index=True, key=key, column_order=[
        "owner", "plan", "service", "state", "number", "title", "ci_name", "reached_through", "change_type",
        "close_code", "emergency", "unsuccessful", "completed_at"], column_config=CHANGE_COLUMNS_CONFIG)


def asset_choices(store: Store) -> dict[str, str]:
    return dict(store.rows("SELECT asset_id, name || ' (' || asset_id || ')' FROM assets "
                           "WHERE lifecycle = 'live' ORDER BY name"))
