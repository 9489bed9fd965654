"""Downtime cost: what outages have cost, where, and how much of it was beyond target."""

import streamlit as st

from itscm import charts, ui
from itscm.measures.downtime import (
    costliest_breaches,
    downtime_by_month,
    downtime_by_unit,
    downtime_summary,
    top_cost_services,
    unpriced_outages,
)

page = ui.setup_page("Downtime cost", ":material/payments:")
st.title("Downtime cost")
st.caption(ui.filter_scope_caption(page.filters))

summary = page.measure(downtime_summary)
if not summary["incidents"]:
    ui.explain_empty("No outage in this period for these filters.")
    st.stop()

currency = page.currency
tiles = st.columns(4)
tiles[0].metric("Downtime cost", ui.money(summary["total"], currency), border=True,
                help="Outage hours in the period × the service's BIA cost per hour.")
tiles[1].metric("Beyond RTO", ui.money(summary["breach_cost"], currency), border=True,
                help="The cost of outage time past each service's RTO.")
tiles[2].metric("Priced outage hours", f"{summary['priced_hours']:,.0f} h", border=True)
tiles[3].metric("Unpriced outage hours", f"{summary['unpriced_hours']:,.0f} h", border=True,
                help="Outages with no matched service or no BIA cost: shown, not priced.")
st.caption(ui.downtime_share_caption(summary, currency))
st.caption(f"{summary['incidents']:,} incidents · {summary['ongoing']:,} ongoing, counted to the end of the "
           f"as-of date · {summary['estimated_restores']:,} with the resolve time as restore estimate · "
           f"{summary['closed_without_restore_time']:,} closed without a restore time (no hours counted)")

ui.chart(charts.cost_by_month, page.measure(downtime_by_month), currency, key="cost-month")
left, right = st.columns(2)
with left:
    by_unit = page.measure(downtime_by_unit)
    ui.chart(charts.cost_by_group, by_unit, "unit", currency, "Cost by business unit", key="cost-unit")
with right:
    top = page.measure(top_cost_services, limit=15)
    ui.chart(charts.cost_by_group, top, "service", currency, "Top 15 cost drivers", key="cost-services")

st.subheader("Costliest RTO breaches")
breaches = page.measure(costliest_breaches, limit=200)
if breaches.empty:
    ui.explain_empty("No outage in this period ran past its RTO.")
else:
    st.dataframe(breaches, hide_index=True, column_config={
        "incident_id": "Incident", "service": "Service", "unit": "Business unit", "tier": "Tier",
        "title": "Title", "end_basis": "Outage end",
        "opened_at": st.column_config.DatetimeColumn("Opened", format="YYYY-MM-DD HH:mm"),
        "outage_end": st.column_config.DatetimeColumn("Restored", format="YYYY-MM-DD HH:mm"),
        "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
        "outage_hours": st.column_config.NumberColumn("Outage (h)", format="%.1f"),
        "breach_hours": st.column_config.NumberColumn("Beyond RTO (h)", format="%.1f"),
        "breach_cost": st.column_config.NumberColumn(f"Breach cost ({currency})", format="localized"),
        "cost": st.column_config.NumberColumn(f"Cost ({currency})", format="localized"),
    })
    ui.download_csv(breaches, "costliest_breaches.csv")

with st.expander(f"Unpriced outage hours ({summary['unpriced_hours']:,.0f} h)"):
    unpriced = page.measure(unpriced_outages)
    st.dataframe(unpriced, hide_index=True, column_config={
        "reason": "Why", "name": "Service or name logged", "incidents": "Incidents",
        "outage_hours": st.column_config.NumberColumn("Outage hours", format="%.1f")})
    ui.download_csv(unpriced, "unpriced_outages.csv")
