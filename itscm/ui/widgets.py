"""What every page draws with: figures written for people (plain text, money, percentages),
messages, downloads, charts, and the Overview's tiles and unit table and the coverage gap table."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from itscm.export import csv_for_spreadsheets
from itscm.filters import Filters
from itscm.measures.registry import MONEY, PERCENT, HeadlineMeasure, UnitColumn, headline_measures
from itscm.store import Store
from itscm.targets import target_state
from itscm.ui.cache import TableHead, built_figure, cached_head, cached_measure

# -- figures and text ----------------------------------------------------------------------------

_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~$:")


def plain(text: object) -> str:
    """User data (names, titles) made safe to embed in markdown: shown as typed, never as
    formatting, links, HTML or LaTeX."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))


CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "JPY": "¥"}


def money(value: float | None, currency: str, *, narrow: bool = False) -> str:
    """A short figure: €48.6 B, €258.8 M, €42 k, €950. `narrow` (the Overview's five tiles, where
    "€258.8 M" was cut to "€258.…" at 1280 px): three significant figures, €259 M, €48.6 M."""
    if value is None or pd.isna(value):
        return "n/a"
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    sign = "-" if value < 0 else ""
    value = abs(value)
    for scale, suffix in ((1_000_000_000, "B"), (1_000_000, "M")):
        if value >= scale:
            digits = 0 if narrow and value / scale >= 99.95 else 1
            return f"{sign}{symbol}{value / scale:,.{digits}f} {suffix}"
    if value >= 10_000:
        return f"{sign}{symbol}{value / 1_000:,.0f} k"
    return f"{sign}{symbol}{value:,.0f}"


def pct(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.1f} %"


# -- messages, downloads, charts -----------------------------------------------------------------


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


def download_csv(table: pd.DataFrame | Callable[[], pd.DataFrame], file_name: str,
                 label: str = "Download CSV") -> None:
    """A button that downloads `table` (the frame, or what reads it) as CSV, made when the button
    is pressed, not on every run: a table of 70,000 changes or 10,000 services makes its CSV in
    about half a second, more than the rest of its page (docs/PERFORMANCE.md)."""
    def csv() -> str:
        return csv_for_spreadsheets(table() if callable(table) else table)

    st.download_button(label, data=csv, file_name=file_name, mime="text/csv", icon=":material/download:",
                       key=f"download-{file_name}")


# A large table shows its first rows, in its ranking; the CSV has every row.
TABLE_ROWS = 1_000


def table_head(head: TableHead, table: Callable[[], pd.DataFrame], file_name: str, order: str,
               column_config: dict, label: str = "Download CSV", **dataframe_options) -> None:
    """A large table's first rows, how many more there are, and the CSV of all of them (`table`
    reads the whole table, when the button is pressed)."""
    st.dataframe(head.rows, hide_index=True, column_config=column_config, **dataframe_options)
    if head.not_shown:
        st.caption(f"The first {len(head.rows):,} of {head.total:,} rows, {order}; the CSV has the other "
                   f"{head.not_shown:,}.")
    download_csv(table, file_name, label)


def measure_head(store: Store, filters: Filters, function: Callable, file_name: str, order: str,
                 column_config: dict, dataframe_options: dict | None = None, **kwargs) -> TableHead:
    """`table_head` of the measure `function(store, filters, **kwargs)`, cached; its head returned."""
    head = cached_head(function, store, filters, limit=TABLE_ROWS, **kwargs)
    table_head(head, lambda: cached_measure(function, store, filters, **kwargs), file_name, order, column_config,
               **(dataframe_options or {}))
    return head


def plot(figure, key: str | None = None, **kwargs):
    return st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key=key, **kwargs)


def chart(builder: Callable, *args, key: str | None = None, **kwargs):
    """`plot` of `builder(*args)`, the figure built once per distinct input (`built_figure`)."""
    return plot(built_figure(builder, *args), key=key, **kwargs)


def rows_height(rows: int) -> int:
    """Tall enough to show every row without scrolling inside the table."""
    return 35 * (rows + 1) + 3


# -- overview ------------------------------------------------------------------------------------

_BADGE_COLOURS = {"on target": "green", "at risk": "orange", "breached": "red"}


def headline_figure(value: float | None, measure: HeadlineMeasure, currency: str) -> str:
    return money(value, currency, narrow=True) if measure.format == MONEY else pct(value)


def _change(change: float | None, measure: HeadlineMeasure, currency: str) -> str | None:
    if change is None:
        return None
    return money(change, currency, narrow=True) if measure.format == MONEY else f"{change:+.1f} pts"


_TILE_HEIGHT_PX = 138   # a bordered tile with a label, a figure and a change


def posture_tiles(headlines: dict, targets: dict, currency: str, current: dict) -> None:
    """A tile per headline measure: value, change against the previous period, state against
    target (or, without one, the previous period's figure)."""
    measures = headline_measures()
    for column, measure in zip(st.columns(len(measures)), measures, strict=True):
        with column:
            headline = headlines[measure.key]
            value = headline["value"]
            # A missing figure's reason ("no assets yet") goes on the badge: in the tile's large
            # type it would be cut to "no asse…" in a column of five.
            missing = measure.missing_figure(current[measure.name]) if value is None else None
            figure = "—" if value is None else headline_figure(value, measure, currency)
            change = _change(headline["change"], measure, currency)
            # The period the changes compare with is named once, under the tiles
            # (`previous_period_caption`): "vs previous period" in each was cut to "vs previou…".
            label = measure.tile_label or measure.label
            described = measure.tile_help(current[measure.name])
            # One height for every tile, so that the target badges under them line up when a
            # tile has no change to show (inventory currency's earlier figure is often unknown).
            st.metric(label, figure, delta=change, border=True, height=_TILE_HEIGHT_PX,
                      delta_color="normal" if measure.higher_is_better else "inverse",
                      help=described if label == measure.label else f"{measure.label}: {described}")
            if measure.key in targets:
                target = targets[measure.key]
                state = target_state(value, target, measure.higher_is_better)
                bound = "≥" if measure.higher_is_better else "≤"
                reason = state or (missing if missing not in (None, "n/a") else "no data")
                st.badge(f"{reason.capitalize()} · target {bound} {target:.0f} %",
                         color=_BADGE_COLOURS.get(state, "gray"))
            else:
                st.badge(f"Previous period {headline_figure(headline['previous'], measure, currency)}", color="gray")


def previous_period_caption(filters) -> str:
    """What the tiles' changes compare with, in one line."""
    earlier = filters.previous()
    return f"Changes are against the previous period, {earlier.since:%d %b %Y} – {earlier.until:%d %b %Y}."


def _narrow_to_selected_unit(table_key: str, units: list[str]) -> None:
    rows = st.session_state[table_key].selection.rows
    if rows:
        st.session_state["unit"] = [units[rows[0]]]


def _unit_column_config(column: UnitColumn, currency: str):
    if column.kind == PERCENT:
        return st.column_config.ProgressColumn(column.label, format="%.1f %%", min_value=0, max_value=100)
    if column.kind == MONEY:
        return st.column_config.NumberColumn(f"{column.label} ({currency})", format="localized")
    return st.column_config.NumberColumn(column.label, format="localized")


def unit_table(units: pd.DataFrame, currency: str) -> None:
    """Business units ranked by gaps, with each headline measure's columns; selecting a row
    narrows the filters to that unit."""
    key = "unit-ranking"
    columns = [column for measure in headline_measures() for column in measure.unit_columns if column.name in units]
    shown = units[["unit", "gaps", *(column.name for column in columns)]]
    st.dataframe(
        shown, hide_index=True, key=key, height=rows_height(len(shown)),
        on_select=lambda: _narrow_to_selected_unit(key, list(shown["unit"])),
        selection_mode="single-row",
        column_config={
            "unit": st.column_config.TextColumn("Business unit"),
            "gaps": st.column_config.NumberColumn("Gaps", help="Uncovered critical services + stale plans "
                                                               "+ services without a plan"),
            **{column.name: _unit_column_config(column, currency) for column in columns},
        },
    )


# -- coverage ------------------------------------------------------------------------------------


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


def confirmed_undo(labels: dict[str, str], undo: Callable[[str], object], refusals: tuple[type[Exception], ...], *,
                   choose: str, confirm: str, button: str, keys: tuple[str, str, str], result_key: str,
                   error_icon: str | None = None) -> None:
    """Pick one of `labels` (id -> label), tick the confirmation, press the button: `undo(id)`;
    a refusal is shown in one line, a success by the message of what `undo` returned, once, after
    a rerun. `keys` are the choice's, the confirmation's and the button's widget keys."""
    target = st.selectbox(choose, list(labels), format_func=labels.get, key=keys[0])
    confirmed = st.checkbox(confirm, key=keys[1])
    if st.button(button, disabled=not confirmed, key=keys[2]):
        try:
            outcome = undo(target)
        except refusals as error:
            st.error(plain(str(error)), icon=error_icon)
        else:
            rerun_with_message(result_key, outcome.message)
