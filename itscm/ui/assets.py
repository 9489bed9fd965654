"""The Assets page's parts: inventory currency at a glance, the unverified assets behind
critical services (by owner and business unit, and one by one), and the assets of a service."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from itscm.filters import Filters
from itscm.measures.inventory_currency import asset_currency
from itscm.store import Store
from itscm.ui import widgets
from itscm.ui.cache import TableHead, cached_measure, cached_read, head_of
from itscm.ui.widgets import explain_empty, pct, rows_height, table_head

ASSET_COLUMNS = {
    "asset_id": "Asset", "asset": "Name", "asset_class": "Class", "owner": "Owner", "location": "Location",
    "relation": "Relation", "lifecycle": "Lifecycle",
    "last_verified": st.column_config.DateColumn("Last verified", format="YYYY-MM-DD"),
    "verified_by": "How", "interval_days": st.column_config.NumberColumn("Interval (days)", help=(
        "The strictest verification interval of the critical services it is behind (the policy's, per tier)")),
    "days_since": st.column_config.NumberColumn("Days since", help="Empty: never verified, or not by the as-of date"),
    "verified": st.column_config.CheckboxColumn("Verified in interval"),
    "services": "Critical services", "units": "Business units",
}


def currency_tiles(summary: dict, target: float) -> None:
    tiles = st.columns(3)
    figure = pct(summary["pct"]) if summary["assets"] else "no assets yet"
    tiles[0].metric("Inventory currency", figure, border=True, help="Assets behind live critical services verified "
                    f"within their interval. Target ≥ {target:.0f} %")
    tiles[1].metric("Assets behind critical services", f"{summary['assets']:,}", border=True)
    tiles[2].metric("Unverified", f"{summary['assets'] - summary['verified']:,}", border=True,
                    help="Never verified, or last verified longer ago than the interval")


def unverified_by_owner(table: pd.DataFrame) -> None:
    shown = table[table["unverified"] > 0]
    if shown.empty:
        st.success("Every asset behind a critical service in scope was verified in its interval.",
                   icon=":material/task_alt:")
        return
    st.dataframe(shown, hide_index=True, key="unverified-by-owner", height=rows_height(min(len(shown), 12)),
                 column_config={"owner": "Owner", "unit": "Business unit", "assets": "Assets",
                                "unverified": st.column_config.ProgressColumn(
                                    "Unverified", format="%d", min_value=0, max_value=int(shown["assets"].max()))})


def _unverified(store: Store, filters: Filters) -> pd.DataFrame:
    assets = cached_measure(asset_currency, store, filters)
    return assets[~assets["verified"]]


def _unverified_head(store: Store, filters: Filters, limit: int) -> TableHead:
    return head_of(_unverified(store, filters), limit)


def unverified_assets(store: Store, filters: Filters, file_name: str) -> None:
    """The unverified assets behind critical services, never verified first, then the longest
    since: the first rows (20,000 and more unverified at 100,000 assets; the whole table read from
    the cache and drawn on every run cost more than the rest of the page), the CSV of them all."""
    head = cached_read(_unverified_head, store, filters, widgets.TABLE_ROWS)
    if head.total == 0:
        explain_empty("No unverified asset behind a critical service in scope.")
        return
    table_head(head, lambda: _unverified(store, filters), file_name, "never verified first, then the longest since",
               ASSET_COLUMNS, key="unverified-assets",
               column_order=["asset_id", "asset", "asset_class", "owner", "units", "services", "location",
                             "last_verified", "verified_by", "days_since", "interval_days"])


def service_assets_table(assets: pd.DataFrame, note: str) -> None:
    if assets.empty:
        explain_empty(note)
        return
    st.dataframe(assets, hide_index=True, column_config=ASSET_COLUMNS,
                 column_order=["asset_id", "asset", "asset_class", "relation", "location", "owner", "lifecycle",
                               "last_verified", "verified_by"])
