"""The headline measures: one entry each, and everything that shows them iterates over the
entries: the Overview tiles and unit table (itscm/ui/widgets.py), the posture summary and trend
(itscm/measures/posture.py), the default targets (itscm/targets.py) and their form
(pages/Administration.py), `summary` and `summary --json` (itscm/cli.py) and the benchmark.

A new headline measure is its module, its page and one entry: `register(HeadlineMeasure(...))`.
The five built in below are registered when this module is imported, in the order shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from itscm.filters import Filters
from itscm.measures.attainment import attainment_summary, judged_attainment
from itscm.measures.coverage import coverage_summaries, coverage_summary
from itscm.measures.downtime import downtime_summary, downtime_total
from itscm.measures.inventory_currency import (
    inventory_currency_by_unit,
    inventory_currency_summaries,
    inventory_currency_summary,
    inventory_currency_trend,
)
from itscm.measures.staleness import staleness_summaries, staleness_summary
from itscm.store import Store

PERCENT, MONEY = "percent", "money"   # how a headline figure is written
COUNT = "count"                       # a unit-table column may also be a count
UNIT_COLUMN_KINDS = (PERCENT, MONEY, COUNT)


@dataclass(frozen=True)
class UnitColumn:
    """A column of the Overview's business-unit table (a column of posture.unit_gaps)."""
    name: str
    label: str
    kind: str                           # PERCENT (a bar from 0 to 100), MONEY or COUNT


@dataclass(frozen=True)
class HeadlineMeasure:
    key: str                            # the headline's name: its target, its posture_trend column
    name: str                           # its summary's name in snapshots and in `summary --json`
    figure: str                         # the field of its summary that is the headline figure
    label: str
    format: str                         # PERCENT or MONEY
    higher_is_better: bool
    default_target: float | None        # a percentage; None: no target, the tile shows the previous period
    summary: Callable[[Store, Filters], dict]          # the summary of a filter's period
    json_fields: tuple[str, ...]        # the summary's fields that `summary --json` prints, in order
    tile_help: Callable[[dict], str]    # the summary in words, under the Overview tile's help icon
    summary_text: Callable[[dict], str]   # the summary in words, on the `summary` line
    unit_columns: tuple[UnitColumn, ...] = ()
    # The previous period's summary, for the change against it: at least `figure`, and cheaper
    # than `summary` where it can be. None: `summary`.
    previous: Callable[[Store, Filters], dict] | None = None
    # Measures taken as of a date (coverage, staleness) read several dates in one query: the
    # posture summary takes the current and the previous period's from one call. {date: summary}.
    at_dates: Callable[[Store, Filters, list[dt.date]], dict[dt.date, dict]] | None = None
    # The measure by month (month, <key>) and by business unit (unit, <unit columns>). The four
    # built-in measures leave them out: posture_trend and unit_gaps compute theirs, together.
    trend: Callable[[Store, Filters], pd.DataFrame] | None = None
    by_unit: Callable[[Store, Filters], pd.DataFrame] | None = None
    # Roughly how long its summary takes beside the others': the posture summary starts the
    # longest first, so that the queries it runs two at a time end together.
    query_cost: int = 0
    # The Overview tile's label where `label` is too long for a column of five (cut to
    # "Critical-service cov…" at 1440 px); the tile's help names the measure in full.
    tile_label: str = ""
    # What the tile shows instead of a missing figure, from the summary (None: "n/a").
    no_data: Callable[[dict], str] | None = None

    def __post_init__(self) -> None:
        if self.format not in (PERCENT, MONEY):
            raise ValueError(f"{self.key}: a headline is written as {PERCENT} or {MONEY}, not {self.format!r}.")
        if self.default_target is not None and self.format != PERCENT:
            raise ValueError(f"{self.key}: targets are percentages; a {self.format} measure has none.")
        for column in self.unit_columns:
            if column.kind not in UNIT_COLUMN_KINDS:
                raise ValueError(f"{self.key}: unit column {column.name} has no kind {column.kind!r}.")

    @property
    def target_label(self) -> str:
        """What its target means, as the targets form asks for it."""
        return f"{self.label} {'at least' if self.higher_is_better else 'at most'} (%)"

    def missing_figure(self, summary: dict) -> str:
        """The tile's text where the figure is missing."""
        return self.no_data(summary) if self.no_data else "n/a"

    def previous_summary(self, store: Store, filters: Filters) -> dict:
        return (self.previous or self.summary)(store, filters)


_MEASURES: dict[str, HeadlineMeasure] = {}


def register(measure: HeadlineMeasure) -> HeadlineMeasure:
    """Add a headline measure after the ones registered before it."""
    if measure.key in _MEASURES or any(known.name == measure.name for known in _MEASURES.values()):
        raise ValueError(f"A headline measure {measure.key!r} (or named {measure.name!r}) is already registered.")
    _MEASURES[measure.key] = measure
    return measure


def unregister(key: str) -> None:
    del _MEASURES[key]


def headline_measures() -> tuple[HeadlineMeasure, ...]:
    """The headline measures, in the order the tiles show them."""
    return tuple(_MEASURES.values())


# -- the five built in --------------------------------------------------------------------------


def _share(summary: dict) -> str:
    """The continuity events' part of the downtime cost, in words (docs/DESIGN.md §17)."""
    pct = summary["continuity_pct"]
    return f"{summary['continuity_cost']:,.0f} ({'n/a' if pct is None else f'{pct:.1f} %'})"


def _downtime_total(store: Store, filters: Filters) -> dict:
    return {"total": downtime_total(store, filters)}


register(HeadlineMeasure(
    key="coverage_pct", name="coverage", figure="pct", label="Critical-service coverage", tile_label="Coverage",
    format=PERCENT, higher_is_better=True, default_target=95.0,
    summary=coverage_summary, at_dates=coverage_summaries, query_cost=2,
    json_fields=("in_scope", "covered", "pct"),
    tile_help=lambda s: f"{s['covered']:,} of {s['in_scope']:,} critical services meet every control",
    summary_text=lambda s: f"{s['covered']:,} of {s['in_scope']:,} critical services covered",
    unit_columns=(UnitColumn("coverage_pct", "Coverage", PERCENT),
                  UnitColumn("uncovered", "Uncovered critical", COUNT)),
))
register(HeadlineMeasure(
    key="attainment_pct", name="rto_attainment", figure="pct", label="RTO attainment", format=PERCENT,
    higher_is_better=True, default_target=90.0,
    summary=attainment_summary, previous=judged_attainment, query_cost=3,
    json_fields=("events", "attained", "pct", "without_rto"),
    tile_help=lambda s: f"{s['attained']:,} of {s['events']:,} recoveries within RTO; "
                        f"{s['without_rto']:,} without an RTO",
    summary_text=lambda s: f"{s['attained']:,} of {s['events']:,} recovery events within RTO; "
                           f"{s['without_rto']:,} without an RTO or service",
    unit_columns=(UnitColumn("attainment_pct", "RTO attainment", PERCENT),
                  UnitColumn("breaches", "RTO breaches", COUNT)),
))
register(HeadlineMeasure(
    key="downtime_cost", name="downtime_cost", figure="total", label="Downtime cost", format=MONEY,
    higher_is_better=False, default_target=None,
    summary=downtime_summary, previous=_downtime_total, query_cost=4,
    json_fields=("total", "unpriced_hours", "continuity_cost", "continuity_pct"),
    tile_help=lambda s: f"All incidents; continuity events {_share(s)}. "
                        f"{s['unpriced_hours']:,.0f} outage hours unpriced",
    summary_text=lambda s: f"all incidents, continuity events {_share(s)}; of which {s['breach_cost']:,.0f} beyond "
                           f"RTO; {s['unpriced_hours']:,.1f} h unpriced",
    unit_columns=(UnitColumn("downtime_cost", "Downtime cost", MONEY),),
))
register(HeadlineMeasure(
    key="stale_pct", name="staleness", figure="stale_pct", label="Stale plans", format=PERCENT,
    higher_is_better=False, default_target=5.0,
    summary=staleness_summary, at_dates=staleness_summaries, query_cost=1,
    json_fields=("plans", "current", "due_soon", "changed_since_review", "overdue", "never_tested",
                 "services_without_plan"),
    tile_help=lambda s: f"{s['overdue'] + s['never_tested'] + s['changed_since_review']:,} of {s['plans']:,} plans "
                        "overdue, never tested or changed since review",
    summary_text=lambda s: f"{s['overdue']:,} overdue, {s['never_tested']:,} never tested, "
                           f"{s['changed_since_review']:,} changed since review, "
                           f"{s['due_soon']:,} due within 30 days, {s['current']:,} current of {s['plans']:,} plans; "
                           f"{s['services_without_plan']:,} live services without a plan",
    unit_columns=(UnitColumn("stale_pct", "Stale plans", PERCENT), UnitColumn("stale_plans", "Stale plans (n)", COUNT),
                  UnitColumn("services_without_plan", "No plan", COUNT)),
))
register(HeadlineMeasure(
    key="inventory_currency_pct", name="inventory_currency", figure="pct", label="Inventory currency",
    format=PERCENT, higher_is_better=True, default_target=95.0,
    summary=inventory_currency_summary, at_dates=inventory_currency_summaries, query_cost=0,
    json_fields=("assets", "verified", "pct"),
    tile_help=lambda s: (
        "No asset is linked to a live critical service in scope: import assets and service_assets with the "
        "inventory workbook" if not s["assets"] else
        f"{s['verified_later']:,} of {s['assets']:,} assets were verified after this date; the store keeps the "
        "latest verification only, so it cannot say how current they were then" if s["pct"] is None else
        f"{s['verified']:,} of {s['assets']:,} assets behind critical services verified within their interval"),
    summary_text=lambda s: f"{s['verified']:,} of {s['assets']:,} assets behind critical services verified in interval",
    unit_columns=(UnitColumn("inventory_currency_pct", "Inventory currency", PERCENT),
                  UnitColumn("unverified_assets", "Unverified assets", COUNT)),
    trend=inventory_currency_trend, by_unit=inventory_currency_by_unit,
    no_data=lambda s: "no assets yet" if not s["assets"] else "n/a",
))
