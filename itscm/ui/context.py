"""Page setup: the page config, the menu, the store, the person and the filters, in one call
that every page makes first.

Streamlit serves each file of `pages/` on its own when it is the first request to a fresh server
(docs/DESIGN.md §1.3), so a page must not rely on app.py for its page config, its store handle or its
filters.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st
from streamlit.errors import StreamlitAPIException

from itscm.access import LOCAL_USER, Actor
from itscm.filters import Filters
from itscm.store import Store, StoreError
from itscm.ui.cache import cached_measure, get_store, hold_run_data_version
from itscm.ui.filters import sidebar_filters
from itscm.ui.signin import current_user

APP_TITLE = "Continuity posture"

# The app's pages, in menu order.
NAVIGATION = {
    "Posture": [
        ("pages/Overview.py", "Overview", ":material/dashboard:"),
        ("pages/Coverage.py", "Coverage", ":material/verified_user:"),
        ("pages/RTO_attainment.py", "RTO attainment", ":material/timer:"),
        ("pages/Downtime_cost.py", "Downtime cost", ":material/payments:"),
        ("pages/Plan_staleness.py", "Plan staleness", ":material/event_busy:"),
        ("pages/Resilience.py", "Resilience", ":material/hub:"),
        ("pages/Consistency_checks.py", "Consistency checks", ":material/rule:"),
        ("pages/Report.py", "Report", ":material/picture_as_pdf:"),
    ],
    "Inventory and data": [
        ("pages/Services.py", "Services", ":material/lan:"),
        ("pages/Assets.py", "Assets", ":material/dns:"),
        ("pages/Inventory.py", "Inventory", ":material/inventory_2:"),
        ("pages/Upload_incidents.py", "Upload incidents", ":material/upload_file:"),
        ("pages/Changes.py", "Changes", ":material/published_with_changes:"),
        ("pages/Administration.py", "Administration", ":material/admin_panel_settings:"),
    ],
}


@dataclass(frozen=True)
class PageContext:
    store: Store
    filters: Filters
    currency: str
    user: Actor = LOCAL_USER   # who is using the app, with their role (current_user)

    def measure(self, function: Callable, **kwargs):
        """`function(store, filters, **kwargs)`, cached per filter and store version."""
        return cached_measure(function, self.store, self.filters, **kwargs)


_shared = threading.local()


_startup_frozen = False


def _freeze_startup_objects() -> None:
    """Once per process: keep what the imports made out of every later garbage collection.

    Streamlit collects garbage in full after every script run (`runner.postScriptGC`), and a full
    collection walks every object alive: most of them made once by importing pandas, plotly,
    DuckDB and Streamlit itself, and never garbage. Frozen, they are skipped. Measured on the
    Services page over 200 reruns, the collection was about 70 ms of each rerun's 100 ms of server
    CPU; with the startup objects frozen a rerun took about 25 ms (tests/browser/test_soak.py).
    What is made later is collected as before."""
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.collect()   # nothing that is already garbage is frozen
        gc.freeze()


def setup_page(title: str, icon: str = ":material/monitoring:") -> PageContext:
    """Page config, the store and the sidebar filters: the first call of every page.

    Under app.py the filters are drawn once by the entrypoint (see `entrypoint_setup`), so they
    belong to the main script and keep their URL parameters across page switches; a page file
    that Streamlit serves on its own draws them itself."""
    _freeze_startup_objects()
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
    hold_run_data_version(store)
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
    _freeze_startup_objects()
    st.set_page_config(page_title=APP_TITLE, layout="wide")
    _shared.context = _build_context()
    try:
        yield _shared.context
    finally:
        _shared.context = None
