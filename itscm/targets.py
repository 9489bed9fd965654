"""Posture targets shown on the Overview tiles, and a figure's state against its target. Kept in
the store (store_meta) so an organisation sets its own; the defaults, where it has not, are the
headline measures' own (itscm/measures/registry.py)."""

from __future__ import annotations

import pandas as pd

from itscm.measures.registry import headline_measures
from itscm.store import Store

TARGET_KEY_PREFIX = "target_"   # store_meta key of a target; admins set them (itscm/administration.py)


def default_targets() -> dict[str, float]:
    """Headline key -> its default target (a percentage), for the measures that have one: at
    least it where higher is better, at most it otherwise."""
    return {measure.key: measure.default_target for measure in headline_measures()
            if measure.default_target is not None}


def posture_targets(store: Store) -> dict[str, float]:
    stored = dict(store.rows("SELECT key, value FROM store_meta WHERE starts_with(key, $prefix)",
                             {"prefix": TARGET_KEY_PREFIX}))
    return {key: float(stored.get(TARGET_KEY_PREFIX + key, default)) for key, default in default_targets().items()}


AT_RISK_MARGIN = 5.0  # points of a percentage target within which a figure is "at risk"


def target_state(value: float | None, target: float, higher_is_better: bool) -> str | None:
    """'on target', 'at risk' (within AT_RISK_MARGIN points on the wrong side) or 'breached'."""
    if value is None or pd.isna(value):
        return None
    shortfall = (target - value) if higher_is_better else (value - target)
    if shortfall <= 0:
        return "on target"
    return "at risk" if shortfall <= AT_RISK_MARGIN else "breached"
