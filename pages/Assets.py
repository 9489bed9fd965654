"""Assets: the infrastructure behind the critical services, and how current its inventory is."""

import streamlit as st

from itscm import ui
from itscm.inventory import live_services
from itscm.measures.inventory_currency import (
    asset_count,
    inventory_currency_summary,
    service_assets,
    unverified_by_owner_and_unit,
)
from itscm.targets import posture_targets

page = ui.setup_page("Assets", ":material/dns:")
st.title("Assets and inventory currency")
st.caption(ui.filter_scope_caption(page.filters))

if not ui.cached_read(asset_count, page.store):
    ui.explain_empty("No asset in this store yet: bring them in on the Inventory page, with the workbook's assets "
                     "and service_assets sheets or a Snipe-IT asset report or a ServiceNow CI list and its "
                     "relationships (cmdb_rel_ci).")
    st.stop()

summary = page.measure(inventory_currency_summary)
ui.assets.currency_tiles(summary, posture_targets(page.store)["inventory_currency_pct"])
if not summary["assets"]:
    ui.explain_empty("No asset is linked to a live critical service that these filters keep.")
else:
    st.subheader("Unverified assets by owner and business unit")
    st.caption(f"As of {page.filters.as_of:%d %b %Y}. An asset behind services of several units counts in each.")
    ui.assets.unverified_by_owner(page.measure(unverified_by_owner_and_unit))
    st.subheader("Unverified assets")
    ui.assets.unverified_assets(page.store, page.filters, "unverified_assets.csv")

st.subheader("The assets of a service")
services = ui.cached_read(live_services, page.store)
chosen = st.selectbox("Service", list(services), format_func=services.get, index=None, key="asset-service",
                      placeholder="Choose a service")
if chosen is not None:
    ui.assets.service_assets_table(ui.cached_read(service_assets, page.store, chosen),
                               "No asset recorded for this service.")
