"""The Upload incidents page through AppTest: upload, preview, mapping, commit, undo, mapping names."""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm.store import open_store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "ingest"



def open_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / "Upload_incidents.py"), default_timeout=60).run()


def upload(app: AppTest, name: str) -> AppTest:
    app.file_uploader(key="upload-file").upload(name, (FIXTURES / name).read_bytes(), "text/csv")
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def metric(app, label):
    return next(m.value for m in app.metric if m.label == label)


def test_upload_preview_commit_and_undo(store_path):
    store = open_store(store_path)
    before = store.rows("SELECT * FROM incidents ORDER BY incident_id")

    app = upload(open_page(), "servicenow_list.csv")
    assert_clean(app)
    assert "ServiceNow" in " ".join(m.value for m in app.markdown)
    accepted = int(metric(app, "Incidents accepted").replace(",", ""))
    assert accepted > 0
    assert store.scalar("SELECT count(*) FROM incidents") == len(before)     # nothing stored by a preview

    app.button(key="upload-commit").click().run()
    assert_clean(app)
    assert any("inserted" in s.value.lower() or "committed" in s.value.lower() for s in app.success), \
        [s.value for s in app.success]
    assert store.scalar("SELECT count(*) FROM incidents") == len(before) + accepted
    upload_id = store.scalar("SELECT upload_id FROM uploads")
    assert store.scalar("SELECT uploaded_by FROM uploads") == "local user"

    app = open_page()
    app.selectbox(key="undo-target").set_value(upload_id)
    app.checkbox(key="undo-confirm").check().run()
    app.button(key="undo-button").click().run()
    assert_clean(app)
    assert store.rows("SELECT * FROM incidents ORDER BY incident_id") == before
    assert store.scalar("SELECT state FROM uploads WHERE upload_id = ?", [upload_id]) == "undone"


def test_an_unknown_header_asks_for_a_mapping(store_path):
    app = upload(open_page(), "unknown_header.csv")
    assert_clean(app)
    assert any("matches no known export" in w.value for w in app.warning)
    app.selectbox(key="map-id").set_value("Ticket")
    app.selectbox(key="map-opened").set_value("Raised")
    app.selectbox(key="map-restored").set_value("Service back")
    app.text_input(key="map-save-as").input("Ops tracker")
    app.button[0].click().run()   # the form's submit button
    assert_clean(app)
    assert int(metric(app, "Incidents accepted").replace(",", "")) == 2
    assert open_store(store_path).scalar("SELECT count(*) FROM column_mappings WHERE name = 'Ops tracker'") == 1


@pytest.mark.parametrize("name", ["binary_renamed.csv", "empty.csv", "header_only.csv"])
def test_unreadable_files_get_a_clear_message_and_store_nothing(store_path, name):
    app = upload(open_page(), name)
    assert_clean(app)
    assert app.error and app.error[0].value
    assert open_store(store_path).scalar("SELECT count(*) FROM uploads") == 0


def test_an_unmatched_name_can_be_mapped_to_a_service(store_path):
    store = open_store(store_path)
    app = open_page()
    assert_clean(app)
    ledger = store.scalar("SELECT service_id FROM services WHERE name = 'Core Ledger'")
    app.selectbox(key="map-name-choice").set_value("OLD-MAINFRAME")
    app.selectbox(key="map-service-choice").set_value(ledger)
    app.button[-1].click().run()
    assert_clean(app)
    assert store.scalar("SELECT count(*) FROM incidents WHERE service_name = 'OLD-MAINFRAME' "
                        "AND service_id = ?", [ledger]) == 14


def commit_buttons(app: AppTest) -> list:
    return [button for button in app.button if button.key == "upload-commit"]


def dry_runs(app: AppTest) -> list[str]:
    return [info.value for info in app.info if info.value.startswith("Dry run")]


def test_after_a_commit_the_page_shows_the_outcome_and_offers_no_second_commit(store_path):
    app = upload(open_page(), "servicenow_list.csv")
    assert dry_runs(app) and not commit_buttons(app)[0].disabled
    app.button(key="upload-commit").click().run()
    for _ in range(2):   # and on any later run of the page, while the file and options stay
        assert_clean(app)
        assert len(app.success) == 1, [s.value for s in app.success]
        assert "5 inserted" in app.success[0].value
        assert metric(app, "Incidents accepted") == "5"   # what was read from the file, still shown
        assert not dry_runs(app) and not commit_buttons(app)
        app.run()

    # Other options read the file afresh: a dry run and a commit again (the times move, so the
    # incidents would be updated).
    app.selectbox(key="upload-tz").set_value("Europe/Paris").run()
    assert_clean(app)
    assert "would insert 0, update 5" in dry_runs(app)[0] and not commit_buttons(app)[0].disabled
    assert not app.success
    # Back to the options committed: the store holds the file as it is, so nothing to commit.
    app.selectbox(key="upload-tz").set_value("UTC").run()
    assert_clean(app)
    assert "already imported" in dry_runs(app)[0]
    assert commit_buttons(app)[0].disabled and "already holds this file" in commit_buttons(app)[0].help


def test_an_undone_commit_can_be_committed_again(store_path):
    app = upload(open_page(), "servicenow_list.csv")
    app.button(key="upload-commit").click().run()
    assert not commit_buttons(app)
    upload_id = open_store(store_path).scalar("SELECT upload_id FROM uploads")
    app.selectbox(key="undo-target").set_value(upload_id)
    app.checkbox(key="undo-confirm").check().run()
    app.button(key="undo-button").click().run()
    assert_clean(app)
    # The commit no longer stands: the file is dry-run again and can be committed again.
    assert "would insert 5" in dry_runs(app)[0] and not commit_buttons(app)[0].disabled
    assert not [s for s in app.success if "inserted" in s.value]


def test_an_audit_log_is_summed_up_in_one_note_not_a_warning_per_update(store_path):
    app = upload(open_page(), "servicenow_event_log.csv")
    assert_clean(app)
    assert metric(app, "Incidents accepted") == "3" and metric(app, "Warnings") == "1"
    # The caption's markdown, with the escapes that keep the file's text literal taken out.
    notes = [re.sub(r"\\(.)", r"\1", c.value) for c in app.caption if "audit log" in c.value]
    assert notes == ["An audit log: 3 incidents in 9 updates; the latest update of each is kept (6 earlier updates "
                     "superseded)."]
