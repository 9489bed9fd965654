"""Posture targets shown on the Overview tiles. Kept in the store (store_meta) so an
organisation sets its own; these are the defaults where it has not."""

from __future__ import annotations

from itscm.store import Store

DEFAULT_TARGETS = {
    "coverage_pct": 95.0,     # at least
    "attainment_pct": 90.0,   # at least
    "stale_pct": 5.0,         # at most
}

TARGET_KEY_PREFIX = "target_"   # store_meta key of a target; admins set them (itscm/administration.py)


def posture_targets(store: Store) -> dict[str, float]:
    stored = dict(store.rows("SELECT key, value FROM store_meta WHERE starts_with(key, $prefix)",
                             {"prefix": TARGET_KEY_PREFIX}))
    return {key: float(stored.get(TARGET_KEY_PREFIX + key, default)) for key, default in DEFAULT_TARGETS.items()}
