"""Overview: continuity posture at a glance, for executives."""

import streamlit as st

from itscm import charts, ui
from itscm.inventory import service_count
from itscm.measures.downtime import downtime_by_month
from itscm.measures.posture import posture_summary, posture_trend, unit_gaps
from itscm.targets import posture_targets
from itscm.ui import inventory, resilience

page = ui.setup_page("Overview", ":material/dashboard:")
st.title("Continuity posture")
st.caption(ui.filter_scope_caption(page.filters))

summary = page.measure(posture_summary)
targets = posture_targets(page.store)
current = summary["current"]
nothing_in_scope = not (current["coverage"]["in_scope"] or current["staleness"]["plans"]
                        or current["downtime_cost"]["incidents"])
if nothing_in_scope and not ui.cached_read(service_count, page.store):
    inventory.bring_your_inventory(page.store)
    st.stop()
if nothing_in_scope:
    ui.explain_empty(
        "Nothing to show for these filters: no critical services, plans or incidents match. "
        "Widen the filters in the sidebar, or build the demo store (see the README)."
    )
    st.stop()

ui.posture_tiles(summary["headlines"], targets, page.currency, current)
st.caption(f"{ui.previous_period_caption(page.filters)} {ui.events_caption(page.filters)} "
           f"{ui.downtime_share_caption(current['downtime_cost'], page.currency)}")
resilience.overview_flags(page.store, page.measure)

left, right = st.columns([3, 2])
with left:
    trend = page.measure(posture_trend)
    ui.chart(charts.posture_trend, trend, targets, key="posture-trend")
with right:
    ui.chart(charts.cost_by_month, page.measure(downtime_by_month), page.currency, key="cost-trend")

st.subheader("Business units by gaps")
st.caption("Colour is the state against target. Select a row to narrow every page to that unit.")
units = page.measure(unit_gaps)
if units.empty:
    ui.explain_empty("No business unit matches these filters.")
else:
    ui.chart(charts.unit_heatmap, units, targets, page.currency, key="unit-heatmap")
    ui.unit_table(units, page.currency)
