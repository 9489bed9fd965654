"""The one filter every measure takes: business units, tiers, a period and an as-of date.

Dates are whole days. The period runs from `since` to `until` inclusive; the as-of date is the
day at whose end snapshot measures (coverage, staleness) are taken. Measures never see user
strings: `query_params()` turns a filter into SQL parameters.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field, replace

from itscm.store import Store

DEFAULT_PERIOD_MONTHS = 12

# Which incidents the incident measures count (docs/DESIGN.md §17): the continuity events the
# store's rule names, or every incident. Drills count in both.
CONTINUITY_EVENTS, ALL_INCIDENTS = "continuity", "all"
EVENT_SCOPES = (CONTINUITY_EVENTS, ALL_INCIDENTS)
EVENT_SCOPE_LABELS = {CONTINUITY_EVENTS: "Continuity events", ALL_INCIDENTS: "All incidents"}


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` months earlier, clamped to the end of a shorter month."""
    year, month_zero = divmod(day.year * 12 + day.month - 1 - months, 12)
    month = month_zero + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Filters:
    units: tuple[str, ...] = ()       # business unit names; a unit includes its sub-units
    tiers: tuple[int, ...] = ()
    since: dt.date = field(default=None)  # type: ignore[assignment]
    until: dt.date = field(default=None)  # type: ignore[assignment]
    as_of: dt.date = field(default=None)  # type: ignore[assignment]
    events: str = ALL_INCIDENTS       # CONTINUITY_EVENTS or ALL_INCIDENTS

    def __post_init__(self) -> None:
        if self.events not in EVENT_SCOPES:
            raise ValueError(f"events must be one of {', '.join(EVENT_SCOPES)}, not {self.events!r}")
        as_of = self.as_of or dt.date.today()
        until = self.until or as_of
        since = self.since or (months_before(until, DEFAULT_PERIOD_MONTHS) + dt.timedelta(days=1))
        if since > until:
            raise ValueError(f"the period starts ({since}) after it ends ({until})")
        object.__setattr__(self, "as_of", as_of)
        object.__setattr__(self, "until", until)
        object.__setattr__(self, "since", since)
        object.__setattr__(self, "units", tuple(sorted(set(self.units))))
        object.__setattr__(self, "tiers", tuple(sorted({int(t) for t in self.tiers})))

    @property
    def events_label(self) -> str:
        """The scope in words, as every figure's caption names it."""
        return EVENT_SCOPE_LABELS[self.events]

    @property
    def period_days(self) -> int:
        return (self.until - self.since).days + 1

    def previous(self) -> Filters:
        """The period of the same length just before this one, taken as of its last day."""
        until = self.since - dt.timedelta(days=1)
        since = until - dt.timedelta(days=self.period_days - 1)
        return replace(self, since=since, until=until, as_of=until)

    def at(self, as_of: dt.date) -> Filters:
        return replace(self, as_of=as_of)

    def scope_params(self, store: Store) -> dict:
        """Which services the filter keeps: by business unit (and sub-units) and tier."""
        return self._scope_params(unit_tree(store) if self.units else [])

    def _scope_params(self, tree: list[tuple[str, str, str | None]]) -> dict:
        return {
            "all_units": not self.units,
            "unit_ids": units_under(tree, self.units),
            "all_tiers": not self.tiers,
            "tiers": list(self.tiers),
        }

    @property
    def period_start(self) -> dt.datetime:
        return dt.datetime.combine(self.since, dt.time())

    @property
    def period_end(self) -> dt.datetime:
        """Exclusive: the period includes all of its last day, but nothing after as-of."""
        return dt.datetime.combine(min(self.until, self.as_of) + dt.timedelta(days=1), dt.time())

    def query_params(self, store: Store, *, read_with: tuple[str, str] | None = None) -> dict:
        """Parameters of the period measures (attainment, downtime cost): the scope, the incidents
        counted and the store's rule of which are continuity events (docs/DESIGN.md §17), the period.
        `read_with`: (name, a scalar SQL expression over $period_end), read in the same statement as
        the rule and returned under that name: on DuckLake every statement costs a round of
        catalog queries (docs/PERFORMANCE.md)."""
        rule, tree, extra = _rule_and_unit_tree(store, with_units=bool(self.units),
                                                read_with=read_with and (read_with[1], self.period_end))
        return {
            **self._scope_params(tree),
            "all_incidents": self.events == ALL_INCIDENTS,
            **rule,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "as_of_end": dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time()),
            **({read_with[0]: extra} if read_with else {}),
        }

    def snapshot_params(self, store: Store, as_of_dates: list[dt.date]) -> dict:
        """Parameters of the snapshot measures (coverage, staleness), taken at each date given."""
        return {**self.scope_params(store), "as_of_dates": as_of_dates}


_RULE_COLUMNS = ("max_priority", "marked_major", "outage_past_rto")
_RULE_SQL = f"SELECT {', '.join(_RULE_COLUMNS)} FROM continuity_event_rule"
_UNIT_TREE_SQL = "SELECT unit_id, name, parent_unit_id FROM business_units"
_UNIT_TREE_LIST_SQL = "(SELECT list((unit_id, name, parent_unit_id)) FROM business_units)"


def continuity_rule_params(store: Store) -> dict:
    """The continuity event rule as the period measures' SQL takes it (itscm/rollup.py:
    continuity_event_sql): event_max_priority, event_marked_major, event_outage_past_rto."""
    return _rule_params(store.rows(_RULE_SQL)[0])


def _rule_params(rule: tuple) -> dict:
    return {f"event_{column}": value for column, value in zip(_RULE_COLUMNS, rule, strict=True)}


def _rule_and_unit_tree(store: Store, *, with_units: bool, read_with: tuple[str, dt.datetime] | None = None,
                        ) -> tuple[dict, list[tuple[str, str, str | None]], object]:
    """The rule's parameters, with `with_units` the unit tree, and the value of `read_with`'s
    expression over its $period_end, read in one statement: on DuckLake every statement asks the
    catalog for its snapshot first (docs/PERFORMANCE.md, DuckLake)."""
    if not with_units and read_with is None:
        return continuity_rule_params(store), [], None
    columns = [*_RULE_COLUMNS, _UNIT_TREE_LIST_SQL if with_units else "NULL",
               read_with[0] if read_with else "NULL"]
    *rule, tree, extra = store.rows(f"SELECT {', '.join(columns)} FROM continuity_event_rule",
                                    {"period_end": read_with[1]} if read_with else None)[0]
    return _rule_params(tuple(rule)), tree or [], extra


def unit_tree(store: Store) -> list[tuple[str, str, str | None]]:
    """Every business unit: unit_id, name, parent_unit_id."""
    return store.rows(_UNIT_TREE_SQL)


def units_under(tree: list[tuple[str, str, str | None]], unit_names: tuple[str, ...]) -> list[str]:
    """The ids of the named units and of every unit below them in `tree` (unit_tree), in order.
    Walked here rather than by a recursive query, which reads the units again at every level (on
    DuckLake each read is a query of the catalog)."""
    children: dict[str | None, list[str]] = {}
    for unit_id, _name, parent in tree:
        children.setdefault(parent, []).append(unit_id)
    chosen = {unit_id for unit_id, name, _parent in tree if name in unit_names}
    waiting = list(chosen)
    while waiting:
        for child in children.get(waiting.pop(), []):
            if child not in chosen:
                chosen.add(child)
                waiting.append(child)
    return sorted(chosen)


def unit_ids_under(store: Store, unit_names: tuple[str, ...]) -> list[str]:
    """The ids of the named units and of every unit below them."""
    if not unit_names:
        return []
    return units_under(unit_tree(store), unit_names)


def unknown_units(store: Store, unit_names: tuple[str, ...]) -> list[str]:
    known = {name for (name,) in store.rows("SELECT name FROM business_units")}
    return [name for name in unit_names if name not in known]


# The WHERE fragment every service-scoped measure uses; `s` is the services table.
SERVICE_SCOPE_SQL = (
    "($all_units OR list_contains($unit_ids, s.unit_id)) AND ($all_tiers OR list_contains($tiers, s.tier))"
)


def scoped_services_sql(*, with_rto_only: bool = False) -> str:
    """The services the filter keeps, with what the measures show of them: service_key,
    service_id, name, tier, rto_minutes, impact_cost_per_hour and unit (its business unit's name).
    `with_rto_only`: only those with an RTO, for the breach tables, which judge against it.
    Constant SQL; the filter arrives as the scope parameters."""
    has_rto = "s.rto_minutes IS NOT NULL AND " if with_rto_only else ""
    return f"""
    SELECT s.service_key, s.service_id, s.name, s.tier, s.rto_minutes, s.impact_cost_per_hour, u.name AS unit
    FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id
    WHERE {has_rto}{SERVICE_SCOPE_SQL}
"""
