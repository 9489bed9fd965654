"""The Upload incidents page's widgets: the time zones offered, the preview read once per file and
options, and what the preview understood."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from itscm import ingest
from itscm.store import Store
from itscm.ui.widgets import plain

TIME_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Amsterdam", "Europe/Madrid",
              "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
              "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]


def read_upload_preview(store: Store, data: bytes, file_name: str, options: dict):
    """The preview of this file with these options, read once and kept for the session's reruns."""
    key = (hashlib.sha256(data).hexdigest(), file_name, repr(sorted(options.items())), store.data_version())
    kept = st.session_state.get("upload-preview")
    if kept is None or kept[0] != key:
        with st.spinner("Reading the file…"):
            kept = (key, ingest.read_upload(data, file_name, store=store, **options))
        st.session_state["upload-preview"] = kept
    return kept[1]


def upload_preview_summary(preview) -> None:
    """What was understood: format, encoding, dates, counts, the first problems and a sample."""
    tiles = st.columns(4)
    tiles[0].metric("Rows read", f"{preview.rows_read:,}", border=True)
    tiles[1].metric("Incidents accepted", f"{preview.incidents:,}", border=True,
                    help=f"{preview.superseded_rows:,} earlier rows of the same incident were superseded by a "
                         "later one" if preview.superseded_rows else None)
    tiles[2].metric("Rows rejected", f"{preview.rejected:,}", border=True)
    tiles[3].metric("Warnings", f"{preview.warnings:,}", border=True)
    confidence = dict(preview.detected_formats).get(preview.format)
    detected = f" (detected, {confidence:.0%} of its columns found)" if confidence else ""
    st.markdown(
        f"**Format** {plain(preview.format_label)}{detected} · **encoding** {plain(preview.encoding)} · "
        f"**delimiter** {plain(repr(preview.delimiter))} · **dates** {preview.date_order}"
        + (f" ({plain(preview.date_order_basis)})" if preview.date_order_basis else "")
        + f" · **time zone** {plain(preview.timezone)}")
    for note in preview.notes:
        st.caption(plain(note))
    mapping = pd.DataFrame([(field, ", ".join(columns)) for field, columns in preview.mapping.items()],
                           columns=["field", "columns read"])
    with st.expander("Column mapping used"):
        st.dataframe(mapping, hide_index=True)
    if not preview.problems.empty:
        shown = "" if len(preview.problems) <= 50 else "first 50 of "
        st.markdown(f"**Problems** ({shown}{len(preview.problems):,}): each with its row number in the file "
                    "(the header is row 1), the column and the reason.")
        st.dataframe(preview.problems.head(50), hide_index=True)
        st.download_button("Download the full problem report", data=ingest.problems_csv(preview),
                           file_name=f"{preview.file_name}.problems.csv", mime="text/csv",
                           icon=":material/download:", key="download-problems")
    if preview.incidents:
        st.markdown("**Accepted incidents** (first 20, times in UTC)")
        st.dataframe(preview.accepted.slice(0, 20).to_pandas(), hide_index=True)
    unmatched = preview.unmatched_services()
    if not unmatched.empty:
        st.caption(f"{len(unmatched):,} service names in this file match no service; their incidents are kept as "
                   "unmatched and can be mapped after the commit.")


def service_choices(store: Store) -> dict[str, str]:
    return dict(store.rows("SELECT service_id, name FROM services WHERE lifecycle = 'live' ORDER BY name"))
