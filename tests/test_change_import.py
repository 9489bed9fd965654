"""The change import (itscm/changes): formats recognised by their header, the preview's row-level
problems, one commit, idempotent re-import, exact undo, CI names mapped to a service or an asset,
and the command line. Fixtures and their sources: tests/fixtures/changes/README.md."""

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from itscm import administration
from itscm.access import Actor
from itscm.changes import (
    commit_changes,
    diff_changes,
    list_change_uploads,
    map_change_ci,
    read_changes,
    undo_change_upload,
    unmatched_change_cis,
)
from itscm.changes.formats import change_state, change_type, close_code
from itscm.cli import main
from itscm.filters import Filters
from itscm.ingest import IngestError
from itscm.measures.staleness import plan_worklist
from tests import backends
from tests.builders import OrgBuilder
from tests.change_builders import asset, runs_on

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "changes"
TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "templates" / "changes_template.csv"
NOW = dt.datetime(2025, 9, 1, 12)
ANA = Actor("ana@example.com", "analyst")


@pytest.fixture
def org():
    builder = OrgBuilder()
    unit = builder.unit("Payments")
    builder.ledger = builder.service(unit, name="Core Ledger", tier=2)
    builder.auth = builder.service(unit, name="Card Authorisation", tier=2)
    builder.portal = builder.service(unit, name="Customer Portal", tier=2)
    builder.ledger_db = asset(builder, "Ledger database", asset_id="ledger-db-01", asset_class="database")
    runs_on(builder, builder.ledger, builder.ledger_db)
    return builder


def read(org, name, data=None, **options):
    data = data if data is not None else (FIXTURES / name).read_bytes()
    return read_changes(data, name, store=org.store, now=NOW, **options)


def by_number(preview):
    return preview.accepted.to_pandas().set_index("number")


def test_servicenow_field_names_with_display_values(org):
    preview = read(org, "servicenow_change_request.csv")
    assert (preview.format, preview.rows_read, preview.changes, preview.rejected) == ("servicenow", 8, 6, 2)
    changes = by_number(preview)
    assert changes.loc["CHG0030001", ["source", "asset_id", "change_type", "state", "close_code"]].tolist() == [
        "servicenow", "ledger-db-01", "normal", "closed", "successful"]
    # completion: the actual end of work, not the close
    assert changes.loc["CHG0030001", "completed_at"] == dt.datetime(2025, 7, 5, 22, 40)
    emergency = changes.loc["CHG0030002"]
    assert (emergency["service_id"], emergency["change_type"], emergency["state"], emergency["close_code"]) == (
        org.auth, "emergency", "implemented", "successful with issues")
    assert emergency["state_raw"] == "Review"
    cancelled = changes.loc["CHG0030003"]
    assert cancelled["state"] == "cancelled" and pd.isna(cancelled["completed_at"])
    assert changes.loc["CHG0030004", "state"] == "in progress"
    # no cmdb_ci: the business service is the CI
    assert changes.loc["CHG0030005", ["ci_name", "service_id", "close_code"]].tolist() == [
        "Core Ledger", org.ledger, "unsuccessful"]
    custom = changes.loc["CHG0030006"]
    assert custom["state_raw"] == "Awaiting Vendor" and pd.isna(custom["state"]) and pd.isna(custom["completed_at"])


def test_servicenow_problems_name_row_column_and_reason(org):
    problems = read(org, "servicenow_change_request.csv").problems
    assert problems[["row", "column", "severity", "reason"]].values.tolist() == [
        [7, "state", "warning", "state not recognised: kept as written; the change does not count as completed"],
        [8, "work_end", "error", "unparseable date"],
        [9, "number", "error", "missing change number"],
    ]
    assert problems["value"].tolist()[:2] == ["Awaiting Vendor", "2025-13-45 10:00:00"]


def test_unmatched_ci_names_are_listed(org):
    preview = read(org, "servicenow_change_request.csv")
    assert preview.unmatched_cis().values.tolist() == [["fw-edge-02", 1], ["san-array-3", 1]]


def servicenow_xlsx(rows) -> bytes:
    """A ServiceNow list exported to Excel: the column labels as the header, dates as Excel dates."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Page 1"
    sheet.append(["Number", "Short description", "Configuration item", "Type", "State", "Close code",
                  "Planned start date", "Planned end date", "Actual end", "Closed"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_servicenow_xlsx_with_labels(org):
    data = servicenow_xlsx([
        ["CHG0040001", "Ledger DB patch", "ledger-db-01", "Normal", "Closed", "Successful",
         dt.datetime(2025, 7, 5, 20), dt.datetime(2025, 7, 5, 23), dt.datetime(2025, 7, 5, 22, 40),
         dt.datetime(2025, 7, 7, 9)],
        [None] * 10,                                  # an empty row in the sheet: skipped
        ["CHG0040002", "Auth change", "Card Authorisation", "Emergency", "Review", "Successful with issues",
         dt.datetime(2025, 7, 12, 2), dt.datetime(2025, 7, 12, 3), None, None],
        ["CHG0040003", "Bad date", "Customer Portal", "Normal", "Closed", "Successful",
         "not a date", None, None, None],
    ])
    preview = read(org, "changes.xlsx", data)
    assert preview.format == "servicenow-labels"
    changes = by_number(preview)
    assert changes.loc["CHG0040001", ["asset_id", "state", "completed_at"]].tolist() == [
        "ledger-db-01", "closed", dt.datetime(2025, 7, 5, 22, 40)]
    # no actual end: the planned end is the completion
    assert changes.loc["CHG0040002", "completed_at"] == dt.datetime(2025, 7, 12, 3)
    assert preview.problems[["row", "column", "reason"]].values.tolist() == [
        [5, "Planned start date", "unparseable date"]]   # the sheet's own row number


def test_servicenow_stored_values(org):
    csv = (b"number,cmdb_ci,type,state,close_code,start_date,end_date,work_end,closed_at\n"
           b"CHG1,Core Ledger,emergency,3,successful_issues,2025-07-01 10:00,2025-07-01 11:00,,\n"
           b"CHG2,Core Ledger,normal,4,,2025-07-01 10:00,2025-07-01 11:00,,\n"
           b"CHG3,Core Ledger,standard,-1,,2025-07-01 10:00,2025-07-01 11:00,,\n")
    changes = by_number(read(org, "values.csv", csv))
    assert changes[["change_type", "state", "close_code"]].fillna("-").values.tolist() == [
        ["emergency", "closed", "successful with issues"], ["normal", "cancelled", "-"],
        ["standard", "in progress", "-"]]


@pytest.mark.parametrize(("raw", "state"), [
    ("New", "planned"), ("Scheduled", "planned"), ("-5", "planned"), ("Implement", "in progress"),
    ("Review", "implemented"), ("0", "implemented"), ("Closed", "closed"), ("Canceled", "cancelled"),
    ("Awaiting implementation", "planned"), ("Implementing", "in progress"), ("Completed", "implemented"),
    ("Declined", "cancelled"), ("Failed", "closed"), ("Awaiting Vendor", None), ("", None),
])
def test_states(raw, state):
    assert change_state(raw) == state


def test_types_and_close_codes():
    assert [change_type(raw) for raw in ["Standard", "Normal", "Emergency", "Emergency change", "Weird"]] == [
        "standard", "normal", "emergency", "emergency", None]
    assert [close_code(raw) for raw in ["Successful", "successful_issues", "Successful with issues",
                                        "Unsuccessful", "Backed out", "Cancelled"]] == [
        "successful", "successful with issues", "successful with issues", "unsuccessful", "unsuccessful", None]


def test_jira_change_requests(org):
    preview = read(org, "jira_change_requests.csv")
    assert (preview.format, preview.changes, preview.rejected) == ("jira", 4, 1)
    changes = by_number(preview)
    assert changes.loc["ITSM-101", ["service_id", "change_type", "state", "completed_at"]].tolist() == [
        org.ledger, "standard", "implemented", dt.datetime(2025, 7, 5, 21)]   # change completion date
    assert changes.loc["ITSM-102", "change_type"] == "emergency"
    # Failed: the change was made and did not work
    assert changes.loc["ITSM-105", ["state", "close_code", "state_raw"]].tolist() == [
        "closed", "unsuccessful", "Failed"]
    assert preview.problems[["row", "column", "severity", "value"]].values.tolist() == [
        [5, "Issue Type", "error", "Incident"]]


def test_jira_custom_field_headers(org):
    csv = (b"Issue key,Issue Type,Summary,Status,Resolved,Component/s,Custom field (Change type),"
           b"Custom field (Change start date),Custom field (Change completion date)\n"
           b"ITSM-7,Change,Rotate keys,Completed,06/Jul/25 10:00 AM,Core Ledger,Normal,05/Jul/25 8:00 PM,"
           b"05/Jul/25 9:00 PM\n")
    changes = by_number(read(org, "jira.csv", csv))
    assert changes.loc["ITSM-7", ["change_type", "completed_at"]].tolist() == ["normal", dt.datetime(2025, 7, 5, 21)]


def test_generic_template(org):
    preview = read(org, TEMPLATE.name, TEMPLATE.read_bytes())
    assert (preview.format, preview.changes, preview.rejected, preview.warnings) == ("generic", 2, 0, 0)
    assert by_number(preview).loc["EXAMPLE-2", "state"] == "implemented"


def test_unknown_header_needs_a_mapping(org):
    csv = b"Ref,Thing,When done,Status\nR1,Core Ledger,2025-07-01 10:00,Closed\n"
    preview = read(org, "custom.csv", csv)
    assert preview.needs_mapping and preview.missing_fields == ["id"]
    with pytest.raises(IngestError, match="needs a column mapping"):
        commit_changes(ANA, org.store, preview)
    mapped = read(org, "custom.csv", csv, mapping={"id": "Ref", "ci": "Thing", "work_end": "When done",
                                                   "state": "Status"})
    assert by_number(mapped).loc["R1", ["source", "service_id", "completed_at"]].tolist() == [
        "generic", org.ledger, dt.datetime(2025, 7, 1, 10)]


def test_a_number_twice_keeps_the_last_row(org):
    csv = (b"change_id,ci,state,work_end\nC1,Core Ledger,implemented,2025-07-01 10:00\n"
           b"C1,Core Ledger,closed,2025-07-01 10:00\n")
    preview = read(org, "twice.csv", csv)
    assert (preview.changes, preview.superseded_rows) == (1, 1)
    assert by_number(preview).loc["C1", "state"] == "closed"
    assert preview.problems[["row", "reason"]].values.tolist() == [[2, "same change number as row 3, which is kept"]]


@pytest.mark.parametrize("numbers, kept", [
    (["C1", "C2", "C3", "C4"], ["C1", "C2", "C3", "C4"]),   # rising: no number can repeat
    (["C4", "C3", "C2", "C1"], ["C4", "C3", "C2", "C1"]),   # falling
    (["C3", "C1", "C4", "C2"], ["C3", "C1", "C4", "C2"]),   # in no order: counted
    (["C1", "C2", "C2", "C3"], ["C1", "C2", "C3"]),         # rising but for a repeat
    (["C3", "C2", "C2", "C1"], ["C3", "C2", "C1"]),
])
def test_a_repeated_number_is_found_in_any_order(org, numbers, kept):
    csv = b"change_id,ci,state\n" + b"".join(f"{n},Core Ledger,closed\n".encode() for n in numbers)
    preview = read(org, "order.csv", csv)
    assert preview.accepted["number"].to_pylist() == kept
    assert preview.superseded_rows == len(numbers) - len(kept)


def test_a_row_holding_only_a_date_is_reported_and_a_date_that_does_not_parse_shows_its_text(org):
    csv = (b"change_id,ci,state,planned_start,closed_at\n"
           b",,,2025-07-01 10:00:00,\n"                              # not blank: rejected, not skipped
           b"C1,Core Ledger,closed,2025-07-01 10:00:00,2025-07-32 09:00:00\n"
           b"C2,Core Ledger,closed,2025-07-02 10:00:00,2025-07-03 09:00:00\n")
    preview = read(org, "dates.csv", csv)
    assert preview.problems[["row", "column", "reason"]].values.tolist() == [
        [2, "change_id", "missing change number"], [3, "closed_at", "unparseable date"]]
    assert preview.problems["value"].tolist()[1] == "2025-07-32 09:00:00"
    assert preview.accepted["number"].to_pylist() == ["C2"]
    assert by_number(preview).loc["C2", "closed_at"] == pd.Timestamp("2025-07-03 09:00:00")


def test_unreadable_files_raise_one_line(org):
    with pytest.raises(IngestError, match="empty"):
        read(org, "empty.csv", b"")
    with pytest.raises(IngestError, match="no data rows"):
        read(org, "header.csv", b"number,cmdb_ci,start_date\n")
    with pytest.raises(IngestError, match="Excel workbook"):
        read(org, "broken.xlsx", b"PK\x03\x04 not really a zip")


def stored(org):
    return org.store.df("SELECT * EXCLUDE (upload_id) FROM changes ORDER BY source, number")


def test_commit_is_idempotent_and_a_dry_run_writes_nothing(org):
    preview = read(org, "servicenow_change_request.csv")
    dry = diff_changes(org.store, preview)
    assert (dry.inserted, dry.dry_run, org.store.scalar("SELECT count(*) FROM changes")) == (6, True, 0)
    first = commit_changes(ANA, org.store, preview, now=NOW)
    assert (first.inserted, first.updated, first.unchanged) == (6, 0, 0)
    before = stored(org)
    again = commit_changes(ANA, org.store, read(org, "servicenow_change_request.csv"), now=NOW)
    assert (again.upload_id, again.already_imported, again.unchanged) == (None, first.upload_id, 6)
    assert org.store.scalar("SELECT count(*) FROM change_uploads") == 1
    assert stored(org).equals(before)


def test_numbers_above_between_and_among_the_stored_ones(org):
    """The commit skips looking up each id when no stored number lies in the file's range; a
    range that holds stored numbers is looked up exactly (an update is found, not inserted twice)."""
    commit_changes(ANA, org.store, read(org, "servicenow_change_request.csv"), now=NOW)
    lines = (FIXTURES / "servicenow_change_request.csv").read_bytes().splitlines(keepends=True)
    header, first, third = lines[0], lines[1], lines[3]

    def upload(name, *rows):
        return commit_changes(ANA, org.store, read(org, name, header + b"".join(rows)), now=NOW)

    above = upload("above.csv", first.replace(b"CHG0030001", b"CHG0030101"),
                   first.replace(b"CHG0030001", b"CHG0030102"))
    between = upload("between.csv", first.replace(b"CHG0030001", b"CHG0030000"),
                     first.replace(b"CHG0030001", b"CHG0030050"))
    among = upload("among.csv", third.replace(b"Firewall rule clean-up", b"Firewall rules removed"),
                   first.replace(b"CHG0030001", b"CHG0030200"))
    assert [(r.inserted, r.updated, r.unchanged) for r in (above, between, among)] == [(2, 0, 0), (2, 0, 0), (1, 1, 0)]
    assert org.store.scalar("SELECT count(*) FROM changes") == 6 + 2 + 2 + 1
    assert org.store.scalar("SELECT title FROM changes WHERE number = 'CHG0030003'") == "Firewall rules removed"


def test_an_update_is_undone_exactly_and_undo_refuses_to_skip_a_later_upload(org):
    first = commit_changes(ANA, org.store, read(org, "servicenow_change_request.csv"), now=NOW)
    before = stored(org)
    newer = (FIXTURES / "servicenow_change_request.csv").read_bytes().replace(
        b"CHG0030004,Portal framework upgrade,Customer Portal,,Normal,Implement,,2025-08-20 20:00:00,"
        b"2025-08-20 23:00:00,2025-08-20 20:00:00,,",
        b"CHG0030004,Portal framework upgrade,Customer Portal,,Normal,Closed,Successful,2025-08-20 20:00:00,"
        b"2025-08-20 23:00:00,2025-08-20 20:00:00,2025-08-20 22:00:00,2025-08-21 09:00:00")
    second = commit_changes(ANA, org.store, read(org, "newer.csv", newer), now=NOW)
    assert (second.inserted, second.updated, second.unchanged) == (0, 1, 5)
    assert org.store.scalar("SELECT state FROM changes WHERE number = 'CHG0030004'") == "closed"
    with pytest.raises(IngestError, match="later upload"):
        undo_change_upload(ANA, org.store, first.upload_id)
    undone = undo_change_upload(ANA, org.store, second.upload_id, now=NOW)
    assert (undone.deleted, undone.restored) == (0, 1)
    assert stored(org).equals(before)
    undo_change_upload(ANA, org.store, first.upload_id, now=NOW)
    assert org.store.scalar("SELECT count(*) FROM changes") == 0
    uploads = list_change_uploads(org.store)
    assert uploads["state"].tolist() == ["undone", "undone"]
    history = administration.change_history(org.store)
    assert history["action"].value_counts()[["change upload", "undo change upload"]].tolist() == [2, 2]


def test_a_viewer_cannot_commit(org):
    from itscm.access import AccessDenied

    with pytest.raises(AccessDenied):
        commit_changes(Actor("vic@example.com", "viewer"), org.store, read(org, "servicenow_change_request.csv"))


def test_mapping_an_unmatched_ci_to_an_asset_turns_the_plan_changed_since_review(org):
    plan = org.plan(org.ledger)
    org.review(plan, dt.date(2025, 7, 1))
    org.drill(org.ledger, dt.date(2025, 6, 1), plan_id=plan)
    san = asset(org, "SAN array 3", asset_id="AST-SAN3", asset_class="server")
    runs_on(org, org.ledger, san)
    csv = b"change_id,ci,state,work_end\nC9,san-array-3,closed,2025-07-20 10:00\n"
    commit_changes(ANA, org.store, read(org, "san.csv", csv), now=NOW)
    filters = Filters(as_of=dt.date(2025, 8, 31))
    assert plan_worklist(org.store, filters).set_index("plan_id").loc[plan, "state"] == "current"
    assert unmatched_change_cis(org.store)["ci_name"].tolist() == ["san-array-3"]

    assert map_change_ci(ANA, org.store, " SAN-Array-3 ", asset_id=san, now=NOW) == 1
    assert unmatched_change_cis(org.store).empty
    assert plan_worklist(org.store, filters).set_index("plan_id").loc[plan, "state"] == "changed since review"
    # the next export with the same name matches it from the start
    later = read(org, "san2.csv", b"change_id,ci,state,work_end\nC10,san-array-3,closed,2025-07-25 10:00\n")
    assert later.accepted.column("asset_id").to_pylist() == [san]
    with pytest.raises(IngestError, match="one service or one asset"):
        map_change_ci(ANA, org.store, "x", service_id=org.ledger, asset_id=san)
    with pytest.raises(IngestError, match="No asset"):
        map_change_ci(ANA, org.store, "x", asset_id="nope")


def test_command_line_json_and_dry_run(tmp_path, capsys):
    store = backends.new_target(tmp_path / "store.duckdb")
    path = str(FIXTURES / "jira_change_requests.csv")
    assert main(["ingest-changes", path, "--store", str(store), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["dry_run"], dry["inserted"], dry["upload_id"]) == (True, 4, None)
    assert main(["ingest-changes", path, "--store", str(store), "--json", "--as", "ana"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"format", "rows_read", "changes", "inserted", "updated", "unchanged", "rejected", "warnings",
            "unmatched_cis", "upload_id", "already_imported", "dry_run", "message", "problems"} <= set(result)
    assert (result["format"], result["inserted"], result["rejected"]) == ("jira", 4, 1)
    assert main(["ingest-changes", path, "--store", str(store), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["already_imported"] == result["upload_id"]
    assert main(["ingest-changes", str(tmp_path / "missing.csv"), "--store", str(store)]) == 1
    assert "No file" in capsys.readouterr().err


def test_a_commit_matches_again_when_a_write_came_between_preview_and_commit(org):
    preview = read(org, "late.csv", b"change_id,ci,state,work_end\nC1,lb-prod-7,closed,2025-07-01 10:00\n")
    assert preview.accepted.column("asset_id").to_pylist() == [None]
    balancer = asset(org, "Load balancer 7", asset_id="lb-prod-7")     # a write after the preview
    commit_changes(ANA, org.store, preview, now=NOW)
    assert org.store.scalar("SELECT asset_id FROM changes WHERE number = 'C1'") == balancer


def test_a_preview_whose_rows_were_replaced_is_checked_in_full(org):
    preview = read(org, "one.csv", b"change_id,ci,state\nC1,Core Ledger,closed\n")
    doubled = dataclasses.replace(preview, accepted=pa.concat_tables([preview.accepted, preview.accepted]))
    assert doubled.matched_at() is None               # not the rows read_changes checked
    with pytest.raises(IngestError, match="same change number twice"):
        commit_changes(ANA, org.store, doubled)


@pytest.mark.no_store
def test_rows_are_cut_into_row_group_sized_batches():
    from itscm.store import ROW_GROUP_ROWS, in_row_group_batches

    table = pa.concat_tables([pa.table({"n": range(start, start + 100_000)}) for start in (0, 100_000, 200_000)])
    cut = in_row_group_batches(table)
    sizes = [batch.num_rows for batch in cut.to_batches()]
    assert sizes == [ROW_GROUP_ROWS, ROW_GROUP_ROWS, 300_000 - 2 * ROW_GROUP_ROWS]
    assert cut["n"].to_pylist() == list(range(300_000))
    assert in_row_group_batches(cut) is cut
    small = pa.table({"n": [1, 2]})
    assert in_row_group_batches(small) is small


@pytest.mark.file_only   # the file's row groups; a lake writes a Parquet file per commit instead
def test_a_large_commit_fills_whole_row_groups(tmp_path):
    """Rows that reach the store in batches larger than a row group, but not a multiple of it,
    would leave a part-filled row group after each batch, which the commit's checkpoint merges by
    rewriting them (most of a large commit's time)."""
    from itscm.store import ROW_GROUP_ROWS, Store

    with Store(tmp_path / "store.duckdb") as store:
        builder = OrgBuilder(store)
        builder.service(builder.unit("Payments"), name="Core Ledger", tier=2)
        preview = read_changes(b"number,cmdb_ci,state,work_end\nCHG1,Core Ledger,Closed,2025-07-01 10:00:00\n",
                               "one.csv", store=store, now=NOW)
        rows = 300_000
        template = preview.accepted.to_pylist()[0]
        batches = [pa.Table.from_pylist(
            [template | {"row": i + 2, "number": f"CHG{i}"}
             for i in range(start, min(start + 150_000, rows))], schema=preview.accepted.schema)
            for start in range(0, rows, 150_000)]
        large = dataclasses.replace(preview, accepted=pa.concat_tables(batches))
        # The row groups as the insert left them, before any checkpoint could merge them.
        store.cursor().execute("SET checkpoint_threshold = '1TB'")
        assert commit_changes(ANA, store, large, now=NOW).inserted == rows
        sizes = [count for (count,) in store.rows(
            "SELECT sum(count) FROM pragma_storage_info('changes') WHERE column_path = '[0]' "
            "GROUP BY row_group_id ORDER BY row_group_id")]
        # As few row groups as the rows need: whole ones but one (which one is left part-filled
        # depends on which batch a thread finishes last).
        assert sorted(sizes) == [rows - 2 * ROW_GROUP_ROWS, ROW_GROUP_ROWS, ROW_GROUP_ROWS]
