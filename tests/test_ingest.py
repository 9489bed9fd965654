"""Reading incident exports: every format, and every hazard of a real file, up to the preview."""

from __future__ import annotations

from datetime import datetime

import pytest

from itscm.ingest import IngestError, priority_level, problems_csv, read_upload
from itscm.ingest.formats import detect_formats, suggest_mapping
from tests.test_ingest_support import NOW, fixture, make_store, preview_of


@pytest.fixture
def store():
    store = make_store()
    yield store
    store.close()


def rows_of(preview) -> dict[str, dict]:
    return {row["incident_id"]: row for row in preview.accepted.to_pylist()}


def problems_of(preview) -> list[tuple]:
    return [
        (
            None if row["row"] is None or row["row"] != row["row"] else int(row["row"]),
            row["column"],
            row["severity"],
            row["reason"],
        )
        for row in preview.problems.astype(object).to_dict("records")
    ]


# -- formats -----------------------------------------------------------------------------------


def test_servicenow_list_export_with_display_values(store):
    preview = preview_of(store, "servicenow_list.csv")
    assert (preview.format, preview.source, preview.encoding, preview.delimiter) == (
        "servicenow",
        "servicenow",
        "UTF-8",
        ",",
    )
    assert preview.detected_formats[0][0] == "servicenow"
    assert preview.mapping["restored"] == ["u_restored_at"]
    assert preview.mapping["service"] == ["business_service", "cmdb_ci"]
    assert (preview.rows_read, preview.incidents, preview.rejected) == (5, 5, 0)
    rows = rows_of(preview)
    first = rows["servicenow:INC0012345"]
    assert first["title"] == "Payments gateway timeouts, card authorisation failing"
    assert (first["priority"], first["priority_raw"]) == (1, "1 - Critical")
    assert first["opened_at"] == datetime(2025, 7, 14, 15, 42, 7)
    assert first["restored_at"] == datetime(2025, 7, 14, 17, 5)
    assert first["closed_at"] == datetime(2025, 7, 17, 9, 0)
    assert (first["service_id"], first["service_name"], first["row"]) == ("svc-pay", "Payments Gateway", 2)
    # No business service: the CMDB CI, an alias, names the service.
    assert rows["servicenow:INC0012346"]["service_id"] == "svc-mail"
    assert rows["servicenow:INC0012346"]["service_name"] == "exchange-online"
    # "5 - Planning" is stored as the lowest level.
    assert rows["servicenow:INC0012349"]["priority"] == 4
    assert rows["servicenow:INC0012348"]["service_id"] is None
    assert preview.unmatched_services().to_dict("records") == [
        {"service_name": "Warehouse Scanning", "incidents": 1}
    ]
    assert (
        3,
        "u_restored_at",
        "warning",
        "no restore time: resolved_at will serve as an estimated restore time",
    ) in problems_of(preview)


def test_servicenow_audit_log_keeps_the_latest_update_of_each_number(store):
    preview = preview_of(store, "servicenow_audit.csv")
    assert preview.format == "servicenow" and preview.mapping["updated"] == ["sys_updated_on"]
    assert (preview.rows_read, preview.incidents, preview.superseded_rows) == (6, 3, 3)
    rows = rows_of(preview)
    latest = rows["servicenow:INC0020001"]
    # Row 4 is the latest update by sys_updated_on although row 5 comes later in the file.
    assert latest["row"] == 4
    assert (latest["priority"], latest["restored_at"]) == (1, datetime(2025, 8, 1, 11, 40))
    assert rows["servicenow:INC0020002"]["row"] == 6
    # Earlier updates of an audit log are expected: counted, not reported row by row.
    assert not [p for p in problems_of(preview) if "same incident id" in p[3]]
    assert any("earlier updates" in note for note in preview.notes)
    assert preview.warnings == 0
    assert preview.notes == [
        "An audit log: 3 incidents in 6 updates; the latest update of each is kept (3 earlier updates superseded)."
    ]


def test_a_servicenow_event_log_is_read_as_an_audit_log(store):
    # The layout of ServiceNow event logs published for process mining: sys_updated_at, day-first
    # dates, '?' for unknown, every update of an incident in a row of its own.
    preview = preview_of(store, "servicenow_event_log.csv")
    assert preview.format == "servicenow" and preview.mapping["updated"] == ["sys_updated_at"]
    assert preview.date_order == "day-first"
    assert (preview.rows_read, preview.incidents, preview.superseded_rows, preview.rejected) == (9, 3, 6, 0)
    # Only the file's own doubt: no earlier update is a warning.
    assert problems_of(preview) == [
        (None, "", "warning", "no restore column: resolved_at will serve as an estimated restore time")
    ]
    assert preview.warnings == 1
    assert preview.notes == [
        "An audit log: 3 incidents in 9 updates; the latest update of each is kept (6 earlier updates superseded)."
    ]
    rows = rows_of(preview)
    closed = rows["servicenow:INC0000045"]
    assert closed["row"] == 5 and closed["priority"] == 2
    assert (closed["resolved_at"], closed["closed_at"]) == (datetime(2025, 7, 14, 11, 29), datetime(2025, 7, 19, 12))
    assert rows["servicenow:INC0000047"]["row"] == 8
    assert rows["servicenow:INC0000062"]["resolved_at"] is None


def test_a_list_export_with_a_number_twice_still_warns(store):
    # Without an update time the file is a list export, where a repeated number is suspicious.
    lines = fixture("servicenow_list.csv").decode().splitlines()
    data = "\n".join([*lines, lines[1]]).encode()
    preview = read_upload(data, "servicenow_list.csv", store=store, now=NOW)
    assert "updated" not in preview.mapping and preview.superseded_rows == 1
    assert (2, "number", "warning", f"same incident id as row {len(lines) + 1}, which is kept") in problems_of(
        preview
    )
    assert not [note for note in preview.notes if "audit log" in note]


def test_jira_export_with_month_name_dates_and_repeated_component_columns(store):
    preview = preview_of(store, "jira_jsm.csv")
    assert preview.format == "jira"
    assert preview.mapping["service"] == ["Component/s", "Component/s"]
    # Shown with unique names: Arrow (and so Streamlit) refuses two columns of one name.
    assert list(preview.sample.columns)[-3:] == ["Component/s", "Component/s (2)", "Custom field (Restored)"]
    rows = rows_of(preview)
    checkout = rows["jira:ITSM-12"]
    assert checkout["opened_at"] == datetime(2025, 7, 14, 15, 42)
    assert checkout["resolved_at"] == datetime(2025, 7, 14, 18, 5)
    assert checkout["restored_at"] == datetime(2025, 7, 14, 17, 20)
    # The second component matches a service, so it wins over the unknown first one.
    assert (checkout["service_id"], checkout["service_name"]) == ("svc-pay", "Payments Gateway")
    assert rows["jira:ITSM-13"]["service_id"] == "svc-crm"  # through the alias
    assert rows["jira:ITSM-15"]["service_id"] == "svc-hr"  # the first component is empty
    assert rows["jira:ITSM-14"]["service_name"] == "Intranet" and rows["jira:ITSM-14"]["service_id"] is None
    assert [rows[f"jira:ITSM-{n}"]["priority"] for n in (12, 13, 14, 15)] == [1, 2, 3, 4]


def test_pagerduty_export_with_offsets_and_urgency(store):
    preview = preview_of(store, "pagerduty_incidents.csv")
    assert preview.format == "pagerduty"
    rows = rows_of(preview)
    first = rows["pagerduty:1234"]
    # The offset in the value wins: 15:42:07-04:00 is 19:42:07 UTC.
    assert first["opened_at"] == datetime(2025, 7, 14, 19, 42, 7)
    assert (first["priority"], first["service_id"]) == (1, "svc-pay")
    assert rows["pagerduty:1235"]["opened_at"] == datetime(2025, 7, 15, 2, 0)
    assert (rows["pagerduty:1235"]["priority"], rows["pagerduty:1235"]["priority_raw"]) == (4, "low")
    assert (rows["pagerduty:1236"]["priority"], rows["pagerduty:1236"]["opened_at"]) == (
        2,
        datetime(2025, 7, 16, 7, 0),
    )
    assert (
        None,
        "",
        "warning",
        "no restore column: resolved_at will serve as an estimated restore time",
    ) in (problems_of(preview))


def test_opsgenie_export_with_epoch_milliseconds_and_p1_to_p5(store):
    preview = preview_of(store, "opsgenie_alerts.csv")
    assert preview.format == "opsgenie"
    rows = rows_of(preview)
    assert set(rows) == {"opsgenie:101", "opsgenie:102", "opsgenie:103"}
    assert rows["opsgenie:101"]["opened_at"] == datetime(2025, 7, 14, 15, 42, 7)
    assert rows["opsgenie:101"]["resolved_at"] == datetime(2025, 7, 14, 17, 30)
    assert [rows[f"opsgenie:{n}"]["priority"] for n in (101, 102, 103)] == [1, 3, 4]
    assert rows["opsgenie:101"]["service_id"] == "svc-pay"


def test_the_shipped_template_is_the_generic_format():
    with open("data/templates/incidents_template.csv", "rb") as template:
        data = template.read()
    store = make_store()
    preview = read_upload(data, "incidents_template.csv", store=store, now=NOW)
    assert preview.format == "generic" and preview.rejected == 0
    assert set(rows_of(preview)) == {"generic:EXAMPLE-1", "generic:EXAMPLE-2"}


def test_the_format_can_be_overridden(store):
    preview = preview_of(store, "servicenow_list.csv", format="generic")
    assert preview.needs_mapping and preview.missing_fields == ["id"]  # generic knows opened_at only
    with pytest.raises(IngestError, match="Unknown format 'excel'"):
        preview_of(store, "servicenow_list.csv", format="excel")


def test_detection_ranks_formats_by_header():
    assert detect_formats(["Issue key", "Summary", "Created"])[0].name == "jira"
    assert detect_formats(["incident_number", "created_on", "service_name"])[0].name == "pagerduty"
    assert detect_formats(["TinyId", "Alias", "CreatedAt"])[0].name == "opsgenie"
    assert detect_formats(["Ticket", "Raised"]) == []


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("1 - Critical", 1),
        ("2 - High", 2),
        ("3 - Moderate", 3),
        ("4 - Low", 4),
        ("5 - Planning", 4),
        ("P1", 1),
        ("P5", 4),
        ("Sev 2", 2),
        ("Highest", 1),
        ("high", 2),
        ("Medium", 3),
        ("Lowest", 4),
        ("Blocker", 1),
        ("Major", 2),
        ("P0", 1),
        ("urgent-ish", None),
        ("2025", None),
        ("", None),
        (None, None),
    ],
)
def test_priority_levels(raw, level):
    assert priority_level(raw) == level


# -- unknown headers and mappings ----------------------------------------------------------------


def test_an_unknown_header_needs_a_mapping_and_gets_a_suggestion(store):
    preview = preview_of(store, "unknown_header.csv")
    assert preview.needs_mapping and preview.format == "custom"
    assert preview.columns == ["Ticket", "Raised", "Service back", "Fixed", "Sev", "Application", "Subject"]
    assert preview.incidents == 0 and preview.rows_read == 2
    assert preview.suggested_mapping == {
        "id": "Ticket",
        "opened": "Raised",
        "restored": "Service back",
        "resolved": "Fixed",
        "priority": "Sev",
        "service": "Application",
        "title": "Subject",
    }
    assert list(preview.sample.columns) == preview.columns and len(preview.sample) == 2


def test_a_mapping_reads_an_unknown_header(store):
    mapping = {
        "id": "Ticket",
        "opened": "Raised",
        "restored": "Service back",
        "resolved": "Fixed",
        "priority": "sev",
        "service": "Application",
        "title": "Subject",
    }
    preview = preview_of(store, "unknown_header.csv", mapping=mapping)
    assert not preview.needs_mapping and preview.source == "generic"
    rows = rows_of(preview)
    assert rows["generic:T-1001"]["priority"] == 1
    assert rows["generic:T-1001"]["restored_at"] == datetime(2025, 7, 14, 17, 0)
    with pytest.raises(IngestError, match=r"column 'Nope'.*'Ticket', 'Raised'"):
        preview_of(store, "unknown_header.csv", mapping={"id": "Nope", "opened": "Raised"})
    with pytest.raises(IngestError, match="Unknown field 'colour'"):
        preview_of(store, "unknown_header.csv", mapping={"colour": "Sev"})


def test_suggestions_never_use_a_column_twice():
    suggestion = suggest_mapping(["id", "created", "created"])
    assert suggestion == {"id": "id", "opened": "created"}


# -- encodings, delimiters, quoting ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter"),
    [
        ("utf8_bom.csv", "UTF-8 with BOM", ","),
        ("utf16le_bom.csv", "UTF-16 LE", "\t"),
        ("utf16be_bom.csv", "UTF-16 BE", ","),
    ],
)
def test_byte_order_marks_and_utf16(store, name, encoding, delimiter):
    preview = preview_of(store, name)
    assert (preview.encoding, preview.delimiter, preview.format) == (encoding, delimiter, "generic")
    assert preview.columns[0] == "incident_id"
    titles = {row["title"] for row in preview.accepted.to_pylist()}
    assert titles == {"Café menu app down", "Naïve retry storm"}


def test_windows_1252_with_semicolons_and_dotted_day_first_dates(store):
    preview = preview_of(store, "cp1252_semicolon.csv")
    assert (preview.encoding, preview.delimiter, preview.format) == ("Windows-1252", ";", "servicenow")
    assert preview.date_order == "day-first"
    rows = rows_of(preview)
    assert rows["servicenow:INC0030001"]["title"] == "Café terminals – card refunds of 5 € fail"
    assert rows["servicenow:INC0030001"]["opened_at"] == datetime(2025, 7, 14, 15, 42)
    assert rows["servicenow:INC0030002"]["opened_at"] == datetime(2025, 8, 3, 9, 0)
    assert rows["servicenow:INC0030002"]["title"] == "Kündigungsformular lädt nicht"


def test_tab_delimited_text_with_commas_inside_cells(store):
    preview = preview_of(store, "tab_delimited.csv")
    assert preview.delimiter == "\t"
    assert rows_of(preview)["generic:T-1"]["title"] == "Tabs, with a comma"


def test_quoted_newlines_keep_row_numbers_as_a_spreadsheet_counts_them(store):
    preview = preview_of(store, "quoted_newlines.csv")
    rows = rows_of(preview)
    assert rows["generic:Q-1"]["title"] == "Checkout outage\ncustomers could not pay"
    assert "\n\nSecond paragraph" in rows["generic:Q-2"]["title"]
    # Q-3 is the third data row (row 4) however many lines the cells above span.
    assert (4, "restored_at", "error", "restored before opened") in problems_of(preview)
    assert rows["generic:Q-4"]["row"] == 5


def test_blank_lines_count_as_rows_and_are_skipped(store):
    preview = preview_of(store, "blank_lines.csv")
    assert (preview.rows_read, preview.blank_rows, preview.incidents) == (4, 2, 3)
    rows = rows_of(preview)
    assert (rows["generic:B-2"]["row"], rows["generic:B-4"]["row"]) == (4, 7)
    assert (5, "opened_at", "error", "unparseable date") in problems_of(preview)


def test_null_markers_and_padding(store):
    rows = rows_of(preview_of(store, "null_markers.csv"))
    first, second = rows["generic:N-1"], rows["generic:N-2"]
    assert (first["service_name"], first["priority_raw"], first["restored_at"], first["resolved_at"]) == (
        None,
        None,
        None,
        None,
    )
    assert (second["title"], second["service_id"], second["priority_raw"]) == ("padded", "svc-mail", None)
    assert second["opened_at"] == datetime(2025, 7, 15, 9, 10)


def test_ragged_rows(store):
    preview = preview_of(store, "ragged_rows.csv")
    problems = problems_of(preview)
    assert (
        2,
        "",
        "warning",
        "row has fewer fields than the header's 8: the missing ones are empty",
    ) in problems
    assert (3, "", "error", "row has more fields than the header's 8: values may be shifted") in problems
    assert set(rows_of(preview)) == {"generic:R-1", "generic:R-3"}


# -- dates -------------------------------------------------------------------------------------------


def test_mixed_date_formats_in_one_file(store):
    preview = preview_of(store, "mixed_dates.csv")
    assert preview.rejected == 0
    opened = {row["incident_id"]: row["opened_at"] for row in preview.accepted.to_pylist()}
    with_seconds, without_seconds = datetime(2025, 7, 14, 15, 42, 7), datetime(2025, 7, 14, 15, 42)
    assert opened == {
        "generic:M-1": with_seconds,
        "generic:M-2": with_seconds,
        "generic:M-3": with_seconds,
        "generic:M-4": without_seconds,
        "generic:M-5": without_seconds,
        "generic:M-6": with_seconds,
        "generic:M-7": with_seconds,
        "generic:M-8": datetime(2025, 7, 14),
        "generic:M-9": with_seconds,
        "generic:M-10": without_seconds,
    }
    assert preview.date_order == "day-first"
    assert preview.date_styles["epoch seconds"] == 1 and preview.date_styles["ISO 8601 with offset"] == 2


# Values of every shape, in one column, for the ISO fast path: the common ISO shape, ISO of that
# shape that is no real time, look-alikes that are not ISO (a letter, full-width digits), and every
# other shape the full parser reads or refuses.
_SHAPES = [
    "2025-07-14 15:42:07",
    "2025-07-14T15:42:07",
    "2025-02-30 10:00:00",
    "2025-13-01 10:00:00",
    "2025-07-14 24:00:00",
    "2025-07-1a 15:42:07",
    "\uff12\uff10\uff12\uff15-07-14 15:42:07",
    "\u0662\u0660\u0662\u0665-07-14 15:42:07",
    "2025-07-14t15:42:07",
    "2025-07-14\t15:42:07",
    "2025-07-14 15:42:0?",
    "[025-07-14 15:42:07",
    "2025-07-14 15:42:07.250",
    "2025-07-14T15:42:07+02:00",
    "2025-07-14 15:42",
    "2025/07/14 15:42:07",
    "2025-07-14",
    "14/07/2025 15:42",
    "14.07.2025 15:42:07",
    "7/14/25 3:42 PM",
    "14/Jul/25 3:42 PM",
    "Jul 14, 2025 3:42 PM",
    "1752507727",
    "1752507727000",
    "2025-07-14 15:42:07 CEST",
    "not a date",
]


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris"])
def test_iso_fast_path_reads_every_value_as_the_full_parser_does(store, tz):
    import duckdb

    from itscm.ingest import dates

    lines = [f'S-{i},"{value}","{value}"' for i, value in enumerate(_SHAPES)]
    data = ("incident_id,opened_at,resolved_at\n" + "\n".join(lines) + "\n").encode()
    preview = read_upload(data, "shapes.csv", store=store, tz=tz, now=NOW)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    dates.install_macros(con)
    formats = dates.formats_for(dates.DAY_FIRST)
    full = dates.parse_sql("CAST($v AS VARCHAR)", formats, convert_zone=tz != "UTC")
    zone = {"tz": tz} if tz != "UTC" else {}
    expected = {
        f"generic:S-{i}": con.execute(f"SELECT {full}", {"v": value} | zone).fetchone()[0]
        for i, value in enumerate(_SHAPES)
    }
    readable = {incident: at for incident, at in expected.items() if at is not None}
    assert len(readable) > 10 and len(expected) - len(readable) >= 4  # both kinds are exercised
    assert {row["incident_id"]: row["opened_at"] for row in preview.accepted.to_pylist()} == readable
    assert {row["incident_id"]: row["resolved_at"] for row in preview.accepted.to_pylist()} == readable
    # Each value the full parser refuses is reported, in both columns, with its row and the value.
    unreadable = [(i + 2, value) for i, value in enumerate(_SHAPES) if expected[f"generic:S-{i}"] is None]
    report = preview.problems[preview.problems["severity"] == "error"]
    assert sorted(zip(report["row"], report["column"], report["reason"], report["value"], strict=True)) == sorted(
        (row, column, "unparseable date (numeric dates in this file are read day-first)", value)
        for row, value in unreadable
        for column in ("opened_at", "resolved_at")
    )
    # Styles count every value once per column, the ones read by the fast path included.
    assert sum(preview.date_styles.values()) == 2 * len(_SHAPES)
    iso_shapes = sum(1 for value in _SHAPES if value[:4].isascii() and value[:4].isdigit() and value[4] in "-/")
    iso_styles = ("ISO 8601", "ISO 8601 with offset", "ISO-like with an unreadable ending")
    assert sum(preview.date_styles.get(style, 0) for style in iso_styles) == 2 * iso_shapes


def test_a_file_of_iso_dates_only_reads_them_all_in_the_fast_path(store):
    data = b"incident_id,opened_at\nF-1,2025-07-14 15:42:07\nF-2,2025-07-14T15:42:08\nF-3,2025-02-30 10:00:00\n"
    preview = read_upload(data, "iso.csv", store=store, now=NOW)
    assert preview.date_styles == {"ISO 8601": 3}
    assert preview.date_order == "unambiguous"
    assert [row["opened_at"] for row in preview.accepted.to_pylist()] == [
        datetime(2025, 7, 14, 15, 42, 7),
        datetime(2025, 7, 14, 15, 42, 8),
    ]
    row_problems = [problem for problem in problems_of(preview) if problem[0]]
    assert row_problems == [(4, "opened_at", "error", "unparseable date")]


def test_fields_are_trimmed_of_edge_spaces_only_and_blank_markers_are_missing(store):
    # Each title against what trimming " \t\r\n" and NBSP gives (a form feed or an inner space
    # stays); '', '?' and 'NULL' in any case, once trimmed, are no title.
    titles = [
        "plain",
        " lead",
        "trail ",
        "\u00a0nbsp both\u00a0",
        "\ttab\t",
        "\fform feed",
        "form feed\f",
        "inner  space",
        "é ",
        " é",
        "?",
        " ? ",
        "NuLL",
        "\u00a0null\u00a0",
        "nul",
        "nulls",
        "\u00a0",
        "",
    ]
    lines = [f'T-{i},2025-07-14 10:00:00,"{title}"' for i, title in enumerate(titles)]
    data = ("incident_id,opened_at,title\n" + "\n".join(lines) + "\n").encode()
    preview = read_upload(data, "titles.csv", store=store, now=NOW)

    def cleaned(text: str):
        stripped = text.strip(" \t\r\n\u00a0")
        return None if stripped.lower() in ("", "?", "null") else stripped

    assert {row["incident_id"]: row["title"] for row in preview.accepted.to_pylist()} == {
        f"generic:T-{i}": cleaned(title) for i, title in enumerate(titles)
    }


def test_month_first_is_detected_per_file(store):
    preview = preview_of(store, "month_first.csv")
    assert preview.date_order == "month-first" and preview.date_order_basis.startswith("detected")
    rows = rows_of(preview)
    assert rows["generic:U-1"]["opened_at"] == datetime(2025, 7, 14, 15, 42)
    assert rows["generic:U-2"]["opened_at"] == datetime(2025, 7, 2, 9, 0)


def test_ambiguous_dates_are_assumed_day_first_and_said_so(store):
    preview = preview_of(store, "ambiguous_dates.csv")
    assert preview.date_order == "day-first" and preview.date_order_basis.startswith("assumed")
    assert rows_of(preview)["generic:A-1"]["opened_at"] == datetime(2025, 4, 3, 10, 0)
    assert problems_of(preview)[0][:3] == (None, "", "warning")
    month_first = preview_of(store, "ambiguous_dates.csv", date_order="month-first")
    assert rows_of(month_first)["generic:A-1"]["opened_at"] == datetime(2025, 3, 4, 10, 0)
    assert month_first.date_order_basis == "chosen at upload"


def test_conflicting_date_orders_reject_the_minority(store):
    preview = preview_of(store, "conflicting_dates.csv")
    assert preview.date_order == "day-first" and preview.date_order_basis.startswith("conflicting")
    assert (4, "opened_at", "error", "unparseable date (numeric dates in this file are read day-first)") in (
        problems_of(preview)
    )
    assert preview.incidents == 2


def test_time_zone_chosen_at_upload_converts_to_utc(store):
    summer = preview_of(store, "servicenow_list.csv", tz="europe/paris")
    assert summer.timezone == "Europe/Paris"
    assert rows_of(summer)["servicenow:INC0012345"]["opened_at"] == datetime(2025, 7, 14, 13, 42, 7)
    # Values with their own offset ignore the upload's zone.
    pagerduty = preview_of(store, "pagerduty_incidents.csv", tz="Asia/Tokyo")
    assert rows_of(pagerduty)["pagerduty:1234"]["opened_at"] == datetime(2025, 7, 14, 19, 42, 7)
    with pytest.raises(IngestError, match="Unknown time zone 'Mars/Olympus'"):
        preview_of(store, "servicenow_list.csv", tz="Mars/Olympus")


# -- validation ----------------------------------------------------------------------------------


def test_every_row_bad_is_a_report_not_a_crash(store):
    preview = preview_of(store, "all_rows_bad.csv")
    assert (preview.rows_read, preview.incidents, preview.rejected) == (8, 0, 8)
    assert [problem[:4] for problem in problems_of(preview)] == [
        (2, "incident_id", "error", "missing incident id"),
        (3, "opened_at", "error", "unparseable date"),
        (4, "restored_at", "error", "restored before opened"),
        (5, "opened_at", "error", "opened in the future (after 2025-09-02 12:00 UTC)"),
        (6, "opened_at", "error", "missing opened date"),
        (7, "", "error", "row has more fields than the header's 8: values may be shifted"),
        (8, "resolved_at", "error", "resolved before opened"),
        (9, "opened_at", "error", "opened before 1970: not a plausible incident date"),
    ]
    assert preview.problems["value"].tolist()[1] == "yesterday afternoon"


def test_the_same_id_twice_keeps_the_last_row_and_says_so(store):
    preview = preview_of(store, "duplicate_ids.csv")
    rows = rows_of(preview)
    assert rows["generic:D-1"]["title"] == "Second version wins" and rows["generic:D-1"]["row"] == 4
    assert (2, "incident_id", "warning", "same incident id as row 4, which is kept") in problems_of(preview)
    assert preview.superseded_rows == 1 and preview.incidents == 2


def test_the_problem_report_downloads_as_csv(store):
    preview = preview_of(store, "all_rows_bad.csv")
    report = problems_csv(preview)
    assert report.startswith(
        b"\xef\xbb\xbfrow,column,severity,reason,value\r\n2,incident_id,error,missing incident id,"
    )
    assert report.count(b"\r\n") == len(preview.problems) + 1


def test_the_report_defuses_spreadsheet_formulas(store):
    data = (
        b"incident_id,title,service,priority,opened_at\n"
        b'F-1,x,Email,=HYPERLINK("http://evil"),2025-07-15 08:10\n'
    )
    report = problems_csv(read_upload(data, "f.csv", store=store, now=NOW))
    assert b"'=HYPERLINK" in report


# -- files that are not incident exports ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.csv", "empty.csv is empty"),
        ("header_only.csv", "has a header but no data rows"),
        ("binary_renamed.csv", "contains NUL bytes"),
        ("nul_bytes.csv", "contains NUL bytes"),
        ("xlsx_renamed.csv", "looks like an Excel workbook"),
    ],
)
def test_files_that_cannot_be_read_give_one_clean_error(store, name, message):
    with pytest.raises(IngestError, match=message) as raised:
        preview_of(store, name)
    assert "\n" not in str(raised.value)


def test_the_size_cap(store):
    with pytest.raises(IngestError, match=r"above the upload limit of 0\.0 MB"):
        read_upload(fixture("servicenow_list.csv"), "big.csv", store=store, max_bytes=100)


def test_random_binary_without_nul_is_refused():
    import random

    noise = bytes(random.Random(1).choice(range(1, 32)) for _ in range(4000))
    with pytest.raises(IngestError, match=r"binary|encoding"):
        read_upload(noise, "noise.csv", store=make_store())


def test_an_offset_that_cannot_be_read_rejects_the_date_instead_of_being_ignored(store):
    data = (
        b"incident_id,opened_at\n"
        b"O-1,2025-07-14T10:00:00-0530\n"
        b"O-2,2025-07-14T10:00:00+99:99\n"
        b"O-3,2025-07-14 10:00:00 CEST\n"
        b"O-4,2025-07-14 10:00:00 UTC\n"
    )
    preview = read_upload(data, "offsets.csv", store=store, now=NOW)
    assert {row["incident_id"]: row["opened_at"] for row in preview.accepted.to_pylist()} == {
        "generic:O-1": datetime(2025, 7, 14, 15, 30),
        "generic:O-4": datetime(2025, 7, 14, 10, 0),
    }
    assert [(row, reason) for row, _, _, reason in problems_of(preview) if row] == [
        (3, "unparseable date"),
        (4, "unparseable date"),
    ]


def test_an_unclosed_quote_is_flagged(store):
    data = b'incident_id,opened_at,title\nQ-1,2025-07-14 10:00,"never closed\nQ-2,2025-07-15 10:00,lost\n'
    preview = read_upload(data, "quote.csv", store=store, now=NOW)
    assert preview.rows_read == 1  # every reader swallows the rest of the file into the open cell
    warning = problems_of(preview)[0]
    assert warning[:3] == (None, "", "warning") and "odd number of quote characters" in warning[3]
    assert "(row 2)" in warning[3]


def test_accepted_rows_are_in_file_order_even_when_the_engine_returns_them_shuffled():
    import pyarrow as pa

    from itscm.ingest.validate import in_file_order

    shuffled = pa.Table.from_batches(
        [pa.record_batch({"row": [5, 2], "id": ["e", "b"]}), pa.record_batch({"row": [9, 3], "id": ["i", "c"]})]
    )
    assert in_file_order(shuffled).to_pydict() == {"row": [2, 3, 5, 9], "id": ["b", "c", "e", "i"]}
    in_order = pa.table({"row": [2, 3, 7], "id": ["b", "c", "g"]})
    assert in_file_order(in_order) is in_order
    assert in_file_order(in_order.slice(0, 0)).num_rows == 0


def test_accepted_rows_in_runs_are_put_in_file_order_without_a_sort():
    import pyarrow as pa

    from itscm.ingest.validate import in_file_order

    # Blocks moved whole, as a parallel join returns them: spliced back, the columns not copied.
    blocks = pa.Table.from_batches(
        [
            pa.record_batch({"row": [7, 8, 9], "id": ["g", "h", "i"]}),
            pa.record_batch({"row": [2, 3], "id": ["b", "c"]}),
            pa.record_batch({"row": [5, 6], "id": ["e", "f"]}),
        ]
    )
    ordered = in_file_order(blocks)
    assert ordered.to_pydict() == {"row": [2, 3, 5, 6, 7, 8, 9], "id": ["b", "c", "e", "f", "g", "h", "i"]}
    # Blocks inside one batch; rows mixed one by one (gathered); a repeated row number.
    one_batch = pa.table({"row": [4, 5, 1, 2, 6], "id": ["d", "e", "a", "b", "f"]})
    assert in_file_order(one_batch).to_pydict() == {"row": [1, 2, 4, 5, 6], "id": ["a", "b", "d", "e", "f"]}
    mixed = pa.table({"row": list(range(1001, 0, -2)) + list(range(2, 1002, 2))})
    assert in_file_order(mixed)["row"].to_pylist() == list(range(1, 1002))
    repeated = pa.table({"row": [3, 4, 2, 3], "id": ["c", "d", "b", "x"]})
    assert in_file_order(repeated).to_pydict() == {"row": [2, 3, 3, 4], "id": ["b", "c", "x", "d"]}


def test_a_large_file_keeps_its_rowsin_file_order(store):
    lines = [f"L-{i},2025-07-{1 + i % 28:02d} 10:00:00" for i in range(30_000)]
    lines[100] = "L-bad,not a date"
    data = ("incident_id,opened_at\n" + "\n".join(lines) + "\n").encode()
    preview = read_upload(data, "large.csv", store=store, now=NOW)
    rows = preview.accepted["row"].to_pylist()
    assert rows == sorted(rows) and len(rows) == 29_999 and 102 not in rows


def test_the_upload_is_written_to_the_ram_folder_only_when_it_has_room(store, tmp_path, monkeypatch):
    import os
    from collections import namedtuple

    import itscm.ingest.preview as preview_module
    import itscm.ingest.reader as reader_module

    used: list = []
    load_raw = reader_module.load_raw

    def recording_load_raw(con, text, **kwargs):
        used.append((kwargs["workdir"], sorted(os.listdir(kwargs["workdir"]))))
        return load_raw(con, text, **kwargs)

    monkeypatch.setattr(preview_module, "load_raw", recording_load_raw)
    data = b"incident_id,opened_at\nR-1,2025-07-14 10:00\nR-2,2025-07-15 10:00\n"

    ram = tmp_path / "ram"
    ram.mkdir()
    monkeypatch.setattr(preview_module, "_MEMORY_BACKED_DIR", ram)
    preview = read_upload(data, "ram.csv", store=store, now=NOW)
    assert preview.incidents == 2
    assert used[-1][0].parent == ram and used[-1][1] == []
    assert list(ram.iterdir()) == []  # nothing left behind

    statvfs = namedtuple("statvfs", "f_bavail f_frsize")
    monkeypatch.setattr(preview_module.os, "statvfs", lambda path: statvfs(1024, 4096))  # 4 MB free
    assert read_upload(data, "full.csv", store=store, now=NOW).incidents == 2
    assert used[-1][0].parent != ram

    monkeypatch.undo()
    monkeypatch.setattr(preview_module, "load_raw", recording_load_raw)
    monkeypatch.setattr(preview_module, "_MEMORY_BACKED_DIR", tmp_path / "missing")
    assert read_upload(data, "none.csv", store=store, now=NOW).incidents == 2
    assert used[-1][0].parent != tmp_path / "missing"
