"""The Upload incidents page's widgets: the time zones offered, the preview read once per file and
options, what the preview understood, and the commit made from it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from itscm import ingest
from itscm.store import Store
from itscm.ui.cache import cached_read, run_data_version
from itscm.ui.widgets import plain

_PREVIEW = "upload-preview"
_COMMITTED = "upload-committed"

TIME_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Amsterdam", "Europe/Madrid",
              "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
              "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]


def read_upload_preview(store: Store, data: bytes, file_name: str, options: dict):
    """The preview of this file with these options, read once and kept for the session's reruns."""
    return session_preview(_PREVIEW, ingest.read_upload, store, data, file_name, options)


def session_preview(session_key: str, read: Callable, store: Store, data: bytes, file_name: str, options: dict):
    """`read(data, file_name, store=store, **options)`, kept under `session_key` for the session's
    reruns until the file, the options or the store change. Shared by the incident and change uploads."""
    key = (hashlib.sha256(data).hexdigest(), file_name, repr(sorted(options.items())), run_data_version(store))
    kept = st.session_state.get(session_key)
    if kept is None or kept[0] != key:
        with st.spinner("Reading the file…"):
            kept = (key, read(data, file_name, store=store, **options))
        st.session_state[session_key] = kept
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


@dataclass(frozen=True)
class CommittedUpload:
    """A commit made on this page, from the file the uploader still holds, read with the options
    still chosen."""

    file_id: str  # the uploader's id of that file: choosing a file again gives a new one
    options: str
    preview: ingest.UploadPreview
    result: ingest.UploadResult

    @property
    def upload_id(self) -> str | None:
        """The upload holding the file's incidents: this commit's, or the earlier one of the
        same file when it changed nothing."""
        return self.result.upload_id or self.result.already_imported


def _chosen_options(options: dict) -> str:
    # Without the column mapping typed for the file: the commit clears it (the next file may need
    # another), and the file is still the one committed.
    return repr(sorted((name, value) for name, value in options.items() if name != "mapping"))


def remember_commit(file_id: str, options: dict, preview, result) -> None:
    """Keep what was committed, so the reruns show its outcome instead of offering it again."""
    st.session_state[_COMMITTED] = CommittedUpload(file_id, _chosen_options(options), preview, result)
    st.session_state.pop(_PREVIEW, None)  # the committed one holds it; read again only for new options


def committed_upload(store: Store, file_id: str | None, options: dict) -> CommittedUpload | None:
    """The commit made from this very file with these options, while its upload stands. Another
    file (or none), other options, or an undo of the upload end it: the page then reads and
    dry-runs the file afresh."""
    committed = st.session_state.get(_COMMITTED)
    if committed is None:
        return None
    current = committed.file_id == file_id and committed.options == _chosen_options(options)
    if current and committed.upload_id is not None:
        uploads = cached_read(ingest.list_uploads, store)
        states = uploads.loc[uploads["upload_id"] == committed.upload_id, "state"]
        current = not states.empty and states.iloc[0] == "committed"
    if not current:
        del st.session_state[_COMMITTED]  # its preview holds every accepted row
        return None
    return committed


def committed_upload_summary(committed: CommittedUpload) -> None:
    """The commit's outcome, then what was read from the file; nothing left to commit."""
    result = committed.result
    if result.upload_id:
        st.success(plain(result.message), icon=":material/task_alt:")
    else:
        st.info(plain(result.message), icon=":material/task_alt:")
    upload_preview_summary(committed.preview)
    st.caption(f"This file is committed (upload {plain(committed.upload_id or '')}). To read another, choose it "
               "above; to read this one again, change an option. Undo the upload under Upload history.")


def service_choices(store: Store) -> dict[str, str]:
    return dict(store.rows("SELECT service_id, name FROM services WHERE lifecycle = 'live' ORDER BY name"))
