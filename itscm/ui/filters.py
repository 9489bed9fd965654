"""The sidebar filters every page shares (business units, tiers, period, as-of date, the incidents
counted), each in a URL query parameter so a filtered view can be sent as a link."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from itscm.administration import TIERS, default_events
from itscm.filters import EVENT_SCOPE_LABELS, EVENT_SCOPES, Filters, months_before
from itscm.store import Store
from itscm.ui.cache import cached_read, unit_names
from itscm.ui.widgets import money, plain

# Bound widgets write their displayed label into the URL, so these labels are the URL values too:
# ?period=Last+6+months&tier=1&unit=Payments reads well in a link sent to a colleague.
PERIODS: dict[str, int | None] = {
    "Last 3 months": 3,
    "Last 6 months": 6,
    "Last 12 months": 12,
    "Last 24 months": 24,
    "Year to date": None,
    "Custom dates": None,
}
DEFAULT_PERIOD = "Last 12 months"
TIER_OPTIONS = [str(tier) for tier in TIERS]   # as the pills show them, and as the URL carries them


def sidebar_filters(store: Store) -> Filters:
    """Business units, tiers, period and as-of date, each bound to a URL query parameter so a
    filtered view can be sent as a link."""
    sidebar = st.sidebar
    sidebar.header("Filters")
    units = sidebar.multiselect("Business units", unit_names(store), key="unit", bind="query-params",
                                placeholder="All business units")
    tiers = sidebar.pills("Tiers", TIER_OPTIONS, selection_mode="multi", key="tier", bind="query-params",
                          help="1 mission critical, 2 business critical, 3 business operational, 4 administrative. "
                               "None selected: all tiers.")
    as_of = sidebar.date_input("As of", value=dt.date.today(), key="as_of", bind="query-params",
                               format="YYYY-MM-DD", help="The day at whose end the snapshot is taken.")
    period = sidebar.selectbox("Period", list(PERIODS), index=list(PERIODS).index(DEFAULT_PERIOD), key="period",
                               bind="query-params")
    since, until = period_dates(period, as_of)
    if period == "Custom dates":
        since = sidebar.date_input("From", value=since, key="since", bind="query-params", format="YYYY-MM-DD")
        until = sidebar.date_input("To", value=until, key="until", bind="query-params", format="YYYY-MM-DD")
        if since > until:
            sidebar.warning("The period starts after it ends; showing the 12 months up to the as-of date.")
            since, until = period_dates(DEFAULT_PERIOD, as_of)
    events = events_choice(store)
    sidebar.caption(f"Period {since:%d %b %Y} to {until:%d %b %Y}; snapshot as of {as_of:%d %b %Y}.")
    return Filters(units=tuple(units), tiers=tuple(int(t) for t in tiers or ()), since=since, until=until,
                   as_of=as_of, events=events)


EVENTS_PARAM = "events"   # ?events=continuity|all


def events_choice(store: Store) -> str:
    """The incidents the measures count (docs/DESIGN.md §17): "continuity" or "all", from
    `?events=` when it names one, else the store's rule's default; shown as its label in the
    sidebar and written back to the URL as its value. Not a bound widget: a bound widget writes
    its label into the URL, and the link should read ?events=continuity."""
    default = cached_read(default_events, store)
    current = st.session_state.get(EVENTS_PARAM)
    if current not in EVENT_SCOPES:   # a session's first run: the link it came by, else the rule
        asked = st.query_params.get(EVENTS_PARAM)
        current = asked if asked in EVENT_SCOPES else default
    # The choice as the radio's index on every run, not set once in the session state: a browser
    # that draws the radio anew (it does when switching the Resilience page's tabs quickly) shows
    # the index it was sent, and would otherwise fall back to the first scope and send that back.
    choice = st.sidebar.radio(
        "Incidents counted", EVENT_SCOPES, index=EVENT_SCOPES.index(current), key=EVENTS_PARAM,
        format_func=EVENT_SCOPE_LABELS.get,
        help="Continuity events: the incidents the policy names (Administration, Targets and policy: by "
             "priority, or an outage longer than the service's RTO); drills count in both. Downtime cost "
             "always counts every incident and shows the continuity events' share.")
    if choice == default:
        st.query_params.pop(EVENTS_PARAM, None)
    else:
        st.query_params[EVENTS_PARAM] = choice
    return choice


def period_dates(period: str, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of a named period ending at the as-of date."""
    if period == "Year to date":
        return dt.date(as_of.year, 1, 1), as_of
    months = PERIODS.get(period) or PERIODS[DEFAULT_PERIOD]
    return months_before(as_of, months) + dt.timedelta(days=1), as_of


def events_caption(filters: Filters) -> str:
    """Which incidents the attainment figures count, in one line (docs/DESIGN.md §17)."""
    rule = " (by the policy's rule)" if filters.events == "continuity" else ""
    return f"RTO attainment counts {filters.events_label.lower()}{rule} and every drill."


def downtime_share_caption(downtime: dict, currency: str) -> str:
    """That downtime cost counts every incident, and the continuity events' share of it."""
    share = downtime["continuity_pct"]
    return (f"Downtime cost counts every incident; continuity events {money(downtime['continuity_cost'], currency)} "
            f"of it ({'n/a' if share is None else f'{share:.1f} %'}).")


def filter_scope_caption(filters: Filters) -> str:
    """The filters in one line, for under a page's title."""
    units = ", ".join(plain(unit) for unit in filters.units) or "all business units"
    tiers = ", ".join(f"tier {t}" for t in filters.tiers) or "all tiers"
    return (f"{units} · {tiers} · {filters.since:%d %b %Y} – {filters.until:%d %b %Y} · as of {filters.as_of:%d %b %Y}"
            f" · {filters.events_label.lower()}")
