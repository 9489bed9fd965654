"""Plan staleness: which continuity plans have gone stale, and who owns the fix."""

import streamlit as st

from itscm import charts, ui
from itscm.measures.staleness import (
    STATES,
    open_findings_worklist,
    plan_worklist,
    staleness_by_unit,
    staleness_summary,
)
from itscm.targets import posture_targets

page = ui.setup_page("Plan staleness", ":material/event_busy:")
st.title("Plan staleness")
st.caption(ui.filter_scope_caption(page.filters))

summary = page.measure(staleness_summary)
if not summary["plans"] and not summary["services_without_plan"]:
    ui.explain_no_match(page.store, "No live service matches these filters, so there is no plan to check.")
    st.stop()

target = posture_targets(page.store)["stale_pct"]
tiles = st.columns(6)
tiles[0].metric("Stale plans", ui.pct(summary["stale_pct"]), border=True,
                help=f"Overdue, never tested or changed since review, as a share of plans. Target ≤ {target:.0f} %")
tiles[1].metric("Overdue", f"{summary['overdue']:,}", border=True)
tiles[2].metric("Never tested", f"{summary['never_tested']:,}", border=True)
tiles[3].metric("Changed", f"{summary['changed_since_review']:,}", border=True,
                help="Changed since review: the service, or an asset it runs on, had a change completed after the "
                     "plan's last review: "
                     "the plan may describe what is no longer there. The changes are listed below the worklist.")
tiles[4].metric("Due within 30 days", f"{summary['due_soon']:,}", border=True)
tiles[5].metric("Without a plan", f"{summary['services_without_plan']:,}", border=True,
                help="Live services with no draft or approved plan (only retired ones, or none).")
ui.chart(charts.staleness_states, summary, key="states-bar")
heatmap = ui.built_figure(charts.staleness_heatmap, page.measure(staleness_by_unit))
if heatmap is None:
    st.success("Every plan in scope is current.", icon=":material/task_alt:")
else:
    ui.plot(heatmap, key="staleness-heatmap")

st.subheader("Owner worklist")
worklist = page.measure(plan_worklist)
states = st.multiselect("States", STATES, default=[s for s in STATES if s != "current"], key="worklist-states")
findings = page.measure(open_findings_worklist)   # shown below the plans, for the same owner
owners = sorted(set(worklist["owner"].dropna()) | set(findings["owner"].dropna()))
owner = st.selectbox("Owner", ["Everyone", *owners], key="worklist-owner")
shown = worklist[worklist["state"].isin(states)]
if owner != "Everyone":
    shown = shown[shown["owner"] == owner]
st.dataframe(shown, hide_index=True, key="plan-worklist", column_order=[
    "state", "owner", "plan", "service", "unit", "tier", "plan_status", "last_review", "review_due",
    "last_passed_drill", "test_due", "days_overdue", "changes_since_review", "last_change"], column_config={
    "state": "State", "owner": "Owner", "plan": "Plan", "service": "Service", "unit": "Business unit",
    "tier": "Tier", "plan_status": "Plan status",
    "last_review": st.column_config.DateColumn("Last review"),
    "review_due": st.column_config.DateColumn("Review due"),
    "last_passed_drill": st.column_config.DateColumn("Last passed drill"),
    "test_due": st.column_config.DateColumn("Test due"),
    "days_overdue": st.column_config.NumberColumn("Days overdue"),
    "changes_since_review": st.column_config.NumberColumn("Changes since review"),
    "last_change": st.column_config.DateColumn("Last change"),
})
ui.download_csv(shown, "plan_worklist.csv")

# The changes behind the plans above: only plans changed since review have them.
behind = ui.changes_behind(page.store, page.filters, None if owner == "Everyone" else owner)
if "changed since review" in states and behind.head.total:
    st.markdown("**Changes since the plans' reviews**")
    st.caption(f"{behind.changes:,} change(s) completed after the last review of the plans above "
               f"({behind.emergency:,} emergency, {behind.unsuccessful:,} unsuccessful): read each plan against "
               "them, then record its review. Change exports come in on the Changes page.")
    ui.changes_behind_table(page.store, page.filters, behind, key="staleness-changes-behind",
                            owner=None if owner == "Everyone" else owner)

st.markdown("**Open drill findings**")
if owner != "Everyone":
    findings = findings[findings["owner"] == owner]
if findings.empty:
    ui.explain_empty("No open finding from a drill" + ("" if owner == "Everyone" else f" owned by {ui.plain(owner)}")
                     + ".")
else:
    overdue = int(findings["overdue"].sum())
    st.caption(f"{len(findings):,} open finding(s), {overdue:,} past their due date (as of "
               f"{page.filters.as_of:%Y-%m-%d}). Close them or accept the risk on the service's card (Services).")
    st.dataframe(findings, hide_index=True, key="findings-worklist", column_order=[
        "overdue", "owner", "what", "due_on", "days_overdue", "service", "unit", "tier", "held_on"], column_config={
        "overdue": st.column_config.CheckboxColumn("Overdue"), "owner": "Owner", "what": "Finding",
        "due_on": st.column_config.DateColumn("Due on"), "days_overdue": st.column_config.NumberColumn("Days overdue"),
        "service": "Service", "unit": "Business unit", "tier": "Tier",
        "held_on": st.column_config.DateColumn("Drill held on")})
    ui.download_csv(findings, "open_findings.csv", label="Download findings CSV")
