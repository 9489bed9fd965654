"""`python -m itscm ingest`: the command's arguments, output and exit status, run in-process."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from itscm.access import AccessDenied
from itscm.ingest import IngestError, command
from itscm.store import StoreError
from tests.test_ingest_support import FIXTURES, incidents, make_store

REQUIRED_KEYS = {
    "format",
    "rows_read",
    "incidents",
    "inserted",
    "updated",
    "unchanged",
    "rejected",
    "warnings",
    "unmatched_services",
}


@pytest.fixture
def store():
    store = make_store()
    yield store
    store.close()


def ingest(store, capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="itscm ingest")
    command.add_arguments(parser)
    status = command.run(parser.parse_args([str(arg) for arg in argv]), store)
    out, err = capsys.readouterr()
    return status, out, err


def test_json_output_has_the_documented_keys(store, capsys):
    status, out, err = ingest(store, capsys, FIXTURES / "servicenow_list.csv", "--json", "--as", "ana")
    assert status == 0 and err == ""
    summary = json.loads(out)
    assert set(summary) >= REQUIRED_KEYS
    assert (summary["format"], summary["rows_read"], summary["incidents"], summary["inserted"]) == (
        "servicenow",
        5,
        5,
        5,
    )
    assert summary["unmatched_services"] == [{"name": "Warehouse Scanning", "incidents": 1}]
    assert store.scalar("SELECT uploaded_by FROM uploads") == "ana"

    status, out, _ = ingest(store, capsys, FIXTURES / "servicenow_list.csv", "--json")
    again = json.loads(out)
    assert status == 0 and (again["inserted"], again["unchanged"]) == (0, 5)
    assert again["already_imported"] == summary["upload_id"]


def test_human_output_names_format_counts_and_problems(store, capsys):
    status, out, _ = ingest(store, capsys, FIXTURES / "all_rows_bad.csv")
    assert status == 0  # rows were read, all rejected: the report, not a failure
    assert (
        "Generic incident template" in out
        and "Read 8 row(s): 0 incident(s) accepted, 8 row(s) rejected" in out
    )
    assert "row 2 [incident_id] error: missing incident id" in out
    assert "nothing was committed" in out


def test_an_unknown_header_is_refused_with_the_columns_and_how_to_map_them(store, capsys):
    status, out, err = ingest(store, capsys, FIXTURES / "unknown_header.csv")
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (
        "Columns found: 'Ticket', 'Raised', 'Service back', 'Fixed', 'Sev', 'Application', 'Subject'" in err
    )
    assert "--map id=Ticket --map opened=Raised --map restored='Service back'" in err
    assert store.scalar("SELECT count(*) FROM incidents") == 0


def test_map_and_save_mapping_then_the_header_is_known(store, capsys, tmp_path):
    maps = [
        "--map",
        "id=Ticket",
        "--map",
        "opened=Raised",
        "--map",
        "restored=Service back",
        "--map",
        "service=Application",
        "--map",
        "title=Subject",
    ]
    status, out, _ = ingest(
        store, capsys, FIXTURES / "unknown_header.csv", *maps, "--save-mapping", "acme", "--json"
    )
    assert status == 0 and json.loads(out)["inserted"] == 2
    assert set(incidents(store)) == {"acme:T-1001", "acme:T-1002"}
    # A renamed copy of a newer export is recognised by the saved mapping.
    newer = tmp_path / "acme_august.csv"
    newer.write_text(
        "Ticket,Raised,Service back,Application,Subject\nT-1003,2025-08-01 10:00,,Email,New one\n"
    )
    status, out, _ = ingest(store, capsys, newer, "--json")
    assert status == 0 and json.loads(out)["format"] == "custom:acme"
    assert "acme:T-1003" in incidents(store)


def test_map_without_a_name_imports_as_generic(store, capsys):
    status, out, _ = ingest(
        store,
        capsys,
        FIXTURES / "unknown_header.csv",
        "--map",
        "id=Ticket",
        "--map",
        "opened=Raised",
        "--json",
    )
    assert status == 0 and json.loads(out)["format"] == "custom"
    assert set(incidents(store)) == {"generic:T-1001", "generic:T-1002"}


def test_dry_run_writes_nothing(store, capsys):
    status, out, _ = ingest(store, capsys, FIXTURES / "jira_jsm.csv", "--dry-run", "--json")
    summary = json.loads(out)
    assert status == 0 and summary["dry_run"] and summary["inserted"] == 4 and summary["upload_id"] is None
    assert store.scalar("SELECT count(*) FROM incidents") == 0
    assert store.scalar("SELECT count(*) FROM uploads") == 0


def test_an_audit_log_says_once_that_earlier_updates_were_superseded(store, capsys):
    note = "An audit log: 3 incidents in 9 updates; the latest update of each is kept (6 earlier updates superseded)."
    status, out, _ = ingest(store, capsys, FIXTURES / "servicenow_event_log.csv", "--dry-run", "--json")
    summary = json.loads(out)
    assert status == 0 and (summary["incidents"], summary["superseded_rows"], summary["warnings"]) == (3, 6, 1)
    assert summary["notes"] == [note]
    status, out, _ = ingest(store, capsys, FIXTURES / "servicenow_event_log.csv", "--dry-run")
    assert status == 0 and "1 warning(s), 6 superseded row(s)" in out and f"Note: {note}" in out
    assert "same incident id" not in out


def test_time_zone_and_date_order_options(store, capsys):
    status, _, _ = ingest(
        store,
        capsys,
        FIXTURES / "ambiguous_dates.csv",
        "--tz",
        "America/New_York",
        "--date-order",
        "month-first",
    )
    assert status == 0
    opened = incidents(store)["generic:A-1"]["opened_at"]
    assert opened.to_pydatetime().isoformat() == "2025-03-04T15:00:00"


def test_report_option_writes_every_problem(store, capsys, tmp_path):
    report = tmp_path / "problems.csv"
    status, _, _ = ingest(store, capsys, FIXTURES / "all_rows_bad.csv", "--report", report)
    assert status == 0 and report.read_bytes().count(b"\r\n") == 9


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("binary_renamed.csv", [], "contains NUL bytes"),
        ("empty.csv", [], "is empty"),
        ("header_only.csv", [], "no data rows"),
        ("xlsx_renamed.csv", [], "Excel workbook"),
        ("servicenow_list.csv", ["--max-mb", "0.0001"], "above the upload limit"),
        ("servicenow_list.csv", ["--tz", "Nowhere/Land"], "Unknown time zone"),
        ("servicenow_list.csv", ["--map", "colour"], "expected FIELD=COLUMN"),
        ("servicenow_list.csv", ["--mapping", "nope"], "No saved mapping named 'nope'"),
        ("no_such_file.csv", [], "No file"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(store, capsys, name, extra, message):
    status, out, err = ingest(store, capsys, FIXTURES / name, *extra)
    assert status == 1 and out == ""
    assert err.startswith("ingest: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_errors_with_json_print_an_error_object(store, capsys):
    status, out, _ = ingest(store, capsys, FIXTURES / "empty.csv", "--json")
    assert status == 1 and "is empty" in json.loads(out)["error"]


def test_a_folder_is_refused(store, capsys, tmp_path):
    folder = tmp_path / "export.csv"
    folder.mkdir()
    status, _, err = ingest(store, capsys, folder)
    assert status == 1 and "is a folder" in err


def failing_commit(monkeypatch, error: Exception) -> None:
    def commit(*args, **kwargs):
        raise error

    monkeypatch.setattr(command, "commit_upload", commit)


@pytest.mark.parametrize(
    "error",
    [
        StoreError("The store x.duckdb is open read-only."),
        AccessDenied("ana has the viewer role; to upload incidents needs the analyst role."),
        IngestError("The preview holds the same incident id twice; read the file again."),
    ],
)
def test_an_error_the_user_can_act_on_is_one_line(store, capsys, monkeypatch, error):
    failing_commit(monkeypatch, error)
    status, out, err = ingest(store, capsys, FIXTURES / "servicenow_list.csv")
    assert status == 1 and out == ""
    assert err == f"ingest: {error}\n"


def test_an_unexpected_failure_is_a_bug_and_shows_its_traceback(store, capsys, monkeypatch, tmp_path):
    failing_commit(monkeypatch, ZeroDivisionError("boom"))
    copy = tmp_path / "x.csv"
    shutil.copy(FIXTURES / "servicenow_list.csv", copy)
    status, out, err = ingest(store, capsys, copy, "--json")
    assert status == 1
    assert err.startswith("Traceback (most recent call last):")
    assert "in commit\n" in err and "ZeroDivisionError: boom\n" in err  # where it happened, and what
    summary = "ingest failed unexpectedly (ZeroDivisionError: boom); this is a bug, the traceback above shows where"
    assert err.endswith(f"\ningest: {summary}\n")
    assert json.loads(out) == {"error": summary}
