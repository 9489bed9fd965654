"""RTO attainment, worked by hand: the period is 2025-07-01 .. 2026-06-30, as of 2026-06-30."""

import datetime as dt

import pytest

from itscm.filters import Filters
from itscm.measures.attainment import (
    attainment_by_month,
    attainment_by_unit,
    attainment_summary,
    events_without_rto,
    rta_ratio_distribution,
    worst_breaches,
)
from tests.builders import OrgBuilder, at

SINCE, UNTIL = dt.date(2025, 7, 1), dt.date(2026, 6, 30)
FILTERS = Filters(since=SINCE, until=UNTIL, as_of=UNTIL)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def org():
    builder = OrgBuilder()
    builder.unit_id = builder.unit("Payments")
    builder.service_id = builder.service(builder.unit_id, rto_minutes=60)
    return builder


def test_rta_exactly_equal_to_rto_is_attained(org):
    opened = at(dt.date(2026, 1, 10), 9)
    org.incident(org.service_id, opened, restored_at=opened + 60 * MINUTE, resolved_at=opened + 90 * MINUTE)
    org.incident(org.service_id, opened, restored_at=opened + 61 * MINUTE)
    summary = attainment_summary(org.store, FILTERS)
    assert summary["events"] == 2
    assert summary["attained"] == 1
    assert summary["pct"] == 50.0
    assert summary["estimated_restores"] == 0


def test_missing_restored_at_falls_back_to_resolved_at_flagged(org):
    opened = at(dt.date(2026, 1, 10), 9)
    org.incident(org.service_id, opened, resolved_at=opened + 45 * MINUTE, incident_id="test:EST")
    org.incident(org.service_id, opened, resolved_at=opened + 120 * MINUTE, incident_id="test:EST-BREACH")
    summary = attainment_summary(org.store, FILTERS)
    assert (summary["events"], summary["attained"], summary["estimated_restores"]) == (2, 1, 2)
    breach = worst_breaches(org.store, FILTERS).iloc[0]
    assert breach["event_id"] == "test:EST-BREACH"
    assert bool(breach["restore_estimated"])
    assert breach["rta_minutes"] == 120.0 and breach["rta_rto_ratio"] == 2.0


def test_incident_without_any_restore_time_is_not_a_recovery_event(org):
    org.incident(org.service_id, at(dt.date(2026, 1, 10)), closed_at=at(dt.date(2026, 1, 12)))
    org.incident(org.service_id, at(dt.date(2026, 6, 29)))  # still open
    assert attainment_summary(org.store, FILTERS)["events"] == 0


def test_events_counted_by_opened_at_inside_the_period(org):
    org.incident(org.service_id, at(SINCE) - MINUTE, restored_at=at(SINCE) + 10 * MINUTE)   # before
    org.incident(org.service_id, at(SINCE), restored_at=at(SINCE) + 10 * MINUTE)            # first minute
    org.incident(org.service_id, at(UNTIL, 23, 0), restored_at=at(UNTIL, 23, 30))           # last day
    org.incident(org.service_id, at(UNTIL + dt.timedelta(days=1)),
                 restored_at=at(UNTIL + dt.timedelta(days=1), 1))                           # after
    assert attainment_summary(org.store, FILTERS)["events"] == 2


def test_unmatched_and_unset_rto_events_are_counted_not_dropped(org):
    no_rto = org.service(org.unit_id, rto_minutes=None, name="Legacy Fax")
    opened = at(dt.date(2026, 2, 1), 8)
    org.incident(org.service_id, opened, restored_at=opened + 30 * MINUTE)
    org.incident(None, opened, restored_at=opened + 30 * MINUTE, service_name="OLD-CI-42")
    org.incident(None, opened, restored_at=opened + 30 * MINUTE, service_name="OLD-CI-42")
    org.incident(no_rto, opened, restored_at=opened + 30 * MINUTE)
    summary = attainment_summary(org.store, FILTERS)
    assert summary == {"events": 1, "attained": 1, "pct": 100.0, "without_rto": 3, "unmatched": 2,
                       "estimated_restores": 0}
    reasons = events_without_rto(org.store, FILTERS).set_index("name")
    assert reasons.loc["OLD-CI-42", "events"] == 2
    assert reasons.loc["OLD-CI-42", "reason"] == "no matching service"
    assert reasons.loc["Legacy Fax", "reason"] == "service has no RTO"
    by_unit = attainment_by_unit(org.store, FILTERS).set_index("unit")
    assert by_unit.loc["(unmatched)", "without_rto"] == 2


def test_a_unit_or_tier_filter_cannot_place_unmatched_events(org):
    other = org.unit("Retail")
    retail_service = org.service(other, tier=3, rto_minutes=60)
    opened = at(dt.date(2026, 2, 1), 8)
    org.incident(org.service_id, opened, restored_at=opened + 30 * MINUTE)
    org.incident(retail_service, opened, restored_at=opened + 90 * MINUTE)
    org.incident(None, opened, restored_at=opened + 30 * MINUTE, service_name="nobody")

    def summary(**kwargs):
        return attainment_summary(org.store, Filters(since=SINCE, until=UNTIL, as_of=UNTIL, **kwargs))

    assert (summary()["events"], summary()["without_rto"]) == (2, 1)
    assert (summary(units=("Payments",))["events"], summary(units=("Payments",))["without_rto"]) == (1, 0)
    assert summary(units=("Retail",))["pct"] == 0.0
    assert summary(tiers=(3,))["events"] == 1
    assert summary(tiers=(2,))["events"] == 0 and summary(tiers=(2,))["pct"] is None


def test_drills_with_an_rta_are_recovery_events(org):
    org.drill(org.service_id, dt.date(2026, 3, 1), rta_minutes=50)
    org.drill(org.service_id, dt.date(2026, 3, 2), rta_minutes=70, outcome="failed")
    org.drill(org.service_id, dt.date(2026, 3, 3), drill_type="tabletop", rta_minutes=None)
    org.drill(org.service_id, dt.date(2025, 6, 30), rta_minutes=10)  # before the period
    summary = attainment_summary(org.store, FILTERS)
    assert (summary["events"], summary["attained"]) == (2, 1)
    by_month = attainment_by_month(org.store, FILTERS)
    assert list(by_month["source"]) == ["drill"]
    assert by_month.iloc[0]["events"] == 2


def test_ratio_distribution_and_months(org):
    for minutes, day in [(20, 5), (50, 5), (80, 6), (200, 7), (400, 8)]:
        opened = at(dt.date(2026, 1 if day < 7 else 2, day), 10)
        org.incident(org.service_id, opened, restored_at=opened + minutes * MINUTE)
    bands = rta_ratio_distribution(org.store, FILTERS).set_index("band")["events"]
    assert bands.to_dict() == {"<= 0.5": 1, "0.5-1": 1, "1-1.5": 1, "2-4": 1, "> 4": 1}
    months = attainment_by_month(org.store, FILTERS)
    assert [str(m.date()) for m in months["month"]] == ["2026-01-01", "2026-02-01"]
    assert list(months["attained"]) == [2, 0]
    assert list(months["pct"]) == [66.7, 0.0]
    worst = worst_breaches(org.store, FILTERS)
    assert list(worst["rta_minutes"]) == [400.0, 200.0, 80.0]


def test_recovered_after_an_earlier_as_of_date_is_not_yet_an_event(org):
    opened = at(dt.date(2026, 3, 31), 23)
    org.incident(org.service_id, opened, restored_at=at(dt.date(2026, 4, 1), 1))
    march = Filters(since=dt.date(2026, 3, 1), until=dt.date(2026, 3, 31), as_of=dt.date(2026, 3, 31))
    assert attainment_summary(org.store, march)["events"] == 0
    assert attainment_summary(org.store, FILTERS)["events"] == 1
