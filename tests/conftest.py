import datetime as dt
import shutil
from pathlib import Path

import pytest

from tests import backends
from tests.private_postgres import PrivatePostgres, binaries
from tests.small_org import build_small_org

SMALL_ORG_AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="session")
def small_org_path(tmp_path_factory):
    """A store file holding the small organisation, built once per test session."""
    path = tmp_path_factory.mktemp("stores") / "small_org.duckdb"
    build_small_org(path, SMALL_ORG_AS_OF)
    return path


@pytest.fixture
def store_path(small_org_path, tmp_path, monkeypatch):
    """A private copy of the small organisation for tests that write to it, set as the app's
    store (ITSCM_STORE), with the project importable by pages run through AppTest and backups
    taken by the app kept in the test's folder."""
    path = tmp_path / "small_org_copy.duckdb"
    shutil.copy(small_org_path, path)
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
    postgres = PrivatePostgres(folder).start()
    backends.use(backends.DUCKLAKE, postgres)
    try:
        yield chosen
    finally:
        backends.use(backends.FILE)
        postgres.stop()


def pytest_collection_modifyitems(config, items):
    """Tests of what only the file has (its lock, its format) are skipped on DuckLake, and those
    only DuckLake has are skipped on the file."""
    chosen = config.getoption("--backend")
    for item in items:
        for only in backends.BACKENDS:
            if only != chosen and item.get_closest_marker(f"{only}_only"):
                item.add_marker(pytest.mark.skip(reason=f"a test of the {only} backend (--backend {only})"))
