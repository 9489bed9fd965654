"""Committing uploads, re-uploads, newer exports, undo, service name mapping and saved mappings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pyarrow as pa
import pytest

from itscm import rollup
from itscm.access import Actor
from itscm.ingest import (
    IngestError,
    commit_upload,
    diff_upload,
    list_uploads,
    load_mapping,
    map_service_name,
    save_mapping,
    saved_mappings,
    undo_upload,
    unmatched_service_names,
)
from tests.test_ingest_support import (
    incidents,
    make_failing_store,
    make_store,
    preview_of,
    snapshot,
)

ANA, BO = Actor("ana", "analyst"), Actor("bo", "analyst")


@pytest.fixture
def store():
    store = make_store()
    yield store
    store.close()


def commit(store, name, **options):
    return commit_upload(ANA, store, preview_of(store, name, **options))


def assert_ids_unique(store):
    assert store.rows("SELECT incident_id FROM incidents GROUP BY incident_id HAVING count(*) > 1") == []


# -- commit ------------------------------------------------------------------------------------


def test_commit_inserts_every_accepted_incident_with_its_upload(store):
    preview = preview_of(store, "servicenow_list.csv")
    result = commit_upload(ANA, store, preview)
    assert (result.inserted, result.updated, result.unchanged, result.rejected) == (5, 0, 0, 0)
    assert result.upload_id.startswith("upl-") and preview.sha256[:8] in result.upload_id
    stored = incidents(store)
    assert set(stored) == {f"servicenow:INC001234{n}" for n in range(5, 10)}
    assert {row["upload_id"] for row in stored.values()} == {result.upload_id}
    first = stored["servicenow:INC0012345"]
    assert (first["source"], first["service_id"], first["priority"], first["priority_raw"]) == (
        "servicenow",
        "svc-pay",
        1,
        "1 - Critical",
    )
    assert first["opened_at"] == datetime(2025, 7, 14, 15, 42, 7)
    assert result.as_dict()["unmatched_services"] == [{"name": "Warehouse Scanning", "incidents": 1}]

    uploads = list_uploads(store).to_dict("records")
    assert len(uploads) == 1
    upload = uploads[0]
    assert (upload["upload_id"], upload["uploaded_by"], upload["file_name"], upload["sha256"]) == (
        result.upload_id,
        "ana",
        "servicenow_list.csv",
        preview.sha256,
    )
    assert (
        upload["format"],
        upload["rows_read"],
        upload["inserted"],
        upload["updated"],
        upload["rejected"],
    ) == ("servicenow", 5, 5, 0, 0)
    assert (upload["state"], upload["incidents_now"], upload["can_undo"]) == ("committed", 5, True)


def test_the_json_summary_has_the_documented_keys(store):
    summary = commit(store, "jira_jsm.csv").as_dict()
    assert {
        "format",
        "rows_read",
        "incidents",
        "inserted",
        "updated",
        "unchanged",
        "rejected",
        "warnings",
        "unmatched_services",
    } <= set(summary)
    assert (summary["format"], summary["rows_read"], summary["incidents"]) == ("jira", 4, 4)


def test_re_uploading_the_same_file_changes_nothing(store):
    first = commit(store, "servicenow_list.csv")
    before, version = snapshot(store), store.data_version()
    again = commit(store, "servicenow_list.csv")
    assert again.already_imported == first.upload_id and again.upload_id is None
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    assert f"already imported as upload {first.upload_id}" in again.message
    assert snapshot(store) == before and store.data_version() == version


def test_a_newer_export_updates_changed_incidents_and_keeps_their_prior_version(store):
    first = commit(store, "servicenow_list.csv")
    after_first = incidents(store)
    second = commit(store, "servicenow_list_v2.csv")
    assert (second.inserted, second.updated, second.unchanged) == (1, 2, 3)
    stored = incidents(store)
    assert stored["servicenow:INC0012346"]["restored_at"] == datetime(2025, 7, 15, 10, 40)
    assert stored["servicenow:INC0012348"]["priority"] == 1
    assert stored["servicenow:INC0012350"]["upload_id"] == second.upload_id
    # Unchanged incidents keep the upload they came from.
    assert stored["servicenow:INC0012345"]["upload_id"] == first.upload_id
    priors = store.df("SELECT * FROM incident_prior_versions ORDER BY incident_id").to_dict("records")
    assert [p["incident_id"] for p in priors] == ["servicenow:INC0012346", "servicenow:INC0012348"]
    assert {p["upload_id"] for p in priors} == {second.upload_id}
    assert {p["prior_upload_id"] for p in priors} == {first.upload_id}
    assert priors[1]["priority"] == after_first["servicenow:INC0012348"]["priority"] == 2
    assert_ids_unique(store)


def test_a_file_of_only_known_incidents_still_records_its_upload(store):
    commit(store, "servicenow_list_v2.csv")
    subset = commit(store, "servicenow_list.csv")  # another file: it reverts two incidents
    assert subset.upload_id and (subset.inserted, subset.updated, subset.unchanged) == (0, 2, 3)


def test_dry_run_counts_without_writing(store):
    commit(store, "servicenow_list.csv")
    before = snapshot(store)
    result = diff_upload(store, preview_of(store, "servicenow_list_v2.csv"))
    assert result.dry_run and result.upload_id is None
    assert (result.inserted, result.updated, result.unchanged) == (1, 2, 3)
    assert snapshot(store) == before


def test_nothing_accepted_means_nothing_committed(store):
    before = snapshot(store)
    result = commit(store, "all_rows_bad.csv")
    assert result.upload_id is None and result.rejected == 8 and "nothing was committed" in result.message
    assert snapshot(store) == before


def test_a_preview_needing_a_mapping_cannot_be_committed(store):
    with pytest.raises(IngestError, match="needs a column mapping for id, opened"):
        commit(store, "unknown_header.csv")


def test_incident_ids_stay_unique_across_formats_and_repeats(store):
    for name in (
        "servicenow_list.csv",
        "servicenow_audit.csv",
        "duplicate_ids.csv",
        "servicenow_list_v2.csv",
        "duplicate_ids.csv",
        "jira_jsm.csv",
        "mixed_dates.csv",
    ):
        commit(store, name)
    assert_ids_unique(store)
    assert store.scalar("SELECT count(*) FROM incidents WHERE incident_id = 'generic:D-1'") == 1


def test_a_tampered_preview_with_a_duplicate_id_is_refused(store):
    preview = preview_of(store, "servicenow_list.csv")
    doubled = pa.concat_tables([preview.accepted, preview.accepted.slice(0, 1)])
    with pytest.raises(IngestError, match="same incident id twice"):
        commit_upload(ANA, store, replace(preview, accepted=doubled))
    assert store.scalar("SELECT count(*) FROM incidents") == 0


def test_services_are_matched_when_the_commit_runs(store):
    preview = preview_of(store, "servicenow_list.csv")
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO services (service_id, name, tier) VALUES ('svc-wh', 'Warehouse Scanning', 2)"
        )
        rollup.after_services_changed(cur)
    result = commit_upload(ANA, store, preview)
    assert incidents(store)["servicenow:INC0012348"]["service_id"] == "svc-wh"
    assert len(result.unmatched_services) == 0


def stored_services(store) -> dict[str, str | None]:
    return {
        incident_id: row["service_id"] if isinstance(row["service_id"], str) else None
        for incident_id, row in incidents(store).items()
    }


def test_a_name_mapped_between_preview_and_commit_is_honoured(store):
    preview = preview_of(store, "servicenow_list.csv")
    assert preview.vouched() is not None
    matched = {row["incident_id"]: row["service_id"] for row in preview.accepted.to_pylist()}
    assert matched["servicenow:INC0012348"] is None  # Warehouse Scanning: no service yet
    map_service_name(ANA, store, "Warehouse Scanning", "svc-crm")
    result = commit_upload(ANA, store, preview)
    assert incidents(store)["servicenow:INC0012348"]["service_id"] == "svc-crm"
    assert len(result.unmatched_services) == 0


def test_a_service_removed_between_preview_and_commit_is_no_longer_matched(store):
    preview = preview_of(store, "servicenow_list.csv")
    matched = {row["incident_id"]: row["service_id"] for row in preview.accepted.to_pylist()}
    gone = next(service for service in matched.values() if service is not None)
    with store.transaction() as cur:
        cur.execute("DELETE FROM service_aliases WHERE service_id = $id", {"id": gone})
        cur.execute("DELETE FROM services WHERE service_id = $id", {"id": gone})
    commit_upload(ANA, store, preview)
    assert stored_services(store) == {
        incident_id: None if service == gone else service for incident_id, service in matched.items()
    }


def test_an_unchanged_store_keeps_the_previews_matches_and_a_replaced_table_is_matched_again(store):
    preview = preview_of(store, "servicenow_list.csv")
    commit_upload(ANA, store, preview)
    expected = {row["incident_id"]: row["service_id"] for row in preview.accepted.to_pylist()}
    assert stored_services(store) == expected

    # Rows changed after the preview (here every service id wiped) are not what it checked:
    # the commit matches their names again instead of trusting their service ids.
    store2 = make_store()
    try:
        preview = preview_of(store2, "servicenow_list.csv")
        wiped = preview.accepted.set_column(
            preview.accepted.schema.get_field_index("service_id"),
            "service_id",
            pa.nulls(preview.accepted.num_rows, pa.string()),
        )
        tampered = replace(preview, accepted=wiped)
        assert tampered.vouched() is None
        commit_upload(ANA, store2, tampered)
        assert stored_services(store2) == expected
    finally:
        store2.close()


def test_a_plan_of_new_incidents_is_made_again_when_another_commit_stores_some_of_them(store, monkeypatch):
    # The plan is made before the write transaction; another thread commits the same incidents
    # in between. The transaction must classify again: updates, not a second copy of each id.
    import threading

    from itscm.ingest import commit as commit_module

    preview = preview_of(store, "servicenow_list_v2.csv")
    make_plan = commit_module._make_plan
    calls = []

    def plan_then_let_another_commit_in(cur, **options):
        make_plan(cur, **options)
        if threading.current_thread() is not threading.main_thread():
            return  # the other commit's own plan
        calls.append(
            sorted(cur.execute("SELECT action, count(*) FROM ingest_plan GROUP BY action").fetchall())
        )
        if len(calls) == 1:
            other = threading.Thread(target=commit, args=(store, "servicenow_list.csv"))
            other.start()
            other.join()

    monkeypatch.setattr(commit_module, "_make_plan", plan_then_let_another_commit_in)
    result = commit_upload(ANA, store, preview)
    assert calls == [[("insert", 6)], [("insert", 1), ("unchanged", 3), ("update", 2)]]
    assert (result.inserted, result.updated, result.unchanged) == (1, 2, 3)
    assert_ids_unique(store)
    assert store.scalar("SELECT count(*) FROM incidents") == 6


# -- all or nothing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fail_on",
    ["INSERT INTO incident_prior_versions", "INSERT INTO incidents (", "MERGE INTO incidents", "INSERT INTO uploads"],
)
def test_a_commit_failing_midway_leaves_the_store_unchanged(fail_on):
    store = make_failing_store()
    commit(store, "servicenow_list.csv")
    before, version = snapshot(store), store.data_version()
    store.fail_on = fail_on
    with pytest.raises(RuntimeError, match="injected"):
        commit(store, "servicenow_list_v2.csv")
    assert snapshot(store) == before and store.data_version() == version
    store.fail_on = None
    assert commit(store, "servicenow_list_v2.csv").updated == 2


def temp_objects(store) -> list[str]:
    return [
        name
        for (name,) in store.rows(
            "SELECT table_name FROM duckdb_tables() WHERE temporary "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal"
        )
    ]


def test_a_commit_leaves_no_plan_behind_whether_it_succeeds_or_fails():
    store = make_failing_store()
    commit(store, "servicenow_list.csv")  # new incidents, the preview's services: the plan is a view
    assert temp_objects(store) == []
    store.fail_on = "INSERT INTO incidents ("
    with pytest.raises(RuntimeError, match="injected"):
        commit(store, "jira_jsm.csv")  # new incidents again, failing inside the transaction
    assert temp_objects(store) == []
    store.fail_on = "MERGE INTO incidents"
    with pytest.raises(RuntimeError, match="injected"):
        commit(store, "servicenow_list_v2.csv")  # some stored: the plan is a table
    assert temp_objects(store) == []
    store.fail_on = None
    assert commit(store, "servicenow_list_v2.csv").updated == 2
    assert temp_objects(store) == []


def test_an_undo_failing_midway_leaves_the_store_unchanged():
    store = make_failing_store()
    commit(store, "servicenow_list.csv")
    second = commit(store, "servicenow_list_v2.csv")
    before = snapshot(store)
    store.fail_on = "UPDATE uploads"
    with pytest.raises(RuntimeError, match="injected"):
        undo_upload(BO, store, second.upload_id)
    assert snapshot(store) == before


# -- undo ---------------------------------------------------------------------------------------------


def test_undo_restores_exactly_the_state_before_the_upload(store):
    empty = snapshot(store)
    first = commit(store, "servicenow_list.csv")
    after_first = snapshot(store)
    second = commit(store, "servicenow_list_v2.csv")

    undone = undo_upload(BO, store, second.upload_id)
    assert (undone.deleted, undone.restored) == (1, 2)
    now = snapshot(store)
    assert now["incidents"] == after_first["incidents"]
    assert now["incident_prior_versions"] == after_first["incident_prior_versions"]
    uploads = list_uploads(store).set_index("upload_id")
    assert uploads.loc[second.upload_id, "state"] == "undone"
    assert uploads.loc[second.upload_id, "undone_by"] == "bo"
    assert uploads.loc[first.upload_id, "state"] == "committed"

    undo_upload(BO, store, first.upload_id)
    assert snapshot(store, ("incidents", "incident_prior_versions")) == {
        table: empty[table] for table in ("incidents", "incident_prior_versions")
    }


def test_undoing_an_upload_that_a_later_one_built_on_is_refused(store):
    first = commit(store, "servicenow_list.csv")
    second = commit(store, "servicenow_list_v2.csv")
    before = snapshot(store)
    with pytest.raises(IngestError, match=f"cannot be undone: later upload.*{second.upload_id}.*2 incident"):
        undo_upload(BO, store, first.upload_id)
    assert snapshot(store) == before
    listed = list_uploads(store).set_index("upload_id")
    assert listed.loc[first.upload_id, "undo_blocked_by"] == second.upload_id
    assert not listed.loc[first.upload_id, "can_undo"]
    undo_upload(BO, store, second.upload_id)
    assert list_uploads(store).set_index("upload_id").loc[first.upload_id, "can_undo"]
    undo_upload(BO, store, first.upload_id)
    assert store.scalar("SELECT count(*) FROM incidents") == 0


def test_an_upload_that_touched_other_incidents_does_not_block_undo(store):
    first = commit(store, "servicenow_list.csv")
    commit(store, "jira_jsm.csv")
    assert undo_upload(BO, store, first.upload_id).deleted == 5
    assert store.scalar("SELECT count(*) FROM incidents") == 4


def test_undo_twice_or_of_an_unknown_upload_is_refused(store):
    first = commit(store, "servicenow_list.csv")
    undo_upload(BO, store, first.upload_id)
    with pytest.raises(IngestError, match=r"already undone .* by bo"):
        undo_upload(BO, store, first.upload_id)
    with pytest.raises(IngestError, match="No upload 'upl-nope'"):
        undo_upload(BO, store, "upl-nope")


def test_an_undone_file_can_be_imported_again(store):
    first = commit(store, "servicenow_list.csv")
    undo_upload(BO, store, first.upload_id)
    again = commit(store, "servicenow_list.csv")
    assert again.already_imported is None and again.inserted == 5


def test_the_same_file_after_a_newer_one_sets_incidents_back_and_says_so(store):
    first = commit(store, "servicenow_list.csv")
    commit(store, "servicenow_list_v2.csv")
    again = commit(store, "servicenow_list.csv")
    assert again.upload_id and again.updated == 2
    assert f"imported before as upload {first.upload_id}" in again.message


# -- service names ---------------------------------------------------------------------------------


def test_unmatched_names_are_listed_and_mapping_one_fixes_every_incident(store):
    commit(store, "servicenow_list.csv")
    commit(store, "jira_jsm.csv")
    commit(store, "pagerduty_incidents.csv")
    unmatched = unmatched_service_names(store).to_dict("records")
    assert [(row["service_name"], row["incidents"]) for row in unmatched] == [
        ("Intranet", 1),
        ("Mail Relay", 1),
        ("Warehouse Scanning", 1),
    ]

    version = store.data_version()
    updated = map_service_name(ANA, store, "  mail relay ", "svc-mail")
    assert updated == 1 and store.data_version() == version + 1
    assert incidents(store)["pagerduty:1235"]["service_id"] == "svc-mail"
    assert store.rows(
        "SELECT alias, alias_key, service_id, origin FROM service_aliases WHERE alias_key = 'mail relay'"
    ) == [("mail relay", "mail relay", "svc-mail", "mapped by analyst")]
    assert "Mail Relay" not in set(unmatched_service_names(store)["service_name"])
    # The next upload with that name matches at once.
    data = b"incident_id,opened_at,service\nZ-1,2025-07-20 10:00,MAIL RELAY\n"
    from itscm.ingest import read_upload

    preview = read_upload(data, "z.csv", store=store)
    assert preview.accepted.to_pylist()[0]["service_id"] == "svc-mail"


def test_mapping_also_fixes_prior_versions_so_undo_keeps_the_match(store):
    commit(store, "servicenow_list.csv")
    second = commit(store, "servicenow_list_v2.csv")
    map_service_name(ANA, store, "Warehouse Scanning", "svc-crm")
    undo_upload(BO, store, second.upload_id)
    assert incidents(store)["servicenow:INC0012348"]["service_id"] == "svc-crm"


def test_mapping_refusals(store):
    with pytest.raises(IngestError, match="No service with id 'svc-nope'"):
        map_service_name(ANA, store, "Intranet", "svc-nope")
    with pytest.raises(IngestError, match="already names service 'svc-pay'"):
        map_service_name(ANA, store, "PAY-GW-PROD", "svc-mail")
    with pytest.raises(IngestError, match="service name to map"):
        map_service_name(ANA, store, "  ", "svc-mail")
    # Mapping a name to the service it already names is harmless.
    assert map_service_name(ANA, store, "Payments API", "svc-pay") == 0
    assert store.scalar("SELECT count(*) FROM service_aliases WHERE alias_key = 'payments api'") == 1


# -- saved mappings ------------------------------------------------------------------------------------


ACME = {
    "id": "Ticket",
    "opened": "Raised",
    "restored": "Service back",
    "resolved": "Fixed",
    "priority": "Sev",
    "service": "Application",
    "title": "Subject",
}


def test_a_saved_mapping_is_used_for_the_next_file_with_that_header(store):
    save_mapping(ANA, store, "Acme ITSM", ACME)
    assert load_mapping(store, "acme itsm") == ("Acme ITSM", ACME)
    listed = saved_mappings(store).to_dict("records")
    assert [(row["name"], row["mapping"], row["created_by"]) for row in listed] == [
        ("Acme ITSM", ACME, "ana")
    ]

    preview = preview_of(store, "unknown_header.csv")
    assert not preview.needs_mapping
    assert (preview.format, preview.mapping_name, preview.source, preview.stored_format) == (
        "custom",
        "Acme ITSM",
        "acme-itsm",
        "custom:Acme ITSM",
    )
    result = commit_upload(ANA, store, preview)
    assert set(incidents(store)) == {"acme-itsm:T-1001", "acme-itsm:T-1002"}
    assert list_uploads(store).loc[0, "format"] == "custom:Acme ITSM" and result.inserted == 2


def test_reading_with_a_mapping_just_saved_uses_its_name_for_the_ids(store):
    save_mapping(ANA, store, "Acme ITSM", ACME)
    preview = preview_of(store, "unknown_header.csv", mapping=dict(ACME))
    assert (preview.mapping_name, preview.source) == ("Acme ITSM", "acme-itsm")
    unsaved = preview_of(store, "unknown_header.csv", mapping={"id": "Ticket", "opened": "Raised"})
    assert (unsaved.mapping_name, unsaved.source) == (None, "generic")


def test_saving_again_replaces_and_bad_mappings_are_refused(store):
    save_mapping(ANA, store, "acme", ACME)
    save_mapping(BO, store, "ACME", {"id": "Ticket", "opened": "Raised"})
    assert saved_mappings(store)["name"].tolist() == ["ACME"]
    with pytest.raises(IngestError, match="must name the column for opened"):
        save_mapping(ANA, store, "x", {"id": "Ticket"})
    with pytest.raises(IngestError, match="built-in format"):
        save_mapping(ANA, store, "jira", ACME)
    with pytest.raises(IngestError, match="Unknown field"):
        save_mapping(ANA, store, "y", ACME | {"colour": "Sev"})
    with pytest.raises(IngestError, match=r"No saved mapping named 'nope' \(saved mappings: ACME\)"):
        preview_of(store, "unknown_header.csv", mapping_name="nope")
