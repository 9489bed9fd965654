"""Matching the service names of incident logs to services, and fixing the names that match none.

A name matches a service when, lowercased and trimmed, it equals the service's name or one of its
aliases' `alias_key`. A service's own name wins over another service's alias; between two aliases
of the same key the smallest service id wins, so matching never depends on row order.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from itscm.access import Actor, writes
from itscm.ingest.errors import IngestError
from itscm.rollup import after_incidents_changed
from itscm.store import Store

ANALYST_ORIGIN = "mapped by analyst"

# One row per matchable name key (a name lowercased and trimmed; not the integer
# services.service_key). Used by the preview (on a copy) and by the commit (inside its
# transaction, so a commit matches against the services as they are when it runs).
SERVICE_NAME_KEYS_SQL = """
    SELECT name_key, arg_min(service_id, (rank, service_id)) AS service_id
    FROM (
        SELECT lower(trim(name)) AS name_key, service_id, 0 AS rank FROM services
        UNION ALL
        SELECT lower(trim(alias_key)) AS name_key, service_id, 1 AS rank FROM service_aliases
    )
    WHERE name_key <> ''
    GROUP BY name_key
"""


def name_key(name: str) -> str:
    """What a service name is matched by: lowercased and trimmed."""
    return name.strip().lower()


def unmatched_service_names(store: Store) -> pd.DataFrame:
    """Service names in stored incidents that match no service, most incidents first:
    service_name, incidents, first_opened, last_opened, sources."""
    return store.df(
        """
        SELECT mode(service_name) AS service_name, count(*) AS incidents,
               min(opened_at) AS first_opened, max(opened_at) AS last_opened,
               string_agg(DISTINCT source, ', ' ORDER BY source) AS sources
        FROM incidents
        WHERE service_id IS NULL AND service_name IS NOT NULL AND trim(service_name) <> ''
        GROUP BY lower(trim(service_name))
        ORDER BY incidents DESC, service_name
        """
    )


@writes("analyst", "map a service name")
def map_service_name(actor: Actor, store: Store, name: str, service_id: str, *, now: datetime | None = None) -> int:
    """Make `name` an alias of `service_id` (origin 'mapped by analyst') and set that service on
    every incident under the name, in one transaction. Returns the number of incidents updated.

    Prior versions kept for undo get the service too, so undoing an upload later does not bring
    back an unmatched incident. The alias records who mapped it and when (`mapped_by`,
    `mapped_at`); `now` pins the time for tests."""
    by = actor.name
    key = name_key(name or "")
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if not key:
        raise IngestError("A service name to map is needed.")

    def write_in(cur):
        service = cur.execute(
            "SELECT name FROM services WHERE service_id = $id", {"id": service_id}
        ).fetchone()
        if service is None:
            raise IngestError(f"No service with id '{service_id}'.")
        taken = cur.execute(
            f"SELECT service_id FROM ({SERVICE_NAME_KEYS_SQL}) WHERE name_key = $key", {"key": key}
        ).fetchone()
        if taken is not None and taken[0] != service_id:
            raise IngestError(
                f"'{name.strip()}' already names service '{taken[0]}'; remove that alias before "
                f"mapping it to '{service_id}'."
            )
        if taken is None:
            cur.execute(
                "INSERT INTO service_aliases (alias, alias_key, service_id, origin, mapped_by, mapped_at) "
                "VALUES ($alias, $key, $id, $origin, $by, $at)",
                {"alias": name.strip(), "key": key, "id": service_id, "origin": ANALYST_ORIGIN,
                 "by": by, "at": now},
            )
        # The incidents it moves, kept for the rollup: each version as it was goes, and returns
        # with this service.
        cur.execute(
            """
            CREATE OR REPLACE TEMP TABLE mapped_incidents AS
            SELECT incident_id, service_id, service_name, opened_at, restored_at, resolved_at, closed_at,
                   priority, major
            FROM incidents
            WHERE lower(trim(service_name)) = $key AND service_id IS DISTINCT FROM $id
            """,
            {"id": service_id, "key": key},
        )
        updated = cur.execute(
            """
            UPDATE incidents SET service_id = $id,
                service_key = (SELECT service_key FROM services WHERE service_id = $id)
            FROM mapped_incidents m WHERE incidents.incident_id = m.incident_id
            """,
            {"id": service_id},
        ).fetchone()[0]
        after_incidents_changed(cur, """
            SELECT service_id, service_name, opened_at, restored_at, resolved_at, closed_at, priority, major, -1 AS sign
            FROM mapped_incidents
            UNION ALL
            SELECT $id, service_name, opened_at, restored_at, resolved_at, closed_at, priority, major, 1
            FROM mapped_incidents
        """, {"id": service_id})
        cur.execute("DROP TABLE mapped_incidents")   # a failure rolls its creation back with the rest
        cur.execute(
            """
            UPDATE incident_prior_versions SET service_id = $id
            WHERE lower(trim(service_name)) = $key AND service_id IS DISTINCT FROM $id
            """,
            {"id": service_id, "key": key},
        )
        return updated

    updated = store.write(write_in)
    return int(updated)
