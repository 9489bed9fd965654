"""Critical-service coverage: which critical services meet every continuity control."""

import streamlit as st

from itscm import charts, ui
from itscm.measures.coverage import (
    CONTROLS,
    control_gap_counts,
    coverage_by_service,
    coverage_by_unit_tier,
    coverage_summary,
    coverage_trend,
)
from itscm.targets import posture_targets

page = ui.setup_page("Coverage", ":material/verified_user:")
st.title("Critical-service coverage")
st.caption(ui.filter_scope_caption(page.filters))

summary = page.measure(coverage_summary)
if not summary["in_scope"]:
    ui.explain_no_match(page.store, "No live critical service matches these filters, so there is no coverage to "
                        "measure. Critical tiers are set in the policy (by default tiers 1 and 2).")
    st.stop()

target = posture_targets(page.store)["coverage_pct"]
first, second, third = st.columns(3)
first.metric("Coverage", ui.pct(summary["pct"]), border=True, help=f"Target ≥ {target:.0f} %")
second.metric("Critical services covered", f"{summary['covered']:,}", border=True)
third.metric("Critical services with gaps", f"{summary['in_scope'] - summary['covered']:,}", border=True)

by_unit_tier = page.measure(coverage_by_unit_tier)
left, right = st.columns([3, 2])
with left:
    ui.chart(charts.coverage_by_unit, by_unit_tier, key="coverage-by-unit")
with right:
    ui.chart(charts.control_gaps, page.measure(control_gap_counts), summary["in_scope"], key="control-gaps")

gap_columns = [f"{control}_gaps" for control in CONTROLS]
unit_control = by_unit_tier.groupby("unit")[gap_columns].sum()
unit_control.columns = list(CONTROLS.values())
ui.chart(charts.gap_matrix, unit_control, key="gap-matrix")

ui.chart(charts.coverage_trend, page.measure(coverage_trend), target, key="coverage-trend")

st.subheader("Gap table: critical services and their controls")
matrix = page.measure(coverage_by_service)
only_gaps = st.toggle("Only services with gaps", value=True, key="coverage-only-gaps")
shown = matrix[~matrix["covered"]] if only_gaps else matrix
ui.gap_table(shown, CONTROLS)
ui.download_csv(shown, "coverage_gaps.csv")
