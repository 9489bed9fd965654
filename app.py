"""The continuity posture dashboard: `streamlit run app.py`.

Navigation only. Each page does its own setup (itscm.ui.setup_page), because Streamlit may
serve a page file on its own, without this script (DESIGN section 4).
"""

import streamlit as st

PAGES = {
    "Posture": [
        st.Page("pages/Overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/Coverage.py", title="Coverage", icon=":material/verified_user:"),
        st.Page("pages/RTO_attainment.py", title="RTO attainment", icon=":material/timer:"),
        st.Page("pages/Downtime_cost.py", title="Downtime cost", icon=":material/payments:"),
        st.Page("pages/Plan_staleness.py", title="Plan staleness", icon=":material/event_busy:"),
    ],
    "Inventory and data": [
        st.Page("pages/Services.py", title="Services", icon=":material/lan:"),
        st.Page("pages/Upload_incidents.py", title="Upload incidents", icon=":material/upload_file:"),
    ],
}

st.navigation(PAGES).run()
