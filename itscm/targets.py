"""Posture targets shown on the Overview tiles. Kept in the store (store_meta) so an
organisation sets its own; these are the defaults where it has not."""

from __future__ import annotations

from itscm.store import Store

DEFAULT_TARGETS = {
    "coverage_pct": 95.0,     # at least
    "attainment_pct": 90.0,   # at least
    "stale_pct": 5.0,         # at most
}


def posture_targets(store: Store) -> dict[str, float]:
    stored = dict(store.rows("SELECT key, value FROM store_meta WHERE key LIKE 'target_%'"))
    return {key: float(stored.get(f"target_{key}", default)) for key, default in DEFAULT_TARGETS.items()}


def set_posture_target(store: Store, key: str, value: float) -> None:
    if key not in DEFAULT_TARGETS:
        raise ValueError(f"unknown target {key!r}; known: {', '.join(DEFAULT_TARGETS)}")
    if not 0 <= value <= 100:
        raise ValueError("a target is a percentage from 0 to 100")
    with store.transaction() as cursor:
        cursor.execute("DELETE FROM store_meta WHERE key = ?", [f"target_{key}"])
        cursor.execute("INSERT INTO store_meta VALUES (?, ?)", [f"target_{key}", str(value)])
