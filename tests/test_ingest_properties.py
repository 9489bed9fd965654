"""Generated files thrown at the import: it never fails with anything but `IngestError`, counts
every row exactly once at its spreadsheet row number, and never leaves a partial upload behind."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from itscm.access import Actor
from itscm.ingest import IngestError, commit_upload, read_upload
from tests import backends
from tests.test_ingest_support import NOW, make_failing_store, make_store, snapshot

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANALYST = Actor("t", "analyst")


@pytest.fixture(scope="module")
def store():
    """read_upload only reads the store: one for every example."""
    store = make_store()
    yield store
    store.close()


HEADERS = [
    ["incident_id", "title", "service", "priority", "opened_at", "restored_at", "resolved_at", "closed_at"],
    ["number", "opened_at", "u_restored_at", "resolved_at", "priority", "cmdb_ci", "short_description"],
    ["Summary", "Issue key", "Created", "Resolved", "Priority", "Component/s", "Component/s"],
    ["incident_number", "created_on", "resolved_on", "urgency", "service_name"],
    ["tinyId", "message", "createdAt", "priority"],
    ["Ticket", "Raised", "Subject"],
]
TEXT = st.lists(
    st.sampled_from([*"abcXYZ 019-:/.,;|\t\"'\n\r?éü€–", "NULL", "P1", "2025-07-14 15:42"]), max_size=12
).map("".join)
CELL = st.one_of(
    TEXT,
    st.sampled_from(
        [
            "",
            "?",
            "NULL",
            "1 - Critical",
            "high",
            "Email",
            "pay-gw-prod",
            "14/Jul/25 3:42 PM",
            "14/07/2025 15:42",
            "07/14/2025 15:42",
            "1752507727",
            "2099-01-01",
            "1901-01-01",
        ]
    ),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2025, 8, 1)).map(str),
)


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def check_preview_invariants(preview) -> None:
    problems = preview.problems
    assert set(problems["severity"]) <= {"error", "warning"}
    if preview.needs_mapping:
        assert preview.incidents == 0
        return
    assert preview.rows_read == preview.incidents + preview.rejected + preview.superseded_rows
    ids = preview.accepted.column("incident_id").to_pylist()
    assert len(ids) == len(set(ids)) and all(i.startswith(preview.source + ":") for i in ids)
    assert None not in preview.accepted.column("opened_at").to_pylist()
    rows = [int(row) for row in problems["row"].dropna()]
    last = preview.rows_read + preview.blank_rows + 1
    assert all(2 <= row <= last for row in rows)
    accepted_rows = set(preview.accepted.column("row").to_pylist())
    rejected_rows = set(problems.loc[problems["severity"] == "error", "row"].dropna().astype(int))
    assert not accepted_rows & rejected_rows


@pytest.mark.long
@SETTINGS
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_give_a_preview_or_an_ingest_error(store, data):
    try:
        preview = read_upload(data, "bytes.csv", store=store, now=NOW)
    except IngestError as error:
        assert "\n" not in str(error)
        return
    check_preview_invariants(preview)


@pytest.mark.long
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.sampled_from(HEADERS),
    rows=st.lists(st.lists(CELL, max_size=9), max_size=25),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    noise=st.binary(max_size=8),
)
def test_generated_exports_give_a_preview_or_an_ingest_error(
    store, header, rows, encoding, delimiter, newline, noise
):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    data = encode(buffer.getvalue(), encoding)
    for variant in (data, data + noise, data[: len(data) // 2]):
        try:
            preview = read_upload(variant, "export.csv", store=store, now=NOW)
        except IngestError as error:
            assert "\n" not in str(error)
            continue
        check_preview_invariants(preview)


# Rows whose fate is known in advance: (id, title, opened) where the id may be missing, the
# title may hold quotes, delimiters and newlines, and the opened value may be garbage.
OPENED = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2025, 8, 1)).map(
    lambda moment: moment.replace(microsecond=0)
)
ROW = st.tuples(
    st.sampled_from(["", "A-1", "A-2", "A-3", "B-7", "c 9"]),
    st.text(alphabet=st.sampled_from(list("ab ,;\"'\n\r\t?é")), max_size=15),
    st.one_of(OPENED, st.just("garbage")),
    st.sampled_from(["iso", "iso-t", "epoch", "jira"]),
)


def render(opened, style: str) -> str:
    if opened == "garbage":
        return "garbage"
    if style == "iso":
        return opened.strftime("%Y-%m-%d %H:%M:%S")
    if style == "iso-t":
        return opened.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "epoch":
        return str(int((opened - datetime(1970, 1, 1)).total_seconds()))
    return opened.strftime("%d/%b/%y %I:%M %p")


def expected_opened(opened, style: str):
    return opened.replace(second=0) if style == "jira" else opened


def cleaned(text: str):
    stripped = text.strip(" \t\r\n\u00a0")
    return None if stripped.lower() in ("", "?", "null") else stripped


def generic_file(rows, delimiter: str, newline: str) -> str:
    buffer = io.StringIO()
    # csv.writer quotes a field with a bare CR only when CR is in the line terminator; a CR left
    # unquoted is a line break to every reader (this one, Python's, Excel), so quote them all then.
    quoting = csv.QUOTE_ALL if newline == "\n" else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerow(["incident_id", "title", "opened_at"])
    for incident_id, title, opened, style in rows:
        writer.writerow([incident_id, title, render(opened, style)])
    return buffer.getvalue()


@pytest.mark.long
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(ROW, min_size=1, max_size=20),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-16", "cp1252"]),
)
def test_every_row_is_judged_at_its_row_number(store, rows, delimiter, newline, encoding):
    data = generic_file(rows, delimiter, newline).encode(encoding)
    preview = read_upload(data, "generated.csv", store=store, now=NOW)
    assert preview.rows_read == len(rows) and preview.delimiter == delimiter
    errors = {
        (int(row), reason)
        for row, reason, severity in zip(
            preview.problems["row"], preview.problems["reason"], preview.problems["severity"], strict=True
        )
        if severity == "error"
    }
    expected_errors = set()
    kept: dict[str, tuple[int, str | None, datetime]] = {}
    for index, (incident_id, title, opened, style) in enumerate(rows):
        row = index + 2
        if not incident_id:
            expected_errors.add((row, "missing incident id"))
        if opened == "garbage":
            expected_errors.add((row, "unparseable date"))
        if incident_id and opened != "garbage":
            kept[f"generic:{incident_id}"] = (row, cleaned(title), expected_opened(opened, style))
    assert errors == expected_errors
    accepted = {
        row["incident_id"]: (row["row"], row["title"], row["opened_at"])
        for row in preview.accepted.to_pylist()
    }
    assert accepted == kept


# Every statement a failure is injected before, on both backends; the generated files drawn 7
# times each on the file, twice on DuckLake, where each example costs a new lake (seconds) and
# the file pass has run the full count already.
PARTIAL_UPLOAD_EXAMPLES = {backends.FILE: 7, backends.DUCKLAKE: 2}


@pytest.mark.long
@pytest.mark.parametrize(
    "fail_on", ["INSERT INTO incident_prior_versions", "INSERT INTO incidents (", "INSERT INTO uploads"]
)
def test_the_store_never_holds_a_partial_upload(backend, fail_on):
    examples = settings(max_examples=PARTIAL_UPLOAD_EXAMPLES[backend], deadline=None,
                        suppress_health_check=[HealthCheck.too_slow])
    two_files = given(first=st.lists(ROW, min_size=1, max_size=12), second=st.lists(ROW, min_size=1, max_size=12))
    examples(two_files(upload_is_whole_or_absent))(fail_on)


def upload_is_whole_or_absent(fail_on: str, first, second) -> None:
    store = make_failing_store()
    try:
        commit_upload(
            ANALYST, store, read_upload(generic_file(first, ",", "\n").encode(), "a.csv", store=store, now=NOW)
        )
        before = snapshot(store)
        preview = read_upload(generic_file(second, ",", "\n").encode(), "b.csv", store=store, now=NOW)
        assume(preview.incidents)
        store.fail_on = fail_on
        try:
            skipped = commit_upload(ANALYST, store, preview)
        except RuntimeError:
            pass
        else:
            # Only a file identical to the first one writes nothing, so never reaches the failure.
            assert skipped.already_imported
        assert snapshot(store) == before
        store.fail_on = None
        result = commit_upload(ANALYST, store, preview)
        stored = store.rows("SELECT incident_id FROM incidents")
        assert len(stored) == len(set(stored))
        expected = {row[0] for row in before["incidents"]} | set(
            preview.accepted.column("incident_id").to_pylist()
        )
        assert {incident_id for (incident_id,) in stored} == expected
        assert result.inserted + result.updated + result.unchanged == preview.incidents
    finally:
        store.close()
