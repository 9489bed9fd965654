"""A headline measure is one registry entry: registered, a toy measure shows on the Overview (its
tile, target and unit-table column), in the posture trend, in the targets and in `summary` and
`summary --json`, with nothing else changed; removed, everything is as before."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from itscm import administration
from itscm.access import Actor
from itscm.cli import main
from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.measures import registry
from itscm.measures.common import percent
from itscm.measures.posture import posture_summary, posture_trend, unit_gaps
from itscm.measures.registry import COUNT, MONEY, PERCENT, HeadlineMeasure, UnitColumn, headline_measures
from itscm.store import Store, open_store
from itscm.targets import posture_targets
from itscm.ui import pct
from tests.conftest import SMALL_ORG_AS_OF

ROOT = Path(__file__).resolve().parent.parent
AS_OF = SMALL_ORG_AS_OF.isoformat()
FILTERS = Filters(as_of=SMALL_ORG_AS_OF)
BUILT_IN = ["coverage_pct", "attainment_pct", "downtime_cost", "stale_pct", "inventory_currency_pct"]

# The toy measure: the share of the drills held in the period that measured a recovery time
# within the service's RTO.
_DRILLS = f"""
    FROM drills d JOIN services s USING (service_id) LEFT JOIN business_units u ON u.unit_id = s.unit_id
    WHERE d.held_on BETWEEN $since AND $until AND d.rta_minutes IS NOT NULL AND s.rto_minutes IS NOT NULL
      AND {SERVICE_SCOPE_SQL}
"""
_WITHIN = "count(*) FILTER (WHERE d.rta_minutes <= s.rto_minutes)"
_WITHIN_PCT = f"round(100.0 * {_WITHIN} / count(*), 1) AS drill_rto_pct"


def _params(store: Store, filters: Filters) -> dict:
    return {**filters.scope_params(store), "since": filters.since, "until": filters.until}


def drills_within_rto(store: Store, filters: Filters) -> dict:
    drills, within = store.rows(f"SELECT count(*), {_WITHIN} {_DRILLS}", _params(store, filters))[0]
    return {"drills": drills, "within_rto": within, "pct": percent(within, drills)}


def drills_within_rto_by_month(store: Store, filters: Filters) -> pd.DataFrame:
    return store.df(f"SELECT date_trunc('month', d.held_on) AS month, {_WITHIN_PCT} {_DRILLS} GROUP BY month",
                    _params(store, filters))


def drills_within_rto_by_unit(store: Store, filters: Filters) -> pd.DataFrame:
    return store.df(f"SELECT u.name AS unit, {_WITHIN_PCT} {_DRILLS} AND u.name IS NOT NULL GROUP BY u.name",
                    _params(store, filters))


TOY = HeadlineMeasure(
    key="drill_rto_pct", name="drills_within_rto", figure="pct", label="Drills within RTO", format=PERCENT,
    higher_is_better=True, default_target=80.0, summary=drills_within_rto,
    json_fields=("drills", "within_rto", "pct"),
    tile_help=lambda s: f"{s['within_rto']:,} of {s['drills']:,} drills recovered within RTO",
    summary_text=lambda s: f"{s['within_rto']:,} of {s['drills']:,} drills held in the period recovered within RTO",
    unit_columns=(UnitColumn("drill_rto_pct", "Drills within RTO", PERCENT),),
    trend=drills_within_rto_by_month, by_unit=drills_within_rto_by_unit,
)


@pytest.fixture
def toy_measure():
    """The toy measure registered for one test; the app's caches hold no result made without it
    (or, after the test, with it)."""
    st.cache_data.clear()
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister(TOY.key)
        st.cache_data.clear()
    assert [measure.key for measure in headline_measures()] == BUILT_IN


def run_page(page: str, **query) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    app.query_params.update({"as_of": AS_OF, **query})
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def summary_json(capsys, store_path) -> dict:
    assert main(["summary", "--store", str(store_path), "--as-of", AS_OF, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_registered_measure_is_a_tile_on_the_overview(store_path, toy_measure):
    expected = drills_within_rto(open_store(store_path), FILTERS)
    assert expected["drills"] > expected["within_rto"] > 0   # not a figure of nothing
    app = run_page("Overview.py")
    tiles = {metric.label: metric for metric in app.metric}
    assert list(tiles) == ["Coverage", "RTO attainment", "Downtime cost", "Stale plans",
                           "Inventory currency", "Drills within RTO"]
    assert tiles["Drills within RTO"].value == pct(expected["pct"])
    assert tiles["Drills within RTO"].help == TOY.tile_help(expected) == "2 of 4 drills recovered within RTO"
    assert any("target ≥ 80 %" in markdown.value for markdown in app.markdown)
    ranking = app.dataframe[0].value
    assert "drill_rto_pct" in ranking.columns
    by_unit = drills_within_rto_by_unit(open_store(store_path), FILTERS).set_index("unit")["drill_rto_pct"]
    shown = ranking.set_index("unit")["drill_rto_pct"].dropna()
    assert not shown.empty and shown.to_dict() == by_unit.to_dict()


def test_a_registered_measure_is_in_the_summary_json_and_text(store_path, capsys):
    before = summary_json(capsys, store_path)
    registry.register(TOY)
    try:
        with_toy = summary_json(capsys, store_path)
        assert main(["summary", "--store", str(store_path), "--as-of", AS_OF]) == 0
        text = capsys.readouterr().out
    finally:
        registry.unregister(TOY.key)
    with Store(store_path, read_only=True) as store:   # as the command line opens it
        expected = drills_within_rto(store, FILTERS)
    assert with_toy == {**before, "drills_within_rto": expected}
    assert list(with_toy) == [*before, "drills_within_rto"]
    assert f"  Drills within RTO          {pct(expected['pct']):>10}  ({expected['within_rto']:,} of " in text
    assert summary_json(capsys, store_path) == before


def test_a_registered_measure_is_in_the_posture_summary_and_trend(store_path, toy_measure):
    store = open_store(store_path)
    summary = posture_summary(store, FILTERS)
    headline = summary["headlines"]["drill_rto_pct"]
    assert headline["value"] == drills_within_rto(store, FILTERS)["pct"]
    assert headline["previous"] == drills_within_rto(store, FILTERS.previous())["pct"]
    assert summary["current"]["drills_within_rto"] == drills_within_rto(store, FILTERS)
    trend = posture_trend(store, FILTERS)
    assert list(trend.columns) == ["month", *BUILT_IN, "drill_rto_pct"]
    monthly = drills_within_rto_by_month(store, FILTERS)
    assert trend["drill_rto_pct"].notna().sum() == len(monthly) > 0
    assert "drill_rto_pct" in unit_gaps(store, FILTERS)


def test_a_registered_measure_has_its_target(store_path, toy_measure):
    store = open_store(store_path)
    assert posture_targets(store)["drill_rto_pct"] == 80.0
    assert administration.set_targets(Actor("boss@example.com", "admin"), store, {"drill_rto_pct": 70}) == {
        "drill_rto_pct": (80.0, 70.0)}
    assert posture_targets(store)["drill_rto_pct"] == 70.0
    app = run_page("Administration.py")
    field = next(widget for widget in app.number_input if widget.label == "Drills within RTO at least (%)")
    assert field.value == 70.0


def test_without_it_everything_is_as_before(store_path):
    store = open_store(store_path)
    assert [measure.key for measure in headline_measures()] == BUILT_IN
    assert list(posture_targets(store)) == ["coverage_pct", "attainment_pct", "stale_pct", "inventory_currency_pct"]
    assert list(posture_trend(store, FILTERS).columns) == ["month", *BUILT_IN]


def test_an_entry_is_refused_when_it_cannot_be_shown():
    fields = {field: getattr(TOY, field) for field in TOY.__dataclass_fields__}
    with pytest.raises(ValueError, match="targets are percentages"):
        HeadlineMeasure(**{**fields, "format": MONEY})
    with pytest.raises(ValueError, match="percent or money"):
        HeadlineMeasure(**{**fields, "format": "stars"})
    with pytest.raises(ValueError, match="has no kind"):
        HeadlineMeasure(**{**fields, "unit_columns": (UnitColumn("x", "X", "colour"),)})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(HeadlineMeasure(**{**fields, "key": "coverage_pct"}))
    assert HeadlineMeasure(**{**fields, "unit_columns": (UnitColumn("n", "N", COUNT),)}).unit_columns[0].kind == COUNT
