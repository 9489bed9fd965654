"""Columns kept beside the facts they derive from, so the measures' hot paths stay cheap.

At 10M incidents, joining incidents to services on integer keys and reading a stored outage end
is several times faster than joining on text ids and recomputing it per query (see
docs/PERFORMANCE.md). Every write transaction of the store ends by bringing these columns up to
date (`Store.transaction`), so no writer, present or future, can leave them stale: a service
gets the next free `service_key`, and an incident whose service, restore or resolve time changed
gets its key, `outage_end` and `rta_minutes` again. When nothing changed, this finds nothing.
"""

from __future__ import annotations

DERIVED_SINCE_VERSION = 4  # the schema version that added these columns

REFRESH_DERIVED_SQL = [
    # Surrogate keys are made here, never by sequences: a DuckLake catalog has none (DESIGN 6).
    """
    UPDATE services SET service_key = fresh.service_key
    FROM (
        SELECT service_id,
               (SELECT coalesce(max(service_key), 0) FROM services)
                   + row_number() OVER (ORDER BY service_id) AS service_key
        FROM services WHERE service_key IS NULL
    ) AS fresh
    WHERE services.service_id = fresh.service_id
    """,
    """
    UPDATE incidents SET service_key = s.service_key
    FROM services s
    WHERE s.service_id = incidents.service_id AND incidents.service_key IS DISTINCT FROM s.service_key
    """,
    "UPDATE incidents SET service_key = NULL WHERE service_id IS NULL AND service_key IS NOT NULL",
    """
    UPDATE incidents
    SET outage_end = coalesce(restored_at, resolved_at),
        rta_minutes = epoch(coalesce(restored_at, resolved_at) - opened_at) / 60.0
    WHERE outage_end IS DISTINCT FROM coalesce(restored_at, resolved_at)
       OR rta_minutes IS DISTINCT FROM epoch(coalesce(restored_at, resolved_at) - opened_at) / 60.0
    """,
]

# Version 4 of the schema adds the columns; the same statements fill them for existing rows.
ADD_DERIVED_COLUMNS_SQL = """
ALTER TABLE services ADD COLUMN service_key INTEGER;
ALTER TABLE incidents ADD COLUMN service_key INTEGER;
ALTER TABLE incidents ADD COLUMN outage_end TIMESTAMP;     -- restored_at, else resolved_at (an estimate)
ALTER TABLE incidents ADD COLUMN rta_minutes DOUBLE;       -- outage_end - opened_at, in minutes
""" + ";\n".join(REFRESH_DERIVED_SQL) + ";\n"


def refresh_derived(cursor) -> None:
    """Bring the derived columns up to date, inside the caller's transaction."""
    for statement in REFRESH_DERIVED_SQL:
        cursor.execute(statement)
