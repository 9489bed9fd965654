"""Chart builders: aggregates in (DataFrames computed in DuckDB), plotly figures out.

One look across every page: the same fonts and margins, and one colour per state everywhere
(on target, at risk, breached), so red means the same thing on every chart.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from itscm.measures.registry import PERCENT, headline_measures
from itscm.targets import target_state

ON_TARGET = "#2e7d32"
AT_RISK = "#f2a900"
BREACHED = "#c62828"
NEUTRAL = "#3f6ea8"
MUTED = "#9aa5b1"
STATE_COLOURS = {"on target": ON_TARGET, "at risk": AT_RISK, "breached": BREACHED}
_ADDED_COLOURS = ("#00838f", "#6d4c41", "#ad1457")   # the lines of registered measures, in order

# Plan states and recovery outcomes read on the same scale.
PLAN_STATE_COLOURS = {
    "current": ON_TARGET,
    "due within 30 days": AT_RISK,
    "changed since review": "#e0601b",   # stale like overdue, but a different fix: read the changes
    "overdue": BREACHED,
    "never tested": "#8e1b1b",
    "no plan": "#4a4a4a",
}


def _style(figure: go.Figure, height: int = 360, legend: bool = True) -> go.Figure:
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
        title={"y": 0.98, "yanchor": "top", "x": 0, "xanchor": "left"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0, "title": None},
        showlegend=legend,
        hoverlabel={"namelength": -1},
        separators=".,",
    )
    return figure


# -- posture ----------------------------------------------------------------------------------


def posture_trend(trend: pd.DataFrame, targets: dict[str, float]) -> go.Figure:
    """The three percentages by month, with their targets as dotted lines."""
    names = {"coverage_pct": "Coverage", "attainment_pct": "RTO attainment", "stale_pct": "Stale plans"}
    colours = {"Coverage": NEUTRAL, "RTO attainment": "#7b4ea3", "Stale plans": "#d9822b"}
    # Registered percentage measures with a trend of their own (inventory currency: a line only
    # where it has a figure, so a store without assets draws none).
    added = [measure for measure in headline_measures() if measure.format == PERCENT and measure.key not in names
             and measure.key in trend and trend[measure.key].notna().any()]
    for measure, colour in zip(added, _ADDED_COLOURS, strict=False):
        names[measure.key] = measure.label
        colours[measure.label] = colour
    long = trend.melt(id_vars="month", value_vars=list(names), var_name="measure", value_name="percent")
    long["measure"] = long["measure"].map(names)
    figure = px.line(long, x="month", y="percent", color="measure", markers=True, color_discrete_map=colours,
                     labels={"month": "", "percent": "%"}, title="Posture by month")
    for key, measure in names.items():
        if key in targets:
            figure.add_hline(y=targets[key], line_dash="dot", line_color=colours[measure], opacity=0.6)
    figure.update_yaxes(range=[0, 105], ticksuffix=" %")
    figure.update_xaxes(dtick="M1", tickformat="%b %Y")
    return _style(figure)


# Money on an axis as plotly writes it by default, with B for billions: 0, 5M, 25M, 1.5B. A fixed
# three-digit SI format wrote "0.00", "5.00M", "25.0M" (and "G" for billions).
MONEY_AXIS = {"exponentformat": "B"}


def cost_by_month(monthly: pd.DataFrame, currency: str) -> go.Figure:
    """Downtime cost per month, split into the part within RTO and the part beyond it."""
    frame = monthly.assign(within_rto=monthly["cost"] - monthly["breach_cost"])[["month", "within_rto",
                                                                                  "breach_cost"]]
    long = frame.melt(id_vars="month", var_name="part", value_name="cost")
    long["part"] = long["part"].map({"within_rto": "Within RTO", "breach_cost": "Beyond RTO"})
    figure = px.bar(long, x="month", y="cost", color="part", title="Downtime cost by month",
                    color_discrete_map={"Within RTO": NEUTRAL, "Beyond RTO": BREACHED},
                    labels={"month": "", "cost": currency, "part": ""})
    figure.update_yaxes(**MONEY_AXIS)
    figure.update_traces(hovertemplate="%{x|%b %Y}: %{y:,.0f} " + currency)
    figure.update_xaxes(dtick="M1", tickformat="%b %Y")
    return _style(figure)


def unit_heatmap(units: pd.DataFrame, targets: dict[str, float], currency: str) -> go.Figure:
    """Business unit x measure: colour is the state against target, text is the figure."""
    columns = [
        ("coverage_pct", "Coverage", True),
        ("attainment_pct", "RTO attainment", True),
        ("stale_pct", "Stale plans", False),
    ]
    state_code = {"on target": 0, "at risk": 1, "breached": 2, None: None}
    z, text = [], []
    for _, row in units.iterrows():
        z_row, text_row = [], []
        for key, _label, higher in columns:
            value = row[key]
            z_row.append(state_code[target_state(value, targets[key], higher)])
            text_row.append("–" if pd.isna(value) else f"{value:.0f} %")
        z_row.append(None)
        text_row.append(f"{row['downtime_cost'] / 1_000_000:,.1f} M")
        z.append(z_row)
        text.append(text_row)
    labels = [label for _, label, _ in columns] + [f"Downtime ({currency})"]
    figure = go.Figure(go.Heatmap(
        z=z, x=labels, y=list(units["unit"]), text=text, texttemplate="%{text}", showscale=False,
        colorscale=[[0, ON_TARGET], [0.5, AT_RISK], [1, BREACHED]], zmin=0, zmax=2, xgap=3, ygap=3,
        hovertemplate="%{y} · %{x}: %{text}<extra></extra>",
    ))
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(side="top")
    return _style(figure, height=max(260, 34 * len(units) + 80), legend=False)


# -- coverage ---------------------------------------------------------------------------------


def coverage_by_unit(by_unit_tier: pd.DataFrame) -> go.Figure:
    """Covered and uncovered critical services per business unit and tier."""
    frame = by_unit_tier.assign(uncovered=by_unit_tier["in_scope"] - by_unit_tier["covered"],
                                tier_label="Tier " + by_unit_tier["tier"].astype(str))
    long = frame.melt(id_vars=["unit", "tier_label"], value_vars=["covered", "uncovered"],
                      var_name="state", value_name="services")
    long["state"] = long["state"].map({"covered": "Covered", "uncovered": "Not covered"})
    figure = px.bar(long, y="unit", x="services", color="state", facet_col="tier_label", orientation="h",
                    color_discrete_map={"Covered": ON_TARGET, "Not covered": BREACHED},
                    labels={"unit": "", "services": "critical services", "state": "", "tier_label": ""},
                    title="Critical services covered, by business unit and tier")
    figure.for_each_annotation(lambda a: a.update(text=f"<b>{a.text.split('=')[-1]}</b>"))
    figure.update_yaxes(categoryorder="total ascending")
    figure = _style(figure, height=max(320, 28 * frame["unit"].nunique() + 140))
    # The top belongs to the tier labels, the bottom to the axis: the legend goes to the right.
    figure.update_layout(legend={"orientation": "v", "yanchor": "top", "y": 1, "xanchor": "left", "x": 1.01})
    return figure


def control_gaps(gap_counts: pd.DataFrame, in_scope: int) -> go.Figure:
    """How many critical services fail each control."""
    frame = gap_counts.sort_values("failing")
    figure = px.bar(frame, x="failing", y="label", orientation="h", text="failing",
                    labels={"failing": "services failing", "label": ""},
                    title=f"Services failing each control (of {in_scope:,} in scope)")
    figure.update_traces(marker_color=BREACHED, textposition="outside", cliponaxis=False)
    figure.update_xaxes(range=[0, max(1, int(frame["failing"].max())) * 1.1], rangemode="tozero")
    return _style(figure, legend=False)


def gap_matrix(unit_control: pd.DataFrame) -> go.Figure:
    """Business unit x control: the number of services failing each control."""
    wrapped = unit_control.rename(columns=lambda label: "<br>".join(label.split(" ", 1)))
    figure = px.imshow(wrapped, text_auto=True, aspect="auto", zmin=0, zmax=max(1, int(unit_control.max().max())),
                       color_continuous_scale=["#ffffff", "#f6c4c4", BREACHED],
                       labels={"x": "", "y": "", "color": "services failing"},
                       title="Gap matrix: services failing each control, by business unit")
    figure.update_xaxes(side="bottom", tickangle=0)
    figure.update_coloraxes(showscale=False)
    return _style(figure, height=max(300, 30 * len(unit_control) + 140), legend=False)


def coverage_trend(trend: pd.DataFrame, target: float) -> go.Figure:
    """Coverage at each month end, against target."""
    frame = trend.assign(month=pd.to_datetime(trend["month_end"]).dt.to_period("M").dt.to_timestamp())
    figure = px.line(frame, x="month", y="pct", markers=True, hover_data={"covered": ":,", "in_scope": ":,"},
                     labels={"month": "", "pct": "covered %"}, title="Coverage at each month end")
    figure.update_traces(line_color=NEUTRAL)
    figure.add_hline(y=target, line_dash="dot", line_color=ON_TARGET,
                     annotation_text=f"target {target:.0f} %", annotation_position="bottom right")
    figure.update_yaxes(range=[0, 105], ticksuffix=" %")
    figure.update_xaxes(dtick="M1", tickformat="%b %Y")
    return _style(figure, height=300, legend=False)


# -- RTO attainment ---------------------------------------------------------------------------


def attainment_by_month(monthly: pd.DataFrame, target: float) -> go.Figure:
    """Attainment % per month, incidents and drills apart, with the target line."""
    frame = monthly[monthly["events"] > 0].copy()
    frame["source"] = frame["source"].map({"incident": "Incidents", "drill": "Drills"})
    figure = px.line(frame, x="month", y="pct", color="source", markers=True,
                     hover_data={"events": ":,", "attained": ":,"},
                     color_discrete_map={"Incidents": NEUTRAL, "Drills": "#7b4ea3"},
                     labels={"month": "", "pct": "attained %", "source": ""},
                     title="RTO attainment by month")
    figure.add_hline(y=target, line_dash="dot", line_color=ON_TARGET,
                     annotation_text=f"target {target:.0f} %", annotation_position="bottom right")
    figure.update_yaxes(range=[0, 105], ticksuffix=" %")
    figure.update_xaxes(dtick="M1", tickformat="%b %Y")
    return _style(figure)


def ratio_distribution(bands: pd.DataFrame, order: list[str]) -> go.Figure:
    """How recovery times sit against target: RTA / RTO in bands, <= 1 attained."""
    frame = bands.groupby("band", as_index=False)["events"].sum()
    frame["state"] = frame["band"].map(lambda b: "Within RTO" if b in order[:2] else "Beyond RTO")
    figure = px.bar(frame, x="band", y="events", color="state", text="events", category_orders={"band": order},
                    color_discrete_map={"Within RTO": ON_TARGET, "Beyond RTO": BREACHED},
                    labels={"band": "RTA / RTO", "events": "recovery events", "state": ""},
                    title="Recovery time against RTO")
    figure.update_traces(texttemplate="%{text:,}", textposition="outside", cliponaxis=False)
    figure.update_yaxes(tickformat=",")
    return _style(figure)


def attainment_by_group(grouped: pd.DataFrame, group: str, target: float, title: str) -> go.Figure:
    """Attainment % per business unit or tier, coloured by state against target."""
    frame = grouped[grouped["events"] > 0].copy()
    frame["state"] = frame["pct"].map(lambda v: target_state(v, target, True))
    frame[group] = frame[group].astype(str)
    figure = px.bar(frame, x="pct", y=group, orientation="h", color="state", text="pct",
                    color_discrete_map=STATE_COLOURS, hover_data={"events": ":,", "attained": ":,"},
                    labels={"pct": "attained %", group: "", "state": ""}, title=title)
    figure.update_traces(texttemplate="%{text:.1f} %", textposition="outside", cliponaxis=False)
    figure.update_xaxes(range=[0, 110], ticksuffix=" %")
    figure.update_yaxes(categoryorder="total descending")
    return _style(figure, height=max(300, 28 * len(frame) + 120))


# -- downtime cost ----------------------------------------------------------------------------


def cost_by_group(frame: pd.DataFrame, group: str, currency: str, title: str) -> go.Figure:
    """Cost per business unit or service, the part beyond RTO in the breach colour."""
    data = frame.assign(within_rto=frame["cost"] - frame["breach_cost"])[[group, "within_rto", "breach_cost"]]
    long = data.melt(id_vars=group, var_name="part", value_name="cost")
    long["part"] = long["part"].map({"within_rto": "Within RTO", "breach_cost": "Beyond RTO"})
    figure = px.bar(long, x="cost", y=group, color="part", orientation="h", title=title,
                    color_discrete_map={"Within RTO": NEUTRAL, "Beyond RTO": BREACHED},
                    labels={"cost": currency, group: "", "part": ""})
    figure.update_yaxes(categoryorder="total ascending")
    figure.update_xaxes(**MONEY_AXIS)
    figure.update_traces(hovertemplate="%{y}: %{x:,.0f} " + currency)
    return _style(figure, height=max(300, 26 * data[group].nunique() + 120))


# -- staleness --------------------------------------------------------------------------------


def staleness_heatmap(by_unit: pd.DataFrame) -> go.Figure | None:
    """Business unit x plan state needing action: how many plans (and services without one) are
    in each. Current plans are left out: the darker a cell, the more work it holds."""
    needing_action = ["no plan", "never tested", "overdue", "changed since review", "due within 30 days"]
    states = [s for s in needing_action if s in set(by_unit["state"])]
    if not states:
        return None
    table = by_unit.pivot_table(index="unit", columns="state", values="count", fill_value=0)[states]
    table = table[table.sum(axis=1) > 0]
    figure = px.imshow(table, text_auto=True, aspect="auto", zmin=0, zmax=max(1, int(table.max().max())),
                       color_continuous_scale=["#ffffff", "#f6c4c4", BREACHED],
                       labels={"x": "", "y": "", "color": "plans"}, title="Plans needing action, by business unit")
    figure.update_xaxes(side="bottom")
    figure.update_coloraxes(showscale=False)
    return _style(figure, height=max(300, 30 * len(table) + 140), legend=False)


def staleness_states(summary: dict) -> go.Figure:
    """One stacked bar: plans by state, and services with no plan at all."""
    parts = {"current": summary["current"], "due within 30 days": summary["due_soon"],
             "changed since review": summary["changed_since_review"], "overdue": summary["overdue"],
             "never tested": summary["never_tested"],
             "no plan": summary["services_without_plan"]}
    frame = pd.DataFrame({"state": list(parts), "count": list(parts.values()), "all": "plans"})
    figure = px.bar(frame, x="count", y="all", color="state", orientation="h", text="count",
                    color_discrete_map=PLAN_STATE_COLOURS, labels={"count": "", "all": "", "state": ""})
    figure.update_yaxes(visible=False)
    figure.update_traces(textposition="inside")
    return _style(figure, height=150)
