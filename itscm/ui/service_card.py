"""A service's card on the Services page: its objectives, plans, drills and their findings,
incidents, dependencies, suppliers and assets, each tab with the forms its reader's role may use
(itscm/ui/records.py)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from itscm.access import Actor
from itscm.store import Store
from itscm.ui import records as forms
from itscm.ui.widgets import explain_empty, money, plain


def _minutes(value) -> str:
    if value is None or pd.isna(value):
        return "not set"
    value = int(value)
    if value >= 1440 and value % 1440 == 0:
        return f"{value // 1440} d"
    if value >= 60:
        return f"{value / 60:g} h"
    return f"{value} min"


def _table_or_note(frame: pd.DataFrame, note: str, **kwargs) -> None:
    if frame.empty:
        explain_empty(note)
    else:
        st.dataframe(frame, hide_index=True, **kwargs)


def service_card(card: dict[str, pd.DataFrame], currency: str, *, user: Actor | None = None,
                 store: Store | None = None) -> None:
    """One service: objectives, plans, drills, findings, incidents, dependencies and suppliers;
    with `user` and `store`, the forms `user` may use."""
    service = card["service"].iloc[0]
    service_id = service["service_id"]
    acting = user is not None and store is not None
    st.subheader(plain(service["name"]))
    st.caption(f"{plain(service['unit'] or 'No business unit')} · tier {service['tier']} · "
               f"owner {plain(service['owner'])} · {service['lifecycle']} · "
               f"strategy {plain(service['recovery_strategy'] or 'not set')}")
    tiles = st.columns(5)
    tiles[0].metric("RTO", _minutes(service["rto_minutes"]), border=True)
    # Missing (NA, not None) where no dependency is slower than the service itself.
    bottleneck = None if pd.isna(service["bottleneck"]) else service["bottleneck"]
    tiles[1].metric("Effective RTO", _minutes(service["effective_rto_minutes"]), border=True,
                    help=f"Longest along the dependency chain, suppliers included (set by {plain(bottleneck)})"
                    if bottleneck else "No dependencies")
    tiles[2].metric("RPO", _minutes(service["rpo_minutes"]), border=True)
    tiles[3].metric("MTPD", _minutes(service["mtpd_minutes"]), border=True)
    tiles[4].metric("Cost per hour", money(service["impact_cost_per_hour"], currency), border=True)
    if not card["aliases"].empty:
        st.caption("Also known in incident logs as: " + ", ".join(map(plain, card["aliases"]["alias"])))
    findings = card["findings"]
    open_findings = int((findings["state"] == "open").sum())
    overdue = int(findings["overdue"].fillna(False).sum())
    plans, drills, findings_tab, incidents, dependencies, suppliers, assets = st.tabs(
        ["Plans", "Drills", f"Findings ({open_findings} open" + (f", {overdue} overdue)" if overdue else ")"),
         "Incidents", "Dependencies", "Suppliers", f"Assets ({len(card['assets'])})"])
    with plans:
        _table_or_note(card["plans"], "No plan.", column_config={
            "plan_id": "Plan", "title": "Title", "owner": "Owner", "status": "Status",
            "approved_on": st.column_config.DateColumn("Approved on", format="YYYY-MM-DD"),
            "last_review": st.column_config.DateColumn("Last review", format="YYYY-MM-DD"), "reviews": "Reviews",
            "document_link": st.column_config.LinkColumn("Document")})
        if acting:
            forms.plan_forms(user, store, service_id, card["plans"])
    with drills:
        _table_or_note(card["drills"], "No drill.", column_config={
            "held_on": st.column_config.DateColumn("Held on", format="YYYY-MM-DD"), "drill_type": "Type",
            "outcome": "Outcome", "rta_minutes": st.column_config.NumberColumn("RTA (min)", format="localized"),
            "data_loss_minutes": st.column_config.NumberColumn("Data loss (min)", format="localized"),
            "open_findings": "Open findings", "plan_id": "Plan", "drill_id": None})
        if acting:
            forms.drill_form(user, store, service_id, card["plans"])
    with findings_tab:
        if overdue:
            st.warning(f"{overdue} open finding(s) past their due date.", icon=":material/alarm:")
        _table_or_note(findings, "No finding recorded.", column_config={
            "finding_id": None, "what": "Finding", "owner": "Owner",
            "due_on": st.column_config.DateColumn("Due on", format="YYYY-MM-DD"), "state": "State",
            "overdue": st.column_config.CheckboxColumn("Overdue"),
            "drill_held_on": st.column_config.DateColumn("Drill held on", format="YYYY-MM-DD"), "drill_id": "Drill"})
        if acting:
            forms.finding_form(user, store, service_id, findings)
    with incidents:
        _table_or_note(card["incidents"], "No incident on record.", column_config={
            "incident_id": "Incident", "title": "Title", "priority": "Priority",
            "opened_at": st.column_config.DatetimeColumn("Opened", format="YYYY-MM-DD HH:mm"),
            "restored_at": st.column_config.DatetimeColumn("Restored", format="YYYY-MM-DD HH:mm"),
            "resolved_at": st.column_config.DatetimeColumn("Resolved", format="YYYY-MM-DD HH:mm"),
            "closed_at": st.column_config.DatetimeColumn("Closed", format="YYYY-MM-DD HH:mm"),
            "rta_minutes": st.column_config.NumberColumn("RTA (min)")})
    with dependencies:
        st.markdown("**Depends on**")
        service_columns = {"service_id": "Id", "service": "Service", "tier": "Tier",
                           "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized")}
        _table_or_note(card["depends_on"], "No dependency recorded.", column_config={
            **service_columns, "longer_rto_than_this": st.column_config.CheckboxColumn("Slower than this service"),
            "has_alternative": st.column_config.CheckboxColumn("Alternative exists")})
        st.markdown("**Depended on by**")
        _table_or_note(card["dependants"], "Nothing depends on this service.", column_config=service_columns)
        if acting:
            forms.dependency_forms(user, store, service_id, card["depends_on"])
    with suppliers:
        _table_or_note(card["suppliers"], "No supplier recorded.", column_config={
            "supplier_id": None, "supplier": "Supplier", "contracted_recovery_minutes": st.column_config.NumberColumn(
                "Contracted recovery (min)", format="localized"), "substitutability": "Substitutability",
            "contract_end": st.column_config.DateColumn("Contract end", format="YYYY-MM-DD")})
        if acting:
            forms.supplier_forms(user, store, service_id, card["suppliers"])
    with assets:
        _table_or_note(card["assets"], "No asset recorded: the assets and service_assets sheets of the inventory "
                                       "workbook say what the service runs on.", column_config={
            "asset_id": "Asset", "asset": "Name", "asset_class": "Class", "relation": "Relation",
            "location": "Location", "owner": "Owner", "lifecycle": "Lifecycle",
            "last_verified": st.column_config.DateColumn("Last verified", format="YYYY-MM-DD"),
            "verified_by": "How"})
