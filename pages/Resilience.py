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
dependencies, single_points, suppliers, scenarios = resilience.page_tabs()

if dependencies.open:
    with dependencies:
        choices = ui.shared_read(resilience.failure_choices, page.store)
        scoped = set(page.measure(analysis.services_in_scope) or ()) if page.filters.units or page.filters.tiers \
            else None
        services = {label: spec for label, spec in choices["service"].items()
                    if scoped is None or spec.partition(":")[2] in scoped}
        resilience.dependency_chart(page.store, services)
        st.subheader("RTO shorter than the dependency chain")
        caption = st.empty()
        misaligned = ui.measure_head(
            page.store, page.filters, analysis.misalignments, "rto_misalignment.csv", "largest gap first", {
                "service_id": None, "service": "Service", "unit": "Business unit", "tier": "Tier",
                "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
                "effective_rto_minutes": st.column_config.NumberColumn("Effective RTO (min)", format="localized"),
                "gap_minutes": st.column_config.NumberColumn("Gap (min)", format="localized"),
                "bottleneck": "Set by", "bottleneck_kind": "Kind"})
        caption.caption(f"{misaligned.total:,} live services depend, directly, through others or through the assets "
                        "they run on, on a service or supplier that takes longer to recover than their own RTO: they "
                        "cannot meet it as set.")
        st.subheader("Critical services on a weak dependency")
        ui.measure_head(
            page.store, page.filters, analysis.critical_dependency_gaps, "critical_dependency_gaps.csv",
            "by tier and name", {
                "service_id": None, "depends_on_id": None, "service": "Critical service", "unit": "Business unit",
                "tier": "Tier", "depends_on": "Depends on", "problem": "Problem"})

if single_points.open:
    with single_points:
        st.caption("Services, suppliers or assets whose failure alone reaches at least one critical service other "
                   "than themselves, by the critical services reached, then by the cost per hour at risk.")
        ui.measure_head(
            page.store, page.filters, analysis.single_points_of_failure, "single_points_of_failure.csv",
            "most critical services reached first", {
                "kind": "Kind", "key": None, "name": "Name", "recovery_minutes": st.column_config.NumberColumn(
                    "Recovery (min)", format="localized",
                    help="Its RTO, or a supplier's contracted recovery time; an asset has none (blank)"),
                "critical_reached_beyond_itself": "Critical services reached", "critical_reached": None,
                "services_reached": "Services reached", "unpriced_reached": "Of which unpriced", **money})
        st.subheader("Worst single failure")
        left, right = st.columns(2)
        hours = left.number_input("Chosen duration D (hours)", min_value=0.25, max_value=24.0 * 365, value=24.0,
                                  step=1.0, key="worst-hours")
        rank_by = right.radio("Rank by", list(analysis.WORST_RANKINGS), key="worst-rank", horizontal=True,
                              format_func={"cost": "cost at D",
                                           "critical_past_mtpd": "critical services past their MTPD at D"}.get)
        st.caption("Every service, supplier or asset failed alone, for its own recovery time and for D. An asset has "
                   "no recovery time of its own, so its figures at its own recovery time are blank.")
        ui.measure_head(
            page.store, page.filters, analysis.worst_single_failures, "worst_single_failure.csv",
            "by cost at D" if rank_by == "cost" else "by critical services past their MTPD at D", {
                "kind": "Kind", "key": None, "name": "Name",
                "recovery_minutes": st.column_config.NumberColumn("Own recovery (min)", format="localized"),
                "services_reached": "Services reached", "critical_reached": "Critical reached",
                "critical_reached_beyond_itself": None, "unpriced_reached": "Unpriced reached", **money,
                "cost_at_own_recovery": st.column_config.NumberColumn(f"Cost, own recovery ({page.currency})",
                                                                      format="localized"),
                "critical_past_mtpd_at_own_recovery": "Critical past MTPD, own recovery",
                "cost_at_chosen_hours": st.column_config.NumberColumn(f"Cost at D ({page.currency})",
                                                                      format="localized"),
                "critical_past_mtpd_at_chosen_hours": "Critical past MTPD at D"},
            hours=float(hours), rank_by=rank_by)

if suppliers.open:
    with suppliers:
        table = page.measure(analysis.supplier_concentration)
        threshold = analysis.concentration_threshold_pct(page.store)
        resilience.threshold_flag(table, threshold)
        st.caption("Per supplier, the live services its failure reaches (directly and through dependencies); a "
                   "breach when its contracted recovery time is longer than the shortest RTO among them.")
        st.dataframe(table, hide_index=True, column_config={
            "supplier_id": None, "supplier": "Supplier", "services_direct": "Services relying directly",
            "services_reached": "Services reached", "critical_reached": "Critical reached",
            "share_of_critical_pct": st.column_config.ProgressColumn(
                "Share of critical services", format="%.1f %%", min_value=0, max_value=100), **money,
            "contracted_recovery_minutes": st.column_config.NumberColumn("Contracted recovery (min)",
                                                                         format="localized"),
            "shortest_rto_minutes": st.column_config.NumberColumn("Shortest RTO reached (min)", format="localized"),
            "shortest_rto_service": "Service with it", "recovery_breach": st.column_config.CheckboxColumn("Breach"),
            "substitutability": "Substitutability", "contract_end": st.column_config.DateColumn("Contract end")})
        ui.download_csv(table, "supplier_concentration.csv")

if scenarios.open:
    with scenarios:
        choices = ui.shared_read(resilience.failure_choices, page.store)
        failed, hours = resilience.scenario_picker(page.store, choices)
        if not failed:
            ui.explain_empty("Choose failed services, suppliers, assets or business units to see what the failure "
                             "reaches. The choice is in the page's address: copy it to share the scenario.")
        else:
            resilience.scenario_results(page.store, page.filters, failed, hours, page.currency)
            resilience.save_form(page.user, page.store, failed, hours)
