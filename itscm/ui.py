"""Shared page widgets: the one module of itscm that imports streamlit.

Every page calls `setup_page()` first. Streamlit serves each file of `pages/` on its own when it
is the first request to a fresh server (DESIGN section 4), so a page must not rely on app.py for
its page config, its store handle or its filters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException, StreamlitAuthError

from itscm import charts, ingest
from itscm.access import LOCAL_USER, Actor, actor_for
from itscm.export import csv_for_spreadsheets
from itscm.filters import Filters, months_before
from itscm.store import Store, StoreError, open_store, resolve_store_path

APP_TITLE = "Continuity posture"

# The app's pages, in menu order.
NAVIGATION = {
    "Posture": [
        ("pages/Overview.py", "Overview", ":material/dashboard:"),
        ("pages/Coverage.py", "Coverage", ":material/verified_user:"),
        ("pages/RTO_attainment.py", "RTO attainment", ":material/timer:"),
        ("pages/Downtime_cost.py", "Downtime cost", ":material/payments:"),
        ("pages/Plan_staleness.py", "Plan staleness", ":material/event_busy:"),
    ],
    "Inventory and data": [
        ("pages/Services.py", "Services", ":material/lan:"),
        ("pages/Upload_incidents.py", "Upload incidents", ":material/upload_file:"),
        ("pages/Administration.py", "Administration", ":material/admin_panel_settings:"),
    ],
}

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
TIERS = ["1", "2", "3", "4"]


@dataclass(frozen=True)
class PageContext:
    store: Store
    filters: Filters
    currency: str
    user: Actor = LOCAL_USER   # who is using the app, with their role (current_user)

    def measure(self, function: Callable, **kwargs):
        """`function(store, filters, **kwargs)`, cached per filter and store version."""
        return cached_measure(function, self.store, self.filters, **kwargs)


@st.cache_resource(show_spinner=False)
def _store_handle(path: str) -> Store:
    return open_store(path)


def get_store() -> Store:
    return _store_handle(resolve_store_path())


@st.cache_data(show_spinner=False, max_entries=1024, max_size="100MB")  # keyed by what people type and pick
def _cached_call(qualified_name: str, store_path: str, data_version: int, args: tuple, kwargs: tuple) -> object:
    module_name, function_name = qualified_name.rsplit(".", 1)
    function = getattr(importlib.import_module(module_name), function_name)
    return function(_store_handle(store_path), *args, **dict(kwargs))


def cached_read(function: Callable, store: Store, *args, **kwargs):
    """`function(store, *args, **kwargs)`, cached and keyed on the store's data version, so a
    commit or an undo shows at once."""
    qualified_name = f"{function.__module__}.{function.__name__}"
    return _cached_call(qualified_name, store.path, store.data_version(), args, tuple(sorted(kwargs.items())))


def cached_measure(function: Callable, store: Store, filters: Filters, **kwargs):
    return cached_read(function, store, filters, **kwargs)


_shared = threading.local()


def setup_page(title: str, icon: str = ":material/monitoring:") -> PageContext:
    """Page config, the store and the sidebar filters: the first call of every page.

    Under app.py the filters are drawn once by the entrypoint (see `entrypoint_setup`), so they
    belong to the main script and keep their URL parameters across page switches; a page file
    that Streamlit serves on its own draws them itself."""
    st.set_page_config(page_title=f"{title} · {APP_TITLE}", page_icon=icon, layout="wide")
    shared = getattr(_shared, "context", None)
    if shared is not None:
        return shared
    return _build_context()


def _build_context() -> PageContext:
    try:
        store = get_store()
    except StoreError as error:
        st.error(f"The continuity store cannot be opened. {error}")
        st.stop()
    # Who it is comes first: with sign-in configured, nothing of the store is shown to a
    # visitor who has not signed in.
    user = current_user(store)
    navigation_menu()
    filters = sidebar_filters(store)
    return PageContext(store=store, filters=filters, currency=store.currency(), user=user)


def navigation_menu() -> None:
    """The page menu. Streamlit's own is switched off (.streamlit/config.toml): when a page file
    is the first request to a fresh server, it would list the raw file names instead."""
    menu = st.sidebar.empty()
    try:
        with menu.container():
            for section, pages in NAVIGATION.items():
                st.caption(section)
                for path, label, icon in pages:
                    st.page_link(path, label=label, icon=icon, width="stretch")
    except StreamlitAPIException:
        # A page file run as the app itself (AppTest, `streamlit run pages/X.py`) has no other
        # pages to link to.
        menu.empty()
        return
    st.sidebar.divider()


@contextmanager
def entrypoint_setup():
    """For app.py: build the shared context (store, filters) once, before the page runs."""
    st.set_page_config(page_title=APP_TITLE, layout="wide")
    _shared.context = _build_context()
    try:
        yield _shared.context
    finally:
        _shared.context = None


@st.cache_data(show_spinner=False, max_entries=16)  # a new entry after every write
def _unit_names(store_path: str, data_version: int) -> list[str]:
    return [name for (name,) in _store_handle(store_path).rows("SELECT name FROM business_units ORDER BY name")]


def sidebar_filters(store: Store) -> Filters:
    """Business units, tiers, period and as-of date, each bound to a URL query parameter so a
    filtered view can be sent as a link."""
    sidebar = st.sidebar
    sidebar.header("Filters")
    unit_options = _unit_names(store.path, store.data_version())
    units = sidebar.multiselect("Business units", unit_options, key="unit", bind="query-params",
                                placeholder="All business units")
    tiers = sidebar.pills("Tiers", TIERS, selection_mode="multi", key="tier", bind="query-params",
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


FILTER_KEYS = ("unit", "tier", "as_of", "period", "since", "until")

def period_dates(period: str, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of a named period ending at the as-of date."""
    if period == "Year to date":
        return dt.date(as_of.year, 1, 1), as_of
    months = PERIODS.get(period) or PERIODS[DEFAULT_PERIOD]
    return months_before(as_of, months) + dt.timedelta(days=1), as_of


# -- display helpers ---------------------------------------------------------------------------

_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~$:")


def plain(text: object) -> str:
    """User data (names, titles) made safe to embed in markdown: shown as typed, never as
    formatting, links, HTML or LaTeX."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))



CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "JPY": "¥"}


def money(value: float | None, currency: str) -> str:
    """A short figure for tiles: €48.6 B, €258.8 M, €42 k, €950."""
    if value is None or pd.isna(value):
        return "n/a"
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1_000_000_000:
        return f"{sign}{symbol}{value / 1_000_000_000:,.1f} B"
    if value >= 1_000_000:
        return f"{sign}{symbol}{value / 1_000_000:,.1f} M"
    if value >= 10_000:
        return f"{sign}{symbol}{value / 1_000:,.0f} k"
    return f"{sign}{symbol}{value:,.0f}"


def pct(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.1f} %"


def rerun_with_message(key: str, message: str) -> None:
    """Run the page again to show a change, and say once, on that run, what was done."""
    st.session_state[key] = message
    st.rerun()


def show_message(key: str, icon: str) -> None:
    """The message `rerun_with_message` left under `key`, shown once."""
    if key in st.session_state:
        st.success(plain(st.session_state.pop(key)), icon=icon)


def explain_empty(message: str) -> None:
    """A friendly note where a chart or table would be empty."""
    st.info(message, icon=":material/info:")


def download_csv(frame: pd.DataFrame, file_name: str, label: str = "Download CSV") -> None:
    st.download_button(label, data=csv_for_spreadsheets(frame), file_name=file_name,
                       mime="text/csv", icon=":material/download:", key=f"download-{file_name}")


def filter_scope_caption(filters: Filters) -> str:
    units = ", ".join(plain(unit) for unit in filters.units) or "all business units"
    tiers = ", ".join(f"tier {t}" for t in filters.tiers) or "all tiers"
    return f"{units} · {tiers} · {filters.since:%d %b %Y} – {filters.until:%d %b %Y} · as of {filters.as_of:%d %b %Y}"


def plot(figure, key: str | None = None, **kwargs):
    return st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key=key, **kwargs)


# -- overview widgets --------------------------------------------------------------------------

_TILE_DETAIL = {
    "coverage_pct": lambda c: f"{c['coverage']['covered']:,} of {c['coverage']['in_scope']:,} critical services "
                              "meet every control",
    "attainment_pct": lambda c: f"{c['rto_attainment']['attained']:,} of {c['rto_attainment']['events']:,} "
                                f"recoveries within RTO; {c['rto_attainment']['without_rto']:,} without an RTO",
    "downtime_cost": lambda c: f"{c['downtime_cost']['unpriced_hours']:,.0f} outage hours unpriced",
    "stale_pct": lambda c: f"{c['staleness']['overdue'] + c['staleness']['never_tested']:,} of "
                           f"{c['staleness']['plans']:,} plans overdue or never tested",
}
_BADGE_COLOURS = {"on target": "green", "at risk": "orange", "breached": "red"}


def posture_tiles(headlines: dict, targets: dict, currency: str, current: dict) -> None:
    """The four headline measures: value, change against the previous period, state against target."""
    for column, (key, headline) in zip(st.columns(len(headlines)), headlines.items(), strict=True):
        with column:
            value, change = headline["value"], headline["change"]
            if key == "downtime_cost":
                shown, delta = money(value, currency), None if change is None else money(change, currency)
            else:
                shown, delta = pct(value), None if change is None else f"{change:+.1f} pts"
            st.metric(headline["label"], shown, delta=delta, border=True,
                      delta_color="normal" if headline["higher_is_better"] else "inverse",
                      delta_description="vs previous period", help=_TILE_DETAIL[key](current))
            if key in targets:
                state = charts.target_state(value, targets[key], headline["higher_is_better"])
                bound = "≥" if headline["higher_is_better"] else "≤"
                label = f"{(state or 'no data').capitalize()} · target {bound} {targets[key]:.0f} %"
                st.badge(label, color=_BADGE_COLOURS.get(state, "gray"))
            else:
                st.badge(f"Previous period {money(headline['previous'], currency)}", color="gray")


def _narrow_to_selected_unit(table_key: str, units: list[str]) -> None:
    rows = st.session_state[table_key].selection.rows
    if rows:
        st.session_state["unit"] = [units[rows[0]]]


def _rows_height(rows: int) -> int:
    """Tall enough to show every row without scrolling inside the table."""
    return 35 * (rows + 1) + 3


def unit_table(units: pd.DataFrame, currency: str) -> None:
    """Business units ranked by gaps; selecting a row narrows the filters to that unit."""
    key = "unit-ranking"
    shown = units[["unit", "gaps", "coverage_pct", "uncovered", "attainment_pct", "breaches", "downtime_cost",
                   "stale_pct", "stale_plans", "services_without_plan"]]
    st.dataframe(
        shown, hide_index=True, key=key, height=_rows_height(len(shown)),
        on_select=lambda: _narrow_to_selected_unit(key, list(shown["unit"])),
        selection_mode="single-row",
        column_config={
            "unit": st.column_config.TextColumn("Business unit"),
            "gaps": st.column_config.NumberColumn("Gaps", help="Uncovered critical services + stale plans "
                                                               "+ services without a plan"),
            "coverage_pct": st.column_config.ProgressColumn("Coverage", format="%.1f %%", min_value=0, max_value=100),
            "uncovered": st.column_config.NumberColumn("Uncovered critical"),
            "attainment_pct": st.column_config.ProgressColumn("RTO attainment", format="%.1f %%", min_value=0,
                                                              max_value=100),
            "breaches": st.column_config.NumberColumn("RTO breaches", format="localized"),
            "downtime_cost": st.column_config.NumberColumn(f"Downtime cost ({currency})", format="localized"),
            "stale_pct": st.column_config.ProgressColumn("Stale plans", format="%.1f %%", min_value=0,
                                                         max_value=100),
            "stale_plans": st.column_config.NumberColumn("Stale plans (n)"),
            "services_without_plan": st.column_config.NumberColumn("No plan"),
        },
    )


def gap_table(matrix: pd.DataFrame, controls: dict[str, str]) -> None:
    """The service-by-control matrix as a table of ticks."""
    config = {
        "service": st.column_config.TextColumn("Service"),
        "unit": st.column_config.TextColumn("Business unit"),
        "tier": st.column_config.NumberColumn("Tier"),
        "owner": st.column_config.TextColumn("Owner"),
        "gaps": st.column_config.NumberColumn("Gaps"),
        "covered": st.column_config.CheckboxColumn("Covered"),
        "rto_minutes": st.column_config.NumberColumn("RTO (min)", format="localized"),
        "proving_rta_minutes": st.column_config.NumberColumn("Last proven RTA (min)", format="localized"),
        "last_review": st.column_config.DateColumn("Last review"),
        "last_qualifying_drill": st.column_config.DateColumn("Last qualifying drill"),
    }
    config.update({control: st.column_config.CheckboxColumn(label) for control, label in controls.items()})
    order = ["service", "unit", "tier", "owner", "gaps", *controls, "rto_minutes", "proving_rta_minutes",
             "last_review", "last_qualifying_drill"]
    st.dataframe(matrix, hide_index=True, column_order=order, column_config=config)


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


def service_card(card: dict[str, pd.DataFrame], currency: str) -> None:
    """One service: objectives, plans, drills, incidents, dependencies and suppliers."""
    service = card["service"].iloc[0]
    st.subheader(plain(service["name"]))
    st.caption(f"{plain(service['unit'] or 'No business unit')} · tier {service['tier']} · "
               f"owner {plain(service['owner'])} · {service['lifecycle']} · "
               f"strategy {plain(service['recovery_strategy'] or 'not set')}")
    tiles = st.columns(5)
    tiles[0].metric("RTO", _minutes(service["rto_minutes"]), border=True)
    # Missing (NA, not None) where no dependency is slower than the service itself.
    bottleneck = None if pd.isna(service["bottleneck"]) else service["bottleneck"]
    tiles[1].metric("Effective RTO", _minutes(service["effective_rto_minutes"]), border=True,
                    help=f"Longest along the dependency chain (set by {plain(bottleneck)})"
                    if bottleneck else "No dependencies")
    tiles[2].metric("RPO", _minutes(service["rpo_minutes"]), border=True)
    tiles[3].metric("MTPD", _minutes(service["mtpd_minutes"]), border=True)
    tiles[4].metric("Cost per hour", money(service["impact_cost_per_hour"], currency), border=True)
    if not card["aliases"].empty:
        st.caption("Also known in incident logs as: " + ", ".join(map(plain, card["aliases"]["alias"])))
    plans, drills, incidents, dependencies, suppliers = st.tabs(
        ["Plans", "Drills", "Incidents", "Dependencies", "Suppliers"])
    with plans:
        _table_or_note(card["plans"], "No plan.", column_config={
            "plan_id": "Plan", "title": "Title", "owner": "Owner", "status": "Status",
            "approved_on": st.column_config.DateColumn("Approved on", format="YYYY-MM-DD"),
            "last_review": st.column_config.DateColumn("Last review", format="YYYY-MM-DD"), "reviews": "Reviews"})
    with drills:
        _table_or_note(card["drills"], "No drill.", column_config={
            "held_on": st.column_config.DateColumn("Held on", format="YYYY-MM-DD"), "drill_type": "Type",
            "outcome": "Outcome", "rta_minutes": st.column_config.NumberColumn("RTA (min)", format="localized"),
            "data_loss_minutes": st.column_config.NumberColumn("Data loss (min)", format="localized"),
            "open_findings": "Open findings", "plan_id": "Plan"})
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
            **service_columns, "longer_rto_than_this": st.column_config.CheckboxColumn("Slower than this service")})
        st.markdown("**Depended on by**")
        _table_or_note(card["dependants"], "Nothing depends on this service.", column_config=service_columns)
    with suppliers:
        _table_or_note(card["suppliers"], "No supplier recorded.", column_config={
            "supplier": "Supplier", "contracted_recovery_minutes": st.column_config.NumberColumn(
                "Contracted recovery (min)", format="localized")})


# -- people and roles ------------------------------------------------------------------------


def sign_in_configured() -> bool:
    """Whether `[auth]` is set in .streamlit/secrets.toml (OIDC sign-in through st.login)."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def configured_admins() -> tuple[str, ...]:
    """Emails that are admins whatever the grants say (`[access] admins = [...]` in secrets):
    without them, a freshly configured app would have nobody able to grant the first role."""
    section = st.secrets.get("access", {}) if st.secrets.load_if_toml_exists() else {}
    admins = section.get("admins", ()) if hasattr(section, "get") else ()
    return tuple(str(email) for email in ([admins] if isinstance(admins, str) else admins))


def current_user(store: Store | None = None) -> Actor:
    """The person using the app, with their role, and who they are in the sidebar.

    Without sign-in configured the app runs in single-user local mode, and says so. With it, a
    visitor who is not signed in gets a sign-in button and nothing else; a signed-in person's
    role comes from the grants in the store (itscm.access.role_for)."""
    if not sign_in_configured():
        st.sidebar.caption(":material/person: Single-user local mode: no sign-in is configured, so you have "
                           "every role (viewer, analyst, admin).")
        return LOCAL_USER
    if not st.user.get("is_logged_in", False):
        st.info("Sign in to see the continuity posture.", icon=":material/login:")
        if st.button("Sign in", type="primary", key="sign-in"):
            try:
                st.login()
            except StreamlitAuthError as error:
                # A deployment mistake (Authlib missing, [auth] incomplete): say so in one line.
                st.error(f"Sign-in is configured but cannot start: {str(error).splitlines()[0]}")
        st.stop()
    email = str(st.user.get("email") or "").strip()
    if not email:
        st.error("Your sign-in did not give an email address, which roles are granted to; ask the identity "
                 "provider's administrator to release the email claim.")
        st.stop()
    user = actor_for(store or get_store(), email, admins=configured_admins())
    st.sidebar.caption(f":material/person: Signed in as {plain(email)} ({user.role}).")
    if st.sidebar.button("Sign out", key="sign-out"):
        st.logout()
    return user


def require_role(user: Actor, role: str, action: str) -> bool:
    """Whether to show a control; the action itself checks again (itscm.access)."""
    if user.can(role):
        return True
    st.caption(f":material/lock: To {action} you need the {role} role; you are a {user.role}.")
    return False


# -- upload ----------------------------------------------------------------------------------

TIME_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Amsterdam", "Europe/Madrid",
              "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
              "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]


def read_upload_preview(store: Store, data: bytes, file_name: str, options: dict):
    """The preview of this file with these options, read once and kept for the session's reruns."""
    key = (hashlib.sha256(data).hexdigest(), file_name, repr(sorted(options.items())), store.data_version())
    kept = st.session_state.get("upload-preview")
    if kept is None or kept[0] != key:
        with st.spinner("Reading the file…"):
            kept = (key, ingest.read_upload(data, file_name, store=store, **options))
        st.session_state["upload-preview"] = kept
    return kept[1]


def upload_preview_summary(preview) -> None:
    """What was understood: format, encoding, dates, counts, the first problems and a sample."""
    tiles = st.columns(4)
    tiles[0].metric("Rows read", f"{preview.rows_read:,}", border=True)
    tiles[1].metric("Incidents accepted", f"{preview.incidents:,}", border=True,
                    help=f"{preview.superseded_rows:,} earlier rows of the same incident were superseded by a "
                         "later one" if preview.superseded_rows else None)
    tiles[2].metric("Rows rejected", f"{preview.rejected:,}", border=True)
    tiles[3].metric("Warnings", f"{preview.warnings:,}", border=True)
    confidence = dict(preview.detected_formats).get(preview.format)
    detected = f" (detected, {confidence:.0%} of its columns found)" if confidence else ""
    st.markdown(
        f"**Format** {plain(preview.format_label)}{detected} · **encoding** {plain(preview.encoding)} · "
        f"**delimiter** {plain(repr(preview.delimiter))} · **dates** {preview.date_order}"
        + (f" ({plain(preview.date_order_basis)})" if preview.date_order_basis else "")
        + f" · **time zone** {plain(preview.timezone)}")
    for note in preview.notes:
        st.caption(plain(note))
    mapping = pd.DataFrame([(field, ", ".join(columns)) for field, columns in preview.mapping.items()],
                           columns=["field", "columns read"])
    with st.expander("Column mapping used"):
        st.dataframe(mapping, hide_index=True)
    if not preview.problems.empty:
        shown = "" if len(preview.problems) <= 50 else "first 50 of "
        st.markdown(f"**Problems** ({shown}{len(preview.problems):,}): each with its row number in the file "
                    "(the header is row 1), the column and the reason.")
        st.dataframe(preview.problems.head(50), hide_index=True)
        st.download_button("Download the full problem report", data=ingest.problems_csv(preview),
                           file_name=f"{preview.file_name}.problems.csv", mime="text/csv",
                           icon=":material/download:", key="download-problems")
    if preview.incidents:
        st.markdown("**Accepted incidents** (first 20, times in UTC)")
        st.dataframe(preview.accepted.slice(0, 20).to_pandas(), hide_index=True)
    unmatched = preview.unmatched_services()
    if not unmatched.empty:
        st.caption(f"{len(unmatched):,} service names in this file match no service; their incidents are kept as "
                   "unmatched and can be mapped after the commit.")


def service_choices(store: Store) -> dict[str, str]:
    return dict(store.rows("SELECT service_id, name FROM services WHERE lifecycle = 'live' ORDER BY name"))
