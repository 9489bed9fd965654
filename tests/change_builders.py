"""Assets and changes for hand-built stores (tests/builders.py's OrgBuilder does the rest).

A change is written as the change import stores it: `completed_at` is set for implemented and
closed changes only (work end, else planned end, else closed), never for cancelled ones.
"""

from __future__ import annotations

import datetime as dt
import itertools

from tests.builders import OrgBuilder

_ids = itertools.count(5000)
COMPLETED_STATES = ("implemented", "closed")


def asset(org: OrgBuilder, name: str | None = None, **columns) -> str:
    row = {"asset_id": f"AST{next(_ids)}", "name": None, "asset_class": "server", "lifecycle": "live"}
    row.update(columns)
    row["name"] = name or row["name"] or f"Asset {row['asset_id']}"
    org._insert("assets", row)
    return row["asset_id"]


def runs_on(org: OrgBuilder, service_id: str, asset_id: str, relation: str = "runs on") -> None:
    org._insert("service_assets", {"service_id": service_id, "asset_id": asset_id, "relation": relation})


def change(org: OrgBuilder, *, service_id: str | None = None, asset_id: str | None = None,
           work_end: dt.datetime | dt.date | None = None, state: str = "closed", change_type: str = "normal",
           close_code: str | None = "successful", **columns) -> str:
    number = columns.pop("number", None) or f"CHG{next(_ids)}"
    if isinstance(work_end, dt.date) and not isinstance(work_end, dt.datetime):
        work_end = dt.datetime.combine(work_end, dt.time(14, 0))
    row = {"source": "test", "number": number, "title": "A change",
           "ci_name": service_id or asset_id, "service_id": service_id, "asset_id": asset_id,
           "change_type": change_type, "type_raw": change_type, "state": state, "state_raw": state,
           "close_code": close_code, "close_code_raw": close_code, "planned_start": None, "planned_end": None,
           "work_end": work_end, "closed_at": None, "upload_id": None}
    row.update(columns)
    ended = row["work_end"] or row["planned_end"] or row["closed_at"]
    row["completed_at"] = ended if row["state"] in COMPLETED_STATES else None
    org._insert("changes", row)
    return f"test:{number}"   # as changes_behind_plans names it
