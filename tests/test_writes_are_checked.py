"""Every function that changes the store checks its actor's role itself.

Each write is declared with `@itscm.access.writes(role, action)`, which lists it in
`access.WRITES`. Here every declared write is called as a viewer and must be refused with the
store exactly as it was; and every public function of itscm that opens a write transaction (itself
or through its private helpers) must be declared, so a new write cannot be added unchecked."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
import types
from pathlib import Path

import pytest

import itscm
from itscm import access
from itscm.access import AccessDenied, Actor
from itscm.changes import commit_changes, read_changes
from itscm.ingest import commit_upload, read_upload
from itscm.store import Store, open_store
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ingest" / "servicenow_list.csv"
VIEWER, ANALYST = Actor("vic@example.com", "viewer"), Actor("ana@example.com", "analyst")
CONTINUITY_MANAGER = Actor("cm@example.com", "continuity manager")

# Public functions that open a write transaction without an actor, and why that is safe.
NOT_ROLE_CHECKED = {
    "itscm.demo.build_demo": "fills a new store with the demo organisation and refuses one that holds services: "
                             "it never changes anyone's data",
    "itscm.bench_inventory.inventory_timings": "builds its own stores in a temporary folder for the benchmark and "
                                               "removes them: it never opens anyone's store",
    "itscm.bench_changes.change_timings": "builds its own store in a temporary folder for the benchmark and removes "
                                          "it: it never opens anyone's store",
    "itscm.bench_changes.add_estate": "adds assets and changes to the store `bench --estate` built in a temporary "
                                      "folder, before timing it: it never opens anyone's store",
    "itscm.bench_resilience.build_graph_store": "builds its own in-memory store for the benchmark: it never opens "
                                                "anyone's store",
    "itscm.backup.restore_store": "makes a store from a backup, from the command line only (`restore`, "
                                  "`migrate-store`): whoever runs it can already write the store's file or "
                                  "catalog, and an existing store is replaced only with --overwrite",
}


def itscm_modules() -> list[types.ModuleType]:
    """Every module of the package, imported (so every `@writes` has registered itself);
    `itscm.__main__` runs the command line when imported."""
    names = [info.name for info in pkgutil.walk_packages(itscm.__path__, "itscm.")
             if not info.name.endswith("__main__")]
    return [importlib.import_module(name) for name in ["itscm", *names]]


MODULES = itscm_modules()


def _preview(store: Store):
    return read_upload(FIXTURE.read_bytes(), FIXTURE.name, store=store)


def _committed_upload(store: Store) -> str:
    return commit_upload(ANALYST, store, _preview(store)).upload_id


CHANGES_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "changes" / "servicenow_change_request.csv"


def _change_preview(store: Store):
    return read_changes(CHANGES_FIXTURE.read_bytes(), CHANGES_FIXTURE.name, store=store)


def _committed_change_upload(store: Store) -> str:
    return commit_changes(ANALYST, store, _change_preview(store)).upload_id


# A realistic call of each write, after the actor: (store, folder) -> the arguments. Anything it
# needs in the store first (an upload to undo, a finding to close) it makes as an analyst or a
# continuity manager, before the store is compared.
CALLS = {
    "itscm.access.grant_role": lambda store, folder: (store, "vic@example.com", "admin"),
    "itscm.administration.edit_continuity_event_rule": lambda store, folder: (store, {"max_priority": 3}),
    "itscm.administration.edit_policy": lambda store, folder: (store, {1: {"test_interval_days": 30}}),
    "itscm.administration.edit_service": lambda store, folder: (store, "svc1", {"rto_minutes": 5}),
    "itscm.administration.record_change": lambda store, folder: (store, "backup", "somewhere"),
    "itscm.administration.set_targets": lambda store, folder: (store, {"coverage_pct": 50.0}),
    "itscm.administration.set_organisation_name": lambda store, folder: (store, "Acme Bank"),
    "itscm.administration.set_concentration_threshold": lambda store, folder: (store, 40.0),
    "itscm.backup.take_backup": lambda store, folder: (store, folder / "backup"),
    "itscm.changes.commit.commit_changes": lambda store, folder: (store, _change_preview(store)),
    "itscm.changes.commit.undo_change_upload": lambda store, folder: (store, _committed_change_upload(store)),
    "itscm.changes.commit.map_change_ci": lambda store, folder: (store, "fw-edge-02", "svc1"),
    "itscm.ingest.commit.commit_upload": lambda store, folder: (store, _preview(store)),
    "itscm.ingest.commit.undo_upload": lambda store, folder: (store, _committed_upload(store)),
    "itscm.ingest.mappings.delete_mapping": lambda store, folder: (store, "Acme"),
    "itscm.ingest.mappings.save_mapping": lambda store, folder: (store, "Acme", {"id": "Ticket", "opened": "Raised"}),
    "itscm.ingest.services.map_service_name": lambda store, folder: (store, "OLD-MAINFRAME", "svc1"),
    "itscm.records.create_service": lambda store, folder: (store, {"name": "Payments Gateway", "tier": 1}),
    "itscm.records.add_dependency": lambda store, folder: (store, "svc1", "svc9"),
    "itscm.records.remove_dependency": lambda store, folder: (store, "svc5", "svc1"),
    "itscm.records.add_supplier": lambda store, folder: (store, "Acme Hosting"),
    "itscm.records.link_supplier": lambda store, folder: (store, "svc1", _supplier(store)),
    "itscm.records.unlink_supplier": lambda store, folder: (store, "svc1", _supplier(store, linked=True)),
    "itscm.records.create_plan": lambda store, folder: (store, "svc1", "Ledger failover"),
    "itscm.records.approve_plan": lambda store, folder: (store, "plan13"),
    "itscm.records.retire_plan": lambda store, folder: (store, "plan13"),
    "itscm.records.record_review": lambda store, folder: (store, "plan2", SMALL_ORG_AS_OF),
    "itscm.records.record_drill": lambda store, folder: (store, "svc1", SMALL_ORG_AS_OF, "tabletop", "passed"),
    "itscm.records.set_finding_state": lambda store, folder: (store, _finding(store), "closed"),
    "itscm.resilience.saved.save_scenario": lambda store, folder: (store, "Cloud outage", ["service:svc1"], 24.0),
    "itscm.workbook.commit.commit_inventory": lambda store, folder: (store, _inventory_preview(store)),
    "itscm.workbook.commit.undo_inventory_import": lambda store, folder: (store, _inventory_import(store)),
    "itscm.uploads.undo_any_upload": lambda store, folder: (store, _committed_change_upload(store)),
}


def _inventory_preview(store: Store):
    from itscm.workbook import preview_inventory

    return preview_inventory(store, [("services.csv", b"id,name,tier,RTO (minutes)\nsvc-new,Brand New,2,60\n")])


def _inventory_import(store: Store) -> str:
    from itscm.workbook import commit_inventory

    return commit_inventory(CONTINUITY_MANAGER, store, _inventory_preview(store)).import_id


def _supplier(store: Store, *, linked: bool = False) -> str:
    """A supplier made by a continuity manager (the small organisation has none), linked to svc1."""
    from itscm import records

    supplier_id = records.add_supplier(CONTINUITY_MANAGER, store, "Acme Hosting")
    if linked:
        records.link_supplier(CONTINUITY_MANAGER, store, "svc1", supplier_id)
    return supplier_id


def _finding(store: Store) -> str:
    from itscm import records

    drill_id = records.record_drill(CONTINUITY_MANAGER, store, "svc1", SMALL_ORG_AS_OF, "tabletop", "partial",
                                    findings=[records.Finding("Runbook step 4 is out of date")])
    return store.scalar("SELECT finding_id FROM drill_findings WHERE drill_id = $id", {"id": drill_id})


def test_every_declared_write_has_a_call_here():
    assert set(access.WRITES) - set(CALLS) == set(), "add a call of each new write to CALLS"
    assert set(CALLS) - set(access.WRITES) == set(), "a write listed here is no longer declared"


@pytest.mark.parametrize("name", sorted(access.WRITES))
def test_a_viewer_is_refused_every_write_and_the_store_is_unchanged(store_path, tmp_path, name):
    write = access.WRITES[name]
    module_name, function_name = name.rsplit(".", 1)
    # The name callers import is the checked function, not an unchecked twin.
    assert getattr(importlib.import_module(module_name), function_name) is write.function
    assert write.role != "viewer", "a write every viewer may make needs no declaration"
    store = open_store(store_path)
    if name == "itscm.ingest.mappings.delete_mapping":   # something there to delete
        access.WRITES["itscm.ingest.mappings.save_mapping"].function(
            ANALYST, store, "Acme", {"id": "Ticket", "opened": "Raised"})
    arguments = CALLS[name](store, tmp_path)
    before, version = table_contents(store), store.data_version()
    with pytest.raises(AccessDenied, match=f"to {write.action} needs the {write.role} role"):
        write.function(VIEWER, *arguments)
    assert store.data_version() == version
    assert table_contents(store) == before
    assert not (tmp_path / "backup").exists()


def test_a_write_checks_the_role_before_anything_else():
    """Arguments that would fail later (no such service) are never looked at: the role is first."""
    with pytest.raises(AccessDenied):
        access.WRITES["itscm.administration.edit_service"].function(VIEWER, "not even a store", None, None)


def test_the_acting_user_comes_first(store_path):
    store = open_store(store_path)
    with pytest.raises(TypeError, match="takes the acting user"):
        access.WRITES["itscm.access.grant_role"].function(store, "vic@example.com", "admin")


def test_a_declared_write_must_take_the_actor_first():
    with pytest.raises(TypeError, match="first parameter must be `actor`"):
        access.writes("admin", "do something")(lambda store, actor: None)


def test_what_is_not_role_checked_still_cannot_change_a_store_in_use(store_path):
    from itscm.demo import build_demo

    store = open_store(store_path)
    before = table_contents(store)
    with pytest.raises(ValueError, match="already holds services"):
        build_demo(store, services=20, incidents=10, as_of=SMALL_ORG_AS_OF)
    assert table_contents(store) == before


# -- no write goes undeclared -----------------------------------------------------------------


def _called(module: types.ModuleType, function: ast.FunctionDef) -> set:
    """The functions `function` calls by a name of its module (`helper(...)`,
    `other_module.helper(...)`), as objects."""
    found = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        if isinstance(target, ast.Name):
            found.add(getattr(module, target.id, None))
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            found.add(getattr(getattr(module, target.value.id, None), target.attr, None))
    return {callee for callee in found if inspect.isfunction(callee)}


def _opens_a_write(node: ast.FunctionDef) -> bool:
    """`store.transaction()`, or `store.write(body)` (a store's write, not a file's `out.write`)."""
    def opens(call) -> bool:
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            return False
        on_store = isinstance(call.func.value, ast.Name) and call.func.value.id == "store"
        return call.func.attr == "transaction" or (call.func.attr == "write" and on_store)

    return any(opens(call) for call in ast.walk(node))


def _qualified(function) -> str:
    function = inspect.unwrap(function)
    return f"{function.__module__}.{function.__qualname__}"


def undeclared_writes(modules: list[types.ModuleType], declared: set[str]) -> list[str]:
    """Public module-level functions that open `store.transaction()`, themselves or through the
    private functions they call, and are neither declared writes nor explained in NOT_ROLE_CHECKED."""
    functions: dict[str, tuple[types.ModuleType, ast.FunctionDef]] = {}
    for module in modules:
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                functions[f"{module.__name__}.{node.name}"] = (module, node)

    def writes(name: str, seen: frozenset = frozenset()) -> bool:
        module, node = functions[name]
        if _opens_a_write(node):
            return True
        helpers = {_qualified(callee) for callee in _called(module, node)}
        return any(writes(helper, seen | {name}) for helper in helpers
                   if helper in functions and helper not in seen and helper.rsplit(".", 1)[1].startswith("_"))

    return sorted(name for name in functions
                  if not name.rsplit(".", 1)[1].startswith("_") and name not in declared
                  and name not in NOT_ROLE_CHECKED and writes(name))


def test_every_public_function_that_writes_is_declared():
    assert undeclared_writes(MODULES, set(access.WRITES)) == []


def test_an_undeclared_write_is_found(tmp_path, monkeypatch):
    """The check above can fail: a module with a public write behind a private helper, and one
    declared, is reported for the first only."""
    (tmp_path / "sneaky_module.py").write_text(textwrap.dedent("""
        from itscm.access import writes


        def _helper(store):
            with store.transaction() as cursor:
                cursor.execute("DELETE FROM role_grants")


        def wipe_grants(store):
            _helper(store)


        @writes("admin", "wipe the grants")
        def wipe_grants_checked(actor, store):
            _helper(store)


        def harmless(store):
            return store.rows("SELECT 1")


        def clear_grants(store):
            store.write(lambda cursor: cursor.execute("DELETE FROM role_grants"))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    sneaky = importlib.import_module("sneaky_module")
    try:
        assert undeclared_writes([sneaky], {"sneaky_module.wipe_grants_checked"}) == ["sneaky_module.clear_grants",
                                                                                   "sneaky_module.wipe_grants"]
    finally:
        access.WRITES.pop("sneaky_module.wipe_grants_checked", None)

