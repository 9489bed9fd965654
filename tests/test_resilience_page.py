"""The Resilience and Consistency checks pages through AppTest: every tab, a scenario read from
the URL, saving it, and the Overview's flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm.filters import Filters
from itscm.measures.consistency import failing_check_count
from itscm.resilience.saved import saved_scenarios
from itscm.store import Store, open_store
from tests.conftest import SMALL_ORG_AS_OF
from tests.resilience_org import asset, relies_on, runs_on, supplier

ROOT = Path(__file__).resolve().parent.parent
AS_OF = SMALL_ORG_AS_OF.isoformat()


def run_page(page: str, **query) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    app.query_params.update(query)
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]


@pytest.fixture
def hosted_store(store_path):
    """The small organisation with one hosting supplier under Core Ledger and Card Authorisation."""
    with Store(store_path) as store:
        supplier(store, "sup-host", "Hosting Co", 480)
        relies_on(store, "svc1", "sup-host")
    return store_path


def table_with(app, column: str):
    """The first table on the page with `column` (the tab's tables come after the chain's)."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def test_the_resilience_page_opens_on_the_dependencies_tab(hosted_store):
    app = run_page("Resilience.py", as_of=AS_OF)
    assert_clean(app)
    assert [tab.label for tab in app.tabs] == ["Dependencies", "Single points of failure", "Supplier concentration",
                                              "Scenarios"]
    misaligned = table_with(app, "gap_minutes")
    # Hosting Co (480 min) is under Core Ledger (60) and, through it, Card Authorisation (30)
    assert set(misaligned["service"]) == {"Core Ledger", "Card Authorisation"}
    assert any(c.value.startswith("2 live services depend") for c in app.caption)
    # only the open tab's content runs: no supplier warning, no scenario picker
    assert not app.warning and not app.main.multiselect


def test_each_tab_opens_from_its_link(hosted_store):
    app = run_page("Resilience.py", as_of=AS_OF, tab="Supplier concentration")
    assert_clean(app)
    # 2 of the 5 live critical services (Core Ledger, Card Authorisation; Customer Portal, Branch
    # Teller, Mortgage Origination are not reached): 40 % >= the default 25 %
    assert [w.value for w in app.warning] == [
        "One supplier carries at least 25 % of the critical services (the policy's threshold): Hosting Co 40.0 %."]
    assert "Hosting Co" in set(app.dataframe[0].value["supplier"])
    app = run_page("Resilience.py", as_of=AS_OF, tab="Single points of failure")
    assert_clean(app)
    points, worst = app.dataframe[0].value, app.dataframe[1].value
    assert "Hosting Co" in set(points["name"]) and len(worst) > len(points)
    assert not app.warning


def test_switching_tabs_runs_the_open_one(hosted_store):
    app = run_page("Resilience.py", as_of=AS_OF)
    app.session_state["tab"] = "Scenarios"
    app.run()
    assert_clean(app)
    assert [m.key for m in app.main.multiselect] == ["fail_service", "fail_supplier", "fail_asset", "fail_unit"]
    assert not app.dataframe                 # the Dependencies tab's tables are not made


def test_a_scenario_link_opens_the_scenario(hosted_store):
    app = run_page("Resilience.py", as_of=AS_OF, fail_supplier="Hosting Co", hours="10")
    assert_clean(app)
    tiles = {metric.label: metric.value for metric in app.metric}
    assert tiles["Services disrupted"] == "2"           # Core Ledger, Card Authorisation
    assert tiles["Past their RTO"] == "2"
    assert tiles["Cost"] == "€1.3 M"                     # 10 h x (50,000 + 80,000)


def test_a_scenario_link_fails_an_asset(hosted_store):
    with Store(hosted_store) as store:
        asset(store, "RACK-7", "Rack 7")
        runs_on(store, "svc1", "RACK-7")      # Core Ledger, and through it Card Authorisation
    app = run_page("Resilience.py", as_of=AS_OF, fail_asset="Rack 7", hours="10")
    assert_clean(app)
    assert app.multiselect(key="fail_asset").value == ["Rack 7"]
    tiles = {metric.label: metric.value for metric in app.metric}
    assert tiles["Services disrupted"] == "2" and tiles["Cost"] == "€1.3 M"
    # without D: an asset has no recovery time, so the two services have no duration
    app = run_page("Resilience.py", as_of=AS_OF, fail_asset="Rack 7")
    assert_clean(app)
    assert any("2 services are reached only by failed nodes without a recovery time" in w.value
               for w in app.warning)


def test_a_scenario_is_saved_by_name(hosted_store):
    app = run_page("Resilience.py", as_of=AS_OF, fail_supplier="Hosting Co", hours="10")
    app.text_input[0].input("Hosting down")
    next(b for b in app.button if b.label == "Save scenario").click().run()
    assert_clean(app)
    assert any("Saved the scenario" in s.value for s in app.success)
    saved = saved_scenarios(open_store(hosted_store))   # the app's own handle: one per path
    assert list(saved["name"]) == ["Hosting down"]
    assert saved["failed"].iloc[0] == ["supplier:sup-host"] and saved["hours"].iloc[0] == 10.0


def test_the_consistency_checks_page_lists_failing_checks(hosted_store):
    app = run_page("Consistency_checks.py", as_of=AS_OF)
    assert_clean(app)
    failing = failing_check_count(open_store(hosted_store), Filters(as_of=SMALL_ORG_AS_OF))
    assert app.metric[0].value == f"{failing} of 7"
    assert len(app.expander) == failing


def test_the_overview_flags_supplier_concentration_and_failing_checks(hosted_store):
    app = run_page("Overview.py", as_of=AS_OF)
    assert_clean(app)
    assert [w.value.split(" See [")[0] for w in app.warning if "critical services" in w.value] == [
        "One supplier carries at least 25 % of the critical services (the policy's threshold): Hosting Co 40.0 %."]
    failing = failing_check_count(open_store(hosted_store), Filters(as_of=SMALL_ORG_AS_OF))
    assert failing > 0
    assert any(f"{failing} consistency checks fail" in i.value and f"(/Consistency_checks?as_of={AS_OF})" in i.value
               for i in app.info)


def test_the_overviews_links_keep_the_sidebar_filters(hosted_store):
    app = run_page("Overview.py", as_of=AS_OF, unit=["Payments", "Retail <b>Banking</b>"], tier="1")
    assert_clean(app)
    query = "unit=Payments&unit=Retail+%3Cb%3EBanking%3C%2Fb%3E&tier=1&as_of=" + AS_OF   # encoded: ends no link
    assert any(f"(/Consistency_checks?{query})" in i.value for i in app.info), [i.value for i in app.info]


def test_an_admin_changes_the_concentration_threshold_on_the_administration_page(hosted_store):
    from itscm.resilience.analysis import concentration_threshold_pct

    app = run_page("Administration.py")
    assert_clean(app)
    app.number_input(key="concentration-threshold").set_value(45.0)
    next(b for b in app.button if b.label == "Save threshold").click().run()
    assert_clean(app)
    assert concentration_threshold_pct(open_store(hosted_store)) == 45.0
    app = run_page("Resilience.py", as_of=AS_OF)      # Hosting Co's 40 % is now under the threshold
    assert_clean(app)
    assert not any("Hosting Co carries" in w.value for w in app.warning)


def test_matching_offers_the_first_names_containing_what_was_typed():
    from itscm.ui.pickers import matching

    names = {"Core Ledger": 1, "Card Authorisation": 2, "Customer Portal": 3, "Ledger Archive": 4}
    assert matching(names, "", limit=2) == (["Core Ledger", "Card Authorisation"], 4)
    assert matching(names, "  LEDGER ", limit=5) == (["Core Ledger", "Ledger Archive"], 2)
    assert matching(names, "or", limit=1) == (["Core Ledger"], 3)     # Core, Authorisation, Portal
    assert matching(names, "nothing") == ([], 0)


@pytest.fixture
def few_offered(monkeypatch):
    """The search threshold and the matches offered made small, so the small organisation's
    services are searched as 10,000 would be."""
    from itscm.ui import pickers

    monkeypatch.setattr(pickers, "SEARCH_FROM", 3)
    monkeypatch.setattr(pickers, "OFFERED", 2)


def test_many_services_are_searched_before_they_are_offered(hosted_store, few_offered):
    app = run_page("Resilience.py", as_of=AS_OF, tab="Scenarios")
    assert_clean(app)
    services = app.multiselect(key="fail_service")
    assert len(services.options) == 2                               # the first two by name, not all of them
    assert any("2 of " in c.value and "offered: type more of the name" in c.value for c in app.caption)
    app.text_input(key="fail_service-find").input("ledg").run()
    assert app.multiselect(key="fail_service").options == ["Core Ledger"]
    app.multiselect(key="fail_service").select("Core Ledger").run()
    app.text_input(key="fail_service-find").input("portal").run()  # a new search keeps what was chosen
    assert app.multiselect(key="fail_service").options == ["Core Ledger", "Customer Portal"]
    assert app.multiselect(key="fail_service").value == ["Core Ledger"]
    assert {m.label: m.value for m in app.metric}["Services disrupted"] == "2"


def test_a_link_naming_a_service_beyond_those_offered_opens_it(hosted_store, few_offered):
    with Store(hosted_store) as store:
        last = store.scalar("SELECT max(name) FROM services WHERE lifecycle = 'live'")
    app = run_page("Resilience.py", as_of=AS_OF, fail_service=last, hours="10")
    assert_clean(app)
    assert app.multiselect(key="fail_service").value == [last]
    assert app.query_params["fail_service"] == last


def test_the_chain_is_drawn_for_a_searched_service(hosted_store, few_offered):
    app = run_page("Resilience.py", as_of=AS_OF)
    app.text_input(key="chain-service-find").input("card auth").run()
    assert_clean(app)
    assert app.selectbox(key="chain-service").value == "Card Authorisation" and app.get("graphviz_chart")
    app.text_input(key="chain-service-find").input("OR").run()     # the choice kept while it matches
    assert app.selectbox(key="chain-service").value == "Card Authorisation"
    assert app.selectbox(key="chain-service").options == ["Card Authorisation", "Core Ledger"]
    assert any(c.value == "2 of 4 offered: type more of the name." for c in app.caption)
    app.text_input(key="chain-service-find").input("no such service").run()
    assert_clean(app)
    assert app.selectbox(key="chain-service").value is None and not app.get("graphviz_chart")
    assert any(c.value == "None match." for c in app.caption)


def test_the_chart_draws_the_steps_chosen_and_the_table_the_whole_chain(hosted_store):
    app = run_page("Resilience.py", as_of=AS_OF)
    app.selectbox(key="chain-service").select("Card Authorisation").run()
    assert_clean(app)
    steps = app.segmented_control(key="chain-steps")
    assert steps.value == "2"
    # Card Authorisation -> Core Ledger -> Hosting Co (a supplier), and Customer Portal -> Card Authorisation
    table = table_with(app, "direction")
    assert set(zip(table["direction"], table["steps"], table["name"], strict=True)) >= {
        ("depends on", 1, "Core Ledger"), ("depends on", 2, "Hosting Co")}
    nodes = table.drop_duplicates(["kind", "key"])
    beyond = int((nodes["steps"] > 2).sum())
    whole = app.expander[0].label
    assert whole.startswith(f"The whole chain: {len(nodes):,} services, suppliers and assets")
    assert (f"{beyond:,} of them beyond the steps drawn" in whole) == (beyond > 0)

    def drawn() -> int:
        return sum("[label=" in line for line in app.get("graphviz_chart")[0].proto.spec.splitlines())

    at_two = drawn()
    assert at_two == len(nodes[nodes["steps"] <= 2]) + 1                # and the service itself
    steps.set_value("1").run()
    assert_clean(app)
    assert drawn() == len(nodes[nodes["steps"] <= 1]) + 1 < at_two
    app.segmented_control(key="chain-steps").set_value("All").run()
    assert drawn() == len(nodes) + 1
    assert app.selectbox(key="chain-service").value == "Card Authorisation"
    assert table_with(app, "direction").equals(table)                   # the table is the whole chain each time
    linked = run_page("Resilience.py", as_of=AS_OF, **{"chain-steps": "All"})     # a link keeps the choice
    assert linked.segmented_control(key="chain-steps").value == "All"


def test_a_chain_longer_than_the_chart_counts_what_the_chart_leaves_out(hosted_store, monkeypatch):
    from itscm.ui import resilience

    monkeypatch.setattr(resilience, "CHART_LIMIT", 2)     # the service and one node each way
    app = run_page("Resilience.py", as_of=AS_OF, **{"chain-steps": "All"})
    app.selectbox(key="chain-service").select("Card Authorisation").run()
    assert_clean(app)
    table = table_with(app, "direction")
    drawn = sum("[label=" in line for line in app.get("graphviz_chart")[0].proto.spec.splitlines())
    assert drawn == 1 + table["direction"].nunique()
    nodes = len(table.drop_duplicates(["kind", "key"]))
    assert nodes > drawn - 1
    assert app.expander[0].label.endswith(f", {nodes - (drawn - 1):,} of them beyond the steps drawn")


def test_a_large_table_shows_its_first_rows_and_counts_the_others(hosted_store, monkeypatch):
    from itscm.ui import widgets

    monkeypatch.setattr(widgets, "TABLE_ROWS", 1)
    app = run_page("Resilience.py", as_of=AS_OF)
    assert_clean(app)
    assert len(table_with(app, "gap_minutes")) == 1
    assert any(c.value == "The first 1 of 2 rows, largest gap first; the CSV has the other 1." for c in app.caption)
    assert any(c.value.startswith("2 live services depend") for c in app.caption)


def test_the_worst_single_failures_are_ranked_by_cost_or_by_critical_services_past_mtpd(hosted_store):
    app = run_page("Resilience.py", as_of=AS_OF, tab="Single points of failure")
    by_cost = app.dataframe[1].value
    assert list(by_cost["cost_at_chosen_hours"]) == sorted(by_cost["cost_at_chosen_hours"], reverse=True)
    app.radio(key="worst-rank").set_value("critical_past_mtpd").run()
    assert_clean(app)
    by_mtpd = app.dataframe[1].value
    assert list(by_mtpd["critical_past_mtpd_at_chosen_hours"]) == sorted(
        by_mtpd["critical_past_mtpd_at_chosen_hours"], reverse=True)
    assert set(by_mtpd["name"]) == set(by_cost["name"])


def test_the_concentration_warning_is_one_line_however_many_suppliers():
    import pandas as pd

    from itscm.ui.resilience import concentration_warning

    flagged = pd.DataFrame({"supplier": [f"Supplier {i}" for i in range(7)],
                            "share_of_critical_pct": [90.0, 80, 70, 60, 50, 40, 30]})
    assert concentration_warning(flagged, 25) == (
        "7 suppliers each carry at least 25 % of the critical services (the policy's threshold): Supplier 0 "
        "90.0 %, Supplier 1 80.0 %, Supplier 2 70.0 %, Supplier 3 60.0 %, Supplier 4 50.0 % and 2 more.")
