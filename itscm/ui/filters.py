"""The sidebar filters every page shares (business units, tiers, period, as-of date), each bound
to a URL query parameter so a filtered view can be sent as a link."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from itscm.administration import TIERS
from itscm.filters import Filters, months_before
from itscm.store import Store
from itscm.ui.cache import unit_names
from itscm.ui.widgets import plain

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
    sidebar.caption(f"Period {since:%d %b %Y} to {until:%d %b %Y}; snapshot as of {as_of:%d %b %Y}.")
    return Filters(units=tuple(units), tiers=tuple(int(t) for t in tiers or ()), since=since, until=until,
                   as_of=as_of)


def period_dates(period: str, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of a named period ending at the as-of date."""
    if period == "Year to date":
        return dt.date(as_of.year, 1, 1), as_of
    months = PERIODS.get(period) or PERIODS[DEFAULT_PERIOD]
    return months_before(as_of, months) + dt.timedelta(days=1), as_of


def filter_scope_caption(filters: Filters) -> str:
    """The filters in one line, for under a page's title."""
    units = ", ".join(plain(unit) for unit in filters.units) or "all business units"
    tiers = ", ".join(f"tier {t}" for t in filters.tiers) or "all tiers"
    return f"{units} · {tiers} · {filters.since:%d %b %Y} – {filters.until:%d %b %Y} · as of {filters.as_of:%d %b %Y}"
