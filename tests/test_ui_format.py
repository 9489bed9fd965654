"""How figures are written on tiles and in charts' states."""

import pytest

from itscm.targets import target_state
from itscm.ui import money, pct

pytestmark = pytest.mark.no_store   # opens no store: not run again on DuckLake


@pytest.mark.parametrize(("value", "shown"), [
    (48_627_900_000.0, "€48.6 B"), (258_762_319.0, "€258.8 M"), (46_500.0, "€46 k"), (9_999.4, "€9,999"), (0.0, "€0"),
    (-1_500_000.0, "-€1.5 M"), (None, "n/a"),
])
def test_money(value, shown):
    assert money(value, "EUR") == shown


@pytest.mark.parametrize(("value", "shown"), [
    (258_762_319.0, "€259 M"), (99_940_000.0, "€99.9 M"), (99_960_000.0, "€100 M"), (48_627_900_000.0, "€48.6 B"),
    (263_600_000_000.0, "€264 B"), (-65_600_000.0, "-€65.6 M"), (46_500.0, "€46 k"),
])
def test_money_narrow_keeps_three_significant_figures(value, shown):
    assert money(value, "EUR", narrow=True) == shown


def test_money_in_an_unknown_currency_names_it():
    assert money(1_200.0, "SEK") == "SEK 1,200"


def test_pct():
    assert pct(52.66) == "52.7 %"
    assert pct(None) == "n/a"


@pytest.mark.parametrize(("value", "target", "higher", "state"), [
    (95.0, 95.0, True, "on target"), (90.0, 95.0, True, "at risk"), (89.9, 95.0, True, "breached"),
    (5.0, 5.0, False, "on target"), (10.0, 5.0, False, "at risk"), (10.1, 5.0, False, "breached"),
    (None, 95.0, True, None),
])
def test_target_state(value, target, higher, state):
    assert target_state(value, target, higher) == state


def test_a_chart_is_built_once_per_distinct_input_and_shared():
    import pandas as pd
    import streamlit as st

    from itscm import charts
    from itscm.ui import built_figure

    st.cache_resource.clear()
    summary = {"plans": 4, "current": 1, "due_soon": 0, "changed_since_review": 1, "overdue": 1, "never_tested": 1,
               "services_without_plan": 2, "stale_pct": 75.0}
    first = built_figure(charts.staleness_states, summary)
    assert built_figure(charts.staleness_states, dict(summary)) is first   # equal by value: the same figure
    other = built_figure(charts.staleness_states, {**summary, "current": 2})
    assert other is not first
    assert [bar.x[0] for bar in first.data] != [bar.x[0] for bar in other.data]   # built from its own input
    frame = pd.DataFrame({"unit": ["A"], "state": ["overdue"], "count": [1]})
    heatmap = built_figure(charts.staleness_heatmap, frame)
    assert built_figure(charts.staleness_heatmap, frame.copy()) is heatmap
    assert built_figure(charts.staleness_heatmap, frame.assign(count=2)) is not heatmap
