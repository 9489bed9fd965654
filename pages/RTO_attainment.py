"""RTO attainment: do services really recover within their recovery time objectives?"""

import streamlit as st

from itscm import charts, ui
from itscm.measures.attainment import (
    RATIO_BANDS,
    attainment_by_month,
    attainment_by_tier,
    attainment_by_unit,
    attainment_summary,
    events_without_rto,
    rta_ratio_distribution,
    worst_breaches,
)
from itscm.targets import posture_targets

page = ui.setup_page("RTO attainment", ":material/timer:")
st.title("RTO attainment")
st.caption(ui.filter_scope_caption(page.filters))

summary = page.measure(attainment_summary)
if not summary["events"] and not summary["without_rto"]:
    ui.explain_empty("No recovery event in this period for these filters: no incident with a restore time "
                     "and no drill that measured a recovery time.")
    st.stop()

target = posture_targets(page.store)["attainment_pct"]
tiles = st.columns(5)
tiles[0].metric("Attainment", ui.pct(summary["pct"]), border=True,
                help=f"Target ≥ {target:.0f} %. {page.filters.events_label} and drills.")
tiles[1].metric("Recovery events", f"{summary['events']:,}", border=True,
                help="Incidents with a restore (or resolve) time and drills that measured a recovery time, "
                     "for services with an RTO.")
tiles[2].metric("Past their RTO", f"{summary['events'] - summary['attained']:,}", border=True)
tiles[3].metric("Cannot be judged", f"{summary['without_rto']:,}", border=True,
                help=f"No RTO to judge them against: {summary['unmatched']:,} incidents name no known service; "
                     "the rest belong to services with no RTO. They are counted here, not in the percentage.")
tiles[4].metric("Estimated restores", f"{summary['estimated_restores']:,}", border=True,
                help="Incidents with no restore time: their resolve time is used instead.")

st.caption(ui.events_caption(page.filters) + " The charts and tables below count the same.")
left, right = st.columns(2)
with left:
    ui.chart(charts.attainment_by_month, page.measure(attainment_by_month), target, key="attainment-month")
with right:
    ui.chart(charts.ratio_distribution, page.measure(rta_ratio_distribution), RATIO_BANDS, key="ratio-bands")

left, right = st.columns(2)
with left:
    by_unit = page.measure(attainment_by_unit)
    ui.chart(charts.attainment_by_group, by_unit, "unit", target, "Attainment by business unit", key="by-unit")
with right:
    by_tier = page.measure(attainment_by_tier).groupby("tier", as_index=False)[["events", "attained"]].sum()
    by_tier["pct"] = (100.0 * by_tier["attained"] / by_tier["events"]).round(1)
    by_tier["tier"] = "Tier " + by_tier["tier"].astype("Int64").astype(str)
    ui.chart(charts.attainment_by_group, by_tier, "tier", target, "Attainment by tier", key="by-tier")

st.subheader("Worst breaches")
breaches = page.measure(worst_breaches, limit=200)
if breaches.empty:
    ui.explain_empty("No recovery in this period went past its RTO.")
else:
    st.dataframe(breaches, hide_index=True, column_config={
        "source": "Source", "event_id": "Event", "service": "Service", "unit": "Business unit",
        "tier": "Tier", "title": "Title",
        "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm"),
        "recovered_at": st.column_config.DatetimeColumn("Recovered", format="YYYY-MM-DD HH:mm"),
        "restore_estimated": st.column_config.CheckboxColumn("Estimated", help="Resolve time used as restore time"),
        "rta_minutes": st.column_config.NumberColumn("RTA (min)", format="localized"),
        "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
        "rta_rto_ratio": st.column_config.NumberColumn("RTA / RTO", format="%.2f ×"),
    })
    ui.download_csv(breaches, "rto_breaches.csv")

with st.expander(f"Events that cannot be judged ({summary['without_rto']:,})"):
    unjudged = page.measure(events_without_rto)
    st.dataframe(unjudged, hide_index=True, column_config={
        "reason": "Why", "name": "Service or name logged", "source": "Source", "events": "Events"})
    ui.download_csv(unjudged, "events_without_rto.csv")
