"""The report's sections, as a declared list: each is a title and a function from the report's
context to its HTML (or None, to leave it out). A new table (the resilience and asset work's
headline tables) is one `ReportSection` added to `SECTIONS` with `add_section`.

Every figure comes from the measures' own functions (itscm/measures/), so the report says what
the pages and `summary` say for the same filter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property

import pandas as pd

from itscm import charts
from itscm.filters import Filters
from itscm.measures.attainment import worst_breaches
from itscm.measures.coverage import CONTROLS, coverage_by_service
from itscm.measures.downtime import downtime_by_month, downtime_summary, top_cost_services
from itscm.measures.inventory_currency import unverified_by_owner_and_unit
from itscm.measures.posture import posture_summary, posture_trend, unit_gaps
from itscm.measures.registry import MONEY, PERCENT, headline_measures
from itscm.measures.staleness import plan_worklist
from itscm.report import html as h
from itscm.report.definitions import HEADLINE_DEFINITIONS, OTHER_DEFINITIONS
from itscm.resilience import analysis as resilience_analysis
from itscm.store import Store
from itscm.targets import posture_targets, target_state

LONGEST_TABLE = 40                # rows of a long list in the pack; the owner packs hold every row
TOP_ROWS = 10                     # the costliest outages, the worst breaches


@dataclass
class ReportContext:
    """What every section reads: the store, the filter, who asked, and the figures several
    sections share, each computed once."""
    store: Store
    filters: Filters
    organisation: str
    made_by: str = "local user"
    made_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))

    @property
    def scope(self) -> str:
        """The incidents the measures count (docs/DESIGN.md §17), in words."""
        return self.filters.events_label.lower()

    @cached_property
    def currency(self) -> str:
        return self.store.currency()

    @cached_property
    def targets(self) -> dict[str, float]:
        return posture_targets(self.store)

    @cached_property
    def posture(self) -> dict:
        return posture_summary(self.store, self.filters)

    @cached_property
    def coverage_by_service(self) -> pd.DataFrame:
        return coverage_by_service(self.store, self.filters)

    @cached_property
    def plan_worklist(self) -> pd.DataFrame:
        return plan_worklist(self.store, self.filters)


@dataclass(frozen=True)
class ReportSection:
    key: str
    title: str
    build: Callable[[ReportContext], str | None]
    chapter: bool = True          # starts a new printed page


# -- title page and executive summary ------------------------------------------------------------


def _filter_lines(filters: Filters) -> tuple[str, str]:
    units = ", ".join(filters.units) or "all business units"
    tiers = ", ".join(f"tier {tier}" for tier in filters.tiers) or "all tiers"
    return units, tiers


def title_page(context: ReportContext) -> str:
    filters = context.filters
    units, tiers = _filter_lines(filters)
    facts = [
        ("Scope", context.scope),
        ("Business units", units),
        ("Tiers", tiers),
        ("Period", f"{filters.since:%Y-%m-%d} to {filters.until:%Y-%m-%d}"),
        ("As of", f"{filters.as_of:%Y-%m-%d}"),
        ("Made by", context.made_by),
        ("Made on", f"{context.made_at:%Y-%m-%d %H:%M} UTC"),
    ]
    rows = "".join(f"<dt>{h.text(label)}</dt><dd>{h.text(value)}</dd>" for label, value in facts)
    organisation = context.organisation or "Organisation name not set (Administration page)"
    return (
        '<section class="title-page">'
        '<p class="kicker">IT service continuity report</p>'
        f"<h1>{h.text(organisation)}</h1>"
        f'<dl class="facts">{rows}</dl>'
        "</section>"
    )


def headline_text(value: float | None, measure, currency: str) -> str:
    return h.money(value, currency) if measure.format == MONEY else h.pct(value)


def figure_text(value: float | None, measure, context: ReportContext) -> str:
    """The figure as the Overview's tile shows it, including why it is missing ("no assets yet")."""
    if value is None:
        return measure.missing_figure(context.posture["current"][measure.name])
    return headline_text(value, measure, context.currency)


def _change_text(change: float | None, measure, currency: str) -> str:
    if change is None:
        return "n/a"
    if measure.format == MONEY:
        return f"{change:+,.0f} {currency}"
    return f"{change:+.1f} pts"


def _movement(change: float | None, measure, currency: str) -> str:
    """'rose 1.2 points to', 'fell 3.0 points to', 'held at', 'is' (nothing to compare with)."""
    if change is None:
        return "is"
    if round(change, 0 if measure.format == MONEY else 1) == 0:   # no change at the precision written
        return "held at"
    size = f"{abs(change):,.0f} {currency}" if measure.format == MONEY else f"{abs(change):.1f} points"
    return f"{'rose' if change > 0 else 'fell'} {size} to"


def _against_target(value: float | None, target: float | None, higher_is_better: bool) -> str:
    if target is None or value is None:
        return ""
    if higher_is_better:
        return f", {'meeting' if value >= target else 'below'} the {target:g} % target"
    return f", {'within' if value <= target else 'above'} the {target:g} % target"


def _coverage_detail(context: ReportContext, summary: dict) -> str:
    uncovered = summary["in_scope"] - summary["covered"]
    if not uncovered:
        return f"all {summary['in_scope']:,} critical services meet every control."
    failing = context.coverage_by_service.loc[lambda f: ~f["covered"]]
    counts = {label: int((~failing[control]).sum()) for control, label in CONTROLS.items()}
    label, most = max(counts.items(), key=lambda item: item[1])
    return (f"{uncovered:,} of {summary['in_scope']:,} critical services have gaps, "
            f"{most:,} of them for want of: {label.lower()}.")


def _attainment_detail(context: ReportContext, summary: dict) -> str:
    judged = summary["events"]
    return (f"{judged - summary['attained']:,} of {judged:,} recovery events with an RTO breached it; "
            f"{summary['without_rto']:,} could not be judged.")


def _downtime_detail(context: ReportContext, summary: dict) -> str:
    return (f"{h.money(summary['breach_cost'], context.currency)} of it beyond RTO; "
            f"{summary['unpriced_hours']:,.1f} outage hours unpriced.")


def _staleness_detail(context: ReportContext, summary: dict) -> str:
    return (f"of {summary['plans']:,} plans, {summary['overdue']:,} overdue and {summary['never_tested']:,} never "
            f"tested, {summary['due_soon']:,} due within 30 days; live services without a plan: "
            f"{summary['services_without_plan']:,}.")


# The sentence's second half, per headline measure; a measure without one gets the first half only.
SENTENCE_DETAILS: dict[str, Callable[[ReportContext, dict], str]] = {
    "coverage_pct": _coverage_detail,
    "attainment_pct": _attainment_detail,
    "downtime_cost": _downtime_detail,
    "stale_pct": _staleness_detail,
}


def summary_sentences(context: ReportContext) -> list[str]:
    """One plain sentence per headline measure, written from the figures."""
    sentences = []
    for measure in headline_measures():
        headline = context.posture["headlines"][measure.key]
        value = headline["value"]
        target = context.targets.get(measure.key)
        if value is None:
            missing = measure.missing_figure(context.posture["current"][measure.name])
            reason = "nothing to measure for this filter" if missing == "n/a" else missing
            sentences.append(f"{measure.label}: {reason}.")
            continue
        figure = headline_text(value, measure, context.currency)
        first = (f"{measure.label} {_movement(headline['change'], measure, context.currency)} {figure}"
                 f"{_against_target(value, target, measure.higher_is_better)}")
        detail = SENTENCE_DETAILS.get(measure.key)
        sentences.append(f"{first}; {detail(context, context.posture['current'][measure.name])}" if detail
                         else f"{first}.")
    return sentences


def executive_summary(context: ReportContext) -> str:
    rows = []
    for measure in headline_measures():
        headline = context.posture["headlines"][measure.key]
        target = context.targets.get(measure.key)
        state = target_state(headline["value"], target, measure.higher_is_better) if target is not None else None
        bound = "≥" if measure.higher_is_better else "≤"
        rows.append(
            "<tr>"
            f"<td>{h.text(measure.label)}</td>"
            f'<td class="num"><b>{h.text(figure_text(headline["value"], measure, context))}</b></td>'
            f'<td class="num">{h.text(f"{bound} {target:g} %" if target is not None else "none")}</td>'
            f"<td>{h.state_badge(state) if target is not None else ''}</td>"
            f'<td class="num">{h.text(headline_text(headline["previous"], measure, context.currency))}</td>'
            f'<td class="num">{h.text(_change_text(headline["change"], measure, context.currency))}</td>'
            "</tr>"
        )
    header = "".join(f"<th>{label}</th>" for label in
                     ("Measure", "Figure", "Target", "State", "Previous period", "Change"))
    previous = context.filters.previous()
    sentences = "".join(f"<li>{h.text(sentence)}</li>" for sentence in summary_sentences(context))
    return (
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="note">Previous period: {previous.since:%Y-%m-%d} to {previous.until:%Y-%m-%d}. '
        "Coverage and stale plans are taken at the end of each period; attainment and cost over it.</p>"
        f'<ul class="sentences">{sentences}</ul>'
    )


# -- posture, units, outages ---------------------------------------------------------------------


def posture_charts(context: ReportContext) -> str:
    trend = posture_trend(context.store, context.filters)
    monthly = downtime_by_month(context.store, context.filters)
    # Month and year on two lines, level: at a page's width the app's one-line labels would tilt.
    by_month = {"tickformat": "%b<br>%Y", "tickangle": 0}
    parts = [h.figure(charts.posture_trend(trend, context.targets).update_xaxes(**by_month), "chart-posture-trend")]
    if not monthly.empty:
        cost_chart = charts.cost_by_month(monthly, context.currency).update_xaxes(**by_month)
        parts.append(h.figure(cost_chart, "chart-cost-by-month"))
    parts.append('<p class="note">Dotted lines are the targets. Coverage and stale plans are taken at each '
                 "month's end; attainment is over the events that started in the month.</p>")
    return "".join(parts)


def units_by_gaps(context: ReportContext) -> str | None:
    units = unit_gaps(context.store, context.filters)
    if units.empty:
        return None
    currency = context.currency
    writers = {PERCENT: h.pct, MONEY: lambda v: h.money(v, currency), "count": h.count}
    columns = [h.Column("unit", "Business unit"), h.Column("gaps", "Gaps", h.count, True)]
    seen = {"unit", "gaps"}
    for measure in headline_measures():
        for column in measure.unit_columns:
            if column.name not in seen:
                seen.add(column.name)
                columns.append(h.Column(column.name, column.label, writers[column.kind], True))
    return h.table(units, columns, caption="Gaps = uncovered critical services + stale plans + services without "
                                           "a plan. Most gaps first.")


def costliest_outages(context: ReportContext) -> str:
    currency = context.currency
    costly = top_cost_services(context.store, context.filters, limit=TOP_ROWS)
    breaches = worst_breaches(context.store, context.filters, limit=TOP_ROWS)
    parts = ["<h3>Services whose outages cost most</h3>"]
    if costly.empty:
        parts.append('<p class="note">No priced outage in this period.</p>')
    else:
        parts.append(h.table(costly, [
            h.Column("service", "Service"), h.Column("unit", "Business unit"), h.Column("tier", "Tier", h.count, True),
            h.Column("incidents", "Incidents", h.count, True), h.Column("outage_hours", "Outage hours", h.hours, True),
            h.Column("cost", f"Cost ({currency})", h.count, True),
            h.Column("breach_cost", f"Beyond RTO ({currency})", h.count, True),
        ]))
    parts.append("<h3>Worst RTO breaches</h3>")
    if breaches.empty:
        parts.append('<p class="note">No recovery in this period took longer than its RTO.</p>')
    else:
        parts.append(h.table(breaches, [
            h.Column("source", "Source"), h.Column("event_id", "Event"), h.Column("service", "Service"),
            h.Column("unit", "Business unit"), h.Column("started_at", "Started", h.day),
            h.Column("rta_minutes", "RTA (min)", h.number, True), h.Column("rto_minutes", "RTO (min)", h.count, True),
            h.Column("rta_rto_ratio", "RTA / RTO", lambda v: h.number(v, 2), True),
        ], caption="Highest RTA / RTO first."))
    return "".join(parts)


def uncovered_services(context: ReportContext) -> str:
    matrix = context.coverage_by_service
    if matrix.empty:
        return '<p class="note">No live critical service matches these filters.</p>'
    uncovered = matrix.loc[~matrix["covered"]].copy()
    if uncovered.empty:
        return '<p class="note">Every critical service in scope meets every control.</p>'
    uncovered["failing"] = uncovered.apply(
        lambda row: "; ".join(label for control, label in CONTROLS.items() if not row[control]), axis=1)
    shown = uncovered.head(LONGEST_TABLE)
    more = len(uncovered) - len(shown)
    caption = "Most gaps first." + (f" {more:,} more on the Coverage page and in the owner packs." if more else "")
    return h.table(shown, [
        h.Column("service", "Service"), h.Column("unit", "Business unit"), h.Column("tier", "Tier", h.count, True),
        h.Column("owner", "Owner"), h.Column("gaps", "Gaps", h.count, True), h.Column("failing", "Failing controls"),
    ], caption=caption)


ACTION_STATES = ("no plan", "never tested", "overdue", "due within 30 days")


def plans_by_owner(context: ReportContext) -> str:
    worklist = context.plan_worklist
    if worklist.empty:
        return '<p class="note">No live service matches these filters, so there is no plan to check.</p>'
    needing = worklist.loc[worklist["state"].isin(ACTION_STATES)].assign(
        owner=lambda f: f["owner"].fillna("(no owner)"))
    if needing.empty:
        return '<p class="note">Every plan in scope is current.</p>'
    by_owner = pd.crosstab(needing["owner"], needing["state"]).reindex(columns=list(ACTION_STATES), fill_value=0)
    by_owner["total"] = by_owner.sum(axis=1)
    by_owner["most_days_overdue"] = needing.groupby("owner")["days_overdue"].max()
    by_owner = by_owner.reset_index().sort_values(["total", "owner"], ascending=[False, True])
    shown = by_owner.head(LONGEST_TABLE)
    more = len(by_owner) - len(shown)
    columns = [h.Column("owner", "Owner"), h.Column("total", "Needing action", h.count, True)]
    columns += [h.Column(state, state.capitalize(), h.count, True) for state in ACTION_STATES]
    columns.append(h.Column("most_days_overdue", "Most days overdue", h.count, True))
    caption = "A plan's owner is its own, else its service's." + (f" {more:,} more owners in the owner packs." if more
                                                                 else "")
    return h.table(shown, columns, caption=caption)


def years_in_store(store: Store, filters: Filters) -> list[int]:
    """The calendar years from the first incident's to the as-of date's (none without incidents)."""
    first = store.scalar("SELECT min(opened_at) FROM incidents WHERE opened_at < $end",
                         {"end": dt.datetime.combine(filters.as_of + dt.timedelta(days=1), dt.time())})
    return list(range(first.year, filters.as_of.year + 1)) if first is not None else []


def annual_cost_table(store: Store, filters: Filters) -> pd.DataFrame:
    """year, incidents, outage_hours (priced and unpriced), cost, breach_cost: per calendar year,
    up to the as-of date, the same units and tiers."""
    rows = []
    for year in years_in_store(store, filters):
        until = min(dt.date(year, 12, 31), filters.as_of)
        summary = downtime_summary(store, replace(filters, since=dt.date(year, 1, 1), until=until))
        rows.append({"year": year, "incidents": summary["incidents"],
                     "outage_hours": summary["priced_hours"] + summary["unpriced_hours"],
                     "cost": summary["total"], "breach_cost": summary["breach_cost"],
                     "to": until})
    return pd.DataFrame(rows, columns=["year", "incidents", "outage_hours", "cost", "breach_cost", "to"])


def annual_cost(context: ReportContext) -> str:
    table = annual_cost_table(context.store, context.filters)
    if table.empty:
        return '<p class="note">The store holds no incidents.</p>'
    currency = context.currency
    table["year_label"] = [f"{year} (to {to:%d %b})" if to.month != 12 or to.day != 31 else str(year)
                           for year, to in zip(table["year"], table["to"], strict=True)]
    return h.table(table, [
        h.Column("year_label", "Year"), h.Column("incidents", "Incidents", h.count, True),
        h.Column("outage_hours", "Outage hours", h.hours, True), h.Column("cost", f"Cost ({currency})", h.count, True),
        h.Column("breach_cost", f"Cost beyond RTO ({currency})", h.count, True),
    ], caption=f"Scope: {context.scope}. Outage hours include unpriced hours; cost is priced hours only.")


def single_points_of_failure(context: ReportContext) -> str:
    table = resilience_analysis.single_points_of_failure(context.store, context.filters)
    if table.empty:
        return ('<p class="note">No single failure reaches a critical service beyond itself: every path has a '
                "working alternative, or nothing depends on another.</p>")
    shown = table.head(TOP_ROWS * 2)
    return h.table(shown, [
        h.Column("kind", "Kind"), h.Column("name", "Fails alone"),
        h.Column("critical_reached_beyond_itself", "Critical services it takes down", h.count, True),
        h.Column("services_reached", "Services reached", h.count, True),
        h.Column("cost_per_hour_at_risk", f"Cost per hour at risk ({context.currency})", h.count, True),
        h.Column("recovery_minutes", "Its recovery time (min)", h.count, True),
    ], caption=f"A failure spreads to everything that depends on it, except along a dependency with a working "
               f"alternative. {len(table):,} single points of failure; the {len(shown):,} reaching most critical "
               "services shown (the Resilience page has them all).")


def supplier_concentration(context: ReportContext) -> str | None:
    table = resilience_analysis.supplier_concentration(context.store, context.filters)
    if table.empty:
        return None
    threshold = resilience_analysis.concentration_threshold_pct(context.store)
    shown = table.head(TOP_ROWS)
    return h.table(shown, [
        h.Column("supplier", "Supplier"), h.Column("critical_reached", "Critical services relying", h.count, True),
        h.Column("share_of_critical_pct", "Share of critical", h.pct, True),
        h.Column("cost_per_hour_at_risk", f"Cost per hour at risk ({context.currency})", h.count, True),
        h.Column("contracted_recovery_minutes", "Contracted recovery (min)", h.count, True),
        h.Column("shortest_rto_minutes", "Shortest RTO relying (min)", h.count, True),
        h.Column("recovery_breach", "Recovery longer than that RTO", lambda v: "yes" if v else ""),
        h.Column("substitutability", "Substitutability"), h.Column("contract_end", "Contract ends", h.day),
    ], caption=f"Directly and through dependencies. A share of {threshold:g} % or more of the critical services "
               "on one supplier is flagged on the Overview (the policy's threshold).")


def inventory_currency(context: ReportContext) -> str:
    table = unverified_by_owner_and_unit(context.store, context.filters)
    if table.empty:
        return '<p class="note">No asset is recorded behind a critical service in scope.</p>'
    unverified = table.loc[table["unverified"] > 0]
    if unverified.empty:
        return '<p class="note">Every asset behind a critical service in scope was verified within its interval.</p>'
    shown = unverified.head(LONGEST_TABLE)
    return h.table(shown, [
        h.Column("owner", "Asset owner"), h.Column("unit", "Business unit"),
        h.Column("unverified", "Unverified", h.count, True), h.Column("assets", "Assets", h.count, True),
    ], caption="Assets behind live critical services not verified (audit, discovery or review) within the "
               "policy's interval for the service's tier, by owner and the business unit they serve.")


def appendix(context: ReportContext) -> str:
    items = [(measure.label, HEADLINE_DEFINITIONS.get(measure.key, "No definition written yet."))
             for measure in headline_measures()]
    items += list(OTHER_DEFINITIONS)
    return "".join(f"<h3>{h.text(term)}</h3><p>{h.text(meaning)}</p>" for term, meaning in items)


SECTIONS: list[ReportSection] = [
    ReportSection("title", "", title_page, chapter=False),
    ReportSection("summary", "Executive summary", executive_summary),
    ReportSection("trend", "Posture trend", posture_charts, chapter=False),
    ReportSection("units", "Business units ranked by gaps", units_by_gaps),
    ReportSection("outages", "Costliest outages and worst RTO breaches", costliest_outages, chapter=False),
    ReportSection("uncovered", "Uncovered critical services", uncovered_services),
    ReportSection("plans", "Plans needing action, by owner", plans_by_owner, chapter=False),
    ReportSection("annual_cost", "Annual cost of major ICT incidents", annual_cost, chapter=False),
    ReportSection("single_points", "Single points of failure", single_points_of_failure),
    ReportSection("suppliers", "Supplier concentration", supplier_concentration, chapter=False),
    ReportSection("inventory_currency", "Unverified assets behind critical services", inventory_currency,
                  chapter=False),
]
APPENDIX = ReportSection("definitions", "Appendix: definitions", appendix)


def add_section(section: ReportSection, *, before: str = "definitions") -> None:
    """Add a section (the resilience and asset work's headline tables); it prints before the
    appendix, or before the section whose key is `before`."""
    if any(existing.key == section.key for existing in SECTIONS):
        raise ValueError(f"a report section {section.key!r} exists already")
    keys = [existing.key for existing in SECTIONS]
    SECTIONS.insert(keys.index(before) if before in keys else len(SECTIONS), section)


def report_body(context: ReportContext) -> str:
    parts = []
    for section in [*SECTIONS, APPENDIX]:
        content = section.build(context)
        if content is None:
            continue
        heading = f"<h2>{h.text(section.title)}</h2>" if section.title else ""
        css = "chapter" if section.chapter else "part"
        parts.append(f'<section class="{css}" id="{section.key}">{heading}{content}</section>')
    return "".join(parts)
