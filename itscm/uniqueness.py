"""The keys the store's writers keep unique, and the check `verify` makes of them.

The schema declares no PRIMARY KEY or UNIQUE: DuckLake has neither (docs/DESIGN.md §10.2, §19),
and both backends share one schema. So each writer keeps its table's key unique itself (an
import classifies its rows against the store, an edit replaces by key), and `python -m itscm
verify` checks every key here, on either backend. Tables that are histories (role grants, the
change log, mappings kept per answer, prior versions) have no key.
"""

from __future__ import annotations

# (table, the key as SQL over its columns): written here, never from user input.
UNIQUE_KEYS: tuple[tuple[str, str], ...] = (
    ("schema_version", "version"),
    ("store_meta", "key"),
    ("business_units", "unit_id"),
    ("services", "service_id"),
    ("services", "service_key"),
    ("service_aliases", "alias_key"),
    ("dependencies", "service_id, depends_on_id"),
    ("suppliers", "supplier_id"),
    ("service_suppliers", "service_id, supplier_id"),
    ("plans", "plan_id"),
    ("drills", "drill_id"),
    ("drill_findings", "drill_id, finding_id"),
    ("assets", "asset_id"),
    ("service_assets", "service_id, asset_id"),
    ("policy", "tier"),
    ("incidents", "incident_id"),
    ("uploads", "upload_id"),
    ("column_mappings", "lower(name)"),
    ("inventory_imports", "import_id"),
    ("saved_scenarios", "name"),
    ("changes", "source, number"),
    ("change_uploads", "upload_id"),
    ("incident_month_marks", "month"),
    ("incident_month_rtos", "service_key"),
    ("service_change_days", "service_id, month"),
)


def duplicate_keys(cursor) -> list[dict]:
    """One entry per key some value of which more than one row holds: the table, the key, and how
    many such values; empty when every key is unique. Keys left NULL (a service key not yet made)
    are not counted: the derived-data check names those."""
    found = []
    for table, key in UNIQUE_KEYS:
        repeated = cursor.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM {table} WHERE ({key}) IS NOT NULL "
            f"GROUP BY ALL HAVING count(*) > 1)").fetchall()[0][0]
        if repeated:
            found.append({"table": table, "unique": key, "rows": int(repeated),
                          "what": "values held by more than one row"})
    return found
