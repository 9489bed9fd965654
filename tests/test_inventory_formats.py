"""The files continuity managers already have, recognised from their header row whatever their
name (itscm/workbook/formats.py): each reaches the inventory sheets through the same preview,
commit and undo, shows the format it was read as, and updates only the columns it carries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from itscm.store import Store
from itscm.workbook import preview_inventory, undo_inventory_import
from itscm.workbook.formats import recognise
from tests.inventory_workbooks import MANAGER, imported, workbook

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "inventory"


@pytest.fixture
def store(store_path):
    with Store(store_path) as opened:
        yield opened


def fixture(name: str) -> tuple[str, bytes]:
    return name, (FIXTURES / name).read_bytes()


def services(store: Store) -> dict[str, dict]:
    frame = store.cursor().execute("SELECT * FROM services").df()
    return {row["name"]: row for row in frame.to_dict("records")}


def changes(preview, store: Store) -> set[tuple]:
    names = {row["service_id"]: name for name, row in services(store).items()}
    frame = preview.plan.changes
    return {(names.get(key, key), field, old, new) for key, field, old, new
            in zip(frame.row_key, frame.field, frame.old, frame.new, strict=True)}


def problems(preview, severity: str) -> list[tuple]:
    frame = preview.problems
    frame = frame[frame.severity == severity]
    return list(zip(frame.file, frame.row, frame.column, frame.reason, frame.value, strict=True))


# -- recognition ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    (["name", "busines_criticality", "owned_by", "sys_id"], "servicenow cmdb services"),
    (["name", "business_criticality", "operational_status"], "servicenow cmdb services"),
    (["Name", "Business criticality", "Owned by", "Operational status", "Status", "Used for", "Class"],
     "servicenow cmdb services"),
    (["parent", "type", "child", "sys_id"], "servicenow relationships"),
    (["Parent", "Type", "Child"], "servicenow relationships"),
    (["internal_id", "name", "description", "ref_id", "type", "folder", "disaster_recovery_objectives"],
     "ciso-assistant assets"),
    (["name", "description", "type", "folder", "parent_assets", "business_value", "owner"], "ciso-assistant assets"),
    (["Business Service", "RTO (hours)", "RPO (hours)", "MTD (hours)"], "business impact analysis"),
    (["Process", "Maximum Tolerable Downtime", "Cost per day"], "business impact analysis"),
    (["Application", "u_rto"], "business impact analysis"),
    (["Service name", "Revenue per Hour (EUR)"], "business impact analysis"),
    (["name", "owned_by"], None),                              # one ServiceNow column is not enough
    (["Service", "Owner"], None),                              # a service list without an objective or cost
    (["id", "name", "tier", "RTO (minutes)"], None),           # not a BIA when named after a sheet (below)
])
def test_a_header_row_says_its_format(header, expected):
    named = None
    if header[0] == "id":
        from itscm.workbook.sheets import sheet_named
        named = sheet_named("services")
    found = recognise(header, named)
    assert (found.format if found else None) == expected


# -- ServiceNow CMDB service lists ------------------------------------------------------------------

def test_a_servicenow_service_list_updates_the_services_it_names(store):
    before = services(store)
    preview = preview_inventory(store, [fixture("servicenow_cmdb_ci_service.csv")])
    report = preview.as_dict()
    assert [(f["file"], f["format"], f["table"], f["rows"]) for f in report["files"]] == [
        ("servicenow_cmdb_ci_service.csv", "servicenow cmdb services", "services", 6)]
    assert any("read as a ServiceNow CMDB service list" in note and "sys_id" in note for note in report["notes"])
    assert problems(preview, "error") == []
    found = changes(preview, store)
    # Criticality -> tier, owned_by -> owner, u_rto in ServiceNow's timeframe labels, lifecycle from
    # operational or install status.
    assert ("Branch Teller", "tier", "2", "3") in found
    assert ("Branch Teller", "lifecycle", "live", "retired") in found
    assert ("Branch Teller", "RTO (minutes)", "480", "1440") in found
    assert ("Mortgage Origination", "lifecycle", "live", "retired") in found      # install status Retired
    assert ("Core Ledger", "owner", before["Core Ledger"]["owner"], "Ada Byron") in found
    assert not {change for change in found if change[0] == "Expense Claims" and change[1] == "RTO (minutes)"}
    assert not {change for change in found if change[0] == "Core Ledger" and change[1] in ("tier", "lifecycle")}
    assert preview.tables["services"]["inserted"] == 1                           # Payroll Gateway
    warnings = problems(preview, "warning")
    used_for = [(row, value) for _, row, column, reason, value in warnings if column == "used_for"]
    assert used_for == [(5, "Test"), (6, "Disaster recovery")]
    assert any(column == "u_rto_justification" for _, _, column, _, _ in warnings)

    result = MANAGER and imported(store, [fixture("servicenow_cmdb_ci_service.csv")])[1]
    after = services(store)
    assert after["Payroll Gateway"]["rto_minutes"] == 2880                       # "1-2 Days": the upper bound
    assert after["Payroll Gateway"]["tier"] == 2 and after["Payroll Gateway"]["lifecycle"] == "live"
    assert after["Expense Claims"]["lifecycle"] == "live"                         # Non-Operational is not retired
    assert after["Expense Claims"]["rto_minutes"] == before["Expense Claims"]["rto_minutes"]
    undo_inventory_import(MANAGER, store, result.import_id)
    assert services(store).keys() == before.keys()


@pytest.mark.parametrize(("operational", "install", "lifecycle"), [
    ("Operational", "Installed", "live"),
    ("Non-Operational", "Installed", "live"),
    ("Retired", "Installed", "retired"),
    ("Operational", "Retired", "retired"),
    ("6", "1", "retired"),          # the stored values, when exported without display values
    ("1", "7", "retired"),
    ("1", "1", "live"),
    ("DR Standby", "", "live"),
])
def test_servicenow_statuses_say_whether_a_service_is_retired(store, operational, install, lifecycle):
    data = workbook({"Page 1": [["Name", "Business criticality", "Owned by", "Operational status", "Status",
                                 "Used for", "Class"],
                                ["Customer Portal", "2 - somewhat critical", "Grace Hopper", operational, install,
                                 "Production", "Business Service"]]})
    imported(store, [("cmdb_ci_service_business.xlsx", data)])
    assert services(store)["Customer Portal"]["lifecycle"] == lifecycle


def test_an_unknown_servicenow_status_is_refused_with_its_place(store):
    data = workbook({"Page 1": [["Name", "Business criticality", "Operational status", "Used for"],
                                ["Customer Portal", "2 - somewhat critical", "Sleeping", "Production"]]})
    preview = preview_inventory(store, [("export.xlsx", data)])
    assert [(file, row, reason) for file, row, _, reason, _ in problems(preview, "error")] == [
        ("export.xlsx", 2, "'Sleeping' is not one of: live, retired")]


def test_a_servicenow_list_without_rto_never_erases_the_bias_rtos(store):
    bia = b"Business Service,RTO (hours),RPO (hours),MTD (hours)\nCustomer Portal,8,1,24\n"
    imported(store, [("bia.csv", bia)])
    assert services(store)["Customer Portal"]["rto_minutes"] == 480
    cmdb = (b'"name","busines_criticality","owned_by","sys_id"\n'
            b'"Customer Portal","1 - most critical","Grace Hopper","abc"\n')
    preview, _ = imported(store, [("cmdb_ci_service.csv", cmdb)])
    assert preview.as_dict()["files"][0]["format"] == "servicenow cmdb services"
    after = services(store)["Customer Portal"]
    assert (after["tier"], after["rto_minutes"], after["rpo_minutes"], after["mtpd_minutes"]) == (1, 480, 60, 1440)


# -- ServiceNow relationships --------------------------------------------------------------------

def dependencies(store: Store) -> set[tuple[str, str]]:
    return set(store.cursor().execute("""
        SELECT s.name, t.name FROM dependencies d JOIN services s ON s.service_id = d.service_id
        JOIN services t ON t.service_id = d.depends_on_id""").fetchall())


def test_servicenow_relationships_keep_the_dependencies_between_services(store):
    before = dependencies(store)
    preview = preview_inventory(store, [fixture("servicenow_cmdb_rel_ci.csv")])
    # Runs on and Hosted on say what a service runs on: service_assets rows (tests below).
    assert [(f["format"], f["table"], f["rows"]) for f in preview.as_dict()["files"]] == [
        ("servicenow relationships", "dependencies", 3), ("servicenow relationships", "service_assets", 2)]
    warnings = [(row, reason.split(" not imported")[0], value) for _, row, column, reason, value
                in problems(preview, "warning") if column == "type"]
    assert warnings == [
        (6, "1 relationship(s) of type 'Contains::Contained by'", "Contains::Contained by"),
        (7, "1 relationship(s) of type 'Sends data to::Receives data from'", "Sends data to::Receives data from"),
    ]
    # A dependency on something that is no service is refused with its place, like any other; so
    # is a service running on an asset known neither in the store nor in the files.
    errors = preview.problems[preview.problems.severity == "error"]
    assert list(zip(errors.sheet, errors.row, errors.column, strict=True)) == [
        ("dependencies", 8, "child"), ("service_assets", 4, "child"), ("service_assets", 5, "child")]
    imported(store, [fixture("servicenow_cmdb_rel_ci.csv")])
    # Depends on::Used by and Uses::Used by: the parent depends on the child.
    assert dependencies(store) == before | {("Customer Portal", "Core Ledger"), ("Mortgage Origination", "Core Ledger")}


# -- business impact analyses ------------------------------------------------------------------------

def test_a_bia_spreadsheet_sets_objectives_and_impact_from_the_names_people_use(store):
    preview = preview_inventory(store, [fixture("bia_spreadsheet.csv")])
    assert preview.as_dict()["files"][0]["format"] == "business impact analysis"
    assert [(row, column) for _, row, column, _, _ in problems(preview, "error")] == [(7, "RTO (hours)")]
    assert any(column == "Notes" for _, _, column, _, _ in problems(preview, "warning"))
    found = changes(preview, store)
    # Every parse is shown old -> new before anything is written.
    assert ("Branch Teller", "RTO (minutes)", "480", "1440") in found
    assert ("Core Ledger", "impact cost per hour", "50000.0", "20000.0") in found
    imported(store, [fixture("bia_spreadsheet.csv")])
    after = services(store)
    objectives = {name: (row["tier"], row["owner"], row["rto_minutes"], row["rpo_minutes"], row["mtpd_minutes"],
                         row["impact_cost_per_hour"]) for name, row in after.items()}
    assert objectives["Core Ledger"] == (1, "Byron, Ada", 60, 15, 240, 20_000.0)      # per day / 24
    assert objectives["Customer Portal"] == (2, "Grace Hopper", 480, 60, 10080, 5_000.0)
    assert objectives["Branch Teller"] == (3, "Linus Lee", 1440, 0, 20160, 100.0)
    assert objectives["Mortgage Origination"] == (1, "Kim Poe", 120, 30, 2880, 2_000.0)
    assert objectives["Treasury Dealing"] == (1, "Jo Quant", 30, 5, 240, 100_000.0)


SERVICE_HEADERS = ("Service", "Business Service", "Application", "Process", "Service name")


@pytest.mark.parametrize(("header", "cell", "field", "value"), [
    ("RTO (hours)", "4", "rto_minutes", 240),
    ("RTO (h)", "4", "rto_minutes", 240),
    ("RTO (days)", "1", "rto_minutes", 1440),
    ("RTO (minutes)", "90", "rto_minutes", 90),
    ("Recovery Time Objective", "4 hours", "rto_minutes", 240),
    ("u_rto", "4 Hours", "rto_minutes", 240),
    ("RTO", "PT4H", "rto_minutes", 240),
    ("RPO", "Immediately", "rpo_minutes", 0),
    ("Recovery Point Objective (hours)", "0.5", "rpo_minutes", 30),
    ("MTD", "1 Week", "mtpd_minutes", 10080),
    ("MTO", "2 weeks", "mtpd_minutes", 20160),
    ("MAO (days)", "3", "mtpd_minutes", 4320),
    ("Maximum Tolerable Downtime", "1-2 Days", "mtpd_minutes", 2880),
    ("Revenue per Hour", "12,000", "impact_cost_per_hour", 12_000.0),
    ("Impact per hour (EUR)", "€ 500", "impact_cost_per_hour", 500.0),
    ("Cost per day", "24000", "impact_cost_per_hour", 1_000.0),
    ("Financial impact per day", "48,000", "impact_cost_per_hour", 2_000.0),
])
def test_bia_columns_under_the_names_people_use(store, header, cell, field, value):
    name_header = SERVICE_HEADERS[len(header) % len(SERVICE_HEADERS)]   # each name header in turn
    data = f'{name_header},"{header}"\nCustomer Portal,"{cell}"\n'.encode()
    preview, _ = imported(store, [("Sheet1.csv", data)])
    assert preview.as_dict()["files"][0]["format"] == "business impact analysis"
    assert services(store)["Customer Portal"][field] == value


def test_a_bia_workbook_is_recognised_whatever_its_tab_is_called(store):
    data = workbook({"BIA 2026": [["Process", "Criticality", "MTD (hours)", "RTO (hours)"],
                                  ["Customer Portal", "Tier 1", 12, 6]],
                     "Scoring scale": [["Impact", "Meaning"], ["5", "Severe"]]})
    preview, _ = imported(store, [("bia.xlsx", data)])
    assert [(f["format"], f["rows"]) for f in preview.as_dict()["files"]] == [("business impact analysis", 1)]
    assert any("'Scoring scale'" in reason for *_, reason, _ in problems(preview, "warning"))
    after = services(store)["Customer Portal"]
    assert (after["tier"], after["rto_minutes"], after["mtpd_minutes"]) == (1, 360, 720)


# -- ciso-assistant assets -----------------------------------------------------------------------

def test_ciso_assistant_primary_assets_are_services_with_their_objectives(store):
    preview = preview_inventory(store, [fixture("ciso_assistant_assets.csv")])
    assert [(f["format"], f["table"], f["rows"]) for f in preview.as_dict()["files"]] == [
        ("ciso-assistant assets", "services", 4)]
    warnings = problems(preview, "warning")
    assert [(row, value) for _, row, column, reason, value in warnings if column == "type"] == [(5, "SP")]
    assert any("2 supporting asset(s)" in reason and "5, 6" in reason for *_, reason, _ in warnings)
    assert [(row, column, reason) for _, row, column, reason, _ in problems(preview, "error")] == [
        (7, "disaster_recovery_objectives (rpo)", "30s is not a whole number of minutes (0.5 minutes)")]
    before = dependencies(store)
    imported(store, [fixture("ciso_assistant_assets.csv")])
    after = services(store)
    assert (after["Core Ledger"]["rto_minutes"], after["Core Ledger"]["rpo_minutes"],
            after["Core Ledger"]["mtpd_minutes"], after["Core Ledger"]["owner"]) == (60, 5, 240, "Ada Byron")
    assert (after["Customer Portal"]["rto_minutes"], after["Customer Portal"]["mtpd_minutes"]) == (480, 2880)
    assert (after["Payments API"]["rto_minutes"], after["Payments API"]["rpo_minutes"]) == (150, 15)
    assert "ledger-db-01" not in after and "AWS eu-west-1" not in after
    assert dependencies(store) == before                       # parent_assets relate assets to services


def test_ciso_assistant_objectives_stored_as_json_are_seconds(store):
    data = (b'name;type;disaster_recovery_objectives\n'
            b'Customer Portal;PR;"{""objectives"": {""rto"": {""value"": 14400}, ""rpo"": {""value"": 900}}}"\n'
            )
    imported(store, [("assets.csv", data)])
    after = services(store)["Customer Portal"]
    assert (after["rto_minutes"], after["rpo_minutes"]) == (240, 15)


# -- the Inventory page ----------------------------------------------------------------------------

def test_the_inventory_page_says_which_format_each_file_was_read_as(store_path):
    from tests.test_inventory_page import assert_clean, open_page, upload

    app = upload(open_page(), dict([fixture("servicenow_cmdb_ci_service.csv"), fixture("bia_spreadsheet.csv")]))
    assert_clean(app)
    # The preview's notes, one caption per file (markdown escaped by the page).
    captions = [caption.value.replace("\\", "") for caption in app.caption]
    assert any(caption.startswith("servicenow_cmdb_ci_service.csv: read as a ServiceNow CMDB service list; "
                                  "columns not imported: sys_class_name, sys_id, support_group")
               for caption in captions), captions
    assert "bia_spreadsheet.csv: read as a business impact analysis." in captions


# -- assets: Snipe-IT, ServiceNow CI lists, relationships to assets ---------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    (["Asset Name", "Asset Tag", "Model", "Category", "Status", "Last Audit"], "snipe-it assets"),
    (["Asset Tag", "Location", "Next Audit Date"], "snipe-it assets"),
    (["name", "sys_class_name", "install_status", "last_discovered"], "servicenow cmdb cis"),
    (["Name", "Class", "Status", "Operational status", "Most recent discovery", "Owned by"], "servicenow cmdb cis"),
    (["name", "sys_class_name", "ip_address"], "servicenow cmdb cis"),
    (["name", "sys_class_name", "busines_criticality"], "servicenow cmdb services"),   # no CI-only column
    (["Asset Tag"], None),
])
def test_an_asset_export_header_says_its_format(header, expected):
    found = recognise(header, None)
    assert (found.format if found else None) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("Servers", "server"), ("Database Servers", "database"), ("Firewalls", "network"), ("Laptops", "other"),
    ("cmdb_ci_linux_server", "server"), ("cmdb_ci_db_instance", "database"), ("cmdb_ci_appl", "application"),
    ("cmdb_ci_ip_router", "network"), ("cmdb_ci_cloud_service_account", "cloud service"),
    ("cmdb_ci_datacenter", "site"), ("MSFT SQL Instance", "database"), ("Data Center", "site"),
    ("Application", "application"), ("Load Balancer", "network"), ("Windows Server", "server"),
])
def test_a_category_or_ci_class_says_the_asset_class(raw, expected):
    from itscm.workbook.formats import asset_class
    assert asset_class(raw) == expected


def assets(store: Store) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in store.rows(
        "SELECT a.asset_id, a.name, a.asset_class, a.class_raw, a.location, a.lifecycle, a.status_raw, "
        "a.last_verified, a.verified_by, s.name FROM assets a LEFT JOIN suppliers s USING (supplier_id)")}


def test_a_snipe_it_asset_report_fills_the_assets_with_their_audits(store):
    preview = preview_inventory(store, [fixture("snipe_it_assets.csv")])
    assert [(f["format"], f["table"], f["rows"]) for f in preview.as_dict()["files"]] == [
        ("snipe-it assets", "assets", 6)]
    assert problems(preview, "error") == []
    assert preview.tables["assets"]["inserted"] == 6
    assert "Next Audit Date" in " ".join(preview.read.notes)             # known, deliberately not imported
    imported(store, [fixture("snipe_it_assets.csv")])
    found = assets(store)
    assert found["SRV-0001"] == ("ledger-app-01", "server", "Servers", "London DC1", "live",
                                 "Ready to Deploy (deployed)", dt.date(2026, 5, 2), "audit", "Acme Hosting")
    assert found["SRV-0002"][:3] == ("SRV-0002", "database", "Database Servers")   # no name: known by its tag
    assert found["NET-0007"][1] == "network" and found["NET-0007"][6:] == (None, None, "Dell Direct")
    assert found["SRV-0099"][4:6] == ("retired", "Archived (archived)")
    assert found["SRV-0100"][1] == "other" and found["SRV-0100"][4] == "live"      # broken, but it exists
    assert found["SRV-0101"][4:6] == ("live", "Pending (pending)")
    # The same report again changes nothing.
    again = preview_inventory(store, [fixture("snipe_it_assets.csv")])
    assert again.plan.writes == 0


def test_a_servicenow_ci_list_fills_the_assets_with_their_discovery(store):
    preview = preview_inventory(store, [fixture("servicenow_cmdb_ci.csv")])
    assert [(f["format"], f["table"], f["rows"]) for f in preview.as_dict()["files"]] == [
        ("servicenow cmdb cis", "assets", 7)]
    assert problems(preview, "error") == []
    imported(store, [fixture("servicenow_cmdb_ci.csv")])
    found = {row[0]: row[1:] for row in assets(store).values()}        # by name: the CIs carry no tag but one
    assert found["lnx-web-01"] == ("server", "Linux Server", "London DC1", "live", "Installed",
                                   dt.date(2026, 6, 20), "discovery", None)
    assert found["ledger-db-01"][0] == "database" and found["AWS eu-west-1"][0] == "cloud service"
    assert found["AWS eu-west-1"][5:7] == (None, None)                  # never discovered: not verified
    assert found["Core Banking App"][0] == "application" and found["London DC1"][0] == "site"
    assert found["old-db-02"][3] == "retired"
    assert store.scalar("SELECT asset_id FROM assets WHERE name = 'core-sw-01'") == "P100234"
    assert store.scalar("SELECT asset_id FROM assets WHERE name = 'lnx-web-01'") == "asset-lnx-web-01"
    assert store.scalar("SELECT owner FROM assets WHERE name = 'Core Banking App'") == "App Team, Payments"


def test_a_servicenow_ci_list_with_labels_as_xlsx_reads_the_same(store):
    book = workbook({"Page 1": [
        ["Name", "Class", "Status", "Operational status", "Location", "Owned by", "Most recent discovery"],
        ["lnx-web-01", "Linux Server", "Installed", "Operational", "London DC1", "Jane Ops", "2026-06-20 03:12:45"],
        ["old-db-02", "Oracle Instance", "Retired", "Retired", "London DC1", "DBA Team", dt.datetime(2025, 1, 10, 2)],
    ]})
    preview, _ = imported(store, [("cmdb_ci_list.xlsx", book)])
    assert [(f["format"], f["table"]) for f in preview.as_dict()["files"]] == [("servicenow cmdb cis", "assets")]
    assert problems(preview, "error") == []
    found = {row[0]: row[1:] for row in assets(store).values()}
    assert found["lnx-web-01"][5:7] == (dt.date(2026, 6, 20), "discovery")
    assert found["old-db-02"][:4] == ("database", "Oracle Instance", "London DC1", "retired")


def test_relationships_to_cis_say_which_assets_a_service_runs_on(store):
    files = [fixture("servicenow_cmdb_ci.csv"), fixture("servicenow_cmdb_rel_ci_assets.csv")]
    preview = preview_inventory(store, files)
    assert [(f["format"], f["table"], f["rows"]) for f in preview.as_dict()["files"]] == [
        ("servicenow cmdb cis", "assets", 7), ("servicenow relationships", "dependencies", 2),
        ("servicenow relationships", "service_assets", 3)]
    # A CI running on a CI is no service's: refused with its place; Contains is not imported.
    assert [(row, column) for _, row, column, _, _ in problems(preview, "error")] == [(3, "parent")]
    assert [row for _, row, column, _, _ in problems(preview, "warning") if column == "type"] == [7]
    imported(store, files)
    assert store.rows("""SELECT s.name, a.name, l.relation FROM service_assets l
                         JOIN services s USING (service_id) JOIN assets a USING (asset_id) ORDER BY 1, 2""") == [
        ("Card Authorisation", "AWS eu-west-1", "hosted on"), ("Core Ledger", "Core Banking App", "runs on"),
        ("Core Ledger", "ledger-db-01", "depends on")]
    # "Depends on::Used by" to a service stays a dependency between services.
    assert ("Card Authorisation", "Core Ledger") in dependencies(store)
