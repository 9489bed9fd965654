"""The four measures of DESIGN section 3, each in its own module, plus the posture summary.

Every function takes (store, filters) and returns a DataFrame or a dict computed in DuckDB.
"""
