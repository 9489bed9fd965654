"""Every page through Streamlit's AppTest: no exception, with and without filters, filters read
from the URL, and the figures on screen equal the measure functions' values."""

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm import ui
from itscm.filters import Filters
from itscm.measures.attainment import attainment_summary
from itscm.measures.coverage import coverage_summary
from itscm.measures.downtime import downtime_summary
from itscm.measures.posture import posture_summary
from itscm.measures.staleness import staleness_summary
from itscm.store import open_store
from tests import backends
from tests.conftest import SMALL_ORG_AS_OF

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))
AS_OF = SMALL_ORG_AS_OF.isoformat()


@pytest.fixture
def store_env(small_org_path, monkeypatch):
    monkeypatch.setenv("ITSCM_STORE", str(small_org_path))
    monkeypatch.syspath_prepend(str(ROOT))
    return small_org_path


def run_page(page: str, **query) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    app.query_params.update(query)
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_filters(store_env, page):
    app = run_page(page, as_of=AS_OF)
    assert_clean(app)
    assert app.title, "every page has a title"


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("query", [
    {"unit": "Payments", "tier": ["1", "2"]},
    {"unit": "Legal"},                                  # a unit with no critical service
    {"period": "Last 3 months", "tier": "4"},
    {"period": "Custom dates", "since": "2026-01-01", "until": "2026-03-31"},
])
def test_every_page_runs_with_filters(store_env, page, query):
    assert_clean(run_page(page, as_of=AS_OF, **query))


def metric(app: AppTest, label: str) -> str:
    matches = [m.value for m in app.metric if m.label == label]
    assert matches, f"no tile {label!r}; tiles: {[m.label for m in app.metric]}"
    return matches[0]


def test_overview_tiles_equal_the_measures(store_env):
    app = run_page("Overview.py", as_of=AS_OF)
    assert_clean(app)
    store = open_store(store_env)  # the handle the page used: one per process
    headlines = posture_summary(store, Filters(as_of=SMALL_ORG_AS_OF))["headlines"]
    currency = store.currency()
    assert metric(app, "Coverage") == ui.pct(headlines["coverage_pct"]["value"])
    # The tile's short label; its help names the measure in full.
    assert next(m.help for m in app.metric if m.label == "Coverage").startswith("Critical-service coverage: ")
    assert metric(app, "RTO attainment") == ui.pct(headlines["attainment_pct"]["value"])
    assert metric(app, "Downtime cost") == ui.money(headlines["downtime_cost"]["value"], currency, narrow=True)
    assert metric(app, "Stale plans") == ui.pct(headlines["stale_pct"]["value"])
    previous = Filters(as_of=SMALL_ORG_AS_OF).previous()
    assert any(f"against the previous period, {previous.since:%d %b %Y} – {previous.until:%d %b %Y}." in c.value
               for c in app.caption)
    assert headlines["coverage_pct"]["value"] == 40.0  # 2 of the 5 critical services, by the fixture's design


def test_filters_are_read_from_the_url(store_env):
    app = run_page("Coverage.py", as_of=AS_OF, unit="Retail <b>Banking</b>", tier="2", period="Last 6 months")
    assert_clean(app)
    assert app.multiselect(key="unit").value == ["Retail <b>Banking</b>"]
    assert app.date_input(key="as_of").value == SMALL_ORG_AS_OF
    assert app.selectbox(key="period").value == "Last 6 months"
    assert app.pills(key="tier").value == ["2"]
    filters = Filters(units=("Retail <b>Banking</b>",), tiers=(2,), as_of=SMALL_ORG_AS_OF,
                      since=dt.date(2026, 1, 1), until=SMALL_ORG_AS_OF)
    store = open_store(store_env)  # the handle the page used: one per process
    expected = coverage_summary(store, filters)
    assert expected["in_scope"] == 2
    assert metric(app, "Coverage") == ui.pct(expected["pct"])
    assert metric(app, "Critical services covered") == f"{expected['covered']:,}"


@pytest.mark.parametrize(("page", "label", "measure", "show"), [
    ("RTO_attainment.py", "Attainment", attainment_summary, lambda s, c: ui.pct(s["pct"])),
    ("Downtime_cost.py", "Downtime cost", downtime_summary, lambda s, c: ui.money(s["total"], c)),
    ("Plan_staleness.py", "Stale plans", staleness_summary, lambda s, c: ui.pct(s["stale_pct"])),
])
def test_measure_page_tiles_equal_the_measures(store_env, page, label, measure, show):
    app = run_page(page, as_of=AS_OF, unit="Payments")
    assert_clean(app)
    store = open_store(store_env)  # the handle the page used: one per process
    expected = measure(store, Filters(units=("Payments",), as_of=SMALL_ORG_AS_OF))
    currency = store.currency()
    assert metric(app, label) == show(expected, currency)


def test_a_filter_matching_nothing_explains_itself(store_env):
    app = run_page("Coverage.py", as_of=AS_OF, unit="Legal")
    assert_clean(app)
    assert any("No live critical service" in info.value for info in app.info)
    assert not any("holds no services yet" in info.value for info in app.info)   # the store has services
    app = run_page("Services.py")
    app.text_input(key="service-search").input("no service is called this").run()
    assert_clean(app)
    assert [info.value for info in app.info] == ["No service matches this search and these filters."]


def test_overview_ranks_units_by_gaps(store_env):
    app = run_page("Overview.py", as_of=AS_OF)
    assert_clean(app)
    ranking = app.dataframe[0].value
    assert ranking["unit"].iloc[0] == "Retail <b>Banking</b>"   # three uncovered critical services
    assert list(ranking["gaps"]) == sorted(ranking["gaps"], reverse=True)


def test_the_entrypoint_serves_every_page_with_shared_filters(store_env):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.query_params.update({"as_of": AS_OF, "unit": "Payments"})
    app.run()
    assert_clean(app)
    assert app.title[0].value == "Continuity posture"
    for path in ["pages/Coverage.py", "pages/Plan_staleness.py", "pages/Upload_incidents.py"]:
        app.switch_page(path).run()
        assert_clean(app)
        assert len(app.sidebar.multiselect) == 1  # the filters are drawn once, by the entrypoint
        assert app.multiselect(key="unit").value == ["Payments"]


# What each page says on a store just made with `init`. A new page needs its entry here.
EMPTY_STORE_MESSAGES = {
    "Administration.py": "Nothing has been changed in this store yet.",
    "Assets.py": "No asset in this store yet",
    "Changes.py": "No change upload yet.",
    "Consistency_checks.py": "holds no services yet",
    "Coverage.py": "holds no services yet",
    "Downtime_cost.py": "No outage in this period for these filters.",
    "Inventory.py": "No inventory import yet.",
    "Overview.py": "holds no services yet",
    "Plan_staleness.py": "holds no services yet",
    "Report.py": "holds no services yet",
    "Resilience.py": "holds no services yet",
    "RTO_attainment.py": "No recovery event in this period for these filters",
    "Services.py": "holds no services yet",
    "Upload_incidents.py": "No upload yet.",
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_an_empty_store_explains_itself(tmp_path, monkeypatch, page):
    """A store just made with `init`: no units, services or incidents. Each page says what is
    missing instead of raising or drawing empty chart frames."""
    empty = backends.new_target(tmp_path / "empty.duckdb")
    open_store(empty).close()
    monkeypatch.setenv("ITSCM_STORE", str(empty))
    monkeypatch.syspath_prepend(str(ROOT))
    app = run_page(page, as_of=AS_OF)
    assert_clean(app)
    charts = app.get("plotly_chart")
    assert not charts, f"{page} draws {len(charts)} chart(s) of nothing"
    # The message itself: every page has some caption (the sidebar's), so "any text" cannot fail.
    expected = EMPTY_STORE_MESSAGES[page]
    assert any(expected in info.value for info in app.info), (
        f"{page} does not say {expected!r} on an empty store; it says {[info.value for info in app.info]}"
    )


def test_the_overview_of_a_store_without_services_says_how_to_fill_it(tmp_path, monkeypatch):
    empty = backends.new_target(tmp_path / "empty.duckdb")
    open_store(empty).close()
    monkeypatch.setenv("ITSCM_STORE", str(empty))
    monkeypatch.syspath_prepend(str(ROOT))
    app = run_page("Overview.py", as_of=AS_OF)
    assert_clean(app)
    assert any("holds no services yet" in info.value for info in app.info)
    assert not any("Widen the filters" in info.value for info in app.info)
    assert [header.value for header in app.subheader] == ["Bring your inventory"]
    assert [button.proto.label for button in app.get("download_button")] == ["Download the empty template (.xlsx)"]
    assert not app.metric                                          # no tiles of nothing


def test_the_upload_page_of_an_empty_store_claims_no_demo_incidents(tmp_path, monkeypatch):
    empty = backends.new_target(tmp_path / "empty.duckdb")
    open_store(empty).close()
    monkeypatch.setenv("ITSCM_STORE", str(empty))
    monkeypatch.syspath_prepend(str(ROOT))
    app = run_page("Upload_incidents.py")
    assert_clean(app)
    said = " ".join(info.value for info in app.info)
    assert "The store holds no incidents" in said and "demo" not in said
