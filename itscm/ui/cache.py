"""The store handle and cached reads: one handle per store path for the process, and results
cached per arguments and store version, so a commit or an undo shows at once."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from itscm.filters import Filters
from itscm.store import Store, open_store, resolve_store_path


@st.cache_resource(show_spinner=False)
def _store_handle(path: str) -> Store:
    return open_store(path)


def get_store() -> Store:
    return _store_handle(resolve_store_path())


# The data version of the script run on this thread: read once when the page sets up
# (`hold_run_data_version`), and the key of every cached read of the run. On a lake each read of
# the version is a query of the catalog (3-4 ms of CPU), and a warm page makes three to nine
# cached reads; one version also keys every result of a run on one state of the store. A write
# this process commits meanwhile (the run's own form, another session's) ends the hold, so a run
# shows its own writes at once; another process's commit shows from the next run. Only the keys
# of cached results use it: a domain function that must see the latest commit (an import checking
# whether the store moved since it planned) reads `Store.data_version` itself.
_run = threading.local()


def hold_run_data_version(store: Store) -> None:
    """At the start of a script run, before its first cached read (itscm/ui/context.py)."""
    _run.store, _run.commits, _run.version = store, store.commits_here, store.data_version()


def run_data_version(store: Store) -> int:
    """The store's data version as this script run holds it, else as the store answers now."""
    if getattr(_run, "store", None) is store and _run.commits == store.commits_here:
        return _run.version
    return store.data_version()


# Keyed by what people type and pick: bounded in entries and in bytes (an entry is 50 KB on the
# demo store, a few MB for a large gap table, so 1024 entries alone could hold gigabytes).
@st.cache_data(show_spinner=False, max_entries=1024, max_size="100MB")
def _cached_call(qualified_name: str, store_path: str, data_version: int, args: tuple, kwargs: tuple) -> object:
    return _named(qualified_name)(_store_handle(store_path), *args, **dict(kwargs))


def _named(qualified_name: str) -> Callable:
    module_name, function_name = qualified_name.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


def _qualified_name(function: Callable) -> str:
    return f"{function.__module__}.{function.__name__}"


def cached_read(function: Callable, store: Store, *args, **kwargs):
    """`function(store, *args, **kwargs)`, cached and keyed on the store's data version, so a
    commit or an undo shows at once."""
    return _cached_call(_qualified_name(function), store.path, run_data_version(store), args,
                        tuple(sorted(kwargs.items())))


# One object shared by every session, per data version: no copy is made on a read, so the
# result must only ever be read. A handful of entries: each data version makes new ones.
@st.cache_resource(show_spinner=False, max_entries=8)
def _shared_call(qualified_name: str, store_path: str, data_version: int, args: tuple) -> object:
    return _named(qualified_name)(_store_handle(store_path), *args)


def shared_read(function: Callable, store: Store, *args):
    """`function(store, *args)` cached per data version like `cached_read`, but the same object for
    every run and session instead of a copy unpickled on each read: for a large result that is only
    read, such as 30,000 names to choose from (unpickled on each run, they cost a tenth of the
    Resilience page's own time). Never change what it returns."""
    return _shared_call(_qualified_name(function), store.path, run_data_version(store), args)


# A chart plots a few hundred aggregated rows at most, yet plotly takes 30-70 ms of CPU to build one
# (a faceted bar chart, a heatmap): the four charts of the Coverage page cost more than the rest of
# its warm run. A figure is built once per distinct input and shared by every run and session, as
# `shared_read` shares a result: Streamlit only reads a figure it draws.
@st.cache_resource(show_spinner=False, max_entries=256)
def _built_figure(qualified_name: str, args: tuple) -> object:
    return _named(qualified_name)(*args)


def built_figure(builder: Callable, *args):
    """`builder(*args)` (a chart builder of itscm/charts.py, fed cached measures), built once per
    distinct `args` (hashed by value) and shared. Never change the figure it returns."""
    return _built_figure(_qualified_name(builder), args)


def cached_measure(function: Callable, store: Store, filters: Filters, **kwargs):
    return cached_read(function, store, filters, **kwargs)


@dataclass(frozen=True)
class TableHead:
    """The first rows of a large table and how many rows it has: what a page shows of it."""
    rows: pd.DataFrame
    total: int

    @property
    def not_shown(self) -> int:
        return self.total - len(self.rows)


def head_of(frame: pd.DataFrame, limit: int) -> TableHead:
    return TableHead(frame.head(limit), len(frame))


def _cached_head(store: Store, qualified_name: str, limit: int, args: tuple, kwargs: tuple) -> TableHead:
    return head_of(_cached_call(qualified_name, store.path, run_data_version(store), args, kwargs), limit)


def cached_head(function: Callable, store: Store, *args, limit: int, **kwargs) -> TableHead:
    """The first `limit` rows of the frame `cached_read(function, store, *args, **kwargs)` and its
    length, cached apart from the frame. A cached result is unpickled on every read: a page that
    shows a table's first rows reads these, not a whole table of 10,000 rows and more."""
    return cached_read(_cached_head, store, _qualified_name(function), limit, args, tuple(sorted(kwargs.items())))


@st.cache_data(show_spinner=False, max_entries=16)  # a new entry after every write
def _unit_names(store_path: str, data_version: int) -> list[str]:
    return [name for (name,) in _store_handle(store_path).rows("SELECT name FROM business_units ORDER BY name")]


def unit_names(store: Store) -> list[str]:
    """Every business unit's name, by name: the choices of the unit filter."""
    return _unit_names(store.path, run_data_version(store))
