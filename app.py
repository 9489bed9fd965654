"""The continuity posture dashboard: `streamlit run app.py`.

Registers the pages and draws the shared sidebar filters once, here in the main script, so
their URL parameters survive page switches. Each page still calls itscm.ui.setup_page() first,
because Streamlit may serve a page file on its own, without this script (docs/DESIGN.md §1.3).
"""

import streamlit as st

from itscm import ui

pages = {
    section: [st.Page(path, title=title, icon=icon, default=path.endswith("Overview.py"))
              for path, title, icon in entries]
    for section, entries in ui.NAVIGATION.items()
}
navigation = st.navigation(pages)
with ui.entrypoint_setup():
    navigation.run()
