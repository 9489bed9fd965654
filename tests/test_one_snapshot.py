"""Reads held on one snapshot of a lake (Store.one_snapshot, docs/DESIGN.md §19): a measure's reads
check the lake's snapshot once, see one state whatever another process commits meanwhile, and
see this thread's own commits at once."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from itscm import lake_copies
from itscm.access import LOCAL_USER
from itscm.filters import Filters
from itscm.measures.attainment import attainment_summary
from itscm.records import add_supplier
from itscm.store import Store
from tests import backends

pytestmark = pytest.mark.ducklake_only

SUPPLIERS_SQL = "SELECT count(*) FROM suppliers"


@pytest.fixture
def snapshot_checks(monkeypatch):
    """How many times reads began a transaction and checked the lake's snapshot."""
    begun = []
    begin = lake_copies.LakeCopies.begin

    def counted(copies, cursor):
        begun.append(cursor)
        return begin(copies, cursor)

    monkeypatch.setattr(lake_copies.LakeCopies, "begin", counted)
    return begun


def test_a_measure_of_several_reads_checks_the_snapshot_once(small_org_path, snapshot_checks):
    with Store(small_org_path) as store:
        filters = Filters(as_of=dt.date(2026, 6, 30), units=("Payments",))
        attainment_summary(store, filters)   # copies made
        snapshot_checks.clear()
        summary = attainment_summary(store, filters)
        assert summary["events"] > 0
        assert len(snapshot_checks) == 1
        with store.one_snapshot():   # blocks nest: the outermost holds
            attainment_summary(store, filters)
            store.scalar(SUPPLIERS_SQL)
        assert len(snapshot_checks) == 2


def test_reads_in_a_block_keep_their_snapshot_and_the_next_block_sees_the_commit():
    with backends.new_store() as store:
        with store.one_snapshot():
            before = store.scalar(SUPPLIERS_SQL)
            with Store(store.path) as other_process:
                add_supplier(LOCAL_USER, other_process, "Meanwhile Hosting")
            assert store.scalar(SUPPLIERS_SQL) == before
        assert store.scalar(SUPPLIERS_SQL) == before + 1


def test_a_commit_of_this_thread_in_a_block_is_read_at_once():
    with backends.new_store() as store, store.one_snapshot():
        before = store.scalar(SUPPLIERS_SQL)
        add_supplier(LOCAL_USER, store, "Own Commit Hosting")
        assert store.scalar(SUPPLIERS_SQL) == before + 1


def test_a_failed_read_leaves_the_block_reading():
    with backends.new_store() as store, store.one_snapshot():
        before = store.scalar(SUPPLIERS_SQL)
        with pytest.raises(duckdb.Error):
            store.scalar("SELECT no_such_column FROM suppliers")
        assert store.scalar(SUPPLIERS_SQL) == before
