"""Owner packs: per owner, what they have to act on, as one CSV or XLSX file each (and all of them
in one zip): their critical services' coverage gaps, their plans needing action (no plan, never
tested, overdue, changed since review, due within 30 days) and their open drill findings. Every
row, not the report's first forty.
"""

from __future__ import annotations

import io
import re
import zipfile

import pandas as pd

from itscm.export import csv_for_spreadsheets, neutralise_cell
from itscm.filters import Filters
from itscm.measures.coverage import CONTROLS, coverage_by_service
from itscm.measures.staleness import open_findings_worklist, plan_worklist
from itscm.store import Store

PACK_FORMATS = ("csv", "xlsx")
NO_OWNER = "(no owner)"
PACK_COLUMNS = ["owner", "kind", "service", "unit", "tier", "item", "state", "due_on", "days_overdue", "detail"]
ACTION_STATES = ("no plan", "never tested", "overdue", "changed since review", "due within 30 days")


def owner_actions(store: Store, filters: Filters) -> pd.DataFrame:
    """Every gap and due action of every owner: PACK_COLUMNS, most urgent first per owner."""
    coverage = coverage_by_service(store, filters)
    uncovered = coverage.loc[~coverage["covered"]]
    gaps = pd.DataFrame({
        "owner": uncovered["owner"], "kind": "coverage gap", "service": uncovered["service"],
        "unit": uncovered["unit"], "tier": uncovered["tier"],
        "item": ["; ".join(label for control, label in CONTROLS.items() if not row[control])
                 for row in uncovered.to_dict("records")],
        "state": "uncovered", "due_on": pd.NaT, "days_overdue": pd.NA,
        "detail": [f"{gaps} of {len(CONTROLS)} controls failing" for gaps in uncovered["gaps"]],
    })
    worklist = plan_worklist(store, filters)
    plans = worklist.loc[worklist["state"].isin(ACTION_STATES)]
    plan_rows = pd.DataFrame({
        "owner": plans["owner"], "kind": "plan", "service": plans["service"], "unit": plans["unit"],
        "tier": plans["tier"], "item": plans["plan"].fillna("(no plan)"), "state": plans["state"],
        "due_on": pd.concat([plans["review_due"], plans["test_due"]], axis=1).min(axis=1),
        "days_overdue": plans["days_overdue"],
        "detail": [f"review due {_day(review)}, test due {_day(test)}" if state != "no plan"
                   else "the service has no draft or approved plan"
                   for review, test, state in zip(plans["review_due"], plans["test_due"], plans["state"], strict=True)],
    })
    findings = open_findings_worklist(store, filters)
    finding_rows = pd.DataFrame({
        "owner": findings["owner"], "kind": "drill finding", "service": findings["service"],
        "unit": findings["unit"], "tier": findings["tier"], "item": findings["what"],
        "state": ["overdue" if overdue else "open" for overdue in findings["overdue"]],
        "due_on": findings["due_on"], "days_overdue": findings["days_overdue"],
        "detail": [f"drill {drill} of {_day(held)}" for drill, held in zip(findings["drill_id"], findings["held_on"],
                                                                              strict=True)],
    })
    frames = [frame for frame in (gaps, plan_rows, finding_rows) if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=PACK_COLUMNS)
    actions = pd.concat(frames, ignore_index=True)[PACK_COLUMNS]
    actions["owner"] = actions["owner"].fillna(NO_OWNER).astype(str)
    actions["due_on"] = pd.to_datetime(actions["due_on"]).dt.date
    return actions.sort_values(["owner", "days_overdue", "due_on"], ascending=[True, False, True],
                               na_position="last", ignore_index=True)


def _day(value) -> str:
    return "never" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def pack_file_name(owner: str, taken: set[str], extension: str) -> str:
    """A file name from the owner's name: letters, digits, @ . _ - kept, the rest '_', made unique."""
    stem = re.sub(r"[^A-Za-z0-9@._-]+", "_", owner).strip("._") or "owner"
    stem = stem[:80]
    name, n = f"{stem}.{extension}", 2
    while name.lower() in taken:
        name, n = f"{stem}-{n}.{extension}", n + 1
    taken.add(name.lower())
    return name


def _xlsx(frame: pd.DataFrame) -> bytes:
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_cell)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe.to_excel(writer, sheet_name="Actions", index=False)
    return buffer.getvalue()


def owner_packs(store: Store, filters: Filters, pack_format: str = "csv") -> dict[str, bytes]:
    """{file name: file}: one file per owner holding their actions."""
    if pack_format not in PACK_FORMATS:
        raise ValueError(f"an owner pack is {' or '.join(PACK_FORMATS)}, not {pack_format!r}")
    actions = owner_actions(store, filters)
    taken: set[str] = set()
    packs = {}
    for owner, frame in actions.groupby("owner", sort=True):
        rows = frame.reset_index(drop=True)
        packs[pack_file_name(str(owner), taken, pack_format)] = (
            csv_for_spreadsheets(rows) if pack_format == "csv" else _xlsx(rows))
    return packs


def owner_packs_zip(store: Store, filters: Filters, pack_format: str = "csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in owner_packs(store, filters, pack_format).items():
            archive.writestr(name, content)
    return buffer.getvalue()
