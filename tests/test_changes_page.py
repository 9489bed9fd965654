"""The Changes page and the Plan staleness page's new state through AppTest: a change export
uploaded, previewed, committed and undone; a plan of the small organisation turning 'changed since
review'; an unmatched CI name mapped to a service."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from itscm.filters import Filters
from itscm.measures.staleness import plan_worklist, staleness_summary
from itscm.store import open_store
from tests.conftest import SMALL_ORG_AS_OF

ROOT = Path(__file__).resolve().parent.parent
AS_OF = SMALL_ORG_AS_OF.isoformat()
# Core Ledger's plan was reviewed ten days before the as-of date (tests/small_org.py); these
# changes were completed five days before it, one to Core Ledger, one to a CI nobody knows.
EXPORT = (b"change_id,title,ci,change_type,state,close_code,work_end\n"
          b"C-1,Ledger failover rework,Core Ledger,emergency,closed,unsuccessful,2026-06-25 22:00\n"
          b"C-2,Switch firmware,sw-core-9,standard,closed,successful,2026-06-25 23:00\n"
          b"C-3,Bad row,Core Ledger,normal,closed,successful,not a date\n")


def open_page(name: str = "Changes.py") -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=60)
    app.query_params["as_of"] = AS_OF
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]


def metric(app, label):
    return next(m.value for m in app.metric if m.label == label)


def frame_with(app, *columns):
    """The first table on the page with these columns (AppTest does not expose a table's key)."""
    return next(frame.value for frame in app.dataframe if set(columns) <= set(frame.value.columns))


def ledger_state(store) -> str:
    worklist = plan_worklist(store, Filters(as_of=SMALL_ORG_AS_OF))
    return worklist.set_index("service").loc["Core Ledger", "state"]


def test_upload_commit_flags_the_plan_and_undo_clears_it(store_path):
    store = open_store(store_path)
    assert ledger_state(store) == "current"
    app = open_page()
    assert metric(app, "Plans changed since review") == "0"
    app.file_uploader(key="changes-file").upload("changes.csv", EXPORT, "text/csv")
    app.run()
    assert_clean(app)
    assert (metric(app, "Changes accepted"), metric(app, "Rows rejected")) == ("2", "1")
    problems = frame_with(app, "row", "column", "severity", "reason")
    assert problems[["row", "column", "reason"]].values.tolist() == [[4, "work_end", "unparseable date"]]
    assert store.scalar("SELECT count(*) FROM changes") == 0            # a preview stores nothing

    app.button(key="changes-commit").click().run()
    assert_clean(app)
    assert any("2 inserted" in s.value for s in app.success), [s.value for s in app.success]
    assert ledger_state(store) == "changed since review"
    assert metric(app, "Plans changed since review") == "1"
    behind = frame_with(app, "reached_through", "emergency")
    assert behind[["service", "number", "emergency", "unsuccessful"]].values.tolist() == [
        ["Core Ledger", "C-1", True, True]]

    app = open_page()
    upload_id = store.scalar("SELECT upload_id FROM change_uploads")
    app.selectbox(key="changes-undo-target").set_value(upload_id)
    app.checkbox(key="changes-undo-confirm").check().run()
    app.button(key="changes-undo-button").click().run()
    assert_clean(app)
    assert store.scalar("SELECT count(*) FROM changes") == 0
    assert ledger_state(store) == "current"


def test_an_unmatched_ci_is_mapped_to_a_service(store_path):
    store = open_store(store_path)
    app = open_page()
    app.file_uploader(key="changes-file").upload("changes.csv", EXPORT, "text/csv")
    app.run()
    app.button(key="changes-commit").click().run()
    app = open_page()
    assert frame_with(app, "ci_name", "sources")["ci_name"].tolist() == ["sw-core-9"]
    portal = store.scalar("SELECT service_id FROM services WHERE name = 'Customer Portal'")
    app.selectbox(key="map-ci-service").set_value("Customer Portal")
    app.button[[b.label for b in app.button].index("Map CI name")].click().run()
    assert_clean(app)
    assert store.scalar("SELECT service_id FROM changes WHERE number = 'C-2'") == portal
    assert store.scalar("SELECT mapped_by FROM change_ci_mappings") == "local user"


def test_plan_staleness_page_shows_the_state_and_the_changes_behind_it(store_path):
    store = open_store(store_path)
    app = open_page()
    app.file_uploader(key="changes-file").upload("changes.csv", EXPORT, "text/csv")
    app.run()
    app.button(key="changes-commit").click().run()

    app = open_page("Plan_staleness.py")
    assert_clean(app)
    summary = staleness_summary(store, Filters(as_of=SMALL_ORG_AS_OF))
    assert metric(app, "Changed") == f"{summary['changed_since_review']:,}" == "1"
    assert metric(app, "Stale plans") == f"{summary['stale_pct']:.1f} %"
    worklist = frame_with(app, "plan_status", "changes_since_review")
    assert worklist.set_index("service").loc["Core Ledger", "state"] == "changed since review"
    behind = frame_with(app, "reached_through", "emergency")
    assert behind["number"].tolist() == ["C-1"]


# Two changes to Core Ledger after its plan's review, and one to Card Authorisation, whose plan is
# reviewed after it: only Core Ledger's plan turns 'changed since review'.
TWO_BEHIND = (b"change_id,title,ci,change_type,state,close_code,work_end\n"
              b"C-1,Ledger failover rework,Core Ledger,emergency,closed,unsuccessful,2026-06-25 22:00\n"
              b"C-4,Ledger patch,Core Ledger,normal,closed,successful,2026-06-26 08:00\n")


def test_the_changes_behind_plans_show_their_first_rows_and_count_them_all(store_path, monkeypatch):
    from itscm.ui import widgets

    store = open_store(store_path)
    app = open_page()
    app.file_uploader(key="changes-file").upload("changes.csv", TWO_BEHIND, "text/csv")
    app.run()
    app.button(key="changes-commit").click().run()
    monkeypatch.setattr(widgets, "TABLE_ROWS", 1)
    app = open_page()
    assert_clean(app)
    assert (metric(app, "Changes behind stale plans"), metric(app, "Emergency"), metric(app, "Unsuccessful")) == (
        "2", "1", "1")
    behind = frame_with(app, "reached_through", "emergency")
    assert behind["number"].tolist() == ["C-4"]   # newest first
    assert any(c.value == "The first 1 of 2 rows, by owner, service and plan, newest first; the CSV has the "
                          "other 1." for c in app.caption)
    assert [b.proto.label for b in app.get("download_button")] == ["Download changes CSV"]

    app = open_page("Plan_staleness.py")
    owner = plan_worklist(store, Filters(as_of=SMALL_ORG_AS_OF)).set_index("service").loc["Core Ledger", "owner"]
    other = next(o for o in app.selectbox(key="worklist-owner").options if o not in ("Everyone", owner))
    app.selectbox(key="worklist-owner").set_value(other).run()
    assert_clean(app)
    assert not any(set(f.value.columns) >= {"reached_through"} for f in app.dataframe)   # not this owner's
    app.selectbox(key="worklist-owner").set_value(owner).run()
    assert_clean(app)
    assert any(c.value.startswith("2 change(s) completed after the last review") for c in app.caption)
