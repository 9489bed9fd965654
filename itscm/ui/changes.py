"""The Changes page's parts: the change export read once per file and options, what the preview
understood, the commit remembered across reruns, and the table of changes behind stale plans."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from itscm import changes
from itscm.filters import Filters
from itscm.measures.staleness import changes_behind_plans
from itscm.store import Store
from itscm.ui import widgets
from itscm.ui.cache import TableHead, cached_measure, cached_read, head_of
from itscm.ui.pickers import named_choices
from itscm.ui.upload import session_preview
from itscm.ui.widgets import plain, table_head

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


@dataclass(frozen=True)
class ChangesBehind:
    """The changes behind plans changed since review, as a page shows them: the table's first
    rows, and how many distinct changes there are in all, emergency and unsuccessful."""
    head: TableHead
    changes: int
    emergency: int
    unsuccessful: int


_BEHIND_ORDER = "by owner, service and plan, newest first"
_BEHIND_COLUMNS = ["owner", "plan", "service", "state", "number", "title", "ci_name", "reached_through",
                   "change_type", "close_code", "emergency", "unsuccessful", "completed_at"]


def _behind_of(store: Store, filters: Filters, owner: str | None) -> pd.DataFrame:
    behind = cached_measure(changes_behind_plans, store, filters)
    return behind if owner is None else behind[behind["owner"] == owner]


def _changes_behind(store: Store, filters: Filters, owner: str | None, limit: int) -> ChangesBehind:
    behind = _behind_of(store, filters, owner)
    return ChangesBehind(head_of(behind, limit), behind["change_id"].nunique(),
                         behind.loc[behind["emergency"], "change_id"].nunique(),
                         behind.loc[behind["unsuccessful"], "change_id"].nunique())


def changes_behind(store: Store, filters: Filters, owner: str | None = None) -> ChangesBehind:
    """What `changes_behind_table` shows (of one owner's plans, or everyone's), cached: at 10,000
    services and a million changes the whole table has 70,000 rows, which would cost more to read
    from the cache and to draw on every run than the rest of the page (docs/PERFORMANCE.md)."""
    return cached_read(_changes_behind, store, filters, owner, widgets.TABLE_ROWS)


def changes_behind_table(store: Store, filters: Filters, view: ChangesBehind, *, key: str,
                         owner: str | None = None) -> None:
    """The changes behind plans changed since review (the first rows; the CSV has them all),
    emergency and unsuccessful ones ticked."""
    table_head(view.head, lambda: _behind_of(store, filters, owner), "changes_behind_plans.csv", _BEHIND_ORDER,
               CHANGE_COLUMNS_CONFIG, label="Download changes CSV", column_order=_BEHIND_COLUMNS, key=key)


def ci_name_targets(store: Store) -> dict[str, dict[str, str]]:
    """What a CI name can be mapped to, per choice of the page: label -> "kind:key" of every live
    service and every asset (100,000 at the bench's size: read with ui.shared_read, offered through
    a search)."""
    return {"a service": named_choices(store, "service"), "an asset": named_choices(store, "asset")}
