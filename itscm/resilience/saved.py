"""Scenarios saved by name (docs/DESIGN.md §14.3): the failed nodes as "kind:key" and the hours,
so a continuity manager finds a "severe but plausible" scenario again. Saving a name again
replaces it; every save is in the change history."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd

from itscm.access import Actor, writes
from itscm.resilience.scenario import KINDS
from itscm.store import Store

LONGEST_NAME = 120


@writes("continuity manager", "save a scenario")
def save_scenario(actor: Actor, store: Store, name: str, failed: list[str], hours: float | None, *,
                  now: datetime | None = None) -> str:
    """Save (or replace) the scenario `name`: `failed` as "kind:key" texts, `hours` None for each
    failed node's own recovery time. Returns the name as stored (trimmed)."""
    name = (name or "").strip()
    if not name or len(name) > LONGEST_NAME:
        raise ValueError(f"A scenario needs a name of 1 to {LONGEST_NAME} characters.")
    if not failed or any(text.partition(":")[0] not in KINDS or not text.partition(":")[2] for text in failed):
        raise ValueError("A scenario needs at least one failed service, supplier or unit.")
    if hours is not None and not hours > 0:
        raise ValueError("The hours of a scenario are above zero.")
    at = now or datetime.now(UTC).replace(tzinfo=None)
    after = {"failed": list(failed), "hours": hours}

    def write_in(cursor):
        before_rows = cursor.execute("SELECT failed, hours FROM saved_scenarios WHERE name = $name",
                                     {"name": name}).fetchall()
        before = {"failed": json.loads(before_rows[0][0]), "hours": before_rows[0][1]} if before_rows else {}
        cursor.execute("DELETE FROM saved_scenarios WHERE name = $name", {"name": name})
        cursor.execute("INSERT INTO saved_scenarios (name, failed, hours, saved_by, saved_at) "
                       "VALUES ($name, $failed, $hours, $by, $at)",
                       {"name": name, "failed": json.dumps(list(failed)), "hours": hours, "by": actor.name, "at": at})
        cursor.execute("INSERT INTO change_log (changed_at, changed_by, action, subject, before, after) "
                       "VALUES ($at, $by, 'save scenario', $name, $before, $after)",
                       {"at": at, "by": actor.name, "name": name, "before": json.dumps(before),
                        "after": json.dumps(after)})

    store.write(write_in)
    return name


def saved_scenarios(store: Store) -> pd.DataFrame:
    """name, failed (a list of "kind:key"), hours, saved_by, saved_at; by name."""
    frame = store.df("SELECT name, failed, hours, saved_by, saved_at FROM saved_scenarios ORDER BY lower(name), name")
    frame["failed"] = [json.loads(text) for text in frame["failed"]]
    return frame
