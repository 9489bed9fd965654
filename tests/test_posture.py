"""The posture summary computes the snapshot measures of both periods in one query each: the
figures must be those each period gives alone."""

import datetime as dt

import pytest

from itscm.demo import build_demo
from itscm.filters import Filters
from itscm.measures.coverage import coverage_summaries, coverage_summary
from itscm.measures.posture import measures_snapshot, posture_summary
from itscm.measures.staleness import staleness_summaries, staleness_summary
from itscm.store import Store

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("posture") / "demo.duckdb") as opened:
        build_demo(opened, services=80, incidents=4_000, as_of=AS_OF)
        yield opened


@pytest.mark.parametrize("filters", [
    Filters(as_of=AS_OF),
    Filters(as_of=AS_OF, tiers=(1,)),
    Filters(since=dt.date(2025, 10, 20), until=dt.date(2026, 3, 27), as_of=AS_OF),
], ids=["default", "tier 1", "past period"])
def test_each_period_of_the_summary_is_what_that_period_gives_alone(store, filters):
    summary = posture_summary(store, filters)
    assert summary["current"] == measures_snapshot(store, filters)
    assert summary["previous"] == measures_snapshot(store, filters.previous())
    assert summary["previous"]["coverage"]["in_scope"] > 0      # the comparison is not of nothing
    assert summary["headlines"]["coverage_pct"]["previous"] == summary["previous"]["coverage"]["pct"]


def test_summaries_at_several_dates_equal_one_date_at_a_time(store):
    filters = Filters(as_of=AS_OF)
    dates = [AS_OF, dt.date(2025, 12, 31), dt.date(2025, 3, 1), dt.date(1990, 1, 1)]
    coverage, staleness = coverage_summaries(store, filters, dates), staleness_summaries(store, filters, dates)
    for day in dates:
        assert coverage[day] == coverage_summary(store, filters.at(day))
        assert staleness[day] == staleness_summary(store, filters.at(day))
    # a date before any plan, review or drill: services in scope, none covered, every plan stale
    assert coverage[dt.date(1990, 1, 1)]["covered"] == 0
    assert coverage[AS_OF]["covered"] > 0
