"""The demo organisation: deterministic, current, consistent, and with the gaps real ones have."""

import datetime as dt

import pytest

from itscm.demo import build_demo
from itscm.filters import Filters
from itscm.measures.coverage import coverage_summary
from itscm.measures.inventory_currency import inventory_currency_summary
from itscm.measures.staleness import staleness_summary
from itscm.store import Store
from tests import backends

AS_OF = dt.date(2026, 6, 30)
TABLES = ["business_units", "services", "service_aliases", "dependencies", "suppliers", "service_suppliers",
          "plans", "plan_reviews", "drills", "assets", "service_assets", "incidents"]


def demo(seed=7, services=120, incidents=20_000) -> Store:
    store = backends.new_store()
    build_demo(store, seed=seed, services=services, incidents=incidents, as_of=AS_OF)
    return store


@pytest.fixture(scope="module")
def store():
    return demo()


def contents(store: Store) -> dict:
    return {table: store.rows(f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}


def test_same_seed_and_date_give_the_same_store(store):
    assert contents(demo()) == contents(store)


def test_another_seed_gives_another_store(store):
    assert contents(demo(seed=8)) != contents(store)


def test_sizes_are_as_asked(store):
    assert store.scalar("SELECT count(*) FROM services") == 120
    assert store.scalar("SELECT count(*) FROM incidents") == 20_000
    assert store.scalar("SELECT count(*) FROM business_units") == 12


def test_nothing_happens_after_the_as_of_date(store):
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())
    assert store.scalar("SELECT max(greatest(opened_at, restored_at, resolved_at, closed_at)) FROM incidents") < end
    assert store.scalar("SELECT max(held_on) FROM drills") <= AS_OF
    assert store.scalar("SELECT max(reviewed_on) FROM plan_reviews") <= AS_OF
    assert store.scalar("SELECT min(opened_at) FROM incidents") >= end - dt.timedelta(days=3 * 365 + 1)


def test_incident_times_are_in_order(store):
    assert store.scalar("SELECT count(*) FROM incidents WHERE restored_at < opened_at OR resolved_at < restored_at "
                        "OR closed_at < resolved_at") == 0


def test_dependency_graph_is_acyclic(store):
    cycles = store.scalar("""
        WITH RECURSIVE reach(start, node, depth) AS (
            SELECT service_id, depends_on_id, 1 FROM dependencies
            UNION ALL
            SELECT r.start, d.depends_on_id, r.depth + 1 FROM reach r JOIN dependencies d ON d.service_id = r.node
            WHERE r.depth < 200 AND r.start <> r.node)
        SELECT count(*) FROM reach WHERE start = node""")
    assert cycles == 0


def test_ids_and_aliases_are_unique(store):
    assert store.scalar("SELECT count(*) - count(DISTINCT incident_id) FROM incidents") == 0
    assert store.scalar("SELECT count(*) - count(DISTINCT service_id) FROM services") == 0
    assert store.scalar("SELECT count(*) - count(DISTINCT alias_key) FROM service_aliases") == 0
    assert store.scalar("SELECT count(*) FROM service_aliases WHERE alias_key <> lower(trim(alias))") == 0


def test_matched_incidents_name_their_service_or_an_alias(store):
    mismatched = store.scalar("""
        SELECT count(*) FROM incidents i JOIN services s USING (service_id)
        WHERE lower(i.service_name) <> lower(s.name)
          AND NOT EXISTS (SELECT 1 FROM service_aliases a
                          WHERE a.service_id = i.service_id AND a.alias_key = lower(trim(i.service_name)))""")
    assert mismatched == 0
    unmatched_names_that_match = store.scalar("""
        SELECT count(*) FROM incidents i WHERE i.service_id IS NULL
          AND (EXISTS (SELECT 1 FROM service_aliases a WHERE a.alias_key = lower(trim(i.service_name)))
               OR EXISTS (SELECT 1 FROM services s WHERE lower(s.name) = lower(trim(i.service_name))))""")
    assert unmatched_names_that_match == 0


def test_the_gaps_a_real_organisation_has(store):
    gaps = store.rows("""SELECT
        (SELECT count(*) FROM services s WHERE s.tier <= 2 AND s.lifecycle = 'live'
           AND NOT EXISTS (SELECT 1 FROM plans p WHERE p.service_id = s.service_id AND p.status <> 'retired')),
        (SELECT count(*) FROM drills WHERE outcome = 'failed'),
        (SELECT count(*) FROM incidents i JOIN services s USING (service_id)
           WHERE epoch(coalesce(restored_at, resolved_at) - opened_at) / 60 > s.rto_minutes),
        (SELECT count(*) FROM incidents WHERE service_id IS NULL),
        (SELECT count(*) FROM dependencies d JOIN services a ON a.service_id = d.service_id
           JOIN services b ON b.service_id = d.depends_on_id WHERE b.rto_minutes > a.rto_minutes),
        (SELECT count(*) FROM incidents WHERE restored_at IS NULL AND resolved_at IS NOT NULL),
        (SELECT count(*) FROM services WHERE lifecycle = 'retired')""")[0]
    no_plan, failed_drills, breaches, unmatched, misaligned, estimated, retired = gaps
    assert no_plan > 0 and failed_drills > 0 and misaligned > 0 and retired > 0
    assert 0.01 < unmatched / 20_000 < 0.05
    assert 0.02 < breaches / 20_000 < 0.25
    assert 0.05 < estimated / 20_000 < 0.15


def test_posture_is_believable(store):
    filters = Filters(as_of=AS_OF)
    assert 30 <= coverage_summary(store, filters)["pct"] <= 85
    staleness = staleness_summary(store, filters)
    assert staleness["overdue"] > 0 and staleness["never_tested"] > 0 and staleness["current"] > 0
    assert staleness["services_without_plan"] > 0
    # The change history flags some plans, not most (docs/DESIGN.md §16).
    assert 0 < staleness["changed_since_review"] < 0.35 * staleness["plans"]


def test_change_history_is_mostly_standard_and_normal(store):
    kinds = dict(store.rows("SELECT change_type, count(*) FROM changes GROUP BY ALL"))
    total = sum(kinds.values())
    assert kinds["standard"] + kinds["normal"] > 0.85 * total and 0 < kinds["emergency"] < 0.15 * total
    outcomes = dict(store.rows("SELECT coalesce(close_code, state), count(*) FROM changes GROUP BY ALL"))
    assert 0 < outcomes["unsuccessful"] < 0.1 * total and outcomes["cancelled"] > 0
    assert store.scalar("SELECT count(*) FROM changes WHERE completed_at > $as_of", {"as_of": AS_OF}) == 0
    assert store.scalar("SELECT count(*) - count(DISTINCT (source, number)) FROM changes") == 0
    unmatched = store.scalar("SELECT count(*) FROM changes WHERE service_id IS NULL AND asset_id IS NULL")
    assert 0 < unmatched < 0.06 * total
    # some changes are made to a server a service runs on, and reach its plans through it
    on_servers = store.scalar("SELECT count(*) FROM changes c JOIN assets a ON a.asset_id = c.asset_id "
                              "WHERE a.asset_class = 'server' AND c.service_id IS NULL")
    assert 0.2 * total < on_servers < 0.6 * total


def test_refuses_a_store_that_has_services(store):
    with pytest.raises(ValueError, match="empty store"):
        build_demo(store, services=20, incidents=10, as_of=AS_OF)


def test_assets_behind_the_services_with_verification_gaps(store):
    filters = Filters(as_of=AS_OF)
    currency = inventory_currency_summary(store, filters)
    assert currency["assets"] > 50 and 60 <= currency["pct"] < 95          # below target, not hopeless
    classes = dict(store.rows("SELECT asset_class, count(*) FROM assets GROUP BY ALL"))
    assert set(classes) == {"server", "database", "site", "cloud service"}
    never, stale = store.rows("""SELECT count(*) FILTER (WHERE last_verified IS NULL),
                                        count(*) FILTER (WHERE last_verified < $as_of - INTERVAL 90 DAY)
                                 FROM assets""", {"as_of": AS_OF})[0]
    assert never > 0 and stale > 0
    assert store.scalar("SELECT count(*) FROM service_assets l WHERE NOT EXISTS (SELECT 1 FROM assets a "
                        "WHERE a.asset_id = l.asset_id) OR NOT EXISTS (SELECT 1 FROM services s "
                        "WHERE s.service_id = l.service_id)") == 0
    shared = store.scalar("SELECT max(n) FROM (SELECT count(*) AS n FROM service_assets GROUP BY asset_id)")
    assert shared > 5                                                        # sites and clusters many services share
