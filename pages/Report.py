"""Report: the board pack for the sidebar's filters, as PDF or one self-contained HTML file, and
the owner packs (each owner's gaps and due actions) as a zip. Any viewer may make them."""

import streamlit as st

from itscm import ui
from itscm.inventory import service_count
from itscm.report import MISSING_CHROMIUM, PdfUnavailable, make_report, pdf_available, report_file_name
from itscm.report.owner_packs import owner_packs_zip

page = ui.setup_page("Report", ":material/picture_as_pdf:")
st.title("Board pack")
st.caption(ui.filter_scope_caption(page.filters))

if not ui.cached_read(service_count, page.store):
    ui.explain_no_match(page.store, "")
    st.stop()

# What was made is kept for the download button, for this filter and this state of the store only.
made_for = (page.filters, ui.run_data_version(page.store))

st.subheader("The continuity report")
st.markdown("A title page, the executive summary against targets, the posture trend, business units ranked by "
            "gaps, the costliest outages and worst RTO breaches, uncovered critical services, plans needing "
            "action by owner, the annual cost of major ICT incidents, single points of failure, supplier "
            "concentration, unverified assets, plans changed since their review, and every measure's definition.")
report_format = st.radio("Format", ["pdf", "html"], horizontal=True, key="report-format",
                         format_func={"pdf": "PDF (A4, for printing)",
                                      "html": "HTML (one file, interactive charts, opens offline)"}.get)
if report_format == "pdf" and not pdf_available():
    st.warning(MISSING_CHROMIUM, icon=":material/warning:")
elif st.button("Make the report", type="primary", key="make-report", icon=":material/description:"):
    with st.spinner("Making the report…"):
        try:
            st.session_state["report"] = (made_for, report_format,
                                          make_report(page.store, page.filters, report_format, made_by=page.user.name))
        except PdfUnavailable as error:
            st.error(str(error), icon=":material/error:")
made = st.session_state.get("report")
if made and made[0] == made_for and made[1] == report_format:
    st.download_button(f"Download the report ({report_format.upper()})", data=made[2],
                       file_name=report_file_name(page.filters, report_format),
                       mime="application/pdf" if report_format == "pdf" else "text/html",
                       icon=":material/download:", key="download-report")

st.subheader("Owner packs")
st.markdown("Per owner, their uncovered critical services, plans needing action and open drill findings, "
            "one file each, in a zip.")
pack_format = st.radio("Files as", ["csv", "xlsx"], horizontal=True, key="pack-format", format_func=str.upper)
if st.button("Make the owner packs", key="make-packs", icon=":material/folder_zip:"):
    with st.spinner("Making the owner packs…"):
        st.session_state["owner-packs"] = (made_for, pack_format,
                                           owner_packs_zip(page.store, page.filters, pack_format))
packs = st.session_state.get("owner-packs")
if packs and packs[0] == made_for and packs[1] == pack_format:
    st.download_button("Download the owner packs (zip)", data=packs[2],
                       file_name=f"owner-packs-{page.filters.as_of:%Y-%m-%d}.zip", mime="application/zip",
                       icon=":material/download:", key="download-packs")
