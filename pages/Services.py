"""Services: browse the inventory and open a service's card."""

import streamlit as st

from itscm import ui
from itscm.inventory import service_card, service_catalogue

page = ui.setup_page("Services", ":material/lan:")
st.title("Services")
st.caption(ui.filter_scope_caption(page.filters))

search = st.text_input("Search by name, alias, owner or business unit", key="service-search",
                       placeholder="e.g. payments, CBL-PROD, Jane", icon=":material/search:")
catalogue = page.measure(service_catalogue, search=search)
if catalogue.empty:
    ui.explain_empty("No service matches this search and these filters.")
    st.stop()

misaligned = int(catalogue["rto_misaligned"].sum())
st.caption(f"{len(catalogue):,} services shown · {misaligned:,} depend on a service with a longer RTO "
           "than their own, so cannot meet their RTO as set.")
picked = st.dataframe(
    catalogue, hide_index=True, key="service-table", on_select="rerun", selection_mode="single-row",
    column_order=["service", "unit", "tier", "owner", "lifecycle", "rto_minutes", "effective_rto_minutes",
                  "rto_misaligned", "rpo_minutes", "mtpd_minutes", "impact_cost_per_hour", "recovery_strategy"],
    column_config={
        "service": "Service", "unit": "Business unit", "tier": "Tier", "owner": "Owner", "lifecycle": "Lifecycle",
        "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
        "effective_rto_minutes": st.column_config.NumberColumn(
            "Effective RTO (min)", format="localized", help="The longest RTO along its dependency chain"),
        "rto_misaligned": st.column_config.CheckboxColumn("Dependency slower"),
        "rpo_minutes": st.column_config.NumberColumn("RPO (min)", format="localized"),
        "mtpd_minutes": st.column_config.NumberColumn("MTPD (min)", format="localized"),
        "impact_cost_per_hour": st.column_config.NumberColumn(f"Cost per hour ({page.currency})",
                                                              format="localized"),
        "recovery_strategy": "Strategy",
    },
)
rows = picked.selection.rows
if not rows:
    st.info("Select a service in the table to open its card.", icon=":material/touch_app:")
    st.stop()

card = service_card(page.store, catalogue.iloc[rows[0]]["service_id"])
ui.service_card(card, page.currency)
