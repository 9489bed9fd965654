"""Consistency checks: inventory facts that contradict each other or the policy, as a worklist."""

import streamlit as st

from itscm import ui
from itscm.inventory import service_count
from itscm.measures.consistency import consistency_checks

page = ui.setup_page("Consistency checks", ":material/rule:")
st.title("Consistency checks")
st.caption(ui.filter_scope_caption(page.filters))

if not ui.cached_read(service_count, page.store):
    ui.explain_no_match(page.store, "")   # a store without services: how to bring the inventory in
    st.stop()

results = page.measure(consistency_checks)
failing = [result for result in results if result.count]
st.metric("Checks failing", f"{len(failing):,} of {len(results):,}", border=True,
          help="A check fails when at least one service in the filter breaks it.")
st.dataframe([{"Check": r.check.title, "Rows": r.count} for r in results], hide_index=True)
if not failing:
    st.success("Every check passes for these filters.", icon=":material/task_alt:")
for result in failing:
    with st.expander(f"{result.check.title} · {result.count:,}"):
        st.caption(result.check.explains)
        st.dataframe(result.rows, hide_index=True, column_config={"service_id": None})
        ui.download_csv(result.rows, f"check_{result.check.key}.csv")
