"""Search-then-pick: a choice among tens of thousands of names without sending them all.

A selectbox or multiselect sends every option to the browser on every run, and Streamlit reads
them all on the server first: 30,000 services and assets cost more than the rest of the
Resilience page. Past `SEARCH_FROM` options, a text box narrows them to the names containing what
was typed, of which the first `OFFERED` are offered, with what is already chosen. A choice read
from the URL is offered too, so a link naming any of them still opens on it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from itscm.store import Store

SEARCH_FROM = 1_000   # up to this many options, all of them are offered, as a plain widget
OFFERED = 100         # past it, at most this many matches of the search at once


def named_choices(store: Store, kind: str) -> dict[str, str]:
    """label -> "kind:key" of every unit, live service, asset (retired ones too: a service may still
    run on one) or supplier, by name: names, with the id added where a name repeats."""
    if kind == "unit":
        rows = store.rows("SELECT unit_id, name FROM business_units ORDER BY name, unit_id")
    elif kind == "service":
        rows = store.rows("SELECT service_id, name FROM services WHERE lifecycle = 'live' ORDER BY name, service_id")
    elif kind == "asset":   # retired ones too: a service may still run on one
        rows = store.rows("SELECT DISTINCT asset_id, name FROM assets ORDER BY name, asset_id")
    else:
        rows = store.rows("SELECT supplier_id, name FROM suppliers ORDER BY name, supplier_id")
    counts = pd.Series([name for _key, name in rows]).value_counts() if rows else pd.Series(dtype=int)
    return {(name if counts[name] == 1 else f"{name} ({key})"): f"{kind}:{key}" for key, name in rows}


def matching(names: Mapping[str, object], typed: str, limit: int = OFFERED) -> tuple[list[str], int]:
    """The first `limit` names containing `typed` (ignoring case and surrounding spaces), in their
    order, and how many contain it."""
    wanted = typed.strip().lower()
    if not wanted:
        return list(_first(names, limit)), len(names)
    found = [name for name in names if wanted in name.lower()]
    return found[:limit], len(found)


def _first(names: Mapping[str, object], limit: int):
    for position, name in enumerate(names):
        if position == limit:
            return
        yield name


def _search(container, names: Mapping[str, object], key: str, noun: str) -> tuple[str, list[str]]:
    """The search box, what was typed and the matches it offers, with a line saying how many
    there are."""
    typed = container.text_input(f"Find {noun}", key=f"{key}-find", placeholder="part of a name, any case",
                                 help=f"{len(names):,} {noun} in all: type part of a name to offer those "
                                      f"containing it ({OFFERED} at a time).")
    offered, found = matching(names, typed, OFFERED)
    if found > len(offered):
        container.caption(f"{len(offered):,} of {found:,} offered: type more of the name.")
    elif typed.strip():
        container.caption(f"{found:,} match." if found else "None match.")
    return typed.strip().lower(), offered


def _chosen(key: str, names: Mapping[str, object], bound: bool) -> list[str]:
    """What the widget holds before it is drawn: its state, or on a session's first run, the URL's
    values (a bound widget reads them when drawn, and must find them among its options)."""
    if key in st.session_state:
        value = st.session_state[key]
        held = value if isinstance(value, list) else [value]
    else:
        held = st.query_params.get_all(key) if bound else []
    return [name for name in held if name in names]


def search_multiselect(container, label: str, names: Mapping[str, object], *, key: str, noun: str,
                       placeholder: str) -> list[str]:
    """st.multiselect over `names` (kept in the URL under `key`), searched first when they are
    many."""
    if len(names) <= SEARCH_FROM:
        options = list(names)
    else:
        _typed, offered = _search(container, names, key, noun)
        options = list(dict.fromkeys(_chosen(key, names, bound=True) + offered))
    return container.multiselect(label, options, key=key, bind="query-params", placeholder=placeholder)


def search_selectbox(container, label: str, names: Mapping[str, object], *, key: str, noun: str) -> str | None:
    """st.selectbox over `names`, searched first when they are many: the chosen name while it
    matches the search, else the first match; None when the search matches nothing."""
    if len(names) <= SEARCH_FROM:
        return container.selectbox(label, list(names), key=key)
    typed, offered = _search(container, names, key, noun)
    kept = [name for name in _chosen(key, names, bound=False) if typed in name.lower()]
    return container.selectbox(label, list(dict.fromkeys(kept + offered)), key=key)
