"""The fast path (integer service keys, stored outage ends) gives the numbers a direct
computation gives, after imports, updates, undos and name mappings."""

import datetime as dt
import shutil

import pytest

from itscm import ingest
from itscm.filters import Filters
from itscm.measures.attainment import attainment_summary
from itscm.measures.downtime import downtime_summary
from itscm.store import Store
from tests.builders import at

AS_OF = dt.date(2026, 6, 30)
FILTERS = Filters(since=dt.date(2025, 7, 1), until=AS_OF, as_of=AS_OF)

# The definitions of DESIGN section 3, computed straight from the facts on text ids.
DIRECT_ATTAINMENT_SQL = """
    SELECT count(*) FILTER (WHERE s.rto_minutes IS NOT NULL),
           count(*) FILTER (WHERE epoch(coalesce(i.restored_at, i.resolved_at) - i.opened_at) / 60.0 <= s.rto_minutes)
    FROM incidents i LEFT JOIN services s ON s.service_id = i.service_id
    WHERE i.opened_at >= TIMESTAMP '2025-07-01' AND i.opened_at < TIMESTAMP '2026-07-01'
      AND coalesce(i.restored_at, i.resolved_at) < TIMESTAMP '2026-07-01'
"""
DIRECT_DRILLS_SQL = """
    SELECT count(*), count(*) FILTER (WHERE d.rta_minutes <= s.rto_minutes)
    FROM drills d JOIN services s ON s.service_id = d.service_id
    WHERE d.rta_minutes IS NOT NULL AND d.held_on BETWEEN DATE '2025-07-01' AND DATE '2026-06-30'
"""
DIRECT_COST_SQL = """
    SELECT coalesce(sum(greatest(epoch(least(coalesce(i.restored_at, i.resolved_at), TIMESTAMP '2026-07-01')
                                       - greatest(i.opened_at, TIMESTAMP '2025-07-01')), 0) / 3600.0
                        * s.impact_cost_per_hour), 0)
    FROM incidents i JOIN services s ON s.service_id = i.service_id
    WHERE coalesce(i.restored_at, i.resolved_at) IS NOT NULL
"""


def direct(store: Store) -> dict:
    events, attained = store.rows(DIRECT_ATTAINMENT_SQL)[0]
    drill_events, drills_attained = store.rows(DIRECT_DRILLS_SQL)[0]
    return {"events": events + drill_events, "attained": attained + drills_attained,
            "cost": round(store.scalar(DIRECT_COST_SQL), 2)}


def fast(store: Store) -> dict:
    attainment = attainment_summary(store, FILTERS)
    return {"events": attainment["events"], "attained": attainment["attained"],
            "cost": downtime_summary(store, FILTERS)["total"]}


def assert_derived_columns_current(store: Store) -> None:
    assert store.scalar("""
        SELECT count(*) FROM incidents i LEFT JOIN services s ON s.service_id = i.service_id
        WHERE i.service_key IS DISTINCT FROM s.service_key
           OR i.outage_end IS DISTINCT FROM coalesce(i.restored_at, i.resolved_at)
           OR i.rta_minutes IS DISTINCT FROM epoch(coalesce(i.restored_at, i.resolved_at) - i.opened_at) / 60.0
    """) == 0
    assert store.scalar("SELECT count(*) - count(DISTINCT service_key) FROM services") == 0
    assert store.scalar("SELECT count(*) FROM services WHERE service_key IS NULL") == 0


CSV_HEADER = "number,short_description,priority,opened_at,u_restored_at,resolved_at,closed_at,cmdb_ci\n"


def export(rows: list[str]) -> bytes:
    return (CSV_HEADER + "\n".join(rows) + "\n").encode()


@pytest.fixture
def store(small_org_path, tmp_path):
    path = tmp_path / "derived.duckdb"
    shutil.copy(small_org_path, path)
    with Store(path) as opened:
        yield opened


def test_fast_path_equals_direct_computation_through_imports_and_undos(store):
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)

    first = export([
        "INC1,Ledger down,1 - Critical,2026-03-01 10:00:00,2026-03-01 10:50:00,2026-03-01 11:00:00,,CBL-PROD-01",
        "INC2,Portal slow,3 - Moderate,2026-03-02 10:00:00,,2026-03-02 14:00:00,,Customer Portal",
        "INC3,Mystery,3 - Moderate,2026-03-03 10:00:00,2026-03-03 12:00:00,,,NOBODY-KNOWS",
    ])
    result = ingest.commit_upload(store, ingest.read_upload(first, "first.csv", store=store), "test")
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)

    newer = export([  # INC1 restored later, INC2 now has a restore time
        "INC1,Ledger down,1 - Critical,2026-03-01 10:00:00,2026-03-01 12:30:00,2026-03-01 13:00:00,,CBL-PROD-01",
        "INC2,Portal slow,3 - Moderate,2026-03-02 10:00:00,2026-03-02 11:00:00,2026-03-02 14:00:00,,Customer Portal",
    ])
    second = ingest.commit_upload(store, ingest.read_upload(newer, "newer.csv", store=store), "test")
    assert second.updated == 2
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)

    ledger = store.scalar("SELECT service_id FROM services WHERE name = 'Core Ledger'")
    ingest.map_service_name(store, "NOBODY-KNOWS", ledger, by="test")
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)

    ingest.undo_upload(store, second.upload_id, undone_by="test")
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)
    ingest.undo_upload(store, result.upload_id, undone_by="test")
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)


def test_a_service_added_by_hand_gets_a_fresh_key(store):
    before = store.scalar("SELECT max(service_key) FROM services")
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO services (service_id, name, tier, rto_minutes) VALUES ('svc-new', 'New', 1, 60)")
        cursor.execute("INSERT INTO incidents (incident_id, source, service_id, opened_at, restored_at) VALUES "
                       "('test:NEW', 'test', 'svc-new', ?, ?)", [at(AS_OF, 8), at(AS_OF, 9)])
    assert store.scalar("SELECT service_key FROM services WHERE service_id = 'svc-new'") == before + 1
    assert store.rows("SELECT service_key, rta_minutes FROM incidents WHERE incident_id = 'test:NEW'") == [
        (before + 1, 60.0)]
