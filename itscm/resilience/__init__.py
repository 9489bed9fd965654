"""Resilience analysis (docs/DESIGN.md §14): the failure graph of services and suppliers, its
effective RTO, reach, scenarios, single points of failure and supplier concentration. Pure domain:
no streamlit here; the Resilience page draws what these functions return."""
