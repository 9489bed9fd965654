"""Named column mappings for exports whose header no built-in format knows.

A mapping is field -> column name (see `formats.FIELDS`), stored as JSON in `column_mappings`.
Its name also becomes the source of the incidents it imports (`acme-itsm:T-1001`), so saving a
mapping under a new name later imports the same tickets as different incidents: keep the name.
A file whose header carries every column of a saved mapping is read with it without being asked.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd

from itscm.access import Actor, writes
from itscm.ingest.errors import IngestError
from itscm.ingest.formats import FIELDS, REQUIRED_FIELDS, normalise_column, source_prefix
from itscm.store import Store

MAX_NAME_LENGTH = 60


def _check(name: str, mapping: dict[str, str]) -> tuple[str, dict[str, str]]:
    clean_name = (name or "").strip()
    if not clean_name or len(clean_name) > MAX_NAME_LENGTH:
        raise IngestError(f"A mapping needs a name of 1 to {MAX_NAME_LENGTH} characters.")
    source_prefix(clean_name)
    if clean_name.lower() in {"servicenow", "jira", "pagerduty", "opsgenie", "generic", "custom"}:
        raise IngestError(
            f"'{clean_name}' is the name of a built-in format; choose another name for the mapping."
        )
    clean = {
        field: str(column).strip() for field, column in mapping.items() if column and str(column).strip()
    }
    unknown = sorted(set(clean) - set(FIELDS))
    if unknown:
        raise IngestError(f"Unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}.")
    missing = [field for field in REQUIRED_FIELDS if field not in clean]
    if missing:
        raise IngestError(f"A mapping must name the column for {' and '.join(missing)}.")
    return clean_name, clean


@writes("analyst", "save a column mapping")
def save_mapping(actor: Actor, store: Store, name: str, mapping: dict[str, str]) -> None:
    """Save (or replace) the mapping `name`, as saved by `actor`."""
    clean_name, clean = _check(name, mapping)

    def write_in(cur):
        cur.execute("DELETE FROM column_mappings WHERE lower(name) = lower($name)", {"name": clean_name})
        cur.execute(
            "INSERT INTO column_mappings (name, mapping, created_by, created_at) "
            "VALUES ($name, $mapping, $by, $at)",
            {
                "name": clean_name,
                "mapping": json.dumps(clean, sort_keys=True),
                "by": actor.name,
                "at": datetime.now(UTC).replace(tzinfo=None),
            },
        )

    store.write(write_in)


@writes("analyst", "delete a column mapping")
def delete_mapping(actor: Actor, store: Store, name: str) -> bool:
    def write_in(cur):
        deleted = cur.execute(
            "DELETE FROM column_mappings WHERE lower(name) = lower($name)", {"name": name.strip()}
        ).fetchone()[0]
        return deleted

    deleted = store.write(write_in)
    return bool(deleted)


def saved_mappings(store: Store) -> pd.DataFrame:
    """name, mapping (dict field -> column), created_by, created_at; newest first."""
    frame = store.df(
        "SELECT name, mapping, created_by, created_at FROM column_mappings ORDER BY created_at DESC, name"
    )
    frame["mapping"] = [_parse(text) for text in frame["mapping"]]
    return frame


def load_mapping(store: Store, name: str) -> tuple[str, dict[str, str]]:
    """The saved mapping's exact name and its fields, or an error listing the saved names."""
    row = store.rows(
        "SELECT name, mapping FROM column_mappings WHERE lower(name) = lower($name) "
        "ORDER BY created_at DESC LIMIT 1",
        {"name": (name or "").strip()},
    )
    if not row:
        names = [saved for (saved,) in store.rows("SELECT name FROM column_mappings ORDER BY name")]
        known = f"saved mappings: {', '.join(names)}" if names else "no mapping is saved yet"
        raise IngestError(f"No saved mapping named '{name}' ({known}).")
    return row[0][0], _parse(row[0][1])


def matching_mapping(store: Store, header: list[str]) -> tuple[str, dict[str, str]] | None:
    """The saved mapping whose every column is in `header` (the most fields first, then newest)."""
    present = {normalise_column(column) for column in header}
    best = None
    for name, text in store.rows("SELECT name, mapping FROM column_mappings ORDER BY created_at DESC"):
        mapping = _parse(text)
        fits = mapping and all(normalise_column(column) in present for column in mapping.values())
        if fits and (best is None or len(mapping) > len(best[1])):
            best = (name, mapping)
    return best


def name_of_mapping(store: Store, mapping: dict[str, str]) -> str | None:
    """The name under which exactly this mapping is saved, if it is: so a file read with a mapping
    just saved gets the ids of every later file read with it, not `generic:` ones."""
    wanted = {
        field: str(column).strip() for field, column in mapping.items() if column and str(column).strip()
    }
    for name, text in store.rows("SELECT name, mapping FROM column_mappings ORDER BY created_at DESC"):
        if _parse(text) == wanted:
            return name
    return None


def _parse(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(field): str(column) for field, column in value.items() if field in FIELDS}
