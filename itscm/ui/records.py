"""The forms of the day-to-day continuity records: a new service on the Services page, and on a
service's card its dependencies, suppliers, plans and reviews, drills and findings. Each form is
shown only to a role that may use it (`require_role`), and the write checks the role again
(itscm/records.py). A done change reruns the page and says what was done; a refused one says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import streamlit as st

from itscm import administration, records
from itscm.access import AccessDenied, Actor
from itscm.inventory import live_services
from itscm.store import Store
from itscm.ui.signin import require_role
from itscm.ui.widgets import plain, rerun_with_message

RESULT_KEY = "service-edit-result"   # the Services page shows it once, above the card
NOT_SET = "not set"


def _attempt(write: Callable[[], object], done: Callable[[object], str]) -> None:
    """Run `write`; on success rerun saying `done(result)`, else show the one-line refusal."""
    try:
        result = write()
    except (ValueError, AccessDenied) as error:
        st.error(plain(str(error)), icon=":material/block:")
    else:
        rerun_with_message(RESULT_KEY, done(result))


def _optional(value: str) -> str | None:
    return None if value == NOT_SET else value


# -- a new service --------------------------------------------------------------------------------


def new_service_form(user: Actor, store: Store, currency: str) -> None:
    """'New service' on the Services page, for a continuity manager."""
    if not user.can("continuity manager"):
        return
    # A toggle, not an expander: the form's widgets exist only while it is open, so they never
    # stand beside the card's own edit form (same labels) unless asked for.
    if not st.toggle("New service", key="new-service-open", help="Add a service to the inventory"):
        return
    units = administration.business_units(store)
    with st.form("new-service", clear_on_submit=True):
        st.caption("Objectives left empty are gaps the coverage measure counts. The id is made from the name.")
        left, right = st.columns(2)
        longest = administration.LONGEST_OBJECTIVE_MINUTES
        facts = {
            "name": left.text_input("Name", max_chars=200, key="new-service-name"),
            "unit_id": left.selectbox("Business unit", [None, *units], key="new-service-unit",
                                      format_func=lambda unit: "None" if unit is None else units[unit]),
            "tier": left.selectbox("Tier", administration.TIERS, index=1, key="new-service-tier"),
            "owner": left.text_input("Owner", max_chars=200, key="new-service-owner"),
            "recovery_strategy": _optional(left.selectbox(
                "Recovery strategy", [NOT_SET, *administration.RECOVERY_STRATEGIES], key="new-service-strategy")),
            "rto_minutes": right.number_input("RTO (minutes)", 0, longest, None, step=15, key="new-service-rto"),
            "rpo_minutes": right.number_input("RPO (minutes)", 0, longest, None, step=15, key="new-service-rpo"),
            "mtpd_minutes": right.number_input("MTPD (minutes)", 0, longest, None, step=60, key="new-service-mtpd"),
            "impact_cost_per_hour": right.number_input(f"Cost per hour of outage ({currency})", 0.0, None, None,
                                                       step=1000.0, key="new-service-cost"),
        }
        if st.form_submit_button("Create service", type="primary"):
            _attempt(lambda: records.create_service(user, store, facts),
                     lambda service_id: f"Created {facts['name'].strip()} ({service_id}).")


# -- on a service's card --------------------------------------------------------------------------


def dependency_forms(user: Actor, store: Store, service_id: str, depends_on: pd.DataFrame) -> None:
    if not require_role(user, "continuity manager", "change the dependencies"):
        return
    others = {sid: name for sid, name in live_services(store).items() if sid != service_id}
    add, remove = st.columns(2)
    with add.form(f"add-dependency-{service_id}", clear_on_submit=True):
        st.markdown("**Add a dependency**")
        target = st.selectbox("Depends on", list(others), format_func=lambda sid: f"{others[sid]} ({sid})",
                              index=None, placeholder="Choose a service", key=f"dependency-target-{service_id}")
        alternative = st.radio("A working alternative exists", ["unknown", "yes", "no"], horizontal=True,
                               key=f"dependency-alternative-{service_id}",
                               help="With one, a failure of the service depended on does not spread along this edge.")
        if st.form_submit_button("Add dependency"):
            has_alternative = {"unknown": None, "yes": True, "no": False}[alternative]

            def said(added: records.DependencyAdded) -> str:
                loop = " → ".join(added.cycle)
                return (f"Added: depends on {others.get(target, target)}."
                        + (f" This closes a dependency loop ({loop})." if added.makes_a_cycle else ""))

            _attempt(lambda: records.add_dependency(user, store, service_id, target or "",
                                                    has_alternative=has_alternative), said)
    if not depends_on.empty:
        with remove.form(f"remove-dependency-{service_id}"):
            st.markdown("**Remove a dependency**")
            names = dict(zip(depends_on["service_id"], depends_on["service"], strict=True))
            gone = st.selectbox("Dependency", list(names), format_func=lambda sid: f"{names[sid]} ({sid})",
                                key=f"dependency-remove-{service_id}")
            if st.form_submit_button("Remove dependency"):
                _attempt(lambda: records.remove_dependency(user, store, service_id, gone),
                         lambda _: f"Removed the dependency on {names[gone]}.")


def supplier_forms(user: Actor, store: Store, service_id: str, linked: pd.DataFrame) -> None:
    if not require_role(user, "continuity manager", "change the suppliers"):
        return
    known = records.suppliers(store)
    linked_ids = set(linked["supplier_id"])
    unlinked = {sid: name for sid, name in known.items() if sid not in linked_ids}
    link, new = st.columns(2)
    with link.form(f"link-supplier-{service_id}"):
        st.markdown("**Link or unlink a supplier**")
        chosen = st.selectbox("Supplier", list(known), format_func=lambda sid: known[sid], index=None,
                              placeholder="Choose a supplier", key=f"supplier-choice-{service_id}")
        linking, unlinking = st.columns(2)
        if linking.form_submit_button("Link", disabled=not unlinked):
            _attempt(lambda: records.link_supplier(user, store, service_id, chosen or ""),
                     lambda _: f"This service now relies on {known.get(chosen, chosen)}.")
        if unlinking.form_submit_button("Unlink", disabled=not linked_ids):
            _attempt(lambda: records.unlink_supplier(user, store, service_id, chosen or ""),
                     lambda _: f"This service no longer relies on {known.get(chosen, chosen)}.")
    with new.form(f"new-supplier-{service_id}", clear_on_submit=True):
        st.markdown("**A new supplier, linked to this service**")
        name = st.text_input("Supplier name", max_chars=200, key=f"supplier-name-{service_id}")
        minutes = st.number_input("Contracted recovery time (minutes)", 0, administration.LONGEST_OBJECTIVE_MINUTES,
                                  None, step=60, key=f"supplier-minutes-{service_id}")
        substitutability = _optional(st.selectbox("Substitutability", [NOT_SET, *records.SUBSTITUTABILITY],
                                                  key=f"supplier-subst-{service_id}"))
        contract_end = st.date_input("Contract end", None, key=f"supplier-end-{service_id}")
        if st.form_submit_button("Add supplier"):
            def add_and_link() -> str:
                supplier_id = records.add_supplier(user, store, name, contracted_recovery_minutes=minutes,
                                                   substitutability=substitutability, contract_end=contract_end)
                records.link_supplier(user, store, service_id, supplier_id)
                return supplier_id

            _attempt(add_and_link, lambda supplier_id: f"Added {name.strip()} ({supplier_id}) to this service.")


def plan_forms(user: Actor, store: Store, service_id: str, plans: pd.DataFrame) -> None:
    if not require_role(user, "continuity manager", "change the plans"):
        return
    today = dt.date.today()
    current = plans[plans["status"] != "retired"]
    labels = {row.plan_id: f"{row.title or row.plan_id} ({row.status})" for row in current.itertuples()}
    new, change = st.columns(2)
    with new.form(f"new-plan-{service_id}", clear_on_submit=True):
        st.markdown("**A new plan** (a draft until approved)")
        title = st.text_input("Title", max_chars=200, key=f"plan-title-{service_id}")
        owner = st.text_input("Plan owner", max_chars=200, key=f"plan-owner-{service_id}")
        link = st.text_input("Document link", max_chars=1000, key=f"plan-link-{service_id}",
                             placeholder="https://… or a file path")
        if st.form_submit_button("Create plan"):
            _attempt(lambda: records.create_plan(user, store, service_id, title, owner=owner, document_link=link),
                     lambda plan_id: f"Created the draft plan {plan_id}.")
    if current.empty:
        return
    with change.form(f"approve-plan-{service_id}"):
        st.markdown("**Approve or retire a plan**")
        plan_id = st.selectbox("Plan", list(labels), format_func=labels.get, key=f"plan-choice-{service_id}")
        approved_on = st.date_input("Approved on", today, max_value=today, key=f"plan-approved-{service_id}")
        approving, retiring = st.columns(2)
        if approving.form_submit_button("Approve", type="primary"):
            _attempt(lambda: records.approve_plan(user, store, plan_id, approved_on=approved_on),
                     lambda _: f"Approved {plan_id} on {approved_on.isoformat()}.")
        if retiring.form_submit_button("Retire"):
            _attempt(lambda: records.retire_plan(user, store, plan_id), lambda _: f"Retired {plan_id}.")
    with st.form(f"review-plan-{service_id}", clear_on_submit=True):
        st.markdown("**Record a review**")
        left, right = st.columns(2)
        reviewed = left.selectbox("Plan", list(labels), format_func=labels.get, key=f"review-plan-{service_id}")
        reviewed_on = left.date_input("Reviewed on", today, max_value=today, key=f"review-on-{service_id}")
        reviewed_by = left.text_input("By", user.name, max_chars=200, key=f"review-by-{service_id}")
        outcome = right.text_input("Outcome", max_chars=200, key=f"review-outcome-{service_id}",
                                   placeholder="no change, updated contacts, …")
        notes = right.text_area("Notes", max_chars=2000, key=f"review-notes-{service_id}", height=100)
        if st.form_submit_button("Record review", type="primary"):
            _attempt(lambda: records.record_review(user, store, reviewed, reviewed_on, reviewed_by=reviewed_by,
                                                   outcome=outcome, notes=notes),
                     lambda _: f"Recorded the review of {reviewed} on {reviewed_on.isoformat()}.")


_NO_FINDINGS = pd.DataFrame({"what": pd.Series(dtype="str"), "owner": pd.Series(dtype="str"),
                             "due_on": pd.Series(dtype="datetime64[s]")})


def _findings(edited: pd.DataFrame) -> list[records.Finding]:
    """The rows typed into the findings grid; a row left wholly empty is no finding."""
    found = []
    for row in edited.itertuples():
        values = [None if pd.isna(value) or value == "" else value for value in (row.what, row.owner, row.due_on)]
        if any(value is not None for value in values):
            what, owner, due = values
            found.append(records.Finding(what or "", owner, due.date() if isinstance(due, pd.Timestamp) else due))
    return found


def drill_form(user: Actor, store: Store, service_id: str, plans: pd.DataFrame) -> None:
    if not require_role(user, "recovery team", "record a drill"):
        return
    today = dt.date.today()
    plan_labels = {row.plan_id: f"{row.title or row.plan_id} ({row.status})" for row in plans.itertuples()}
    with st.expander("Record a drill", icon=":material/fitness_center:"), \
            st.form(f"record-drill-{service_id}", clear_on_submit=True):
        left, right = st.columns(2)
        held_on = left.date_input("Held on", today, max_value=today, key=f"drill-on-{service_id}")
        drill_type = left.selectbox("Type", records.DRILL_TYPES, index=1, key=f"drill-type-{service_id}")
        outcome = left.selectbox("Outcome", records.DRILL_OUTCOMES, key=f"drill-outcome-{service_id}")
        plan_id = left.selectbox("Plan tested", [None, *plan_labels], key=f"drill-plan-{service_id}",
                                 format_func=lambda plan: "none in particular" if plan is None else plan_labels[plan])
        longest = administration.LONGEST_OBJECTIVE_MINUTES
        rta = right.number_input("RTA (minutes)", 0, longest, None, step=5, key=f"drill-rta-{service_id}",
                                 help="Recovery time achieved; empty when the drill did not measure one.")
        loss = right.number_input("Data loss (minutes)", 0, longest, None, step=5, key=f"drill-loss-{service_id}")
        st.markdown("**Findings** (one a row; each starts open)")
        edited = st.data_editor(_NO_FINDINGS, num_rows="dynamic", hide_index=True, key=f"drill-findings-{service_id}",
                                width="stretch", column_config={
                                    "what": st.column_config.TextColumn("What was found", max_chars=1000),
                                    "owner": st.column_config.TextColumn("Owner", max_chars=200),
                                    "due_on": st.column_config.DateColumn("Due on", format="YYYY-MM-DD")})
        if st.form_submit_button("Record drill", type="primary"):
            found = _findings(edited)
            _attempt(lambda: records.record_drill(user, store, service_id, held_on, drill_type, outcome,
                                                  plan_id=plan_id, rta_minutes=rta, data_loss_minutes=loss,
                                                  findings=found),
                     lambda drill_id: f"Recorded the drill {drill_id} with {len(found)} finding(s).")


def finding_form(user: Actor, store: Store, service_id: str, findings: pd.DataFrame) -> None:
    if findings.empty or not require_role(user, "recovery team", "change a finding"):
        return
    labels = {row.finding_id: f"{row.what[:60]} ({row.state})" for row in findings.itertuples()}
    with st.form(f"finding-state-{service_id}"):
        left, right = st.columns([3, 1])
        finding_id = left.selectbox("Finding", list(labels), format_func=labels.get, key=f"finding-{service_id}")
        state = right.selectbox("New state", records.FINDING_STATES, index=1, key=f"finding-state-{service_id}")
        if st.form_submit_button("Change state"):
            _attempt(lambda: records.set_finding_state(user, store, finding_id, state),
                     lambda _: f"Finding {finding_id} is now {state}.")
