"""The fast path (integer service keys, stored outage ends, the monthly rollup) gives the numbers a
direct computation gives, after imports, updates, undos, name mappings and service edits; each
writer keeps it current itself, and `verify` finds it equal to a full rebuild."""

import datetime as dt
import json

import pandas as pd
import pytest

from itscm import access, administration, ingest, rollup
from itscm.access import Actor
from itscm.backup import backup_store, restore_store
from itscm.cli import main
from itscm.demo import build_demo
from itscm.filters import Filters
from itscm.measures import attainment, downtime
from itscm.measures.attainment import attainment_summary
from itscm.measures.downtime import downtime_summary
from itscm.rollup import period_params
from itscm.store import Store
from tests import backends
from tests.builders import OrgBuilder, at

AS_OF = dt.date(2026, 6, 30)
FILTERS = Filters(since=dt.date(2025, 7, 1), until=AS_OF, as_of=AS_OF)
TESTER, BOSS = Actor("test", "analyst"), Actor("boss", "admin")

# The definitions of docs/DESIGN.md §4.2 and §4.3, computed straight from the facts on text ids.
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
    path = backends.copy_store(small_org_path, tmp_path / "derived.duckdb")
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
    result = ingest.commit_upload(TESTER, store, ingest.read_upload(first, "first.csv", store=store))
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)

    newer = export([  # INC1 restored later, INC2 now has a restore time
        "INC1,Ledger down,1 - Critical,2026-03-01 10:00:00,2026-03-01 12:30:00,2026-03-01 13:00:00,,CBL-PROD-01",
        "INC2,Portal slow,3 - Moderate,2026-03-02 10:00:00,2026-03-02 11:00:00,2026-03-02 14:00:00,,Customer Portal",
    ])
    second = ingest.commit_upload(TESTER, store, ingest.read_upload(newer, "newer.csv", store=store))
    assert second.updated == 2
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)

    ledger = store.scalar("SELECT service_id FROM services WHERE name = 'Core Ledger'")
    ingest.map_service_name(TESTER, store, "NOBODY-KNOWS", ledger)
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)

    ingest.undo_upload(TESTER, store, second.upload_id)
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)
    ingest.undo_upload(TESTER, store, result.upload_id)
    assert fast(store) == direct(store)
    assert_derived_columns_current(store)


def test_a_service_added_by_hand_gets_a_fresh_key(store):
    before = store.scalar("SELECT max(service_key) FROM services")
    with store.transaction() as cursor:   # a writer that cannot say what it changed
        cursor.execute("INSERT INTO services (service_id, name, tier, rto_minutes) VALUES ('svc-new', 'New', 1, 60)")
        cursor.execute("INSERT INTO incidents (incident_id, source, service_id, opened_at, restored_at) VALUES "
                       "('test:NEW', 'test', 'svc-new', ?, ?)", [at(AS_OF, 8), at(AS_OF, 9)])
        rollup.refresh(cursor)
    assert store.scalar("SELECT service_key FROM services WHERE service_id = 'svc-new'") == before + 1
    assert store.rows("SELECT service_key, rta_minutes FROM incidents WHERE incident_id = 'test:NEW'") == [
        (before + 1, 60.0)]


# -- the monthly rollup: the period measures read whole months from it -------------------------

ROLLUP_FILTERS = [
    FILTERS,                                                                         # whole months only
    Filters(as_of=AS_OF),                                                            # default: partial ends
    Filters(since=dt.date(2026, 5, 10), until=dt.date(2026, 6, 20), as_of=AS_OF),   # no whole month
    Filters(since=dt.date(2025, 1, 15), until=dt.date(2025, 9, 14), as_of=dt.date(2025, 9, 14)),  # past as-of
    Filters(as_of=AS_OF, tiers=(1, 2)),
    # a past period ending late in a month: its last month from the rollup, less the days after it
    Filters(since=dt.date(2025, 2, 3), until=dt.date(2025, 10, 27), as_of=dt.date(2025, 10, 27)),
    # ... with outages recovered after the period but by the as-of date, and a tier filter
    Filters(since=dt.date(2025, 3, 20), until=dt.date(2025, 11, 25), as_of=AS_OF, tiers=(1, 3)),
]

# Straight from the incidents, row by row (the definitions the rollup must reproduce).
ROW_ATTAINMENT_SQL = f"""
    SELECT month, count(*) FILTER (WHERE rto_minutes IS NOT NULL), count(*) FILTER (WHERE attained),
           count(*) FILTER (WHERE rto_minutes IS NULL), count(*) FILTER (WHERE restore_estimated)
    FROM ({attainment.RECOVERY_EVENTS_SQL}) WHERE source = 'incident' GROUP BY month ORDER BY month
"""
ROW_DOWNTIME_SQL = f"""
    SELECT coalesce(sum(cost), 0), coalesce(sum(breach_cost), 0),
           coalesce(sum(outage_hours) FILTER (WHERE priced IS NOT TRUE), 0), count(*),
           count(*) FILTER (WHERE end_basis = 'ongoing'),
           count(*) FILTER (WHERE end_basis = 'closed without restore time')
    FROM ({downtime.OUTAGES_SQL})
"""
ROW_COST_BY_MONTH_SQL = f"""
    WITH o AS ({downtime.OUTAGES_SQL}),
    months AS (SELECT range AS m FROM range(date_trunc('month', $period_start), $period_end, INTERVAL 1 MONTH))
    SELECT m::DATE, sum(greatest(epoch(least(o.window_end, m + INTERVAL 1 MONTH) - greatest(o.window_start, m)), 0)
                        / 3600.0 * o.cost_per_hour)
    FROM o JOIN months ON o.window_start < m + INTERVAL 1 MONTH AND o.window_end > m
    GROUP BY ALL HAVING sum(o.cost_per_hour) IS NOT NULL ORDER BY 1
"""


def row_level(store: Store, filters: Filters) -> dict:
    params = filters.query_params(store)
    cost, breach, unpriced, incidents, ongoing, closed = store.rows(ROW_DOWNTIME_SQL, params)[0]
    return {"attainment_by_month": [tuple(row) for row in store.rows(ROW_ATTAINMENT_SQL, params)],
            "cost": pytest.approx(cost), "breach_cost": pytest.approx(breach),
            "unpriced_hours": pytest.approx(unpriced), "incidents": incidents, "ongoing": ongoing,
            "closed": closed,
            "cost_by_month": [(month, pytest.approx(value))
                              for month, value in store.rows(ROW_COST_BY_MONTH_SQL, params) if value]}


def from_rollup(store: Store, filters: Filters) -> dict:
    params = period_params(store, filters)
    by_month = store.rows(f"""
        SELECT month, sum(events) FILTER (WHERE rto_minutes IS NOT NULL),
               sum(attained) FILTER (WHERE rto_minutes IS NOT NULL),
               sum(events) FILTER (WHERE rto_minutes IS NULL), sum(estimated)
        FROM ({attainment.EVENT_COUNTS_SQL}) WHERE source = 'incident'
        GROUP BY month HAVING sum(events) <> 0 ORDER BY month
    """, params)
    summary = downtime.downtime_summary(store, filters)
    return {"attainment_by_month": [tuple(int(v or 0) if i else v for i, v in enumerate(row)) for row in by_month],
            "cost": summary["total"], "breach_cost": summary["breach_cost"],
            "unpriced_hours": summary["unpriced_hours"], "incidents": summary["incidents"],
            "ongoing": summary["ongoing"], "closed": summary["closed_without_restore_time"],
            "cost_by_month": [(month.date(), cost) for month, cost in
                              downtime.downtime_by_month(store, filters)[["month", "cost"]].itertuples(index=False)
                              if cost]}


ROW_BREACHES_SQL = f"""
    SELECT incident_id, service, unit, tier, title, opened_at, outage_end, end_basis, rto_minutes,
           round(outage_hours, 2) AS outage_hours, round(breach_hours, 2) AS breach_hours,
           round(breach_cost, 2) AS breach_cost, round(cost, 2) AS cost
    FROM ({downtime.OUTAGES_SQL}) WHERE breach_hours > 0
    ORDER BY breach_cost DESC NULLS LAST, breach_hours DESC, incident_id LIMIT 400
"""
ROW_WORST_SQL = f"""
    SELECT source, event_id, service, unit, tier, title, started_at, recovered_at, restore_estimated,
           round(rta_minutes, 1) AS rta_minutes, rto_minutes, round(rta_rto_ratio, 2) AS rta_rto_ratio
    FROM ({attainment.RECOVERY_EVENTS_SQL}) WHERE NOT attained
    ORDER BY rta_rto_ratio DESC, rta_minutes DESC, event_id LIMIT 400
"""


def assert_lists_match_rows(store: Store, filters: Filters) -> None:
    params = filters.query_params(store)
    expected = store.df(ROW_BREACHES_SQL, params)
    pd.testing.assert_frame_equal(downtime.costliest_breaches(store, filters, limit=400), expected)
    expected = store.df(ROW_WORST_SQL, params)
    pd.testing.assert_frame_equal(attainment.worst_breaches(store, filters, limit=400), expected)


def assert_rollup_matches_rows(store: Store, filters_list: list[Filters] = ROLLUP_FILTERS) -> None:
    for filters in filters_list:
        assert_lists_match_rows(store, filters)
        fast_figures, row_figures = from_rollup(store, filters), row_level(store, filters)
        for key in ("cost", "breach_cost", "unpriced_hours"):
            row_figures[key] = pytest.approx(row_figures[key].expected, rel=1e-9, abs=0.01)
        assert fast_figures == row_figures, filters
    assert store.scalar("SELECT count(*) FROM incident_months") > 0


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("rollup") / "demo.duckdb"
    with Store(path) as store:
        build_demo(store, services=60, incidents=6_000, as_of=AS_OF)
    return backends.moved_here(path)


@pytest.mark.long
def test_rollup_equals_row_by_row_through_imports_mappings_rto_edits_and_undos(demo_path, tmp_path):
    path = backends.copy_store(demo_path, tmp_path / "rollup.duckdb")
    store = Store(path)
    assert_rollup_matches_rows(store)

    name = store.scalar("SELECT alias FROM service_aliases WHERE origin = 'cmdb' ORDER BY alias LIMIT 1")
    first = export([  # a long outage across months and the period start, a short one, an unmatched name
        f"INC1,Long,1 - Critical,2025-05-20 10:00:00,2025-08-03 09:00:00,2025-08-03 10:00:00,,{name}",
        f"INC2,Short,2 - High,2026-06-05 10:00:00,2026-06-05 12:00:00,,,{name}",
        "INC3,Mystery,3 - Moderate,2026-01-31 23:00:00,2026-02-01 03:00:00,,,NOBODY-KNOWS",
        f"INC4,Open,2 - High,2026-06-29 10:00:00,,,,{name}",
    ])
    result = ingest.commit_upload(TESTER, store, ingest.read_upload(first, "first.csv", store=store))
    assert result.inserted == 4
    assert_rollup_matches_rows(store)

    newer = export([  # INC1 now ends a month later, INC4 restored
        f"INC1,Long,1 - Critical,2025-05-20 10:00:00,2025-09-03 09:00:00,2025-09-03 10:00:00,,{name}",
        f"INC4,Open,2 - High,2026-06-29 10:00:00,2026-06-29 18:00:00,,,{name}",
    ])
    second = ingest.commit_upload(TESTER, store, ingest.read_upload(newer, "newer.csv", store=store))
    assert second.updated == 2
    assert_rollup_matches_rows(store)

    ingest.map_service_name(TESTER, store, "NOBODY-KNOWS", store.scalar("SELECT min(service_id) FROM services"))
    assert_rollup_matches_rows(store)

    with store.transaction() as cursor:  # an inventory edit: RTOs change, one is cleared
        cursor.execute("UPDATE services SET rto_minutes = rto_minutes * 2 WHERE tier = 3")
        cursor.execute("UPDATE services SET rto_minutes = NULL "
                       "WHERE service_id = (SELECT min(service_id) FROM services)")
        rollup.after_services_changed(cursor)
    assert_rollup_matches_rows(store)

    ingest.undo_upload(TESTER, store, second.upload_id)
    assert_rollup_matches_rows(store)
    ingest.undo_upload(TESTER, store, result.upload_id)
    assert_rollup_matches_rows(store)

    with store.transaction() as cursor:  # a writer that cannot say what it changed
        cursor.execute("DELETE FROM incidents "
                       "WHERE opened_at >= TIMESTAMP '2026-03-01' AND opened_at < TIMESTAMP '2026-03-04'")
        rollup.refresh(cursor)
    assert_rollup_matches_rows(store)
    store.close()


def rollup_rows(store: Store, sql: str) -> list[tuple]:
    rows = store.rows(f"""
        SELECT service_key, unmatched, unmatched_name, month, opened, estimated, attained, no_end,
               band_1, band_2, band_3, band_4, band_5, band_6, round(outage_seconds, 3), round(breach_seconds, 3)
        FROM ({sql}) WHERE opened <> 0 OR no_end <> 0 OR outage_seconds <> 0 OR breach_seconds <> 0
    """)
    return sorted(rows, key=repr)




def assert_rollup_is_a_full_rebuild(store: Store, *, exact_reach: bool = True) -> None:
    """The rollup and its month marks equal those rebuilt from every stored incident. Without
    `exact_reach` a mark's last month may lie later than the incidents now reach: a change added
    to the marks (not rebuilt) can raise a maximum but not lower it, which only widens a later
    rebuild."""
    marks = store.rows("SELECT * FROM incident_month_marks ORDER BY month")
    assert rollup_rows(store, "SELECT * FROM incident_months") == rollup_rows(store, rollup.FULL_ROLLUP_SQL)
    rebuilt = store.rows(f"SELECT * FROM ({rollup.MONTH_MARKS_SQL}) ORDER BY month")
    if exact_reach:
        assert marks == rebuilt
    else:
        assert [mark[:3] for mark in marks] == [mark[:3] for mark in rebuilt]
        assert all(kept[3] >= fresh[3] for kept, fresh in zip(marks, rebuilt, strict=True))


@pytest.fixture
def watched(demo_path, tmp_path, monkeypatch):
    """A copy of the demo store, and the list of the general refreshes run (each True when it
    searched the incidents for the months that changed): writers that say what they changed
    need none."""
    path = backends.copy_store(demo_path, tmp_path / "watched.duckdb")
    searched = []
    real_search = rollup._rebuild_months_that_changed

    def spy_search(cursor):
        searched[-1] = True
        return real_search(cursor)

    real_refresh = rollup.refresh

    def spy_refresh(cursor):
        searched.append(False)
        real_refresh(cursor)

    monkeypatch.setattr(rollup, "_rebuild_months_that_changed", spy_search)
    monkeypatch.setattr(rollup, "refresh", spy_refresh)
    store = Store(path)
    yield store, searched
    store.close()


def test_an_import_keeps_the_rollup_current_itself_exactly(watched):
    store, searched = watched
    name = store.scalar("SELECT alias FROM service_aliases WHERE origin = 'cmdb' ORDER BY alias LIMIT 1")
    first = export([
        f"INC1,Long,1 - Critical,2025-05-20 10:00:00,2025-08-03 09:00:00,2025-08-03 10:00:00,,{name}",
        "INC3,Mystery,3 - Moderate,2026-01-31 23:00:00,2026-02-01 03:00:00,,,NOBODY-KNOWS",
        f"INC4,Open,2 - High,2026-06-29 10:00:00,,,,{name}",
    ])
    ingest.commit_upload(TESTER, store, ingest.read_upload(first, "first.csv", store=store))
    newer = export([
        f"INC1,Long,1 - Critical,2025-05-20 10:00:00,2025-09-03 09:00:00,2025-09-03 10:00:00,,{name}",
        f"INC4,Open,2 - High,2026-06-29 10:00:00,2026-06-29 18:00:00,,,{name}",
        "INC5,New,2 - High,2026-02-01 10:00:00,2026-02-01 12:00:00,,,NOBODY-KNOWS",
    ])
    second = ingest.commit_upload(TESTER, store, ingest.read_upload(newer, "newer.csv", store=store))
    third = ingest.commit_upload(TESTER, store, ingest.read_upload(first, "again.csv", store=store))
    ingest.undo_upload(TESTER, store, third.upload_id)
    ingest.undo_upload(TESTER, store, second.upload_id)
    # the imports and undos kept it current themselves: no refresh, no month searched for
    assert searched == []
    # INC1 reached September before the undo took it back to August: its mark may still say September
    assert_rollup_is_a_full_rebuild(store, exact_reach=False)
    assert_rollup_matches_rows(store)


def test_an_import_larger_than_its_months_rebuilds_them_itself_exactly(watched):
    # Incidents in months with nothing stored yet (the demo starts in July 2023), some reaching
    # into stored months: more changes than stored incidents in their months, so the commit
    # rebuilds those months from the incidents it wrote instead of adding the change.
    store, searched = watched
    name = store.scalar("SELECT alias FROM service_aliases WHERE origin = 'cmdb' ORDER BY alias LIMIT 1")

    def rows(restore_days: int) -> list[str]:
        lines = []
        for i in range(120):
            opened = dt.datetime(2023, 5, 1, 8) + dt.timedelta(hours=11 * i)  # May and June 2023
            restored = opened + dt.timedelta(days=restore_days * (i % 3), hours=2)
            opened, restored = f"{opened:%Y-%m-%d %H:%M:%S}", f"{restored:%Y-%m-%d %H:%M:%S}"
            service = "NOBODY-KNOWS" if i % 7 == 0 else name
            if i % 10 == 0:  # open: no end yet
                lines.append(f"BIG{i},Open,2 - High,{opened},,,,{service}")
            elif i % 5 == 0:  # resolved only: an estimated end
                lines.append(f"BIG{i},Est,2 - High,{opened},,{restored},,{service}")
            else:
                lines.append(f"BIG{i},Out,1 - Critical,{opened},{restored},,,{service}")
        return lines

    first = ingest.commit_upload(TESTER, store, ingest.read_upload(export(rows(40)), "big.csv", store=store))
    assert first.inserted == 120 and searched == []
    assert_rollup_is_a_full_rebuild(store)
    # the same incidents again, now ending months later: their old spans must be rebuilt too
    second = ingest.commit_upload(TESTER, store, ingest.read_upload(export(rows(75)), "later.csv", store=store))
    assert second.updated > 60 and searched == []
    assert_rollup_is_a_full_rebuild(store)
    assert_rollup_matches_rows(store)
    ingest.undo_upload(TESTER, store, second.upload_id)
    ingest.undo_upload(TESTER, store, first.upload_id)
    assert_rollup_is_a_full_rebuild(store)
    assert_rollup_matches_rows(store)


def test_the_running_month_comes_from_the_rollup_while_nothing_later_is_recorded(tmp_path):
    today = dt.date(2026, 6, 20)
    filters = [Filters(as_of=today), Filters(as_of=today, units=("Retail Banking",)),
               Filters(since=dt.date(2026, 5, 10), until=today, as_of=today)]
    with backends.new_store(tmp_path / "today.duckdb") as store:
        build_demo(store, services=40, incidents=3_000, as_of=today)
        # the period ends on 21 June, and nothing has happened since: June is read whole
        assert period_params(store, filters[0])["body_end"] == dt.datetime(2026, 7, 1)
        assert_rollup_matches_rows(store, filters)

        name = store.scalar("SELECT alias FROM service_aliases WHERE origin = 'cmdb' ORDER BY alias LIMIT 1")
        later = export([f"INC9,Late,1 - Critical,2026-06-19 10:00:00,2026-06-22 09:00:00,,,{name}"])
        ingest.commit_upload(TESTER, store, ingest.read_upload(later, "later.csv", store=store))
        # an outage recorded as ending after the period: June is still read from the rollup, less
        # what it holds after the period, since that is fewer days to read than the 20 before
        assert period_params(store, filters[0])["body_end"] == dt.datetime(2026, 7, 1)
        assert_rollup_matches_rows(store, filters)
        # a period ending early in June reads its days of June from the incidents instead
        early = Filters(since=dt.date(2025, 7, 1), until=dt.date(2026, 6, 8), as_of=today)
        assert period_params(store, early)["body_end"] == dt.datetime(2026, 6, 1)
        assert_rollup_matches_rows(store, [early])
        # a period ending on 1 July, more days of July after it than before, but nothing recorded
        # after it: July is read whole from the rollup, less what it holds after the period
        first_of_july = Filters(as_of=dt.date(2026, 7, 1))
        assert period_params(store, first_of_july)["body_end"] == dt.datetime(2026, 8, 1)
        assert_rollup_matches_rows(store, [first_of_july])


def _tables_scanned(store: Store, sql: str, params: dict) -> list[str]:
    """The tables the plan of `sql` reads, once per read, with the SQL the store runs on its
    backend. On a lake the plan of the cursor that reads the lake's own tables, where each read
    names its table: the reads outside a write see the large tables as views over their files
    (itscm/lake_files.py), whose plan names no table, and read the same ones."""
    def scans(node: dict) -> list[str]:
        table = node.get("extra_info", {}).get("Table") if "SCAN" in node.get("name", "") else None
        return ([table] if table else []) + [name for child in node.get("children", []) for name in scans(child)]

    used = {name: value for name, value in params.items() if f"${name}" in sql}
    plan = json.loads(store.cursor().execute(f"EXPLAIN (FORMAT json) {sql}", used).fetchall()[0][1])
    return [name for node in plan for name in scans(node)]


def test_a_piece_of_the_period_reads_the_incidents_once_on_a_lake_and_twice_on_a_file():
    """On a file the matched incidents are read apart from the others, so that no text column is
    read for them; on a lake each read costs its own catalog queries, so all come in one read
    (rollup.incidents_scan). The period lies within one month: all of it is head."""
    org = OrgBuilder()
    service = org.service(org.unit("Payments"), rto_minutes=60)
    opened = at(dt.date(2026, 6, 10), 9)
    org.incident(service, opened, restored_at=opened + dt.timedelta(hours=2))
    org.incident(None, opened, restored_at=opened + dt.timedelta(hours=3), service_name="Mainframe")
    filters = Filters(since=dt.date(2026, 6, 3), until=dt.date(2026, 6, 20), as_of=AS_OF)
    params = period_params(org.store, filters)
    reads = 1 if org.store.on_ducklake else 2
    assert _tables_scanned(org.store, rollup.period_events_sql(), params).count("incidents") == reads
    assert attainment_summary(org.store, filters)["unmatched"] == 1


# -- verify: every derived value and rollup row against a full rebuild ---------------------------


def verified(store: Store) -> list[dict]:
    with store.read_transaction() as cursor:
        return rollup.differences(cursor)


@pytest.mark.long
def test_verify_finds_nothing_to_fix_after_every_kind_of_write(demo_path, tmp_path):
    path = backends.copy_store(demo_path, tmp_path / "written.duckdb")
    store = Store(path)
    assert verified(store) == []   # as the demo built it
    name = store.scalar("SELECT alias FROM service_aliases WHERE origin = 'cmdb' ORDER BY alias LIMIT 1")
    first = export([
        f"INC1,Long,1 - Critical,2025-05-20 10:00:00,2025-08-03 09:00:00,2025-08-03 10:00:00,,{name}",
        "INC3,Mystery,3 - Moderate,2026-01-31 23:00:00,2026-02-01 03:00:00,,,NOBODY-KNOWS",
        f"INC4,Open,2 - High,2026-06-29 10:00:00,,,,{name}",
    ])
    imported = ingest.commit_upload(TESTER, store, ingest.read_upload(first, "first.csv", store=store))
    assert verified(store) == []
    newer = export([f"INC1,Long,1 - Critical,2025-05-20 10:00:00,2025-09-03 09:00:00,2025-09-03 10:00:00,,{name}"])
    updated = ingest.commit_upload(TESTER, store, ingest.read_upload(newer, "newer.csv", store=store))
    assert updated.updated == 1 and verified(store) == []
    ingest.map_service_name(TESTER, store, "NOBODY-KNOWS", store.scalar("SELECT min(service_id) FROM services"))
    assert not store.scalar("SELECT count(*) FROM incidents WHERE service_name = 'NOBODY-KNOWS' "
                            "AND service_key IS NULL")
    assert verified(store) == []
    busiest = store.scalar("SELECT service_id FROM incidents GROUP BY ALL ORDER BY count(*) DESC LIMIT 1")
    rto = store.scalar("SELECT rto_minutes FROM services WHERE service_id = $id", {"id": busiest})
    assert administration.edit_service(BOSS, store, busiest, {"rto_minutes": rto * 3})
    assert verified(store) == []
    new = OrgBuilder(store).service(None, name="Brand New", rto_minutes=30)
    assert store.scalar("SELECT service_key FROM services WHERE service_id = $id", {"id": new}) is not None
    assert verified(store) == []
    ingest.undo_upload(TESTER, store, updated.upload_id)
    assert verified(store) == []
    ingest.undo_upload(TESTER, store, imported.upload_id)
    assert verified(store) == []
    backup_store(store, tmp_path / "backup")
    store.close()
    restored_at = backends.new_target(tmp_path / "restored.duckdb", migrated=False)
    restore_store(tmp_path / "backup", restored_at)
    with Store(restored_at) as restored:
        assert verified(restored) == []


def test_a_write_that_touches_no_incident_or_service_rto_does_no_upkeep(small_org_path, tmp_path, monkeypatch):
    path = backends.copy_store(small_org_path, tmp_path / "quiet.duckdb")
    calls = []
    for name in ("refresh", "rebuild", "after_incidents_changed", "after_services_changed"):
        monkeypatch.setattr(rollup, name, lambda *args, name=name, **kwargs: calls.append(name))
    admin = access.Actor("boss@example.com", "admin")
    with Store(path) as store:
        ledger = store.scalar("SELECT service_id FROM services WHERE name = 'Core Ledger'")
        access.grant_role(admin, store, "ana@example.com", "analyst")
        administration.set_targets(admin, store, {"coverage_pct": 80, "stale_pct": 10})
        administration.edit_policy(admin, store, {1: {"review_interval_days": 200}})
        administration.edit_service(admin, store, ledger, {"owner": "Someone Else", "impact_cost_per_hour": 1.0})
        ingest.save_mapping(TESTER, store, "my export", {"id": "Ref", "opened": "Opened"})
        administration.record_change(admin, store, "backup", "somewhere")
        assert calls == []
        administration.edit_service(admin, store, ledger, {"rto_minutes": 90})
        assert calls == ["after_services_changed"]


def test_a_new_service_that_incidents_already_name_gets_its_key_into_them_and_the_rollup(small_org_path, tmp_path):
    path = backends.copy_store(small_org_path, tmp_path / "named.duckdb")
    with Store(path) as store:
        with store.transaction() as cursor:   # incidents first, their service after: as a restore might
            cursor.execute("UPDATE incidents SET service_id = 'svc-late', service_key = NULL "
                           "WHERE service_name = 'OLD-MAINFRAME'")
            cursor.execute("INSERT INTO services (service_id, name, tier, rto_minutes) "
                           "VALUES ('svc-late', 'Old Mainframe', 3, 60)")
            rollup.after_services_changed(cursor)
        key = store.scalar("SELECT service_key FROM services WHERE service_id = 'svc-late'")
        assert store.rows("SELECT DISTINCT service_key FROM incidents WHERE service_name = 'OLD-MAINFRAME'") == [(key,)]
        assert store.scalar("SELECT sum(opened) FROM incident_months WHERE service_key = $key", {"key": key}) == 14
        assert verified(store) == []


CORRUPTIONS = [
    # (what is broken, the difference verify must name)
    ("UPDATE incident_months SET breach_seconds = breach_seconds + 60 "
     "WHERE rowid = (SELECT min(rowid) FROM incident_months WHERE month = DATE '2025-03-01')",
     {"table": "incident_months", "month": "2025-03-01", "rows": 1}),
    ("DELETE FROM incident_months WHERE rowid = (SELECT min(rowid) FROM incident_months WHERE opened > 0 "
     "AND month = DATE '2024-11-01')",
     {"table": "incident_months", "month": "2024-11-01", "rows": 1}),
    ("UPDATE incidents SET outage_end = outage_end + INTERVAL 1 MINUTE "
     "WHERE incident_id = (SELECT min(incident_id) FROM incidents WHERE outage_end IS NOT NULL)",
     {"table": "incidents", "column": "outage_end", "rows": 1}),
    ("UPDATE incidents SET service_key = NULL "
     "WHERE incident_id = (SELECT min(incident_id) FROM incidents WHERE service_key IS NOT NULL)",
     {"table": "incidents", "column": "service_key", "rows": 1}),
    ("UPDATE incidents SET active_until = NULL WHERE incident_id = (SELECT min(incident_id) FROM incidents)",
     {"table": "incidents", "column": "active_until", "rows": 1}),
    # named first; its incidents then differ too, from their service's key and in the rollup
    ("UPDATE services SET service_key = NULL WHERE service_id = (SELECT max(service_id) FROM services)",
     {"table": "services", "column": "service_key", "rows": 1}),
    ("UPDATE incident_month_marks SET incidents = incidents + 1 WHERE month = DATE '2025-01-01'",
     {"table": "incident_month_marks", "month": "2025-01-01", "rows": 1}),
    ("UPDATE incident_month_rtos SET rto_minutes = coalesce(rto_minutes, 0) + 1 "
     "WHERE service_key = (SELECT min(service_key) FROM incident_month_rtos)",
     {"table": "incident_month_rtos", "column": "rto_minutes", "rows": 1}),
    (f"DELETE FROM store_meta WHERE key = '{rollup.STAMP_KEY}'",
     {"table": "store_meta", "key": rollup.STAMP_KEY, "rows": 1}),
]


@pytest.mark.parametrize(("corruption", "named"), CORRUPTIONS)
def test_verify_names_a_corrupted_rollup_row_or_derived_value(demo_path, tmp_path, corruption, named):
    path = backends.copy_store(demo_path, tmp_path / "corrupt.duckdb")
    with backends.raw_connection(path) as raw:   # behind the store's back
        raw.execute(corruption)
    with Store(path, read_only=True) as store:
        found = verified(store)
    named_parts = [{key: value for key, value in difference.items() if key in named} for difference in found]
    if "UPDATE services" in corruption:
        assert named_parts[0] == named and {"table": "incidents", "column": "service_key"} in [
            {key: value for key, value in difference.items() if key in ("table", "column")} for difference in found]
    else:
        assert named_parts == [named]


def run_verify(capsys, path, *options: str) -> tuple[int, str, str]:
    """`verify` through the command line's entry point, in this process (a new interpreter each
    time cost seconds and proves nothing more): its exit code, output and errors."""
    code = main(["verify", "--store", str(path), *options])
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_from_the_command_line(demo_path, tmp_path, capsys):
    path = backends.copy_store(demo_path, tmp_path / "cli.duckdb")
    code, out, err = run_verify(capsys, path)
    assert code == 0 and "agree" in out, err
    assert json.loads(run_verify(capsys, path, "--json")[1]) == {"ok": True, "differences": []}

    with backends.raw_connection(path) as raw:
        raw.execute(CORRUPTIONS[0][0])
        raw.execute(CORRUPTIONS[2][0])
    code, out, err = run_verify(capsys, path)
    assert code == 1, err
    assert "incidents (column outage_end): 1 " in out
    assert "incident_months (month 2025-03-01): 1 " in out
    code, out, _ = run_verify(capsys, path, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert {(d["table"], d.get("column"), d.get("month")) for d in report["differences"]} == {
        ("incidents", "outage_end", None), ("incident_months", None, "2025-03-01")}
    code, _, err = run_verify(capsys, tmp_path / "absent.duckdb")
    assert code == 2 and "No store at" in err and "Traceback" not in err
