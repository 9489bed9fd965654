import datetime as dt

import pytest

from tests.small_org import build_small_org

SMALL_ORG_AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="session")
def small_org_path(tmp_path_factory):
    """A store file holding the small organisation, built once per test session."""
    path = tmp_path_factory.mktemp("stores") / "small_org.duckdb"
    build_small_org(path, SMALL_ORG_AS_OF)
    return path
