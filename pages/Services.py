"""Services: browse the inventory and open a service's card."""

import streamlit as st

from itscm import access, administration, ui
from itscm.inventory import service_card, service_catalogue

page = ui.setup_page("Services", ":material/lan:")
st.title("Services")
st.caption(ui.filter_scope_caption(page.filters))

search = st.text_input("Search by name, alias, owner or business unit", key="service-search",
                       placeholder="e.g. payments, CBL-PROD, Jane", icon=":material/search:")
ui.new_service_form(page.user, page.store, page.currency)
ui.show_message("service-edit-result", ":material/edit:")
catalogue = page.measure(service_catalogue, search=search)
if catalogue.empty:
    ui.explain_no_match(page.store, "No service matches this search and these filters.")
    st.stop()

misaligned = int(catalogue["rto_misaligned"].sum())
st.caption(f"{len(catalogue):,} services shown · {misaligned:,} depend on a service or supplier with a longer "
           "recovery time than their own RTO, so cannot meet it as set.")
picked = st.dataframe(
    catalogue, hide_index=True, key="service-table", on_select="rerun", selection_mode="single-row",
    column_order=["service", "unit", "tier", "owner", "lifecycle", "rto_minutes", "effective_rto_minutes",
                  "rto_misaligned", "rpo_minutes", "mtpd_minutes", "impact_cost_per_hour", "recovery_strategy"],
    column_config={
        "service": "Service", "unit": "Business unit", "tier": "Tier", "owner": "Owner", "lifecycle": "Lifecycle",
        "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
        "effective_rto_minutes": st.column_config.NumberColumn(
            "Effective RTO (min)", format="localized",
            help="The longest recovery time along its dependency chain, suppliers included"),
        "rto_misaligned": st.column_config.CheckboxColumn("Dependency slower"),
        "rpo_minutes": st.column_config.NumberColumn("RPO (min)", format="localized"),
        "mtpd_minutes": st.column_config.NumberColumn("MTPD (min)", format="localized"),
        "impact_cost_per_hour": st.column_config.NumberColumn(f"Cost per hour ({page.currency})",
                                                              format="localized"),
        "recovery_strategy": "Strategy",
    },
)
# The open card is in the URL (?service=ID), so a link can point at one service.
rows = picked.selection.rows
if rows:
    st.query_params["service"] = catalogue.iloc[rows[0]]["service_id"]
service_id = st.query_params.get("service")
if service_id not in set(catalogue["service_id"]):
    st.info("Select a service in the table to open its card.", icon=":material/touch_app:")
    st.stop()

ui.service_card(service_card(page.store, service_id, as_of=page.filters.as_of), page.currency,
                user=page.user, store=page.store)


def choices(allowed, current) -> list:
    """A selectbox's options: the allowed values, and the current one even if it is not among
    them, so a form saved without touching the field leaves it as it is."""
    return [*allowed, *([] if current in allowed else [current])]


def edit_form(facts: dict, units: dict[str, str]) -> dict:
    """The service's editable facts in a form; returns the fields the admin changed."""
    left, right = st.columns(2)
    unit_ids, tiers = choices([None, *units], facts["unit_id"]), choices(administration.TIERS, facts["tier"])
    lifecycles = choices(administration.LIFECYCLES, facts["lifecycle"])
    edited = {
        "name": left.text_input("Name", facts["name"], max_chars=200),
        "unit_id": left.selectbox("Business unit", unit_ids, index=unit_ids.index(facts["unit_id"]),
                                  format_func=lambda unit: "None" if unit is None else units.get(unit, unit)),
        "tier": left.selectbox("Tier", tiers, index=tiers.index(facts["tier"]),
                               format_func=lambda tier: "not set" if tier is None else str(tier)),
        "owner": left.text_input("Owner", facts["owner"] or "", max_chars=200),
        "lifecycle": left.selectbox("Lifecycle", lifecycles, index=lifecycles.index(facts["lifecycle"])),
        "rto_minutes": right.number_input("RTO (minutes)", 0, administration.LONGEST_OBJECTIVE_MINUTES,
                                          facts["rto_minutes"], step=15),
        "rpo_minutes": right.number_input("RPO (minutes)", 0, administration.LONGEST_OBJECTIVE_MINUTES,
                                          facts["rpo_minutes"], step=15),
        "mtpd_minutes": right.number_input("MTPD (minutes)", 0, administration.LONGEST_OBJECTIVE_MINUTES,
                                           facts["mtpd_minutes"], step=60),
        "impact_cost_per_hour": right.number_input(f"Cost per hour of outage ({page.currency})", 0.0, None,
                                                   facts["impact_cost_per_hour"], step=1000.0),
    }
    strategies = choices([*administration.RECOVERY_STRATEGIES, None], facts["recovery_strategy"])
    edited["recovery_strategy"] = right.selectbox(
        "Recovery strategy", strategies, index=strategies.index(facts["recovery_strategy"]),
        format_func=lambda strategy: "not set" if strategy is None else strategy)
    return {field: value for field, value in edited.items() if value != facts[field]}


if ui.require_role(page.user, "continuity manager", "edit the inventory"):
    facts = administration.service_facts(page.store, service_id)
    with st.expander("Edit this service", icon=":material/edit:"), st.form(f"edit-{service_id}"):
        st.caption("Empty objectives are gaps the coverage measure counts. Every change is recorded with your name "
                   "(Administration, Change history).")
        edited = edit_form(facts, administration.business_units(page.store))
        if st.form_submit_button("Save changes", type="primary"):
            try:
                changed = administration.edit_service(page.user, page.store, service_id, edited)
            except (ValueError, access.AccessDenied) as error:
                st.error(ui.plain(str(error)))
            else:
                ui.rerun_with_message("service-edit-result", "Saved the " + ", ".join(
                    administration.FIELD_LABELS[field] for field in changed) + "." if changed else "Nothing changed.")
