"""The four measures of docs/DESIGN.md §4.1-§4.4, each in its own module, plus the posture (§4.5).

Every function takes (store, filters) and returns a DataFrame or a dict computed in DuckDB.
"""
