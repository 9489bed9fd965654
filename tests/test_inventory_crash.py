"""A process killed (SIGKILL) before, during or right after an inventory commit or undo: on
reopening, the change is all there or not at all (DuckDB replays its write-ahead log). As in
tests/test_crash.py, the child pauses at a chosen statement of its write transaction, found by
wrapping the store's write cursor; the product code has no test hooks."""

from __future__ import annotations

import datetime as dt
import io
import textwrap
from pathlib import Path

import pytest
from openpyxl import load_workbook

from itscm.access import Actor
from itscm.store import Store
from itscm.workbook import commit_inventory, export_bytes, preview_inventory, undo_inventory_import
from tests import backends
from tests.crash_child import PAUSING_STORE, killed_at_each_point
from tests.inventory_workbooks import edited, workbook
from tests.store_contents import table_contents

ROOT = Path(__file__).resolve().parent.parent
T_EARLIER, T_CHILD = dt.datetime(2026, 7, 1, 9, 0), dt.datetime(2026, 7, 2, 9, 0)
MANAGER = Actor("crash@example.com", "continuity manager")

CHILD = textwrap.dedent("""
    import datetime as dt
    import sys
    from contextlib import contextmanager
    from pathlib import Path

    from itscm.access import Actor
    from itscm.store import Store
    from itscm.workbook import commit_inventory, preview_inventory, undo_inventory_import

    MANAGER = Actor("crash@example.com", "continuity manager")
""") + PAUSING_STORE + textwrap.dedent("""
    if action == "commit":
        preview = preview_inventory(store, [(Path(argument).name, Path(argument).read_bytes())])
        pause_at("before")
        commit_inventory(MANAGER, store, preview, now=NOW)
    else:
        pause_at("before")
        undo_inventory_import(MANAGER, store, argument, now=NOW)
    pause_at("after")
    print("finished", flush=True)
""")

POINTS = {
    "commit": [("before", "before"), ("sql:INSERT INTO inventory_prior_rows", "before"),
               ("sql:UPDATE services SET", "before"), ("sql:INSERT INTO drill_findings", "before"),
               ("sql:INSERT INTO inventory_imports", "before"), ("sql:INSERT INTO change_log", "before"),
               ("after", "after")],
    "undo": [("before", "before"), ("sql:DELETE FROM services", "before"),
             ("sql:INSERT INTO services BY NAME", "before"), ("sql:UPDATE inventory_imports SET state", "before"),
             ("after", "after")],
}


def import_names(store: Store) -> dict[str, str]:
    """Import id -> a name two stores importing at the same times share (ids end in a random tail)."""
    return {import_id: f"import@{at:%Y-%m-%dT%H:%M:%S}"
            for import_id, at in store.rows("SELECT import_id, imported_at FROM inventory_imports")}


def contents(path: Path | str) -> dict:
    with Store(path) as store:
        return table_contents(store, import_names(store))


def the_import(path: Path, store: Store) -> Path:
    data, _ = export_bytes(store)
    drill = store.scalar("SELECT min(drill_id) FROM drills")
    data = edited(data, {("services", "F2"): 15, ("services", "E3"): "New Owner"})
    extra = workbook({"findings": [["drill", "what"], [drill, "Failover runbook out of date"]]})
    # One workbook: the edited export with a findings row added.
    book = load_workbook(io.BytesIO(data))
    for row in load_workbook(io.BytesIO(extra))["findings"].iter_rows(min_row=2, values_only=True):
        book["findings"].append([None, *row])
    path.parent.mkdir(exist_ok=True)
    book.save(path)
    return path


@pytest.fixture(scope="module", params=["commit", "undo"])
def stores(request, small_org_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inventory-crash")
    (folder / "child.py").write_text(CHILD)
    action = request.param
    before = backends.copy_store(small_org_path, folder / f"{action}-before.duckdb")
    with Store(before) as store:
        workbook_path = the_import(folder / f"{action}" / "inventory.xlsx", store)
        argument = str(workbook_path)
        if action == "undo":
            preview = preview_inventory(store, [(workbook_path.name, workbook_path.read_bytes())])
            argument = commit_inventory(MANAGER, store, preview, now=T_EARLIER).import_id
        if not store.on_ducklake:
            store.cursor().execute("CHECKPOINT")   # so a copy's log holds only the child's change
    after = backends.copy_store(before, folder / f"{action}-after.duckdb")
    with Store(after) as store:
        if action == "commit":
            preview = preview_inventory(store, [(workbook_path.name, workbook_path.read_bytes())])
            commit_inventory(MANAGER, store, preview, now=T_CHILD)
        else:
            undo_inventory_import(MANAGER, store, argument, now=T_CHILD)
    return folder, action, before, after, argument


@pytest.mark.long
def test_a_killed_inventory_change_is_all_or_nothing(stores, tmp_path):
    folder, action, before, after, argument = stores
    expected = {"before": contents(before), "after": contents(after)}
    assert expected["before"] != expected["after"]
    for point, state, path, _ in killed_at_each_point(folder / "child.py", before, tmp_path, action, argument,
                                                      POINTS[action], T_CHILD):
        assert contents(path) == expected[state], f"killed at {point}: the store is not the {state} state"
