"""The posture summary computes the snapshot measures of both periods in one query each: the
figures must be those each period gives alone."""

import datetime as dt

import pytest

from itscm.demo import build_demo
from itscm.filters import Filters
from itscm.measures.attainment import attainment_summary, judged_attainment
from itscm.measures.common import run_together
from itscm.measures.coverage import coverage_summaries, coverage_summary
from itscm.measures.downtime import downtime_summary, downtime_total
from itscm.measures.posture import measures_snapshot, posture_summary
from itscm.measures.registry import headline_measures
from itscm.measures.staleness import staleness_summaries, staleness_summary
from tests import backends

AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with backends.new_store(tmp_path_factory.mktemp("posture") / "demo.duckdb") as opened:
        build_demo(opened, services=80, incidents=4_000, as_of=AS_OF)
        yield opened


FILTERS = [
    Filters(as_of=AS_OF),
    Filters(as_of=AS_OF, tiers=(1,)),
    Filters(as_of=AS_OF, units=("Retail Banking",)),
    Filters(since=dt.date(2025, 10, 20), until=dt.date(2026, 3, 27), as_of=AS_OF),
]
FILTER_NAMES = ["default", "tier 1", "one unit", "past period"]


@pytest.mark.parametrize("filters", FILTERS, ids=FILTER_NAMES)
def test_each_period_of_the_summary_is_what_that_period_gives_alone(store, filters):
    summary = posture_summary(store, filters)
    assert summary["current"] == measures_snapshot(store, filters)
    alone = measures_snapshot(store, filters.previous())
    for key, measure, figure in ((m.key, m.name, m.figure) for m in headline_measures()):
        # sums of the same costs in another order may differ in the last cent
        assert summary["headlines"][key]["previous"] == pytest.approx(alone[measure][figure], abs=0.01), key
        assert summary["headlines"][key]["value"] == summary["current"][measure][figure], key
    assert alone["coverage"]["in_scope"] > 0      # the comparison is not of nothing
    assert alone["downtime_cost"]["total"] > 0


@pytest.mark.parametrize("filters", FILTERS, ids=FILTER_NAMES)
def test_the_figures_read_without_unmatched_incidents_equal_the_full_ones(store, filters):
    assert store.scalar("SELECT count(*) FROM incidents WHERE service_id IS NULL") > 0   # some to leave out
    for period in (filters, filters.previous()):
        full = attainment_summary(store, period)
        assert judged_attainment(store, period) == {key: full[key] for key in ("events", "attained", "pct")}
        assert downtime_total(store, period) == pytest.approx(downtime_summary(store, period)["total"], abs=0.01)


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


def test_queries_run_together_give_their_results_in_order_and_raise_their_errors(store):
    def failing():
        raise ValueError("broken query")

    assert run_together(lambda: store.scalar("SELECT 1"), lambda: store.scalar("SELECT 2"), lambda: 3) == [1, 2, 3]
    with pytest.raises(ValueError, match="broken query"):
        run_together(lambda: store.scalar("SELECT 1"), failing)
