"""The inventory import's discipline: a file updates only the columns it carries, absent rows are
retired only when asked, references resolve by id then name or alias in any case and spacing,
unknown units are created and reported, cycles are reported and kept, dangling references are
rejected with their row and column, the same files again change nothing, undo restores exactly,
and only a continuity manager may commit or undo."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from itscm import administration, rollup
from itscm.access import AccessDenied, Actor
from itscm.store import Store
from itscm.workbook import (
    WorkbookError,
    commit_inventory,
    export_bytes,
    list_inventory_imports,
    preview_inventory,
    undo_inventory_import,
)
from tests.builders import OrgBuilder
from tests.command_line import run_cli
from tests.inventory_workbooks import MANAGER, edited, imported, inventory, without_columns, workbook
from tests.store_contents import table_contents

T1, T2 = dt.datetime(2026, 7, 1, 9, 0), dt.datetime(2026, 7, 1, 10, 0)
RECORD_TABLES = {"inventory_imports", "inventory_prior_rows", "change_log", "store_meta"}


@pytest.fixture
def store(store_path):
    with Store(store_path) as opened:
        yield opened


def everything_but_records(store: Store) -> dict:
    return {table: rows for table, rows in table_contents(store).items() if table not in RECORD_TABLES}


def problems(preview, severity="error") -> list[tuple]:
    frame = preview.problems
    frame = frame[frame.severity == severity]
    return list(zip(frame.sheet, frame.row, frame.column, frame.reason, strict=True))


def test_a_file_without_a_column_never_erases_it(store):
    data, _ = export_bytes(store)
    before = inventory(store)
    partial = without_columns(data, "services", {"RTO (minutes)", "RPO (minutes)", "aliases", "tier"})
    preview, result = imported(store, [("partial.xlsx", partial)])
    assert preview.plan.changes.empty and result.import_id is None
    assert inventory(store) == before

    # Two columns only: the owners change, nothing else does.
    owners = workbook({"services": [["id", "owner"], ["svc1", "New Owner"], ["SVC5", "Other Owner"]]})
    preview, result = imported(store, [("owners.xlsx", owners)])
    assert preview.plan.changes[["row_key", "field", "old", "new"]].to_dict("records") == [
        {"row_key": "svc1", "field": "owner", "old": "Owner", "new": "New Owner"},
        {"row_key": "svc5", "field": "owner", "old": "Owner", "new": "Other Owner"}]
    assert store.rows("SELECT service_id, owner, rto_minutes, tier FROM services WHERE service_id IN ('svc1', 'svc5') "
                      "ORDER BY 1") == [("svc1", "New Owner", 60, 1), ("svc5", "Other Owner", 30, 1)]
    assert store.scalar("SELECT count(*) FROM service_aliases WHERE service_id = 'svc1'") == 1   # kept

    # An empty cell in a column the file has does empty the value.
    preview, _ = imported(store, [("rpo.xlsx", workbook({"services": [["id", "RPO (minutes)"], ["svc1", None]]}))])
    assert store.scalar("SELECT rpo_minutes FROM services WHERE service_id = 'svc1'") is None


def without_the_portal(store: Store) -> tuple[bytes, str]:
    """A workbook of every service but svc9 (Customer Portal), every plan but its plan, no
    dependency row and every unit but Legal; and the portal's plan id."""
    portal_plan = store.scalar("SELECT plan_id FROM plans WHERE service_id = 'svc9'")
    return workbook({
        "services": [["id", "name"], *[[sid, name] for sid, name in store.rows(
            "SELECT service_id, name FROM services WHERE service_id <> 'svc9' ORDER BY 1")]],
        "plans": [["id", "service"], *[[pid, sid] for pid, sid in store.rows(
            "SELECT plan_id, service_id FROM plans WHERE plan_id <> $p ORDER BY 1", {"p": portal_plan})]],
        "dependencies": [["service", "depends on"]],        # no rows: nothing absent from it is touched
        "business_units": [["name"], ["Payments"], ["Cards"], ["Retail <b>Banking</b>"]],   # Legal is absent
    }), portal_plan


def test_absent_rows_are_reported_and_retired_only_when_asked(store):
    fewer, portal_plan = without_the_portal(store)
    before = inventory(store)
    preview, result = imported(store, [("fewer.xlsx", fewer)])
    assert result.import_id is None and inventory(store) == before
    assert preview.tables["services"]["absent"] == 1 and preview.tables["services"]["retired"] == 0
    assert preview.tables["plans"]["absent"] == 1 and preview.tables["business_units"]["absent"] == 1
    assert any("--retire-missing would retire" in reason for *_, reason in problems(preview, "warning"))

    preview, result = imported(store, [("fewer.xlsx", fewer)], retire_missing=True)
    assert preview.tables["services"]["retired"] == 1 and preview.tables["plans"]["retired"] == 1
    assert preview.tables["business_units"]["retired"] == 1
    assert store.scalar("SELECT lifecycle FROM services WHERE service_id = 'svc9'") == "retired"
    assert store.scalar("SELECT status FROM plans WHERE plan_id = $p", {"p": portal_plan}) == "retired"
    assert store.scalar("SELECT count(*) FROM business_units WHERE name = 'Legal'") == 0   # no service in it
    assert store.scalar("SELECT count(*) FROM dependencies") == 1                           # empty sheet: kept

    # A unit still owning a service is kept, and said so; reviews and dependencies are removed.
    reviews = workbook({"plan_reviews": [["plan", "reviewed on"]], "business_units": [["name"], ["Cards"]],
                        "dependencies": [["service", "depends on"], ["Card Authorisation", "Customer Portal"]]})
    preview, _ = imported(store, [("units.xlsx", reviews)], retire_missing=True)
    assert store.scalar("SELECT count(*) FROM business_units WHERE name = 'Payments'") == 1
    assert any("kept: services or units still belong to them" in reason for *_, reason in problems(preview, "warning"))
    assert store.rows("SELECT service_id, depends_on_id FROM dependencies") == [("svc5", "svc9")]
    assert store.scalar("SELECT count(*) FROM plan_reviews") == 3        # an empty sheet removes nothing


def test_retiring_is_chosen_per_sheet(store, store_path, tmp_path, capsys):
    fewer, portal_plan = without_the_portal(store)
    preview, _ = imported(store, [("fewer.xlsx", fewer)], retire_missing={"services"})
    assert preview.tables["services"]["retired"] == 1
    assert preview.tables["plans"]["retired"] == 0 and preview.tables["plans"]["absent"] == 1
    assert preview.tables["business_units"]["retired"] == 0
    assert store.scalar("SELECT lifecycle FROM services WHERE service_id = 'svc9'") == "retired"
    assert store.scalar("SELECT status FROM plans WHERE plan_id = $p", {"p": portal_plan}) != "retired"
    assert store.scalar("SELECT count(*) FROM business_units WHERE name = 'Legal'") == 1
    assert any(sheet == "plans" and "--retire-missing would retire" in reason
               for sheet, *_, reason in problems(preview, "warning"))
    with pytest.raises(WorkbookError, match="No sheet named 'servces'"):
        preview_inventory(store, [("fewer.xlsx", fewer)], retire_missing={"servces"})

    # The command line names the sheets after --retire-missing=.
    store.close()
    (tmp_path / "fewer.xlsx").write_bytes(fewer)
    cli = run_cli(capsys, "inventory", "import", str(tmp_path / "fewer.xlsx"),
                  "--retire-missing=plans,business_units", "--json", "--store", str(store_path))
    assert cli.returncode == 0, cli.stderr
    tables = json.loads(cli.stdout)["tables"]
    assert tables["plans"]["retired"] == 1 and tables["business_units"]["retired"] == 1
    with Store(store_path) as reopened:
        assert reopened.scalar("SELECT status FROM plans WHERE plan_id = $p", {"p": portal_plan}) == "retired"
        assert reopened.scalar("SELECT count(*) FROM business_units WHERE name = 'Legal'") == 0


def test_a_rejected_row_stops_retiring_from_its_sheet(store):
    rows = [["id", "name", "tier"], ["svc1", "Core Ledger", "seven"]]
    preview, result = imported(store, [("bad.xlsx", workbook({"services": rows}))], retire_missing=True)
    assert preview.tables["services"] == {"inserted": 0, "updated": 0, "unchanged": 0, "retired": 0, "rejected": 1,
                                          "absent": 5}
    assert store.scalar("SELECT count(*) FROM services WHERE lifecycle = 'retired'") == 0
    assert result.import_id is None


def test_references_match_by_id_then_name_or_alias_in_any_case_and_spacing(store):
    data = workbook({
        "services": [["id", "name", "RTO (minutes)"], [None, "  core   LEDGER ", 45]],
        "dependencies": [["service", "depends on", "alternative"],
                         ["cbl-prod-01", "CUSTOMER portal", "Yes"],       # an alias, a name
                         ["SVC14", "card authorisation", "no"]],          # an id, a name
        "plans": [["id", "service", "title", "status"], [None, "Expense\u00a0Claims", "BCP", "draft"]],
    })
    preview, _ = imported(store, [("refs.xlsx", data)])
    assert problems(preview) == []
    assert store.scalar("SELECT rto_minutes FROM services WHERE service_id = 'svc1'") == 45
    assert store.rows("SELECT service_id, depends_on_id, has_alternative FROM dependencies ORDER BY ALL") == [
        ("svc1", "svc9", True), ("svc14", "svc5", False), ("svc5", "svc1", None)]
    new_plan = store.rows("SELECT plan_id, service_id, title, status FROM plans WHERE title = 'BCP'")
    assert new_plan == [("plan-svc15", "svc15", "BCP", "draft")]
    # Again, without an id: the same plan is found by its service and title, so nothing changes.
    again, second = imported(store, [("refs.xlsx", data)])
    assert second.import_id is None and again.tables["plans"]["unchanged"] == 1


def test_unknown_units_and_suppliers_are_created_and_reported(store):
    data = workbook({
        "services": [["id", "name", "business unit", "tier", "RTO (hours)", "recovery strategy"],
                     [None, "Treasury Platform", "Treasury", 1, 4, "Hot"]],
        "service_suppliers": [["service", "supplier"], ["Treasury Platform", "Acme Cloud"]],
        "business_units": [["name", "parent", "head"], ["Markets", "Group Functions", "Mo"]],
    })
    preview, _ = imported(store, [("new.xlsx", data)])
    warnings = [(sheet, reason) for sheet, _, _, reason in problems(preview, "warning")]
    assert ("business_units", "not in the store or on the business_units sheet: created") in warnings
    assert ("suppliers", "not in the store or on the suppliers sheet: created") in warnings
    assert store.rows("SELECT s.service_id, u.name, s.tier, s.rto_minutes, s.recovery_strategy, s.lifecycle "
                      "FROM services s JOIN business_units u USING (unit_id) WHERE s.name = 'Treasury Platform'") == [
        ("svc-treasury-platform", "Treasury", 1, 240, "hot", "live")]
    assert store.rows("SELECT u.name, p.name, u.head FROM business_units u JOIN business_units p "
                      "ON p.unit_id = u.parent_unit_id WHERE u.name = 'Markets'") == [
        ("Markets", "Group Functions", "Mo")]
    assert store.rows("SELECT l.service_id, s.name FROM service_suppliers l JOIN suppliers s USING (supplier_id)") == [
        ("svc-treasury-platform", "Acme Cloud")]
    # The new service has its key for the measures at once.
    assert store.scalar("SELECT service_key FROM services WHERE service_id = 'svc-treasury-platform'") is not None


def test_dependency_cycles_are_reported_and_kept(store):
    data = workbook({"dependencies": [["service", "depends on"], ["Core Ledger", "Card Authorisation"],
                                      ["Customer Portal", "Customer Portal"]]})
    preview, _ = imported(store, [("cycles.xlsx", data)])
    cycles = sorted(reason for sheet, _, _, reason in problems(preview, "warning") if "cycle" in reason)
    assert cycles == ["dependency cycle (kept): svc1 -> svc5 -> svc1", "dependency cycle (kept): svc9 -> svc9"]
    assert store.scalar("SELECT count(*) FROM dependencies") == 3


def test_dangling_references_and_bad_cells_are_rejected_with_their_row_and_column(store):
    data = workbook({
        "dependencies": [["service", "depends on"], ["Core Ledger", "Mainframe"], ["Core Ledger", "Customer Portal"]],
        "plan_reviews": [["plan", "reviewed on", "by"], ["no-such-plan", "2026-05-01", "Ann"]],
        "findings": [["drill", "what"], ["no-such-drill", "Runbook out of date"]],
        "drills": [["service", "held on", "type", "outcome", "RTA (minutes)"],
                   ["Core Ledger", "31/05/2026", "tabletop", "passed", None],
                   ["Core Ledger", "2026-05-31", "chaos", "passed", "soon"]],
    })
    before = inventory(store)
    preview, _ = imported(store, [("bad.xlsx", data)])
    assert sorted(problems(preview)) == [
        ("dependencies", 2, "depends on", "no such service in the store or among the accepted rows of the services "
                                          "sheet"),
        ("drills", 2, "held on", "'31/05/2026' is not a date: write YYYY-MM-DD (or format the cell as a date)"),
        ("drills", 3, "RTA (minutes)", "'soon' is not a duration (write minutes, or e.g. 4h, 2 days, 1 week, PT4H)"),
        ("drills", 3, "type", "'chaos' is not one of: walkthrough, tabletop, simulation, parallel, full interruption"),
        ("findings", 2, "drill", "no such drill in the store or among the accepted rows of the drills sheet"),
        ("plan_reviews", 2, "plan", "no such plan in the store or among the accepted rows of the plans sheet"),
    ]
    assert preview.tables["dependencies"]["rejected"] == 1 and preview.tables["dependencies"]["inserted"] == 1
    after = inventory(store)
    assert {t for t in before if before[t] != after[t]} == {"dependencies"}   # the good row, and only it


def test_the_same_files_again_change_nothing(store):
    data, _ = export_bytes(store)
    changed = edited(data, {("services", "E2"): "Someone Else"})
    _, first = imported(store, [("inventory.xlsx", changed)])
    version = store.data_version()
    _, second = imported(store, [("inventory.xlsx", changed)])
    assert first.import_id and second.import_id is None
    assert store.data_version() == version                     # not even a transaction committed
    assert store.scalar("SELECT count(*) FROM inventory_imports") == 1


def test_undo_restores_exactly_and_is_recorded(store):
    drill = store.scalar("SELECT min(drill_id) FROM drills")
    with store.transaction() as cur:      # a drill as older stores carry it: a count, no findings of its own
        cur.execute("DELETE FROM drill_findings WHERE drill_id = $d", {"d": drill})
        cur.execute("UPDATE drills SET open_findings = 3 WHERE drill_id = $d", {"d": drill})
    before = everything_but_records(store)
    data, _ = export_bytes(store)
    changed = edited(data, {("services", "F2"): 1, ("services", "L2"): "CBL-PROD-01; ledger-new"})
    extra = workbook({
        "services": [["name", "business unit", "RTO (minutes)"], ["Brand New", "Brand New Unit", 30]],
        "dependencies": [["service", "depends on"], ["Brand New", "Core Ledger"]],
        "findings": [["drill", "what", "due"], [drill, "Fix DNS", dt.date(2026, 9, 1)]],
    })
    _, result = imported(store, [("inventory.xlsx", changed), ("extra.xlsx", extra)], retire_missing=True)
    assert result.import_id and everything_but_records(store) != before
    assert store.scalar("SELECT recorded_by FROM drill_findings") == MANAGER.name
    # The drill's count of open findings follows the findings written (and undo puts back the 3).
    assert store.scalar("SELECT open_findings FROM drills WHERE drill_id = $d", {"d": drill}) == 1
    log = store.rows("SELECT changed_by, action, subject FROM change_log")
    assert log == [(MANAGER.name, "inventory import", result.import_id)]
    undone = undo_inventory_import(MANAGER, store, result.import_id)
    assert everything_but_records(store) == before           # inventory, service keys, rollup: as they were
    assert undone.restored["services"] >= 2
    assert store.rows("SELECT state, undone_by FROM inventory_imports") == [("undone", MANAGER.name)]
    assert store.scalar("SELECT count(*) FROM inventory_prior_rows") == 0
    assert [row[1] for row in store.rows("SELECT changed_at, action FROM change_log ORDER BY changed_at")] == [
        "inventory import", "inventory undo"]
    with pytest.raises(WorkbookError, match="already undone"):
        undo_inventory_import(MANAGER, store, result.import_id)
    assert list(list_inventory_imports(store)["can_undo"]) == [False]


def test_undo_is_refused_while_a_later_import_stands_or_after_another_change(store):
    _, first = imported(store, [("a.xlsx", workbook({"services": [["id", "owner"], ["svc1", "A"]]}))])
    _, second = imported(store, [("b.xlsx", workbook({"services": [["id", "owner"], ["svc5", "B"]]}))])
    with pytest.raises(WorkbookError, match=f"later import\\(s\\) {second.import_id}"):
        undo_inventory_import(MANAGER, store, first.import_id)
    undo_inventory_import(MANAGER, store, second.import_id)
    administration.edit_service(Actor("admin", "admin"), store, "svc1", {"owner": "Edited since"})
    before = table_contents(store)
    with pytest.raises(WorkbookError, match="rows it wrote have changed since"):
        undo_inventory_import(MANAGER, store, first.import_id)
    assert table_contents(store) == before


def test_a_changed_objective_reaches_the_measures_at_once(store):
    before = dict(store.rows("SELECT service_key, rto_minutes FROM incident_month_rtos"))
    key = store.scalar("SELECT service_key FROM services WHERE service_id = 'svc1'")
    attained = store.scalar("SELECT sum(attained) FROM incident_months WHERE service_key = $k", {"k": key})
    imported(store, [("rto.xlsx", workbook({"services": [["id", "RTO (minutes)"], ["svc1", 5]]}))])
    assert before[key] == 60
    assert dict(store.rows("SELECT service_key, rto_minutes FROM incident_month_rtos"))[key] == 5
    assert store.scalar("SELECT sum(attained) FROM incident_months WHERE service_key = $k", {"k": key}) < attained
    assert verified(store) == []


def verified(store: Store) -> list[dict]:
    with store.read_transaction() as cursor:
        return rollup.differences(cursor)


def test_new_services_and_an_undo_keep_the_derived_data_and_rollup_current(store):
    _, result = imported(store, [("new.xlsx", workbook({"services": [
        ["id", "name", "tier", "RTO (minutes)"], ["svc-new", "Brand New", 2, 30], ["svc1", "Core Ledger", 1, 15]]}))])
    assert store.scalar("SELECT service_key FROM services WHERE service_id = 'svc-new'") is not None
    assert verified(store) == []
    undo_inventory_import(MANAGER, store, result.import_id)
    assert not store.scalar("SELECT count(*) FROM services WHERE service_id = 'svc-new'")
    assert verified(store) == []


def test_incidents_stored_before_their_service_match_it_when_it_is_imported(store):
    org = OrgBuilder(store)
    opened = dt.datetime(2026, 6, 1, 8, 0)
    early = [org.incident(None, opened, service_name="Treasury Gateway", restored_at=opened + dt.timedelta(hours=2)),
             org.incident(None, opened, service_name=" TRSY-GW ", restored_at=opened + dt.timedelta(hours=1))]
    other = org.incident(None, opened, service_name="Nobody Knows")
    kept = org.incident("svc1", opened, service_name="treasury gateway")   # matched already: never moved
    before = everything_but_records(store)
    files = [("new.xlsx", workbook({"services": [["name", "business unit", "tier", "RTO (minutes)", "aliases"],
                                                 ["Treasury Gateway", "Payments", 1, 60, "trsy-gw"]]}))]
    preview = preview_inventory(store, files)
    assert preview.incidents_to_match == 2 and "2 stored incident(s) would match" in preview.as_dict()["message"]
    result = commit_inventory(MANAGER, store, preview)
    assert result.incidents_matched == 2 and "2 stored incident(s) now match" in result.message
    new_id = store.scalar("SELECT service_id FROM services WHERE name = 'Treasury Gateway'")
    assert store.rows("SELECT incident_id, service_id FROM incidents WHERE list_contains($ids, incident_id) "
                      "ORDER BY incident_id", {"ids": [*early, other, kept]}) == sorted(
        [(early[0], new_id), (early[1], new_id), (other, None), (kept, "svc1")])
    assert store.scalar("SELECT count(*) FROM incidents WHERE service_id = $s AND service_key = "
                        "(SELECT service_key FROM services WHERE service_id = $s)", {"s": new_id}) == 2
    assert verified(store) == []                       # the rollup counts them under their service
    undo_inventory_import(MANAGER, store, result.import_id)
    assert everything_but_records(store) == before and verified(store) == []


@pytest.mark.parametrize("role", ["viewer", "analyst", "recovery team"])
def test_only_a_continuity_manager_changes_the_inventory(store, role):
    data = workbook({"services": [["id", "owner"], ["svc1", "Somebody"]]})
    before = table_contents(store)
    preview = preview_inventory(store, [("owners.xlsx", data)])
    with pytest.raises(AccessDenied, match=f"has the {role} role; to change the inventory needs the continuity "
                                           "manager role"):
        commit_inventory(Actor("someone@example.com", role), store, preview)
    assert table_contents(store) == before
    result = commit_inventory(MANAGER, store, preview)
    changed = table_contents(store)
    with pytest.raises(AccessDenied, match="continuity manager"):
        undo_inventory_import(Actor("someone@example.com", role), store, result.import_id)
    assert table_contents(store) == changed


def test_the_command_line_imports_undoes_and_prints_json(store_path, tmp_path, capsys):
    with Store(store_path) as opened:
        data, _ = export_bytes(opened)
    (tmp_path / "inventory.xlsx").write_bytes(edited(data, {("services", "E2"): "CLI Owner"}))

    def cli(*arguments):
        return run_cli(capsys, "inventory", *arguments, "--store", str(store_path))

    dry = cli("import", str(tmp_path / "inventory.xlsx"), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert set(report) >= {"files", "tables", "rejected", "warnings", "problems"}
    assert report["files"][1] == {"file": "inventory.xlsx", "format": "xlsx", "table": "services", "rows": 6,
                                  "reader": "fastexcel"}
    assert set(report["tables"]["services"]) == {"inserted", "updated", "unchanged", "retired", "rejected", "absent"}
    assert report["tables"]["services"]["updated"] == 1 and report["dry_run"]
    done = cli("import", str(tmp_path / "inventory.xlsx"), "--json", "--as", "ci@example.com")
    import_id = json.loads(done.stdout)["import_id"]
    with Store(store_path) as opened:
        assert opened.scalar("SELECT imported_by FROM inventory_imports") == "ci@example.com"
    undone = cli("undo", import_id)
    assert undone.returncode == 0 and "undone" in undone.stdout
    refused = cli("undo", import_id)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr
    template = run_cli(capsys, "inventory", "template", "--to", str(tmp_path / "t.xlsx"))
    assert template.returncode == 0 and (tmp_path / "t.xlsx").read_bytes().startswith(b"PK")
    # A folder of CSV files, exported and imported back: nothing to change.
    assert cli("export", "--to", str(tmp_path / "csv")).returncode == 0
    again = json.loads(cli("import", str(tmp_path / "csv"), "--dry-run", "--json").stdout)
    assert len(again["files"]) == 11 and {f["format"] for f in again["files"]} == {"csv"}
    assert again["changes"] == [] and again["rejected"] == 0


def test_a_commit_plans_again_when_the_store_changed_since_its_preview(store):
    preview = preview_inventory(store, [("owners.xlsx", workbook({"services": [["id", "owner"], ["svc1", "New"]]}))])
    assert preview.plan.changes[["old", "new"]].to_dict("records") == [{"old": "Owner", "new": "New"}]
    administration.edit_service(Actor("admin", "admin"), store, "svc1", {"owner": "Admin"})
    result = commit_inventory(MANAGER, store, preview)
    assert result.plan.changes[["old", "new"]].to_dict("records") == [{"old": "Admin", "new": "New"}]
    undo_inventory_import(MANAGER, store, result.import_id)
    assert store.scalar("SELECT owner FROM services WHERE service_id = 'svc1'") == "Admin"


def test_a_reference_to_a_rejected_row_says_so(store):
    data = workbook({
        "business_units": [["name", "parent"], ["Treasury", None]],
        "suppliers": [["name", "contract end"], ["Acme Cloud", "soon"]],
        "services": [["id", "name", "business unit", "tier"], [None, "Treasury Platform", "Treasury", 9]],
        "service_suppliers": [["service", "supplier"], ["Core Ledger", "Acme Cloud"]],
        "dependencies": [["service", "depends on"], ["Core Ledger", "Treasury Platform"]],
    })
    data = edited(data, {("business_units", "B2"): "Treasury"})      # its own parent
    preview, _ = imported(store, [("refs.xlsx", data)])
    assert sorted(problems(preview)) == [
        ("business_units", 2, "parent", "a unit cannot be its own parent"),
        ("dependencies", 2, "depends on", "no such service in the store or among the accepted rows of the "
                                          "services sheet"),
        ("service_suppliers", 2, "supplier", "no such supplier: its row on the suppliers sheet was rejected"),
        ("services", 2, "tier", "'9' is not a tier (1 to 4)"),
        ("suppliers", 2, "contract end", "'soon' is not a date: write YYYY-MM-DD (or format the cell as a date)"),
    ]
