"""The Inventory page's widgets: the workbook downloads (template, the store's inventory), the
preview of uploaded workbooks and CSV files, the commit, and the import history with undo.

The work is itscm/workbook's (read, preview, commit, undo, export); this module only draws it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from itscm import access, workbook
from itscm.export import csv_for_spreadsheets
from itscm.inventory import service_count
from itscm.store import Store
from itscm.ui.cache import cached_read, run_data_version
from itscm.ui.signin import require_role
from itscm.ui.widgets import confirmed_undo, explain_empty, plain, rerun_with_message, show_message

ROLE = "continuity manager"
TEMPLATE_FILE = "inventory_template.xlsx"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN_REJECTED = 50
COUNT_LABELS = {"inserted": "Added", "updated": "Changed", "unchanged": "Unchanged",
                "absent": "Absent from the files", "retired": "Retired or removed", "rejected": "Rejected"}


# -- downloads ------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False)
def template_workbook() -> bytes:
    """The empty workbook: the same bytes for every store, made once per process."""
    return workbook.template_bytes()


def inventory_csv_zip(store: Store) -> bytes:
    """The store's inventory as one CSV file per sheet, in a zip (as `inventory export --to FOLDER`)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, frame in workbook.export_frames(store).items():
            package.writestr(f"{name}.csv", csv_for_spreadsheets(frame))
    return out.getvalue()


def template_download(key: str = "download-template", *, primary: bool = False) -> None:
    st.download_button("Download the empty template (.xlsx)", data=template_workbook(), file_name=TEMPLATE_FILE,
                       mime=XLSX_MIME, icon=":material/download:", key=key, type="primary" if primary else "secondary",
                       on_click="ignore")


def inventory_downloads(store: Store) -> None:
    """The template, and the store's inventory as a workbook or CSV files; the exports are made
    when clicked (a large inventory takes a moment), not on every run of the page."""
    left, middle, right = st.columns(3)
    with left:
        template_download()
    with middle:
        st.download_button("Download the inventory (.xlsx)", data=lambda: workbook.export_bytes(store)[0],
                           file_name="inventory.xlsx", mime=XLSX_MIME, icon=":material/download:",
                           key="download-inventory-xlsx", on_click="ignore")
    with right:
        st.download_button("Download the inventory (CSV files, .zip)", data=lambda: inventory_csv_zip(store),
                           file_name="inventory_csv.zip", mime="application/zip", icon=":material/download:",
                           key="download-inventory-zip", on_click="ignore")


# -- preview --------------------------------------------------------------------------------------


def files_key(files: list[tuple[str, bytes]]) -> tuple:
    return tuple((name, hashlib.sha256(data).hexdigest()) for name, data in files)


def read_inventory_preview(store: Store, files: list[tuple[str, bytes]], retire_missing: frozenset[str]):
    """The preview of these files, read once per retire choice and kept for the session's reruns
    (until the store or the files change). Raises WorkbookError for a file refused as a whole."""
    base = (files_key(files), run_data_version(store))
    kept = st.session_state.get("inventory-preview")
    if kept is None or kept[0] != base:
        kept = (base, {})
        st.session_state["inventory-preview"] = kept
    previews = kept[1]
    if retire_missing not in previews:
        with st.spinner("Reading the files…"):
            previews[retire_missing] = workbook.preview_inventory(store, files, retire_missing=retire_missing)
    return previews[retire_missing]


def counts_table(tables: dict[str, dict[str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(tables, orient="index").reindex(columns=list(COUNT_LABELS)).fillna(0)
    frame = frame.astype(int).rename(columns=COUNT_LABELS)
    frame.index.name = "Sheet"
    return frame.reset_index()


def preview_summary(preview) -> None:
    """Per sheet what the files would add, change, leave, retire and reject; the changes field by
    field; the rejected rows and the warnings."""
    tables = preview.tables
    totals = {key: sum(counts[key] for counts in tables.values()) for key in COUNT_LABELS}
    tiles = st.columns(5)
    for tile, key in zip(tiles, ("inserted", "updated", "unchanged", "absent", "rejected"), strict=True):
        tile.metric(COUNT_LABELS[key], f"{totals[key]:,}", border=True)
    read = [f"{plain(source.title)} ({source.rows:,} row{'s' if source.rows != 1 else ''})"
            for source in preview.read.sources if source.rows]
    files = ", ".join(plain(file.name) for file in preview.read.files)
    st.caption(f"Read from {files}: " + (", ".join(read) if read else "no rows below the headers") + ".")
    for note in preview.read.notes:
        st.caption(plain(note))
    if preview.incidents_to_match:
        st.caption(f"{preview.incidents_to_match:,} stored incident(s) that match no service yet name a service or "
                   "alias these files add: committing matches them (undo unmatches them).")
    st.dataframe(counts_table(tables), hide_index=True, key="inventory-counts")

    problems = preview.problems
    rejected = problems[problems["severity"] == "error"]
    warnings = problems[problems["severity"] == "warning"]
    changes = preview.plan.changes
    if not changes.empty:
        st.markdown(f"**Changes** ({len(changes):,} field(s)): the stored value and the file's.")
        shown = changes[["sheet", "row_key", "field", "old", "new"]]
        st.dataframe(shown, hide_index=True, key="inventory-changes", column_config={
            "sheet": "Sheet", "row_key": "Row", "field": "Field", "old": "Stored now", "new": "In the file"})
    if not rejected.empty:
        first = "" if len(rejected) <= SHOWN_REJECTED else f"first {SHOWN_REJECTED} of "
        st.markdown(f"**Rejected rows** ({first}{len(rejected):,}): each with its file, sheet, row (the header is "
                    "row 1), column and the reason. Nothing of a rejected row is written.")
        st.dataframe(rejected.head(SHOWN_REJECTED)[["file", "sheet", "row", "column", "reason", "value"]]
                     .astype({"value": "string"}), hide_index=True, key="inventory-rejected")
        st.download_button("Download every problem (CSV)", data=csv_for_spreadsheets(problems),
                           file_name="inventory_problems.csv", mime="text/csv", icon=":material/download:",
                           key="download-inventory-problems")
    if not warnings.empty:
        st.markdown(f"**Warnings** ({len(warnings):,}): written all the same; worth a look.")
        for warning in warnings.head(SHOWN_REJECTED).itertuples():
            where = " · ".join(str(part) for part in (warning.file, warning.sheet,
                                                      None if pd.isna(warning.row) else f"row {int(warning.row)}",
                                                      warning.column) if part is not None and not pd.isna(part))
            st.warning(plain(f"{where}: {warning.reason}" if where else warning.reason), icon=":material/warning:")


def absent_candidates(preview) -> list[str]:
    """Sheets holding stored rows that the files leave out (and could retire)."""
    return [sheet for sheet, counts in preview.tables.items() if counts["absent"]]


def retire_choices(sheets: list[str]) -> frozenset[str]:
    """One checkbox per sheet with rows absent from the files; off unless ticked."""
    if not sheets:
        return set()
    st.markdown("**Rows absent from the files** are left as they are unless you tick their sheet: services, "
                "plans and assets are then retired, other rows removed.")
    columns = st.columns(min(len(sheets), 4))
    chosen = set()
    for index, sheet in enumerate(sheets):
        if columns[index % len(columns)].checkbox(f"Retire what is absent from {sheet}", key=f"retire-{sheet}"):
            chosen.add(sheet)
    return frozenset(chosen)


# -- commit and history ---------------------------------------------------------------------------


def commit_button(user: access.Actor, store: Store, preview, uploader_generation: int) -> None:
    """Commit, for a role that may (the commit checks again). After it, the page runs with an
    empty uploader: the preview and its Commit button are gone, the result stays."""
    if not require_role(user, ROLE, "commit an inventory import"):
        return
    writes = preview.plan.writes
    label = f"Commit {writes:,} row(s)" if writes else "Nothing to commit"
    if st.button(label, type="primary", key="inventory-commit", disabled=not writes):
        try:
            result = workbook.commit_inventory(user, store, preview)
        except (workbook.WorkbookError, access.AccessDenied) as error:
            st.error(plain(str(error)), icon=":material/block:")
            return
        st.session_state.pop("inventory-preview", None)
        st.session_state["inventory-uploader"] = uploader_generation + 1
        rerun_with_message("inventory-last-result", result.message)


def show_commit_result() -> None:
    show_message("inventory-last-result", ":material/task_alt:")


def _counts_line(counts: str | dict) -> str:
    counts = json.loads(counts) if isinstance(counts, str) else counts
    totals = {key: sum(sheet.get(key, 0) for sheet in counts.values()) for key in ("inserted", "updated", "retired")}
    return f"{totals['inserted']} added, {totals['updated']} changed, {totals['retired']} retired"


def import_history(user: access.Actor, store: Store) -> None:
    """Every inventory import, newest first, and undo of the latest one still committed."""
    imports = cached_read(workbook.list_inventory_imports, store)
    if imports.empty:
        st.info("No inventory import yet.", icon=":material/info:")
        show_message("inventory-undo-result", ":material/undo:")
        return
    shown = imports.assign(files=imports["files"].map(lambda files: ", ".join(json.loads(files))),
                           written=imports["counts"].map(_counts_line))
    st.dataframe(shown, hide_index=True, key="inventory-history", column_order=[
        "imported_at", "imported_by", "files", "written", "rows_read", "rejected", "retire_missing", "state",
        "undone_at", "undone_by", "import_id"], column_config={
        "imported_at": st.column_config.DatetimeColumn("Imported (UTC)", format="YYYY-MM-DD HH:mm"),
        "undone_at": st.column_config.DatetimeColumn("Undone (UTC)", format="YYYY-MM-DD HH:mm"),
        "imported_by": "By", "files": "Files", "written": "Written", "rows_read": "Rows read", "rejected": "Rejected",
        "retire_missing": "Retired absent rows", "state": "State", "undone_by": "Undone by", "import_id": "Import"})
    undoable = imports[imports["can_undo"]]
    if not undoable.empty and require_role(user, ROLE, "undo an inventory import"):
        labels = {row.import_id: f"{row.imported_at:%Y-%m-%d %H:%M} · {row.imported_by} · {row.import_id}"
                  for row in undoable.itertuples()}
        confirmed_undo(labels, lambda target: workbook.undo_inventory_import(user, store, target),
                       (workbook.WorkbookError, access.AccessDenied), choose="Import to undo",
                       confirm="Yes, put back every row this import wrote as it was", button="Undo import",
                       keys=("inventory-undo-target", "inventory-undo-confirm", "inventory-undo"),
                       result_key="inventory-undo-result", error_icon=":material/block:")
    show_message("inventory-undo-result", ":material/undo:")


# -- the first run ------------------------------------------------------------------------------


def bring_your_inventory(store: Store) -> None:
    """What an empty store's Overview shows instead of tiles of nothing: how to bring the
    organisation's inventory in, the template, and the way to the Inventory page."""
    st.info(f"The store {plain(store.path)} holds no services yet, so there is no posture to show.",
            icon=":material/info:")
    st.subheader("Bring your inventory")
    st.markdown(
        "The posture is measured over your organisation's **business units, services** (tier, RTO, RPO, MTPD, "
        "cost of an hour down, recovery strategy), their **dependencies and suppliers**, the **plans** that cover "
        "them with their **reviews**, and the **drills** that proved them.\n\n"
        "1. Download the workbook template and fill in its sheets (its README sheet says what each column takes).\n"
        "2. Upload it on the Inventory page: you see what it would add, and what it refuses, before anything is "
        "stored.\n"
        "3. Upload incident exports on the Upload incidents page; they are matched to your services.\n\n"
        "To look around first, build the demo organisation instead: `python -m itscm demo --store PATH`.")
    left, right = st.columns(2)
    with left:
        template_download("first-run-template", primary=True)
    with right:
        inventory_page_link()


def inventory_page_link() -> None:
    try:
        st.page_link("pages/Inventory.py", label="Open the Inventory page", icon=":material/inventory_2:")
    except StreamlitAPIException:
        # A page file run on its own (AppTest, `streamlit run pages/Overview.py`) has no pages to link to.
        st.markdown("Then open the **Inventory** page in the menu.")


def explain_no_match(store: Store, message: str) -> None:
    """`message` where the filters leave nothing to show; in a store without a single service,
    which no filter can fix, the way to bring the inventory in instead."""
    if cached_read(service_count, store):
        explain_empty(message)
        return
    st.info("The store holds no services yet, so there is nothing to show here. Bring your inventory in on the "
            "Inventory page (the workbook template, or your CMDB and BIA exports), or add services one by one "
            "on the Services page.", icon=":material/info:")
    inventory_page_link()
