"""The one declaration of the incident columns (itscm/incident_columns.py) against what uses it:
the migrated store, the import's fields and rows, the preview, and the rollup's upkeep."""

from __future__ import annotations

import re

import pytest

from itscm import incident_columns, rollup
from itscm.access import Actor
from itscm.incident_columns import (
    COLUMNS,
    DERIVED,
    DERIVED_FROM,
    FACT,
    FACT_COLUMNS,
    FACTS_ARROW_SCHEMA,
    FILE_FIELDS,
    PRIOR_VERSION_COLUMNS,
    PROVENANCE,
)
from itscm.ingest import commit_upload, formats, undo_upload
from itscm.ingest.validate import ACCEPTED_COLUMNS, ACCEPTED_SCHEMA
from itscm.store import Store
from tests import backends
from tests.test_ingest_support import make_store, preview_of


def table_columns(store: Store, table: str) -> list[tuple[str, str, bool]]:
    return [
        (name, data_type, nullable == "YES")
        for name, data_type, nullable in store.rows(
            """
            SELECT column_name, data_type, is_nullable FROM information_schema.columns
            WHERE table_schema = 'main' AND table_name = $table ORDER BY ordinal_position
            """,
            {"table": table},
        )
    ]


def declared(columns) -> list[tuple[str, str, bool]]:
    return [(column.name, column.duckdb_type, column.nullable) for column in columns]


# -- the migrated store ------------------------------------------------------------------------


def test_a_fresh_store_has_the_declared_incident_columns_in_order():
    with backends.new_store() as store:
        assert table_columns(store, "incidents") == declared(COLUMNS)
        assert table_columns(store, "incident_prior_versions") == declared(PRIOR_VERSION_COLUMNS)


def test_a_changed_declaration_no_longer_matches_the_store():
    # The check above can fail: a type, a name or an order that differs is seen.
    with backends.new_store() as store:
        stored = table_columns(store, "incidents")
    retyped = [(name, "BIGINT" if name == "priority" else kind, null) for name, kind, null in declared(COLUMNS)]
    assert stored != retyped
    assert stored != declared(reversed(COLUMNS))


# -- the declaration itself --------------------------------------------------------------------


def test_every_column_has_a_kind_and_a_meaning_and_names_are_unique():
    assert all(column.kind in (FACT, PROVENANCE, DERIVED) for column in (*COLUMNS, *PRIOR_VERSION_COLUMNS))
    assert all(column.meaning.strip() for column in (*COLUMNS, *PRIOR_VERSION_COLUMNS))
    assert len({column.name for column in COLUMNS}) == len(COLUMNS)
    assert len({column.name for column in PRIOR_VERSION_COLUMNS}) == len(PRIOR_VERSION_COLUMNS)
    # a prior version keeps every fact, as the incidents table has it
    assert [column for column in PRIOR_VERSION_COLUMNS if column.kind == FACT] == [
        column for column in COLUMNS if column.kind == FACT
    ]
    # only facts are read from a file
    assert all(column.kind == FACT for column in COLUMNS if column.field)


def test_the_facts_behind_the_derived_columns_and_the_rollup_are_facts():
    assert set(DERIVED_FROM) <= set(FACT_COLUMNS)
    assert len(set(DERIVED_FROM)) == len(DERIVED_FROM)


def test_the_facts_hash_of_the_rollup_upkeep_names_exactly_the_declared_facts():
    # The commit hands the upkeep the changed versions' DERIVED_FROM columns; the upkeep hashes
    # them into the facts stamp it compares with the incidents'. If the two lists differ, every
    # write falls back to a full refresh (or fails).
    hashed = re.search(r"hash\(([^)]*)\)", rollup._INCIDENT_FACTS_HASH)
    assert hashed is not None
    assert tuple(name.strip() for name in hashed.group(1).split(",")) == DERIVED_FROM


def test_the_derived_columns_are_the_ones_the_upkeep_fills():
    # service_key needs a join, so derived_values_sql leaves it out.
    assert set(rollup.derived_values_sql("i")) | {"service_key"} == set(incident_columns.DERIVED_COLUMNS)


# -- the import --------------------------------------------------------------------------------


def test_the_mapping_fields_are_the_declared_file_fields_and_updated():
    assert set(formats.FIELDS) == {*FILE_FIELDS, "updated"}
    assert len(set(formats.FIELDS)) == len(formats.FIELDS)
    assert formats.REQUIRED_FIELDS == ("id", "opened")
    assert formats.DATE_FIELDS == ("opened", "restored", "resolved", "closed", "updated")
    assert set(formats.FIELD_LABELS) == set(formats.FIELDS)
    assert set(formats._SUGGESTION_PATTERNS) == set(formats.FIELDS)


def test_every_format_reads_only_known_fields():
    for fmt in formats.FORMATS:
        assert set(fmt.columns) <= set(formats.FIELDS), fmt.name


@pytest.fixture
def store():
    store = make_store()
    yield store
    store.close()


def test_accepted_rows_have_the_declared_layout_and_types(store):
    assert ACCEPTED_SCHEMA.names == ACCEPTED_COLUMNS
    assert ACCEPTED_SCHEMA.remove(0) == FACTS_ARROW_SCHEMA
    for name in ("servicenow_list.csv", "jira_jsm.csv", "pagerduty_incidents.csv", "opsgenie_alerts.csv"):
        preview = preview_of(store, name)
        assert preview.incidents > 0
        assert preview.accepted.schema == ACCEPTED_SCHEMA, name


def test_a_preview_waiting_for_a_mapping_has_the_same_layout_with_no_rows(store):
    preview = preview_of(store, "unknown_header.csv")
    assert preview.needs_mapping
    assert preview.accepted.num_rows == 0
    assert preview.accepted.schema == ACCEPTED_SCHEMA


# -- the commit and the rollup upkeep ------------------------------------------------------------


def test_commits_and_undo_keep_the_facts_stamp_current_without_a_refresh(store, monkeypatch):
    """Each write tells the upkeep exactly what changed, with the declared facts, so no refresh or
    rebuild runs and the stamp and rollup agree with a full rebuild (a wrong list of facts would not)."""
    ana = Actor("ana", "analyst")
    fallbacks = []
    for name in ("refresh", "rebuild"):
        monkeypatch.setattr(rollup, name, lambda *args, name=name, **kwargs: fallbacks.append(name))
    first = commit_upload(ana, store, preview_of(store, "servicenow_list.csv"))
    newer = commit_upload(ana, store, preview_of(store, "servicenow_list_v2.csv"))
    assert (first.inserted, newer.inserted, newer.updated) == (5, 1, 2)
    undo_upload(ana, store, newer.upload_id)
    assert fallbacks == []
    with store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []
