"""The store handle and cached reads: one handle per store path for the process, and results
cached per arguments and store version, so a commit or an undo shows at once."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import streamlit as st

from itscm.filters import Filters
from itscm.store import Store, open_store, resolve_store_path


@st.cache_resource(show_spinner=False)
def _store_handle(path: str) -> Store:
    return open_store(path)


def get_store() -> Store:
    return _store_handle(resolve_store_path())


# Keyed by what people type and pick: bounded in entries and in bytes (an entry is 50 KB on the
# demo store, a few MB for a large gap table, so 1024 entries alone could hold gigabytes).
@st.cache_data(show_spinner=False, max_entries=1024, max_size="100MB")
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


@st.cache_data(show_spinner=False, max_entries=16)  # a new entry after every write
def _unit_names(store_path: str, data_version: int) -> list[str]:
    return [name for (name,) in _store_handle(store_path).rows("SELECT name FROM business_units ORDER BY name")]


def unit_names(store: Store) -> list[str]:
    """Every business unit's name, by name: the choices of the unit filter."""
    return _unit_names(store.path, store.data_version())
