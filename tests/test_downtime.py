"""Downtime cost, worked by hand: the period is 2025-07-01 .. 2026-06-30, as of 2026-06-30."""

import datetime as dt

import pytest

from itscm.filters import Filters
from itscm.measures.downtime import (
    costliest_breaches,
    downtime_by_month,
    downtime_by_unit,
    downtime_summary,
    top_cost_services,
    unpriced_outages,
)
from tests.builders import OrgBuilder, at

SINCE, UNTIL = dt.date(2025, 7, 1), dt.date(2026, 6, 30)
FILTERS = Filters(since=SINCE, until=UNTIL, as_of=UNTIL)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def org():
    builder = OrgBuilder()
    builder.unit_id = builder.unit("Payments")
    # 1,000 per hour, RTO 2 hours
    builder.service_id = builder.service(builder.unit_id, rto_minutes=120, impact_cost_per_hour=1000.0)
    return builder


def test_outage_hours_times_cost_per_hour(org):
    opened = at(dt.date(2026, 1, 10), 9)
    org.incident(org.service_id, opened, restored_at=opened + 1.5 * HOUR, resolved_at=opened + 5 * HOUR)
    summary = downtime_summary(org.store, FILTERS)
    assert summary["total"] == 1500.0
    assert summary["priced_hours"] == 1.5
    assert summary["breach_cost"] == 0.0
    assert summary["estimated_restores"] == 0


def test_resolved_at_is_the_restore_estimate(org):
    opened = at(dt.date(2026, 1, 10), 9)
    org.incident(org.service_id, opened, resolved_at=opened + 3 * HOUR)
    summary = downtime_summary(org.store, FILTERS)
    assert summary["total"] == 3000.0
    assert summary["estimated_restores"] == 1


def test_outages_straddling_the_period_are_clipped(org):
    org.incident(org.service_id, at(SINCE) - 2 * HOUR, restored_at=at(SINCE) + 3 * HOUR)          # 3 h in
    org.incident(org.service_id, at(UNTIL, 22), restored_at=at(UNTIL, 22) + 5 * HOUR)             # 2 h in
    org.incident(org.service_id, at(SINCE) - 5 * HOUR, restored_at=at(SINCE) - 1 * HOUR)          # none
    summary = downtime_summary(org.store, FILTERS)
    assert summary["priced_hours"] == 5.0
    assert summary["total"] == 5000.0
    assert summary["incidents"] == 2


def test_breach_cost_is_the_time_past_rto(org):
    opened = at(dt.date(2026, 1, 10), 9)
    org.incident(org.service_id, opened, restored_at=opened + 5 * HOUR, incident_id="test:LONG")  # 3 h past
    org.incident(org.service_id, opened, restored_at=opened + 2 * HOUR)                           # exactly RTO
    summary = downtime_summary(org.store, FILTERS)
    assert summary["total"] == 7000.0
    assert summary["breach_cost"] == 3000.0
    breaches = costliest_breaches(org.store, FILTERS)
    assert list(breaches["incident_id"]) == ["test:LONG"]
    assert breaches.iloc[0]["breach_hours"] == 3.0


def test_breach_is_clipped_to_the_period_too(org):
    # Opened 4 h before the period: RTO ends 2 h before it, so the 6 h in the period are all breach.
    org.incident(org.service_id, at(SINCE) - 4 * HOUR, restored_at=at(SINCE) + 6 * HOUR)
    summary = downtime_summary(org.store, FILTERS)
    assert (summary["total"], summary["breach_cost"]) == (6000.0, 6000.0)


def test_unpriced_hours_are_shown_not_dropped(org):
    no_cost = org.service(org.unit_id, impact_cost_per_hour=None, name="Intranet")
    opened = at(dt.date(2026, 2, 1), 8)
    org.incident(org.service_id, opened, restored_at=opened + 1 * HOUR)
    org.incident(no_cost, opened, restored_at=opened + 2 * HOUR)
    org.incident(None, opened, restored_at=opened + 4 * HOUR, service_name="GHOST-CI")
    summary = downtime_summary(org.store, FILTERS)
    assert summary["total"] == 1000.0
    assert summary["unpriced_hours"] == 6.0
    assert summary["incidents"] == 3
    unpriced = unpriced_outages(org.store, FILTERS).set_index("name")
    assert unpriced.loc["GHOST-CI", "outage_hours"] == 4.0
    assert unpriced.loc["GHOST-CI", "reason"] == "no matching service"
    assert unpriced.loc["Intranet", "reason"] == "service has no BIA cost"
    by_unit = downtime_by_unit(org.store, FILTERS).set_index("unit")
    assert by_unit.loc["(unmatched)", "unpriced_hours"] == 4.0
    assert by_unit.loc["Payments", "cost"] == 1000.0


def test_open_incident_is_an_ongoing_outage_up_to_the_as_of_date(org):
    org.incident(org.service_id, at(UNTIL, 20))                              # open: 4 h to end of as-of day
    summary = downtime_summary(org.store, FILTERS)
    assert summary["ongoing"] == 1
    assert summary["total"] == 4000.0


def test_closed_without_restore_time_adds_no_hours_but_is_counted(org):
    org.incident(org.service_id, at(dt.date(2026, 1, 5), 9), closed_at=at(dt.date(2026, 1, 9)))
    summary = downtime_summary(org.store, FILTERS)
    assert summary["closed_without_restore_time"] == 1
    assert summary["incidents"] == 1
    assert summary["total"] == 0.0 and summary["unpriced_hours"] == 0.0


def test_outage_spanning_months_is_split_between_them(org):
    org.incident(org.service_id, at(dt.date(2026, 1, 31), 22), restored_at=at(dt.date(2026, 2, 1), 3))
    months = downtime_by_month(org.store, FILTERS).set_index("month")
    assert months.loc["2026-01-01", "cost"] == 2000.0
    assert months.loc["2026-02-01", "cost"] == 3000.0
    assert months.loc["2026-02-01", "breach_cost"] == 3000.0   # RTO ended at 2026-02-01 00:00
    assert months["cost"].sum() == downtime_summary(org.store, FILTERS)["total"]


def test_filters_and_top_services(org):
    retail = org.unit("Retail")
    atm = org.service(retail, tier=2, impact_cost_per_hour=500.0, name="ATM network")
    opened = at(dt.date(2026, 3, 1), 8)
    org.incident(org.service_id, opened, restored_at=opened + 1 * HOUR)
    org.incident(atm, opened, restored_at=opened + 10 * HOUR)
    org.incident(None, opened, restored_at=opened + 1 * HOUR, service_name="x")
    assert downtime_summary(org.store, Filters(since=SINCE, until=UNTIL, as_of=UNTIL, units=("Retail",)))[
        "total"] == 5000.0
    tier_1 = downtime_summary(org.store, Filters(since=SINCE, until=UNTIL, as_of=UNTIL, tiers=(1,)))
    assert (tier_1["total"], tier_1["unpriced_hours"]) == (1000.0, 0.0)
    top = top_cost_services(org.store, FILTERS)
    assert list(top["service"]) == ["ATM network", f"Service {org.service_id}"]
    assert list(top["cost"]) == [5000.0, 1000.0]


def test_a_service_without_rto_has_cost_but_no_breach(org):
    no_rto = org.service(org.unit_id, rto_minutes=None, impact_cost_per_hour=100.0)
    opened = at(dt.date(2026, 2, 1), 8)
    org.incident(no_rto, opened, restored_at=opened + 10 * HOUR)
    summary = downtime_summary(org.store, FILTERS)
    assert (summary["total"], summary["breach_cost"]) == (1000.0, 0.0)
    assert downtime_by_month(org.store, FILTERS)["breach_cost"].sum() == 0.0
