"""The Assets page's parts: inventory currency at a glance, the unverified assets behind
critical services (by owner and business unit, and one by one), and the assets of a service."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from itscm.ui.widgets import download_csv, explain_empty, pct, rows_height

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


def unverified_assets(assets: pd.DataFrame, file_name: str) -> None:
    shown = assets[~assets["verified"]]
    if shown.empty:
        explain_empty("No unverified asset behind a critical service in scope.")
        return
    st.dataframe(shown, hide_index=True, key="unverified-assets", column_config=ASSET_COLUMNS,
                 column_order=["asset_id", "asset", "asset_class", "owner", "units", "services", "location",
                               "last_verified", "verified_by", "days_since", "interval_days"])
    download_csv(shown, file_name)


def service_assets_table(assets: pd.DataFrame, note: str) -> None:
    if assets.empty:
        explain_empty(note)
        return
    st.dataframe(assets, hide_index=True, column_config=ASSET_COLUMNS,
                 column_order=["asset_id", "asset", "asset_class", "relation", "location", "owner", "lifecycle",
                               "last_verified", "verified_by"])
