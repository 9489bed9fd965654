"""Inventory: the organisation's units, services, dependencies, suppliers, plans and drills as a
workbook; download it, edit it, upload it, see what would change, commit or undo."""

import streamlit as st

from itscm import ui, workbook
from itscm.ui import inventory

page = ui.setup_page("Inventory", ":material/inventory_2:")
st.title("Inventory")
st.caption("Business units, services, dependencies, suppliers, plans, reviews, drills and findings, assets and the "
           "services they stand behind, as a workbook. Download it, edit it in a spreadsheet, upload it: you see what "
           "would change before anything is stored. Exports of ServiceNow (services, CIs, relationships), Snipe-IT "
           "(assets), ciso-assistant and a BIA spreadsheet are recognised from their header.")

inventory.inventory_downloads(page.store)
import_tab, history_tab = st.tabs(["Import", "Import history"])

with import_tab:
    generation = st.session_state.get("inventory-uploader", 0)
    uploaded = st.file_uploader("Inventory workbooks or CSV files (one per sheet, named after it)",
                                type=["xlsx", "xlsm", "csv"], accept_multiple_files=True,
                                key=f"inventory-files-{generation}")
    inventory.show_commit_result()
    if not uploaded:
        ui.explain_empty("Choose the filled-in workbook (or CSV files named after their sheets, such as "
                         "services.csv) to see what it would change before anything is stored.")
    else:
        files = [(file.name, file.getvalue()) for file in uploaded]
        try:
            preview = inventory.read_inventory_preview(page.store, files, retire_missing=frozenset())
        except workbook.WorkbookError as error:
            st.error(ui.plain(str(error)), icon=":material/block:")
            st.stop()
        candidates = inventory.absent_candidates(preview)
        chosen = inventory.retire_choices(candidates)
        if chosen:
            preview = inventory.read_inventory_preview(page.store, files, retire_missing=chosen)
        inventory.preview_summary(preview)
        inventory.commit_button(page.user, page.store, preview, generation)

with history_tab:
    inventory.import_history(page.user, page.store)
