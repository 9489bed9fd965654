"""Inventory currency on a hand-built store: the share of the assets behind live critical services
verified within their tier's interval (the strictest when an asset is behind several), worked out
by hand; `summary --json`, the Overview tile and unit table and the Assets page agree; a store
without assets says so instead of a percentage."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm.cli import main
from itscm.filters import Filters
from itscm.measures.inventory_currency import (
    asset_currency,
    inventory_currency_summaries,
    inventory_currency_summary,
    inventory_currency_trend,
    unverified_by_owner_and_unit,
)
from itscm.store import Store
from tests.builders import OrgBuilder
from tests.conftest import SMALL_ORG_AS_OF

ROOT = Path(__file__).resolve().parent.parent
AS_OF = SMALL_ORG_AS_OF
DAY = dt.timedelta(days=1)
FILTERS = Filters(as_of=AS_OF)


def service(store: Store, name: str) -> str:
    return store.scalar("SELECT service_id FROM services WHERE name = $name", {"name": name})


@pytest.fixture
def assets_store(store_path):
    """The small organisation with assets: Core Ledger and Card Authorisation (tier 1, Payments and
    its sub-unit Cards), Customer Portal (tier 2, Retail), Expense Claims (tier 4, not critical).
    Tier 1 assets must be verified within 90 days, tier 2 within 180 (set here)."""
    store = Store(store_path)
    with store.transaction() as cursor:
        cursor.execute("UPDATE policy SET asset_verify_interval_days = 180 WHERE tier = 2")
    org = OrgBuilder(store)
    ledger, auth = service(store, "Core Ledger"), service(store, "Card Authorisation")
    portal, expenses = service(store, "Customer Portal"), service(store, "Expense Claims")
    gone = org.service("bu-pay", name="Old Mainframe", tier=1, lifecycle="retired")
    verified = {"verified_by": "audit"}
    org.asset(ledger, asset_id="a1", owner="DBA", last_verified=AS_OF - 60 * DAY, **verified)    # yes
    org.asset(portal, asset_id="a2", owner="Web", last_verified=AS_OF - 149 * DAY, **verified)   # yes (180)
    org.asset(ledger, portal, asset_id="a3", owner="DBA", last_verified=AS_OF - 149 * DAY)      # no (90)
    org.asset(expenses, asset_id="a4", owner="Ops")                                             # not critical
    org.asset(gone, asset_id="a5", owner="Ops")                                                 # retired service
    org.asset(ledger, asset_id="a6", owner="DBA")                                               # never: no
    org.asset(ledger, asset_id="a7", owner="DBA", lifecycle="retired")                          # retired asset
    org.asset(portal, asset_id="a8", owner="Web", last_verified=AS_OF - 30 * DAY, verified_by="discovery")  # yes
    org.asset(auth, asset_id="a9", owner=None, last_verified=AS_OF - 200 * DAY, **verified)     # long ago: no
    yield store
    store.close()


def test_the_share_worked_out_by_hand(assets_store):
    assert inventory_currency_summary(assets_store, FILTERS) == {"assets": 6, "verified": 3, "pct": 50.0,
                                                                 "verified_later": 0}
    frame = asset_currency(assets_store, FILTERS).set_index("asset_id")
    assert sorted(frame.index) == ["a1", "a2", "a3", "a6", "a8", "a9"]
    assert frame.loc["a3", "interval_days"] == 90 and frame.loc["a2", "interval_days"] == 180   # the strictest
    assert list(frame.index[:3]) == ["a6", "a9", "a3"]          # never verified first, then the oldest
    # By business unit (a unit includes its sub-units): Payments a1, a3, a6, a9; Retail a2, a3, a8.
    payments = Filters(as_of=AS_OF, units=("Payments",))
    assert inventory_currency_summary(assets_store, payments) == {"assets": 4, "verified": 1, "pct": 25.0,
                                                                  "verified_later": 0}
    retail = Filters(as_of=AS_OF, units=("Retail <b>Banking</b>",))
    assert inventory_currency_summary(assets_store, retail)["pct"] == 66.7
    # A tier filter keeps the tier's services; a3 still owes tier 1's interval through Core Ledger.
    assert inventory_currency_summary(assets_store, Filters(as_of=AS_OF, tiers=(2,)))["pct"] == 66.7


def test_a_past_date_is_given_only_where_the_store_can_say(assets_store):
    # 100 days earlier, a1 and a8 were verified later: their state then is unknown (the store keeps
    # the latest verification only), 2 of 6 assets, more than a tenth: no figure for that date.
    earlier = AS_OF - 100 * DAY
    summaries = inventory_currency_summaries(assets_store, FILTERS, [AS_OF, earlier])
    assert summaries[AS_OF]["pct"] == 50.0
    assert summaries[earlier] == {"assets": 6, "verified": 2, "pct": None, "verified_later": 2}
    # 60 days on, nothing was verified after: a8 (90 days, within 180) is the only one current.
    later = AS_OF + 60 * DAY
    assert inventory_currency_summaries(assets_store, FILTERS, [later])[later] == {
        "assets": 6, "verified": 1, "pct": 16.7, "verified_later": 0}
    trend = inventory_currency_trend(assets_store, FILTERS).set_index("month")["inventory_currency_pct"]
    assert trend.iloc[-1] == 50.0 and trend.iloc[:-2].isna().all()   # the months it cannot speak for are empty


def test_unverified_assets_by_owner_and_unit(assets_store):
    table = unverified_by_owner_and_unit(assets_store, FILTERS)
    rows = {(owner, unit): (assets, unverified) for owner, unit, assets, unverified in table.itertuples(index=False)}
    assert rows == {("DBA", "Payments"): (3, 2), ("DBA", "Retail <b>Banking</b>"): (1, 1),
                    ("Web", "Retail <b>Banking</b>"): (2, 0), ("(no owner)", "Cards"): (1, 1)}


def test_summary_json_the_overview_and_the_assets_page_agree(assets_store, store_path, capsys):
    assets_store.close()
    assert main(["summary", "--store", str(store_path), "--as-of", AS_OF.isoformat(), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["inventory_currency"] == {"assets": 6, "verified": 3, "pct": 50.0}
    assert main(["summary", "--store", str(store_path), "--as-of", AS_OF.isoformat(), "--json",
                 "--unit", "Payments"]) == 0
    assert json.loads(capsys.readouterr().out)["inventory_currency"]["pct"] == 25.0

    overview = run_page("Overview.py")
    tile = next(metric for metric in overview.metric if metric.label == "Inventory currency")
    assert tile.value == "50.0 %"
    assert tile.help == "3 of 6 assets behind critical services verified within their interval"
    assert any("target ≥ 95 %" in markdown.value for markdown in overview.markdown)
    # The unit table, like the other measures', shows each unit's own services: Payments a1, a3,
    # a6; its sub-unit Cards a9 (the filter on Payments above takes in Cards).
    ranking = overview.dataframe[0].value.set_index("unit")
    assert ranking.loc["Payments", "inventory_currency_pct"] == 33.3
    assert ranking.loc["Cards", "inventory_currency_pct"] == 0.0
    assert ranking.loc["Retail <b>Banking</b>", "unverified_assets"] == 1

    page = run_page("Assets.py")
    assert next(metric for metric in page.metric if metric.label == "Inventory currency").value == "50.0 %"
    unverified = page.dataframe[1].value
    assert sorted(unverified["asset_id"]) == ["a3", "a6", "a9"]


def run_page(name: str, **query) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=60)
    app.query_params.update({"as_of": AS_OF.isoformat(), **query})
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_a_store_without_assets_says_so_rather_than_a_percentage(store_path, capsys):
    assert main(["summary", "--store", str(store_path), "--as-of", AS_OF.isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inventory_currency"] == {"assets": 0, "verified": 0, "pct": None}
    overview = run_page("Overview.py")
    tile = next(metric for metric in overview.metric if metric.label == "Inventory currency")
    assert tile.value == "—"                                  # the reason, too long for the tile, is on its badge
    assert "No assets yet · target ≥ 95 %" in " ".join(markdown.value for markdown in overview.markdown)


def test_a_past_date_the_store_cannot_speak_for_is_no_figure_on_the_tile(assets_store):
    assets_store.close()
    overview = run_page("Overview.py", as_of=(AS_OF - 100 * DAY).isoformat())
    tile = next(metric for metric in overview.metric if metric.label == "Inventory currency")
    assert tile.value == "—"
    assert tile.help.startswith("2 of 6 assets were verified after this date")


def test_the_service_card_lists_the_services_assets(assets_store):
    ledger = service(assets_store, "Core Ledger")
    assets_store.close()
    app = run_page("Services.py", service=ledger)
    tab = next(tab for tab in app.tabs if tab.label.startswith("Assets"))
    assert tab.label == "Assets (4)"                                 # a1, a3, a6 and the retired a7
    listed = tab.dataframe[0].value
    assert list(listed["asset_id"]) == ["a1", "a3", "a6", "a7"] and list(listed["lifecycle"])[-1] == "retired"


def test_the_assets_page_shows_a_chosen_services_assets_and_exports_the_unverified(assets_store):
    portal = service(assets_store, "Customer Portal")
    assets_store.close()
    page = run_page("Assets.py")
    assert [button.proto.label for button in page.get("download_button")] == ["Download CSV"]
    page.selectbox(key="asset-service").set_value(portal).run()
    assert not page.exception
    assert list(page.dataframe[-1].value["asset_id"]) == ["a2", "a3", "a8"]
