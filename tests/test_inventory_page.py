"""The Inventory page through AppTest: the preview of uploaded workbooks (counts, changes, rejected
rows with their row, column and reason), commit as a continuity manager, no Commit for a viewer,
undo from the history, a hostile file refused in one line."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from itscm.store import open_store
from tests.inventory_workbooks import workbook
from tests.test_access import AUTH

ROOT = Path(__file__).resolve().parent.parent
SERVICE_HEADER = ["id", "name", "business unit", "tier", "owner", "RTO (minutes)"]
# One change (Core Ledger's owner), one new service, and a row whose tier is refused.
SERVICES = workbook({"services": [
    SERVICE_HEADER,
    [None, "Core Ledger", "Payments", 1, "New Owner", 60],
    [None, "Fraud Scoring", "Payments", 2, "Risk Team", 120],
    [None, "Broken Row", "Payments", "seven", "Nobody", 60],
]})


def open_page(**signed_in) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / "Inventory.py"), default_timeout=60)
    if signed_in:
        app.secrets["auth"] = AUTH
        app.user = {"is_logged_in": True, "email": signed_in["email"], "name": "Someone"}
    return app.run()


def upload(app: AppTest, files: dict[str, bytes]) -> AppTest:
    uploader = app.get("file_uploader")[0]
    for name, data in files.items():
        uploader.upload(name, data, "application/octet-stream")
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def table(app: AppTest, column: str):
    """The first table with this column (AppTest keeps no key for a table without selection)."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def owner_of(store_path, name: str) -> str:
    # open_store gives the handle the page uses (one per process): read through it, never close it.
    return open_store(store_path).scalar("SELECT owner FROM services WHERE name = $n", {"n": name})


def services_count(store_path) -> int:
    return open_store(store_path).scalar("SELECT count(*) FROM services")


def test_the_preview_shows_counts_changes_and_rejected_rows_and_writes_nothing(store_path):
    before = services_count(store_path)
    app = upload(open_page(), {"services.xlsx": SERVICES})
    assert_clean(app)
    assert (metric(app, "Added"), metric(app, "Changed"), metric(app, "Rejected")) == ("1", "1", "1")
    counts = table(app, "Added").set_index("Sheet")
    assert counts.loc["services", ["Added", "Changed", "Rejected"]].tolist() == [1, 1, 1]
    changes = table(app, "field")
    assert changes[["field", "new"]].values.tolist() == [["owner", "New Owner"]]
    rejected = table(app, "reason")
    row = rejected.iloc[0]
    assert (row["file"], row["sheet"], row["row"], row["column"]) == ("services.xlsx", "services", 4, "tier")
    assert row["reason"]
    assert app.button(key="inventory-commit").label == "Commit 2 row(s)"
    assert services_count(store_path) == before                        # a preview writes nothing


def test_commit_as_continuity_manager_writes_and_leaves_no_commit_button(store_path):
    before = services_count(store_path)
    app = upload(open_page(), {"services.xlsx": SERVICES})
    app.button(key="inventory-commit").click().run()
    assert_clean(app)
    said = [s.value.replace("\\", "") for s in app.success]   # shown through ui.plain: escaped markdown
    assert any("1 row(s) were added, 1 changed" in message for message in said), said
    assert not [b for b in app.button if b.key == "inventory-commit"]   # the preview and its button are gone
    assert not app.get("file_uploader")[0].value
    assert owner_of(store_path, "Core Ledger") == "New Owner"
    assert services_count(store_path) == before + 1
    assert open_store(store_path).scalar("SELECT imported_by FROM inventory_imports") == "local user"


def test_a_viewer_sees_the_preview_but_no_commit(store_path):
    app = upload(open_page(email="vic@example.com"), {"services.xlsx": SERVICES})
    assert_clean(app)
    assert metric(app, "Changed") == "1"
    assert not [b for b in app.button if b.key == "inventory-commit"]
    assert any("commit an inventory import you need the continuity manager role" in c.value for c in app.caption)


def test_undo_from_the_history_restores(store_path):
    before = services_count(store_path)
    app = upload(open_page(), {"services.xlsx": SERVICES})
    app.button(key="inventory-commit").click().run()
    assert owner_of(store_path, "Core Ledger") == "New Owner"

    app = open_page()
    history = table(app, "import_id")
    assert history["state"].tolist() == ["committed"]
    app.checkbox(key="inventory-undo-confirm").check().run()
    app.button(key="inventory-undo").click().run()
    assert_clean(app)
    assert any("undone" in s.value for s in app.success)
    assert owner_of(store_path, "Core Ledger") != "New Owner"
    assert services_count(store_path) == before
    assert table(app, "import_id")["state"].tolist() == ["undone"]


def test_a_hostile_file_gets_its_one_line_error_and_nothing_is_written(store_path):
    app = upload(open_page(), {"services.xlsx": b"not a zip at all, only text pretending to be a workbook"})
    assert_clean(app)
    assert len(app.error) == 1 and app.error[0].value
    assert not [b for b in app.button if b.key == "inventory-commit"]
    assert open_store(store_path).scalar("SELECT count(*) FROM inventory_imports") == 0


def test_retiring_absent_rows_is_off_by_default_and_per_sheet(store_path):
    app = upload(open_page(), {"services.xlsx": workbook({"services": [SERVICE_HEADER,
                                                                       [None, "Core Ledger", "Payments", 1,
                                                                        "New Owner", 60]]})})
    assert_clean(app)
    retire = app.checkbox(key="retire-services")
    assert retire.value is False
    retire.check().run()
    assert_clean(app)
    assert int(metric(app, "Absent from the files")) > 0
    counts = table(app, "Added").set_index("Sheet")
    assert counts.loc["services", "Retired or removed"] == counts.loc["services", "Absent from the files"]
