import datetime as dt
import sys
from pathlib import Path

import pytest

from itscm import store as store_module
from tests import backends
from tests.private_postgres import PrivatePostgres, binaries
from tests.small_org import build_small_org

SMALL_ORG_AS_OF = dt.date(2026, 6, 30)

pytest_plugins = ["tests.xdist_groups"]


@pytest.fixture(scope="session")
def small_org_file(tmp_path_factory):
    """A store file holding the small organisation, built once per test session, whatever the
    backend (the tests of moving a store between the two)."""
    path = tmp_path_factory.mktemp("stores") / "small_org.duckdb"
    build_small_org(path, SMALL_ORG_AS_OF)
    return path


@pytest.fixture(scope="session")
def small_org_path(backend, small_org_file):
    """The small organisation on the chosen backend, built once per test session, for reading
    only: the file, or on DuckLake a lake it was moved to (copy it, `backends.copy_store`, to
    write). A path or a store string: tests pass it to Store() or the command line as it is."""
    return backends.moved_here(small_org_file)


@pytest.fixture
def store_path(small_org_path, tmp_path, monkeypatch):
    """A private copy of the small organisation for tests that write to it, set as the app's
    store (ITSCM_STORE), with the project importable by pages run through AppTest and backups
    taken by the app kept in the test's folder."""
    path = backends.copy_store(small_org_path, tmp_path / "small_org_copy.duckdb")
    monkeypatch.setenv("ITSCM_STORE", str(path))
    monkeypatch.setenv("ITSCM_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    return path


def pytest_addoption(parser):
    parser.addoption("--backend", choices=backends.BACKENDS, default=backends.FILE,
                     help="the backend the store and measure tests make their stores on (tests/backends.py); "
                          "ducklake starts a private PostgreSQL 15")


@pytest.fixture(scope="session", autouse=True)
def backend(request):
    """The chosen backend for the whole session; on DuckLake a private PostgreSQL 15 runs for it
    (tests/private_postgres.py), stopped at the end."""
    chosen = request.config.getoption("--backend")
    if chosen == backends.FILE:
        backends.use(backends.FILE)
        yield chosen
        return
    folder = binaries()
    if folder is None:
        pytest.exit("--backend ducklake needs PostgreSQL 15 (Debian's postgresql-15; `make postgres`)", returncode=2)
    postgres = PrivatePostgres(folder, in_memory=True).start()
    backends.use(backends.DUCKLAKE, postgres)
    try:
        yield chosen
    finally:
        backends.use(backends.FILE)
        postgres.stop()


@pytest.fixture(autouse=True)
def lakes_removed_after_each_test(backend):
    """On DuckLake, the stores a test's pages opened (`open_store`) are closed after it, and the
    lakes the test made are removed: each store holds connections to the private PostgreSQL, which
    has a bounded number of them, and each lake takes memory. (Autouse fixtures come first among a
    test's own, after those of a wider scope: the lakes those made are kept.)"""
    made_before = backends.lakes_made()
    yield
    if backend == backends.DUCKLAKE:
        for store in list(store_module._open_stores.values()):
            store.close()
        _app_store_handles_forgotten()
        backends.drop_lakes_made_since(made_before)


@pytest.fixture(autouse=True)
def main_module_kept():
    """AppTest runs a page as the `__main__` module and leaves it there (Streamlit's script runner
    replaces sys.modules["__main__"]), and a process spawned later in the same worker (the writers'
    bench) runs its parent's main module first: it would run that page, and fail, before its own
    code. Each test gets back the main module it started with."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


def _app_store_handles_forgotten() -> None:
    """The app keeps its store handle in Streamlit's resource cache for the life of the process
    (itscm/ui/cache.py): closed above, it would be handed, closed, to the next test's pages on the
    same lake ("Connection already closed"). Streamlit is only imported by tests of the pages."""
    app_cache = sys.modules.get("itscm.ui.cache")
    if app_cache is not None:
        app_cache._store_handle.clear()


@pytest.fixture(autouse=True)
def no_store_opened(request, monkeypatch):
    """A test marked `no_store` is left out of the DuckLake run, so it must not open a store:
    one that does fails on the file, and its mark has to go."""
    if request.node.get_closest_marker("no_store") is None:
        return

    def refuse(*args, **kwargs):
        raise AssertionError("a test marked no_store opened a store: remove the mark, it needs the DuckLake run")
    monkeypatch.setattr(store_module.Store, "__init__", refuse)


def pytest_collection_modifyitems(config, items):
    """Tests of what only the file has (its lock, its format) are skipped on DuckLake, and those
    only DuckLake has are skipped on the file. On DuckLake, tests that open no store (marked
    `no_store`: parsers, formatting) are not collected at all: they would only run twice."""
    chosen = config.getoption("--backend")
    kept, left_out = [], []
    for item in items:
        if chosen == backends.DUCKLAKE and item.get_closest_marker("no_store"):
            left_out.append(item)
            continue
        kept.append(item)
        for only in backends.BACKENDS:
            if only != chosen and item.get_closest_marker(f"{only}_only"):
                item.add_marker(pytest.mark.skip(reason=f"a test of the {only} backend (--backend {only})"))
    if left_out:
        config.hook.pytest_deselected(items=left_out)
    items[:] = long_tests_first(kept)


def long_tests_first(items: list) -> list:
    """pytest-xdist hands each worker the next test in this order (`make test`): the long ones go
    first, so that none starts last and runs alone on one worker while the other has finished.
    A file's tests stay together, so that its module-scoped fixtures are built once."""
    def is_long(item) -> bool:
        return item.get_closest_marker("long") is not None

    files = list(dict.fromkeys(item.path for item in items))
    with_long = {item.path for item in items if is_long(item)}
    return sorted(items, key=lambda item: (item.path not in with_long, files.index(item.path), not is_long(item)))
