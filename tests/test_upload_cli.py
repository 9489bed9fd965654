"""`python -m itscm uploads` and `python -m itscm undo`: incident and change uploads listed and
undone from the command line as the pages do, run in-process (tests/command_line.py) on a copy
of the small organisation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from itscm.store import Store
from itscm.uploads import COLUMNS
from tests.command_line import run_cli
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EARLIER = FIXTURES / "ingest" / "servicenow_list.csv"
NEWER = FIXTURES / "ingest" / "servicenow_list_v2.csv"   # updates two of EARLIER's incidents, adds one
CHANGE_EXPORT = FIXTURES / "changes" / "servicenow_change_request.csv"


@dataclass
class Imported:
    store: str
    earlier: str           # the upload ids
    change: str
    newer: str
    before_newer: dict     # the store (table_contents) before NEWER was imported
    summary_before_newer: dict


def ok(capsys, *arguments) -> str:
    done = run_cli(capsys, *arguments)
    assert done.returncode == 0, done.stderr
    return done.stdout


def summary(capsys, store: str) -> dict:
    return json.loads(ok(capsys, "summary", "--json", "--as-of", SMALL_ORG_AS_OF, "--store", store))


def uploads(capsys, store: str, *options: str) -> list[dict]:
    return json.loads(ok(capsys, "uploads", "--store", store, "--json", *options))


def contents(store: str) -> dict:
    """Every table but `uploads`, whose row of an undone upload stays as the record, with what
    changes on every write (the data version) left out, and without the monthly rollup's rows of
    zeros: the same as no row to the measures and to `verify` (itscm/rollup.py), and taking an
    upload off can leave one."""
    with Store(store) as opened:
        every = table_contents(opened, data_version=False)
        columns = [name for (name,) in opened.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'incident_months' "
            "ORDER BY ordinal_position")]
    counts_from = columns.index("opened")   # the counts and times follow the row's key
    every["incident_months"] = [row for row in every["incident_months"] if any(row[counts_from:])]
    return {table: rows for table, rows in every.items() if table != "uploads"}


def imported_id(capsys, *arguments) -> str:
    return json.loads(ok(capsys, *arguments, "--json"))["upload_id"]


@pytest.fixture
def imported(store_path, capsys) -> Imported:
    """EARLIER, a change export, then NEWER: each imported with the command line, as a nightly
    job would."""
    store = str(store_path)
    earlier = imported_id(capsys, "ingest", EARLIER, "--store", store, "--as", "ana")
    change = imported_id(capsys, "ingest-changes", CHANGE_EXPORT, "--store", store, "--as", "ana")
    before, summary_before = contents(store), summary(capsys, store)
    newer = imported_id(capsys, "ingest", NEWER, "--store", store, "--as", "nightly-import")
    return Imported(store, earlier, change, newer, before, summary_before)


def test_uploads_lists_both_kinds_newest_first_with_what_blocks_an_undo(imported, capsys):
    listed = uploads(capsys, imported.store)
    assert [(u["kind"], u["upload_id"]) for u in listed] == [
        ("incidents", imported.newer), ("changes", imported.change), ("incidents", imported.earlier)]
    assert all(list(u) == list(COLUMNS) for u in listed)
    counts = ("rows_read", "inserted", "updated", "rejected", "held_now")
    assert {type(u[key]) for u in listed for key in counts} == {int}   # not floats from joining two listings
    newer, change, earlier = listed
    assert {key: newer[key] for key in ("uploaded_by", "file_name", "format", "rows_read", "inserted", "updated",
                                        "rejected", "state", "held_now", "can_undo", "undo_blocked_by")} == {
        "uploaded_by": "nightly-import", "file_name": NEWER.name, "format": "servicenow", "rows_read": 6,
        "inserted": 1, "updated": 2, "rejected": 0, "state": "committed", "held_now": 3, "can_undo": True,
        "undo_blocked_by": None}
    # EARLIER's five: two now held by NEWER, so its undo waits for NEWER's.
    assert (earlier["held_now"], earlier["can_undo"], earlier["undo_blocked_by"]) == (3, False, imported.newer)
    assert (change["rows_read"], change["inserted"], change["rejected"], change["held_now"]) == (8, 6, 2, 6)
    assert len(newer["sha256"]) == len(change["sha256"]) == 64
    assert newer["uploaded_at"] >= change["uploaded_at"] >= earlier["uploaded_at"]

    assert [u["upload_id"] for u in uploads(capsys, imported.store, "--kind", "changes")] == [imported.change]
    assert [u["upload_id"] for u in uploads(capsys, imported.store, "--kind", "incidents")] == [
        imported.newer, imported.earlier]

    lines = ok(capsys, "uploads", "--store", imported.store).splitlines()
    assert lines[0] == "3 upload(s), newest first; times in UTC."
    assert lines[1].startswith(f"{imported.newer}  ") and lines[1].endswith("holds 3 incident(s); can be undone")
    assert f"{NEWER.name} (servicenow) by nightly-import: read 6, inserted 1, updated 2, rejected 0" in lines[1]
    assert lines[2].endswith("holds 6 change(s); can be undone")
    assert lines[3].endswith(f"undo blocked by {imported.newer}")


def test_undoing_the_later_upload_puts_the_store_back_as_it_was_before_it(imported, capsys):
    assert summary(capsys, imported.store) != imported.summary_before_newer   # NEWER changed the measures
    undone = run_cli(capsys, "undo", imported.newer, "--store", imported.store, "--as", "ops", "--json")
    assert undone.returncode == 0 and undone.stderr == ""
    assert json.loads(undone.stdout) == {
        "kind": "incidents", "upload_id": imported.newer, "deleted": 1, "restored": 2,
        "message": f"Upload {imported.newer} undone: 1 incident(s) removed, 2 put back as they were."}
    assert contents(imported.store) == imported.before_newer   # incidents, prior versions, rollup: all of it
    assert summary(capsys, imported.store) == imported.summary_before_newer
    assert ok(capsys, "verify", "--store", imported.store).startswith("Every key is unique")
    newer, _, earlier = uploads(capsys, imported.store)
    assert (newer["state"], newer["undone_by"], newer["can_undo"], newer["held_now"]) == ("undone", "ops", False, 0)
    assert newer["undone_at"] is not None
    assert (earlier["can_undo"], earlier["undo_blocked_by"], earlier["held_now"]) == (True, None, 5)
    assert re.search(r"  undone +.*holds 0 incident\(s\); undone \d{4}-\d\d-\d\d \d\d:\d\d by ops$",
                     ok(capsys, "uploads", "--store", imported.store).splitlines()[1])

    # Without --json: the message alone; and then the earlier upload goes too.
    assert ok(capsys, "undo", imported.earlier, "--store", imported.store) == (
        f"Upload {imported.earlier} undone: 5 incident(s) removed, 0 put back as they were.\n")
    with Store(imported.store) as store:
        assert store.scalar("SELECT count(*) FROM incidents WHERE upload_id IS NOT NULL") == 0


@pytest.mark.parametrize("as_json", [False, True])
def test_a_blocked_undo_is_refused_naming_the_later_upload_and_changes_nothing(imported, capsys, as_json):
    before = contents(imported.store)
    with Store(imported.store) as store:
        version = store.data_version()
    refused = run_cli(capsys, "undo", imported.earlier, "--store", imported.store, *(["--json"] if as_json else []))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"undo: Upload {imported.earlier} cannot be undone: later upload(s) changed "
                                     f"its incidents again: {imported.newer} ({NEWER.name}, 2 incident(s)).")
    assert refused.stdout == (json.dumps({"error": refused.stderr.removeprefix("undo: ").strip()}) + "\n"
                              if as_json else "")
    assert contents(imported.store) == before
    with Store(imported.store) as store:
        assert store.data_version() == version
    assert [u["state"] for u in uploads(capsys, imported.store)] == ["committed"] * 3


def test_an_unknown_id_and_an_upload_already_undone_are_refused_with_nothing_changed(imported, capsys):
    before = contents(imported.store)
    unknown = run_cli(capsys, "undo", "upl-nothing-like-it", "--store", imported.store, "--json")
    assert unknown.returncode == 1
    assert unknown.stderr == "undo: No incident or change upload 'upl-nothing-like-it'.\n"
    assert json.loads(unknown.stdout) == {"error": "No incident or change upload 'upl-nothing-like-it'."}
    assert contents(imported.store) == before

    ok(capsys, "undo", imported.change, "--store", imported.store, "--as", "ops")
    undone = contents(imported.store)
    again = run_cli(capsys, "undo", imported.change, "--store", imported.store)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith(f"undo: Change upload {imported.change} ({CHANGE_EXPORT.name}) is already "
                                   "undone since ") and again.stderr.endswith(" by ops.\n")
    assert contents(imported.store) == undone


def test_a_change_upload_is_undone_by_its_id_alone(imported, capsys):
    with Store(imported.store) as store:
        held = store.scalar("SELECT count(*) FROM changes WHERE upload_id = $id", {"id": imported.change})
        changes_before = store.scalar("SELECT count(*) FROM changes")
    undone = json.loads(ok(capsys, "undo", imported.change, "--store", imported.store, "--json"))
    assert (undone["kind"], undone["upload_id"], undone["deleted"], undone["restored"]) == (
        "changes", imported.change, held, 0)
    with Store(imported.store) as store:
        assert store.scalar("SELECT count(*) FROM changes") == changes_before - held
    (change,) = uploads(capsys, imported.store, "--kind", "changes")
    assert (change["state"], change["held_now"], change["can_undo"]) == ("undone", 0, False)
    assert [u["state"] for u in uploads(capsys, imported.store, "--kind", "incidents")] == ["committed"] * 2


def test_a_store_without_uploads(store_path, capsys):
    store = str(store_path)
    assert ok(capsys, "uploads", "--store", store) == "No upload yet.\n"
    assert ok(capsys, "uploads", "--store", store, "--kind", "changes") == "No change upload yet.\n"
    assert uploads(capsys, store) == []
    # One kind without uploads leaves the other's counts whole numbers.
    upload_id = imported_id(capsys, "ingest", EARLIER, "--store", store)
    (only,) = uploads(capsys, store)
    assert (only["upload_id"], only["kind"]) == (upload_id, "incidents")
    assert {type(only[key]) for key in ("rows_read", "inserted", "updated", "rejected", "held_now")} == {int}


@pytest.mark.ducklake_only
def test_undo_on_a_lake_the_app_holds_open(imported, capsys):
    """The app keeps its handle on the lake open; the command undoes beside it, and the app's
    next read sees the store as before the upload."""
    with Store(imported.store) as app:
        assert app.scalar("SELECT count(*) FROM incidents WHERE upload_id = $id", {"id": imported.newer}) == 3
        version = app.data_version()
        ok(capsys, "undo", imported.newer, "--store", imported.store)
        assert app.data_version() > version
        assert app.scalar("SELECT count(*) FROM incidents WHERE upload_id = $id", {"id": imported.newer}) == 0
        assert app.scalar("SELECT state FROM uploads WHERE upload_id = $id", {"id": imported.newer}) == "undone"
    assert contents(imported.store) == imported.before_newer
