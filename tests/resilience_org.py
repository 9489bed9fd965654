"""Hand-built graphs for the resilience tests: dependencies, suppliers and the edges between them,
added to an OrgBuilder's store."""

from __future__ import annotations

from itscm.store import Store


def depends(store: Store, dependent: str, dependency: str, *, alternative: bool = False) -> None:
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO dependencies (service_id, depends_on_id, has_alternative) VALUES (?, ?, ?)",
                       [dependent, dependency, alternative])


def supplier(store: Store, supplier_id: str, name: str, recovery_minutes: int | None, *,
             substitutability: str | None = None) -> str:
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO suppliers (supplier_id, name, contracted_recovery_minutes, substitutability) "
                       "VALUES (?, ?, ?, ?)", [supplier_id, name, recovery_minutes, substitutability])
    return supplier_id


def relies_on(store: Store, service_id: str, supplier_id: str) -> None:
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO service_suppliers (service_id, supplier_id) VALUES (?, ?)",
                       [service_id, supplier_id])


def asset(store: Store, asset_id: str, name: str, *, supplier_id: str | None = None,
          lifecycle: str = "live") -> str:
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO assets (asset_id, name, supplier_id, lifecycle) VALUES (?, ?, ?, ?)",
                       [asset_id, name, supplier_id, lifecycle])
    return asset_id


def runs_on(store: Store, service_id: str, asset_id: str, relation: str = "runs on") -> None:
    with store.transaction() as cursor:
        cursor.execute("INSERT INTO service_assets (service_id, asset_id, relation) VALUES (?, ?, ?)",
                       [service_id, asset_id, relation])
