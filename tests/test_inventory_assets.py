"""Assets and the services that run on them through the inventory workbook: the assets and
service_assets sheets keep the import's discipline (preview of added, changed, unchanged and
absent rows; row-level problems; a file without a column never erases it; the round trip is exact;
undo restores exactly; absent assets are retired only when asked)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from itscm.store import Store
from itscm.workbook import export_bytes, preview_inventory, undo_inventory_import
from tests.inventory_workbooks import MANAGER, edited, imported, inventory, without_columns, workbook
from tests.store_contents import table_contents

ASSETS_HEADER = ["id", "name", "class", "location", "owner", "supplier", "lifecycle", "last verified", "verified by"]
ASSET_ROWS = [
    ["SRV-001", "ledger-db-01", "database", "DC North", "DBA Team", "Acme Hosting", None, dt.date(2026, 5, 1), "audit"],
    ["SRV-002", "ledger-app-01", "Server", "DC North", "Ops", None, "live", "2026-03-15", "discovery"],
    ["SITE-N", "DC North", "site", None, "Facilities", None, None, None, None],
]
LINKS = [["service", "asset", "relation"], ["Core Ledger", "SRV-001", "runs on"],
         ["core ledger", "ledger-app-01", None], ["Card Authorisation", "site-n", "hosted on"]]


@pytest.fixture
def store(store_path):
    with Store(store_path) as opened:
        yield opened


def asset_book(rows=ASSET_ROWS, links=LINKS) -> bytes:
    sheets = {"assets": [ASSETS_HEADER, *rows]}
    if links is not None:
        sheets["service_assets"] = links
    return workbook(sheets)


def errors(preview) -> list[tuple]:
    frame = preview.problems[preview.problems.severity == "error"]
    return [tuple(None if pd.isna(value) else value for value in problem)
            for problem in zip(frame.sheet, frame.row, frame.column, frame.reason, strict=True)]


def changes(preview) -> list[dict]:
    frame = preview.plan.changes[["sheet", "row_key", "field", "old", "new"]].astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


def test_assets_and_their_services_come_in_with_a_preview(store):
    preview = preview_inventory(store, [("assets.xlsx", asset_book())])
    assert errors(preview) == []
    assert preview.tables["assets"] == {"inserted": 3, "updated": 0, "unchanged": 0, "retired": 0, "rejected": 0,
                                        "absent": 0}
    assert preview.tables["service_assets"]["inserted"] == 3
    assert preview.tables["suppliers"]["inserted"] == 1                # Acme Hosting, named only here
    warnings = preview.problems[preview.problems.severity == "warning"]
    assert list(warnings.value) == ["Acme Hosting"]
    assert store.scalar("SELECT count(*) FROM assets") == 0              # a preview writes nothing
    _, result = imported(store, [("assets.xlsx", asset_book())])
    assert result.import_id
    assert store.rows("SELECT asset_id, name, asset_class, location, owner, lifecycle, last_verified, verified_by "
                      "FROM assets ORDER BY asset_id") == [
        ("SITE-N", "DC North", "site", None, "Facilities", "live", None, None),
        ("SRV-001", "ledger-db-01", "database", "DC North", "DBA Team", "live", dt.date(2026, 5, 1), "audit"),
        ("SRV-002", "ledger-app-01", "server", "DC North", "Ops", "live", dt.date(2026, 3, 15), "discovery"),
    ]
    assert store.scalar("SELECT s.name FROM assets a JOIN suppliers s USING (supplier_id) "
                        "WHERE a.asset_id = 'SRV-001'") == "Acme Hosting"
    # Services by name or alias in any case, assets by id in any case or by name.
    assert store.rows("SELECT service_id, asset_id, relation FROM service_assets ORDER BY 1, 2") == [
        ("svc1", "SRV-001", "runs on"), ("svc1", "SRV-002", None), ("svc5", "SITE-N", "hosted on")]


def test_the_round_trip_is_exact_and_an_edit_is_exactly_that_change(store):
    imported(store, [("assets.xlsx", asset_book())])
    before = inventory(store)
    data, counts = export_bytes(store)
    assert counts["assets"] == 3 and counts["service_assets"] == 3
    preview, result = imported(store, [("inventory.xlsx", data)])
    assert preview.plan.changes.empty and preview.rejected == 0 and result.import_id is None
    assert preview.tables["assets"]["unchanged"] == 3 and preview.tables["service_assets"]["unchanged"] == 3
    assert inventory(store) == before
    # The assets sheet is sorted by id: SITE-N, SRV-001, SRV-002 on rows 2..4; J is "last verified".
    changed = edited(data, {("assets", "J4"): dt.date(2026, 6, 20), ("service_assets", "C3"): "depends on"})
    preview, _ = imported(store, [("inventory.xlsx", changed)])
    assert changes(preview) == [
        {"sheet": "assets", "row_key": "SRV-002", "field": "last verified", "old": "2026-03-15", "new": "2026-06-20"},
        {"sheet": "service_assets", "row_key": "svc1 on SRV-002", "field": "relation", "old": None,
         "new": "depends on"},
    ]
    assert store.scalar("SELECT last_verified FROM assets WHERE asset_id = 'SRV-002'") == dt.date(2026, 6, 20)


def test_a_file_without_a_column_never_erases_it(store):
    imported(store, [("assets.xlsx", asset_book())])
    data, _ = export_bytes(store)
    before = inventory(store)
    partial = without_columns(data, "assets", {"last verified", "verified by", "supplier", "class"})
    preview, result = imported(store, [("partial.xlsx", partial)])
    assert preview.plan.changes.empty and result.import_id is None and inventory(store) == before
    owners = workbook({"assets": [["id", "owner"], ["srv-001", "New DBA"]]})
    preview, _ = imported(store, [("owners.xlsx", owners)])
    assert preview.plan.changes[["row_key", "field", "old", "new"]].to_dict("records") == [
        {"row_key": "SRV-001", "field": "owner", "old": "DBA Team", "new": "New DBA"}]
    assert store.rows("SELECT owner, asset_class, last_verified, verified_by FROM assets WHERE asset_id = 'SRV-001'") \
        == [("New DBA", "database", dt.date(2026, 5, 1), "audit")]


def test_absent_assets_are_retired_and_links_removed_only_when_asked(store):
    imported(store, [("assets.xlsx", asset_book())])
    fewer = asset_book(rows=ASSET_ROWS[:2], links=LINKS[:2])
    preview, _ = imported(store, [("fewer.xlsx", fewer)])
    assert preview.tables["assets"]["absent"] == 1 and preview.tables["assets"]["retired"] == 0
    assert preview.tables["service_assets"]["absent"] == 2
    assert store.scalar("SELECT lifecycle FROM assets WHERE asset_id = 'SITE-N'") == "live"
    assert store.scalar("SELECT count(*) FROM service_assets") == 3
    preview, _ = imported(store, [("fewer.xlsx", fewer)], retire_missing=True)
    assert preview.tables["assets"]["retired"] == 1 and preview.tables["service_assets"]["retired"] == 2
    assert store.scalar("SELECT lifecycle FROM assets WHERE asset_id = 'SITE-N'") == "retired"
    assert store.rows("SELECT service_id, asset_id FROM service_assets") == [("svc1", "SRV-001")]


def test_undo_restores_exactly(store):
    imported(store, [("assets.xlsx", asset_book())])
    before = table_contents(store)
    changed = asset_book(rows=[[*ASSET_ROWS[0][:4], "Someone", *ASSET_ROWS[0][5:]],
                               ["NEW-1", "new box", "server", None, None, "Other Supplier", None, None, None]],
                         links=[LINKS[0], ["Branch Teller", "NEW-1", "runs on"]])
    _, result = imported(store, [("changed.xlsx", changed)], retire_missing=True)
    assert store.scalar("SELECT lifecycle FROM assets WHERE asset_id = 'SITE-N'") == "retired"
    undo_inventory_import(MANAGER, store, result.import_id)
    after = table_contents(store)
    for table in ("assets", "service_assets", "suppliers", "services"):
        assert after[table] == before[table], table


def test_row_problems_name_the_row_the_column_and_the_reason(store):
    rows = [
        ["A-1", "one", "mainframe", None, None, None, None, None, None],         # not a class
        ["A-2", "two", "server", None, None, None, None, "last week", None],     # not a date
        ["A-3", None, "server", None, None, None, None, None, None],             # no name
        ["a-1 ", "one again", "server", None, None, None, None, None, "hearsay"],
        ["A-4", "four", "server", None, None, None, None, None, None],
        ["A-4", "four twice", "server", None, None, None, None, None, None],
    ]
    links = [["service", "asset"], ["Nowhere", "A-4"], ["Core Ledger", "no such box"], ["Core Ledger", "A-4"]]
    preview = preview_inventory(store, [("bad.xlsx", asset_book(rows, links))])
    found = errors(preview)
    assert ("assets", 2, "class", "'mainframe' is not one of: server, database, application, network, cloud "
            "service, site, other") in found
    assert any(problem[:3] == ("assets", 3, "last verified") for problem in found)
    assert ("assets", 4, "name", "an asset needs a name") in found
    assert ("assets", 5, "verified by", "'hearsay' is not one of: audit, discovery, review") in found
    assert ("assets", 7, None, "the same asset as row 6") in found
    assert ("service_assets", 2, "service", "no such service in the store or among the accepted rows of the "
            "services sheet") in found
    assert ("service_assets", 3, "asset", "no such asset in the store or among the accepted rows of the assets "
            "sheet") in found
    assert preview.tables["assets"]["inserted"] == 1 and preview.tables["service_assets"]["inserted"] == 1


def test_an_asset_without_an_id_is_matched_by_name_or_given_one(store):
    imported(store, [("assets.xlsx", asset_book())])
    book = workbook({"assets": [["name", "owner"], ["LEDGER-DB-01", "Renamed Owner"], ["fresh box", "Ops"]]})
    preview, _ = imported(store, [("names.xlsx", book)])
    assert preview.tables["assets"]["inserted"] == 1 and preview.tables["assets"]["updated"] == 1
    assert store.scalar("SELECT owner FROM assets WHERE asset_id = 'SRV-001'") == "Renamed Owner"
    assert store.scalar("SELECT asset_id FROM assets WHERE name = 'fresh box'") == "asset-fresh-box"


def test_a_link_naming_an_asset_by_a_name_two_assets_share_is_refused(store):
    imported(store, [("assets.xlsx", asset_book())])
    rows = [["TWIN-1", "twin box", "server", None, None, None, None, None, None],
            ["TWIN-2", "Twin  Box", "server", None, None, None, None, None, None]]
    links = [["service", "asset"], ["Core Ledger", "twin box"], ["Core Ledger", "ledger-db-01"]]
    preview = preview_inventory(store, [("twins.xlsx", asset_book(rows, links))])
    assert errors(preview) == [("service_assets", 2, "asset", "names several assets; give the asset id")]
    # The other link names a stored asset by its one name: unchanged.
    assert preview.tables["service_assets"]["unchanged"] == 1 and preview.tables["service_assets"]["rejected"] == 1
