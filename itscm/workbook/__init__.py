"""The inventory workbook: the organisation's business units, services, dependencies, suppliers,
plans, reviews, drills and findings, exported to a spreadsheet, edited, and imported back with the
incident import's discipline (a preview first, all or nothing, the same files again change
nothing, undo restores exactly, every commit recorded with who). UI-free: the CLI
(`python -m itscm inventory ...`, itscm/workbook/command.py) and a page call the same functions.

    template_bytes()                                    # the empty workbook
    export_inventory(store, "inventory.xlsx")           # or a folder: one CSV file per sheet
    preview = preview_inventory(store, [(name, data), ...], retire_missing=False)
    preview.tables, preview.problems, preview.plan.changes, preview.plan.absent, preview.as_dict()
    result = commit_inventory(actor, store, preview)    # checked: the continuity manager role
    undo_inventory_import(actor, store, result.import_id)
    list_inventory_imports(store)

Modules, one job each: durations (text -> minutes), sheets (the sheets and columns, as data),
targets (the store tables an import writes, as data), cycles (dependency cycles),
cells (a cell -> its value or the reason it is refused), xlsx (a workbook's cells, hostile files
refused), read (files -> typed rows and problems), plan (resolution and comparison with the store,
in SQL), commit (preview, commit, undo), export (template and export), command (the CLI).
"""

import importlib

# The API, loaded on first use (PEP 562): `python -m itscm` imports this package for its
# `inventory` command line, and every other command should not pay for openpyxl and the reader.
_API = {
    "ImportResult": "commit", "InventoryPreview": "commit", "UndoResult": "commit", "commit_inventory": "commit",
    "list_inventory_imports": "commit", "preview_inventory": "commit", "undo_inventory_import": "commit",
    "WorkbookError": "errors",
    "export_bytes": "export", "export_frames": "export", "export_inventory": "export", "template_bytes": "export",
    "write_template": "export",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'itscm.workbook' has no attribute {name!r}")
    return getattr(importlib.import_module(f"itscm.workbook.{_API[name]}"), name)
