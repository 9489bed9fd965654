"""One data version per script run (itscm/ui/cache.py): a page run reads the store's version once
and keys every cached read on it, sees its own process's commits at once, and another process's
from its next run."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm.access import LOCAL_USER
from itscm.records import add_supplier
from itscm.store import Store
from itscm.ui.cache import hold_run_data_version, run_data_version
from tests import backends
from tests.conftest import SMALL_ORG_AS_OF

ROOT = Path(__file__).resolve().parent.parent


def test_a_warm_page_run_reads_the_data_version_once(small_org_path, monkeypatch):
    monkeypatch.setenv("ITSCM_STORE", str(small_org_path))
    monkeypatch.syspath_prepend(str(ROOT))
    app = AppTest.from_file(str(ROOT / "pages" / "Overview.py"), default_timeout=60)
    app.query_params["as_of"] = SMALL_ORG_AS_OF.isoformat()
    app.run()   # cold: fills the caches
    reads = []
    read_version = Store.data_version

    def counted(store, cursor=None):
        reads.append(cursor)
        return read_version(store, cursor)

    monkeypatch.setattr(Store, "data_version", counted)
    app.run()
    assert not app.exception
    # Before, each of its eight cached reads asked it (on a lake, a catalog query each).
    assert reads == [None]


def test_a_held_version_ends_with_a_commit_of_this_process():
    with backends.new_store() as store:
        held = store.data_version()
        hold_run_data_version(store)
        assert run_data_version(store) == held
        add_supplier(LOCAL_USER, store, "Held Version Hosting")
        assert run_data_version(store) == store.data_version() != held


def test_a_version_held_for_one_handle_is_not_another_ones(small_org_path, tmp_path):
    with backends.new_store() as store, Store(backends.copy_store(small_org_path, tmp_path / "other.duckdb")) as other:
        # Alike in all the hold compares but the handle: neither has committed here.
        assert other.data_version() != store.data_version() and other.commits_here == store.commits_here == 0
        hold_run_data_version(store)
        assert run_data_version(other) == other.data_version()


@pytest.mark.ducklake_only
def test_another_process_commit_shows_from_the_next_run():
    with backends.new_store() as store:
        hold_run_data_version(store)
        held = run_data_version(store)
        with Store(store.path) as other_process:   # another handle on the lake: as another process would
            add_supplier(LOCAL_USER, other_process, "Next Run Hosting")
        assert run_data_version(store) == held   # the run keeps the state it started on
        hold_run_data_version(store)             # the next run
        assert run_data_version(store) == store.data_version() > held
