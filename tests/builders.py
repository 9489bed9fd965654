"""Hand-built stores for tests: a few rows whose right answers can be worked out by hand."""

from __future__ import annotations

import datetime as dt
import itertools

from itscm import change_days, rollup
from itscm.store import Store
from tests import backends

# Ids from 1000 on, so a builder adding rows to a copy of the small organisation (whose own ids
# start at 1, from its own counter) never makes one it already has.
_ids = itertools.count(1000)


class OrgBuilder:
    """Inserts rows with sensible defaults; every keyword overrides one column."""

    def __init__(self, store: Store | None = None, *, ids: itertools.count | None = None):
        self.store = store or backends.new_store()
        self._ids = ids or _ids

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _insert(self, table: str, row: dict) -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.store.transaction() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
            # the derived columns and the rollup, as the product's writers keep them
            if table == "services":
                rollup.after_services_changed(cursor)
            elif table == "incidents":
                rollup.refresh(cursor)   # written without its derived columns: the builder cannot say
            elif table in ("changes", "service_assets"):
                change_days.refresh(cursor)

    def unit(self, name: str, parent: str | None = None, unit_id: str | None = None) -> str:
        unit_id = unit_id or self._next_id("bu")
        self._insert("business_units", {"unit_id": unit_id, "name": name, "parent_unit_id": parent, "head": "Head"})
        return unit_id

    def service(self, unit_id: str | None, **columns) -> str:
        row = {
            "service_id": self._next_id("svc"), "name": None, "unit_id": unit_id, "tier": 1, "owner": "Owner",
            "rto_minutes": 240, "rpo_minutes": 60, "mtpd_minutes": 1440, "impact_cost_per_hour": 1000.0,
            "recovery_strategy": "hot", "lifecycle": "live",
        }
        row.update(columns)
        row["name"] = row["name"] or f"Service {row['service_id']}"
        self._insert("services", row)
        return row["service_id"]

    def alias(self, service_id: str, alias: str) -> None:
        self._insert("service_aliases", {"alias": alias, "alias_key": alias.strip().lower(),
                                         "service_id": service_id, "origin": "test"})

    def plan(self, service_id: str, **columns) -> str:
        row = {"plan_id": self._next_id("plan"), "service_id": service_id, "title": "DR plan", "owner": "Planner",
               "status": "approved", "approved_on": dt.date(2024, 1, 1)}
        row.update(columns)
        self._insert("plans", row)
        return row["plan_id"]

    def review(self, plan_id: str, on: dt.date) -> None:
        self._insert("plan_reviews", {"plan_id": plan_id, "reviewed_on": on, "reviewed_by": "Reviewer"})

    def drill(self, service_id: str, on: dt.date, **columns) -> str:
        row = {"drill_id": self._next_id("drill"), "service_id": service_id, "plan_id": None, "held_on": on,
               "drill_type": "simulation", "outcome": "passed", "rta_minutes": 60, "data_loss_minutes": 0,
               "open_findings": 0}
        row.update(columns)
        self._insert("drills", row)
        return row["drill_id"]

    def incident(self, service_id: str | None, opened_at: dt.datetime, **columns) -> str:
        incident_id = columns.pop("incident_id", None) or self._next_id("test:INC")
        row = {"incident_id": incident_id, "source": "test", "service_id": service_id,
               "service_name": columns.pop("service_name", service_id), "title": "Outage", "priority": 1,
               "priority_raw": "1 - Critical", "opened_at": opened_at, "restored_at": None,
               "resolved_at": None, "closed_at": None, "upload_id": None}
        row.update(columns)
        self._insert("incidents", row)
        return incident_id

    def asset(self, *services: str, relation: str | None = "runs on", **columns) -> str:
        """An asset, linked to each service given."""
        row = {"asset_id": self._next_id("asset"), "name": None, "asset_class": "server", "class_raw": None,
               "location": "DC1", "owner": "Ops", "supplier_id": None, "lifecycle": "live", "status_raw": None,
               "last_verified": None, "verified_by": None}
        row.update(columns)
        row["name"] = row["name"] or f"host-{row['asset_id']}"
        self._insert("assets", row)
        for service_id in services:
            self._insert("service_assets", {"service_id": service_id, "asset_id": row["asset_id"],
                                            "relation": relation})
        return row["asset_id"]

    def covered_service(self, unit_id: str | None, as_of: dt.date, **columns) -> str:
        """A tier-1 service meeting every coverage control at `as_of`."""
        service_id = self.service(unit_id, **columns)
        plan_id = self.plan(service_id)
        self.review(plan_id, as_of - dt.timedelta(days=10))
        self.drill(service_id, as_of - dt.timedelta(days=20), plan_id=plan_id, rta_minutes=120)
        return service_id


def at(day: dt.date, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute))
