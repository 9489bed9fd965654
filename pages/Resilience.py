"""Resilience: how failures spread along dependencies and suppliers, and what they cost."""

import streamlit as st

from itscm import ui
from itscm.inventory import service_count
from itscm.resilience import analysis
from itscm.ui import resilience

page = ui.setup_page("Resilience", ":material/hub:")
st.title("Resilience")
st.caption(ui.filter_scope_caption(page.filters))
st.caption("A failure spreads from a service, supplier or asset to everything that depends on it, except along "
           "a dependency with a working alternative.")

if not ui.cached_read(service_count, page.store):
    ui.explain_no_match(page.store, "")   # a store without services: how to bring the inventory in
    st.stop()

money = {"cost_per_hour_at_risk": st.column_config.NumberColumn(f"Cost per hour at risk ({page.currency})",
                                                                 format="localized")}
dependencies, single_points, suppliers, scenarios = st.tabs(
    ["Dependencies", "Single points of failure", "Supplier concentration", "Scenarios"])

with dependencies:
    in_scope = page.measure(analysis.misalignments)
    choices = ui.cached_read(resilience.failure_choices, page.store)
    scoped = set(page.measure(analysis.services_in_scope) or ()) if page.filters.units or page.filters.tiers \
        else None
    services = {label: spec for label, spec in choices["service"].items()
                if scoped is None or spec.partition(":")[2] in scoped}
    resilience.dependency_chart(page.store, services)
    st.subheader("RTO shorter than the dependency chain")
    st.caption(f"{len(in_scope):,} live services depend, directly, through others or through the assets they "
               "run on, on a service or supplier that takes longer to recover than their own RTO: they cannot meet "
               "it as set.")
    st.dataframe(in_scope, hide_index=True, column_config={
        "service_id": None, "service": "Service", "unit": "Business unit", "tier": "Tier",
        "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
        "effective_rto_minutes": st.column_config.NumberColumn("Effective RTO (min)", format="localized"),
        "gap_minutes": st.column_config.NumberColumn("Gap (min)", format="localized"),
        "bottleneck": "Set by", "bottleneck_kind": "Kind"})
    resilience.download_csv_on_click(in_scope, "rto_misalignment.csv")
    st.subheader("Critical services on a weak dependency")
    gaps = page.measure(analysis.critical_dependency_gaps)
    st.dataframe(gaps, hide_index=True, column_config={
        "service_id": None, "depends_on_id": None, "service": "Critical service", "unit": "Business unit",
        "tier": "Tier", "depends_on": "Depends on", "problem": "Problem"})
    resilience.download_csv_on_click(gaps, "critical_dependency_gaps.csv")

with single_points:
    points = page.measure(analysis.single_points_of_failure)
    st.caption("Services, suppliers or assets whose failure alone reaches at least one critical service other "
               "than themselves, by the critical services reached, then by the cost per hour at risk.")
    st.dataframe(points, hide_index=True, column_config={
        "kind": "Kind", "key": None, "name": "Name", "recovery_minutes": st.column_config.NumberColumn(
            "Recovery (min)", format="localized",
            help="Its RTO, or a supplier's contracted recovery time; an asset has none (blank)"),
        "critical_reached_beyond_itself": "Critical services reached", "critical_reached": None,
        "services_reached": "Services reached", "unpriced_reached": "Of which unpriced", **money})
    resilience.download_csv_on_click(points, "single_points_of_failure.csv")
    st.subheader("Worst single failure")
    hours = st.number_input("Chosen duration D (hours)", min_value=0.25, max_value=24.0 * 365, value=24.0,
                            step=1.0, key="worst-hours")
    worst = page.measure(analysis.worst_single_failures, hours=float(hours))
    st.caption("Every service, supplier or asset failed alone, for its own recovery time and for D; by cost at "
               "D. An asset has no recovery time of its own, so its figures at its own recovery time are blank. "
               "Sort by a column to rank by critical services past their MTPD.")
    st.dataframe(worst.head(500), hide_index=True, column_config={
        "kind": "Kind", "key": None, "name": "Name",
        "recovery_minutes": st.column_config.NumberColumn("Own recovery (min)", format="localized"),
        "services_reached": "Services reached", "critical_reached": "Critical reached",
        "critical_reached_beyond_itself": None, "unpriced_reached": "Unpriced reached", **money,
        "cost_at_own_recovery": st.column_config.NumberColumn(f"Cost, own recovery ({page.currency})",
                                                              format="localized"),
        "critical_past_mtpd_at_own_recovery": "Critical past MTPD, own recovery",
        "cost_at_chosen_hours": st.column_config.NumberColumn(f"Cost at D ({page.currency})", format="localized"),
        "critical_past_mtpd_at_chosen_hours": "Critical past MTPD at D"})
    resilience.download_csv_on_click(worst, "worst_single_failure.csv")

with suppliers:
    table = page.measure(analysis.supplier_concentration)
    threshold = analysis.concentration_threshold_pct(page.store)
    resilience.threshold_flag(table, threshold)
    st.caption("Per supplier, the live services its failure reaches (directly and through dependencies); a breach "
               "when its contracted recovery time is longer than the shortest RTO among them.")
    st.dataframe(table, hide_index=True, column_config={
        "supplier_id": None, "supplier": "Supplier", "services_direct": "Services relying directly",
        "services_reached": "Services reached", "critical_reached": "Critical reached",
        "share_of_critical_pct": st.column_config.ProgressColumn(
            "Share of critical services", format="%.1f %%", min_value=0, max_value=100), **money,
        "contracted_recovery_minutes": st.column_config.NumberColumn("Contracted recovery (min)", format="localized"),
        "shortest_rto_minutes": st.column_config.NumberColumn("Shortest RTO reached (min)", format="localized"),
        "shortest_rto_service": "Service with it", "recovery_breach": st.column_config.CheckboxColumn("Breach"),
        "substitutability": "Substitutability", "contract_end": st.column_config.DateColumn("Contract end")})
    resilience.download_csv_on_click(table, "supplier_concentration.csv")

with scenarios:
    failed, hours = resilience.scenario_picker(page.store, choices)
    if not failed:
        ui.explain_empty("Choose failed services, suppliers, assets or business units to see what the failure reaches. "
                         "The choice is in the page's address: copy it to share the scenario.")
    else:
        result = page.measure(analysis.scenario, failed=failed, hours=hours)
        resilience.scenario_results(result, page.currency)
        resilience.save_form(page.user, page.store, failed, hours)
