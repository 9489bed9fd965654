"""The Resilience page's parts (docs/DESIGN.md §14): its tabs, the first rows of its large tables,
the dependency chart, the scenario picker bound to the URL, and the scenario's results."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from itscm.access import Actor
from itscm.filters import Filters
from itscm.resilience import analysis
from itscm.resilience.dot import CHART_LIMIT, service_chain_dot
from itscm.resilience.saved import save_scenario, saved_scenarios
from itscm.resilience.scenario import by_unit_and_tier
from itscm.store import Store
from itscm.ui import widgets
from itscm.ui.cache import TableHead, cached_measure, cached_read, head_of
from itscm.ui.pickers import named_choices, search_multiselect, search_selectbox
from itscm.ui.signin import require_role
from itscm.ui.widgets import (
    explain_empty,
    money,
    plain,
    rerun_with_message,
    show_message,
    table_head,
)

# The page's tabs, the open one in the URL (?tab=Scenarios). Only the open tab's content runs:
# switching tabs runs the page again, for that tab (docs/DESIGN.md §14.2).
TAB_KEY = "tab"
TABS = ("Dependencies", "Single points of failure", "Supplier concentration", "Scenarios")

# The scenario's widgets, each bound to a URL query parameter of the same name, so a link
# reopens the scenario: ?fail_supplier=Cloud+provider&fail_asset=Rack+7&fail_unit=Payments&hours=24
SERVICE_KEY, SUPPLIER_KEY, ASSET_KEY, UNIT_KEY, HOURS_KEY = (
    "fail_service", "fail_supplier", "fail_asset", "fail_unit", "hours")
FAILURE_KINDS = (("service", SERVICE_KEY), ("supplier", SUPPLIER_KEY), ("asset", ASSET_KEY), ("unit", UNIT_KEY))


def page_tabs():
    """The page's tabs, bound to ?tab=. A scenario link without ?tab= (one made before the tabs
    were in the URL) opens on the Scenarios tab, where its choices are read."""
    if (TAB_KEY not in st.session_state and TAB_KEY not in st.query_params
            and any(key in st.query_params for _kind, key in FAILURE_KINDS)):
        st.session_state[TAB_KEY] = TABS[-1]
    return st.tabs(list(TABS), key=TAB_KEY, bind="query-params")


def failure_choices(store: Store) -> dict[str, dict[str, str]]:
    """Per kind of failed node, label -> "kind:key" (30,000 labels at 10,000 services and 20,000
    assets: read with ui.shared_read)."""
    return {kind: named_choices(store, kind) for kind, _key in FAILURE_KINDS}


# Steps shown each way in the chain's chart: the whole chain of a service is 19 nodes at the
# demo's median and up to 70, which drawn at once shrinks every label past reading.
# The options are their own labels: a bound widget writes the label into the URL (?chain-steps=All).
CHAIN_STEPS = ("1", "2", "3", "All")
CHAIN_STEPS_KEY = "chain-steps"


def dependency_chart(store: Store, service_names: dict[str, str]) -> None:
    """A chosen service's chain, upstream and downstream, coloured by state: the chart a few steps
    each way, the table every node."""
    if not service_names:
        explain_empty("No live service matches these filters.")
        return
    chosen, depth = st.columns([3, 1], vertical_alignment="bottom")
    label = search_selectbox(chosen, "Service", service_names, key="chain-service", noun="services")
    shown = depth.segmented_control("Steps shown each way", CHAIN_STEPS, default="2", required=True,
                                    key=CHAIN_STEPS_KEY, bind="query-params",
                                    help="How far from the service the chart goes, along what it depends on "
                                         "and what depends on it. The table below lists the whole chain.")
    if label is None:
        return
    service_id = service_names[label].partition(":")[2]
    steps = None if shown == "All" else int(shown)
    chain = cached_read(analysis.service_chain, store, service_id)
    # The table's rows each way are in the walk's order, as the chart's: the chart has the first
    # CHART_LIMIT - 1 of them (the service itself is no row) within the steps chosen.
    drawn = chain[chain.groupby("direction").cumcount() < CHART_LIMIT - 1]
    drawn = drawn if steps is None else drawn[drawn["steps"] <= steps]
    st.graphviz_chart(cached_read(service_chain_dot, store, service_id, steps, CHART_LIMIT), width="content")
    st.caption("Arrows point from a service to what it depends on; dashed: a working alternative exists, so a "
               "failure does not spread along it. Colours: blue the chosen service, green aligned, orange an RTO "
               "shorter than its chain's, red no RTO, grey retired, lilac a supplier, yellow an asset (a server, "
               "database, site or cloud service it runs on; grey when retired).")
    nodes = chain.drop_duplicates(["kind", "key"])
    if nodes.empty:
        st.caption(f"{plain(label)} depends on nothing recorded, and nothing recorded depends on it.")
        return
    beyond = len(nodes) - len(drawn.drop_duplicates(["kind", "key"]))
    with st.expander(f"The whole chain: {len(nodes):,} services, suppliers and assets"
                     + (f", {beyond:,} of them beyond the steps drawn" if beyond else "")):
        st.dataframe(chain, hide_index=True, column_config={
            "direction": "Direction", "steps": st.column_config.NumberColumn("Steps away", format="%d"),
            "kind": "Kind", "key": None, "name": "Name", "tier": "Tier",
            "recovery_minutes": st.column_config.NumberColumn(
                "Recovery (min)", format="localized",
                help="A service's RTO or a supplier's contracted recovery time; an asset has none"),
            "state": "State"})
        widgets.download_csv(chain, "dependency_chain.csv")


def _load_saved(saved: pd.DataFrame, choices: dict[str, dict[str, str]]) -> None:
    """The picker's widgets set to a saved scenario (before they are drawn)."""
    names = list(saved["name"])
    picked = st.selectbox("Open a saved scenario", ["", *names], key="saved-scenario",
                          format_func=lambda name: name or "(choose one)")
    if picked and st.session_state.get("loaded-scenario") != picked:
        row = saved[saved["name"] == picked].iloc[0]
        for kind, key in FAILURE_KINDS:
            by_spec = {spec: label for label, spec in choices[kind].items()}
            st.session_state[key] = [by_spec[spec] for spec in row["failed"] if spec in by_spec]
        st.session_state[HOURS_KEY] = None if pd.isna(row["hours"]) else float(row["hours"])
        st.session_state["loaded-scenario"] = picked
        st.rerun()


def scenario_picker(store: Store, choices: dict[str, dict[str, str]]) -> tuple[tuple[str, ...], float | None]:
    """The failed nodes ("kind:key") and the hours (None: each node's own recovery time)."""
    saved = cached_read(saved_scenarios, store)
    if not saved.empty:
        _load_saved(saved, choices)
    first, second, third, fourth = st.columns(4)
    services = search_multiselect(first, "Failed services", choices["service"], key=SERVICE_KEY, noun="services",
                                  placeholder="Choose services")
    suppliers = search_multiselect(second, "Failed suppliers", choices["supplier"], key=SUPPLIER_KEY,
                                   noun="suppliers", placeholder="Choose suppliers")
    assets = search_multiselect(third, "Failed assets (servers, sites, ...)", choices["asset"], key=ASSET_KEY,
                                noun="assets", placeholder="Choose assets")
    units = search_multiselect(fourth, "Failed business units (all their live services)", choices["unit"],
                               key=UNIT_KEY, noun="business units", placeholder="Choose units")
    hours = st.number_input("Duration D (hours)", min_value=0.25, max_value=24.0 * 365, value=None, step=1.0,
                            key=HOURS_KEY, bind="query-params",
                            placeholder="empty: each failed node for its own RTO or contracted recovery time",
                            help="A severe but plausible duration, such as 24 or 72 hours. An asset has no "
                                 "recovery time of its own: choose D when one fails.")
    failed = tuple([choices["service"][s] for s in services] + [choices["supplier"][s] for s in suppliers]
                   + [choices["asset"][a] for a in assets] + [choices["unit"][u] for u in units])
    return failed, (None if hours is None else float(hours))


@dataclass(frozen=True)
class ScenarioView:
    """What the page shows of a scenario: its figures, by unit and tier, the first services."""
    summary: dict
    by_unit_and_tier: pd.DataFrame
    services: TableHead


def scenario_view(store: Store, filters: Filters, failed: tuple[str, ...], hours: float | None) -> ScenarioView:
    result = cached_measure(analysis.scenario, store, filters, failed=failed, hours=hours)
    return ScenarioView(result.summary, by_unit_and_tier(result.services), head_of(result.services, widgets.TABLE_ROWS))


def scenario_results(store: Store, filters: Filters, failed: tuple[str, ...], hours: float | None,
                     currency: str) -> None:
    view = cached_measure(scenario_view, store, filters, failed=failed, hours=hours)
    summary = view.summary
    tiles = st.columns(5)
    tiles[0].metric("Services disrupted", f"{summary['services_disrupted']:,}", border=True,
                    help=f"of which critical: {summary['critical_disrupted']:,}")
    tiles[1].metric("Past their RTO", f"{summary['past_rto']:,}", border=True,
                    help=f"{summary['without_rto']:,} disrupted services have no RTO")
    tiles[2].metric("Past their MTPD", f"{summary['past_mtpd']:,}", border=True,
                    help=f"critical: {summary['critical_past_mtpd']:,}; {summary['without_mtpd']:,} have no MTPD")
    tiles[3].metric("Cost", money(summary["cost"], currency), border=True,
                    help=f"{summary['unpriced']:,} disrupted services have no cost per hour and add nothing")
    tiles[4].metric("Cost beyond RTO", money(summary["cost_beyond_rto"], currency), border=True)
    if summary["without_duration"]:
        st.warning(f"{summary['without_duration']:,} services are reached only by failed nodes without a recovery "
                   "time (an asset has none), so their duration is unknown: choose D to count them.",
                   icon=":material/help:")
    if not view.services.total:
        explain_empty("The failure reaches no live service in these filters.")
        return
    st.markdown("**By business unit and tier**")
    st.dataframe(view.by_unit_and_tier, hide_index=True, column_config={
        "unit": "Business unit", "tier": "Tier", "services": "Services", "critical": "Critical",
        "past_rto": "Past RTO", "past_mtpd": "Past MTPD", **_money_columns(currency)})
    st.markdown("**Services reached**")

    def every_service() -> pd.DataFrame:
        return cached_measure(analysis.scenario, store, filters, failed=failed, hours=hours).services

    table_head(view.services, every_service, "scenario.csv", "costliest first", column_config={
        "service_id": None, "name": "Service", "unit": "Business unit", "tier": "Tier",
        "critical": st.column_config.CheckboxColumn("Critical"),
        "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
        "mtpd_minutes": st.column_config.NumberColumn("MTPD (min)", format="localized"),
        "impact_cost_per_hour": st.column_config.NumberColumn(f"Cost per hour ({currency})", format="localized"),
        "hours": st.column_config.NumberColumn("Down (h)", format="%.1f"),
        "hours_past_rto": st.column_config.NumberColumn("Hours past RTO", format="%.1f"),
        "hours_past_mtpd": st.column_config.NumberColumn("Hours past MTPD", format="%.1f"),
        **_money_columns(currency)})


def _money_columns(currency: str) -> dict:
    return {"cost": st.column_config.NumberColumn(f"Cost ({currency})", format="localized"),
            "cost_beyond_rto": st.column_config.NumberColumn(f"Cost beyond RTO ({currency})", format="localized")}


def save_form(user: Actor, store: Store, failed: tuple[str, ...], hours: float | None) -> None:
    show_message("scenario-saved", ":material/bookmark_added:")
    if not require_role(user, "continuity manager", "save a scenario"):
        return
    with st.form("save-scenario", clear_on_submit=True, border=False):
        name = st.text_input("Save this scenario as", max_chars=120, placeholder="e.g. Cloud region down 24 h")
        if st.form_submit_button("Save scenario", icon=":material/bookmark_add:"):
            try:
                saved = save_scenario(user, store, name, list(failed), hours)
            except ValueError as refusal:
                st.error(plain(str(refusal)))
            else:
                rerun_with_message("scenario-saved", f"Saved the scenario “{saved}”.")


FLAGS_NAMED = 5   # suppliers named in the concentration warning; the table has the others


def concentration_warning(flagged: pd.DataFrame, threshold: float) -> str:
    """One line however many suppliers carry at least the policy's share of the critical services
    (`flagged`), the largest shares named first: a page is read at a glance, five hundred banners
    bury it."""
    flagged = flagged.sort_values("share_of_critical_pct", ascending=False, kind="stable")
    named = ", ".join(f"{plain(row.supplier)} {row.share_of_critical_pct:.1f} %"
                      for row in flagged.head(FLAGS_NAMED).itertuples(index=False))
    more = f" and {len(flagged) - FLAGS_NAMED:,} more" if len(flagged) > FLAGS_NAMED else ""
    who = "One supplier carries" if len(flagged) == 1 else f"{len(flagged):,} suppliers each carry"
    return f"{who} at least {threshold:g} % of the critical services (the policy's threshold): {named}{more}."


def threshold_flag(table: pd.DataFrame, threshold: float) -> None:
    """The warning naming the suppliers carrying at least `threshold` % of the critical services."""
    flagged = table[table["share_of_critical_pct"].fillna(0) >= threshold]
    if not flagged.empty:
        st.warning(concentration_warning(flagged, threshold), icon=":material/warning:")



# The sidebar filters' URL keys (itscm/ui/filters.py): a link to another page carries them, so the
# page opens on the same business units, tiers, period, as-of date and incidents counted.
FILTER_QUERY_KEYS = ("unit", "tier", "as_of", "period", "since", "until", "events")


def link_keeping_filters(path: str, **more: str) -> str:
    """`path` with the sidebar filters of the current URL (and `more`) as its query string,
    percent-encoded (so a unit's name can never end the markdown link it is put in)."""
    query = urlencode([(key, value) for key in FILTER_QUERY_KEYS for value in st.query_params.get_all(key)]
                      + list(more.items()))
    return f"{path}?{query}" if query else path


def overview_flags(store: Store, measure) -> None:
    """The Overview's resilience line: a supplier carrying at least the policy's share of the
    critical services, and how many consistency checks fail, linked to their pages with the same
    filters. `measure` is the page's cached measure call."""
    from itscm.measures.consistency import failing_check_count
    from itscm.resilience import analysis

    threshold = analysis.concentration_threshold_pct(store)
    flagged = measure(analysis.concentration_flags, threshold_pct=threshold)
    if not flagged.empty:
        st.warning(f"{concentration_warning(flagged, threshold)} "
                   f"See [Resilience]({link_keeping_filters('/Resilience', tab=TABS[2])}).",
                   icon=":material/hub:")
    failing = measure(failing_check_count)
    if failing:
        st.info(f"{failing:,} consistency check{'s' if failing != 1 else ''} fail: see the "
                f"[worklist]({link_keeping_filters('/Consistency_checks')}).", icon=":material/rule:")
