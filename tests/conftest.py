import datetime as dt
import shutil
from pathlib import Path

import pytest

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
