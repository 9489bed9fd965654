"""Posture targets shown on the Overview tiles, and a figure's state against its target. Kept in
the store (store_meta) so an organisation sets its own; these are the defaults where it has not."""

from __future__ import annotations

import pandas as pd

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


AT_RISK_MARGIN = 5.0  # points of a percentage target within which a figure is "at risk"


def target_state(value: float | None, target: float, higher_is_better: bool) -> str | None:
    """'on target', 'at risk' (within AT_RISK_MARGIN points on the wrong side) or 'breached'."""
    if value is None or pd.isna(value):
        return None
    shortfall = (target - value) if higher_is_better else (value - target)
    if shortfall <= 0:
        return "on target"
    return "at risk" if shortfall <= AT_RISK_MARGIN else "breached"
