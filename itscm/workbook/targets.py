"""The store tables an inventory import writes, as data: for each, its key, the columns the
workbook writes, how a change names a row, and the defaults of a new row. The planner
(itscm/workbook/plan.py), the commit and the undo (itscm/workbook/commit.py) iterate over
`TARGETS`, in the order rows refer to each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from itscm.workbook.sheets import SHEETS_BY_NAME

# Which store column each sheet field fills once resolved (a reference becomes an id).
FIELD_COLUMNS = {
    "business_units": {"name": "name", "parent": "parent_unit_id", "head": "head"},
    "services": {"service_id": "service_id", "name": "name", "unit": "unit_id", "tier": "tier", "owner": "owner",
                 "rto_minutes": "rto_minutes", "rpo_minutes": "rpo_minutes", "mtpd_minutes": "mtpd_minutes",
                 "impact_cost_per_hour": "impact_cost_per_hour", "recovery_strategy": "recovery_strategy",
                 "lifecycle": "lifecycle"},
    "suppliers": {"name": "name", "contracted_recovery_minutes": "contracted_recovery_minutes",
                  "substitutability": "substitutability", "contract_end": "contract_end"},
    "dependencies": {"service": "service_id", "depends_on": "depends_on_id", "has_alternative": "has_alternative"},
    "service_suppliers": {"service": "service_id", "supplier": "supplier_id"},
    "plans": {"plan_id": "plan_id", "service": "service_id", "title": "title", "owner": "owner", "status": "status",
              "approved_on": "approved_on", "document_link": "document_link"},
    "plan_reviews": {"plan": "plan_id", "reviewed_on": "reviewed_on", "reviewed_by": "reviewed_by",
                     "outcome": "outcome", "notes": "notes"},
    "drills": {"drill_id": "drill_id", "plan": "plan_id", "service": "service_id", "held_on": "held_on",
               "drill_type": "drill_type", "outcome": "outcome", "rta_minutes": "rta_minutes",
               "data_loss_minutes": "data_loss_minutes"},
    "findings": {"finding_id": "finding_id", "drill": "drill_id", "what": "what", "owner": "owner", "due_on": "due_on",
                 "state": "state"},
    "assets": {"asset_id": "asset_id", "name": "name", "asset_class": "asset_class", "class_raw": "class_raw",
               "location": "location", "owner": "owner", "supplier": "supplier_id", "lifecycle": "lifecycle",
               "status_raw": "status_raw", "last_verified": "last_verified", "verified_by": "verified_by"},
    "service_assets": {"service": "service_id", "asset": "asset_id", "relation": "relation"},
}


@dataclass(frozen=True)
class Target:
    """A store table as the import writes it."""
    table: str
    sheet: str                          # the sheet whose counts it adds to
    key: tuple[str, ...]                # columns that identify a row
    data: tuple[str, ...]               # columns the import writes besides the key
    label: str                          # SQL over the plan row: how a change names the row
    defaults: dict[str, str] = field(default_factory=dict)   # SQL for a new row's uncarried NOT NULL column
    stamped: bool = False               # recorded_by and recorded_at say who wrote the row, when

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + self.data

    def header(self, column: str) -> str:
        """The sheet's header for a store column, as a change names it."""
        field_name = next(f for f, c in FIELD_COLUMNS[self.sheet].items() if c == column)
        return SHEETS_BY_NAME[self.sheet].column(field_name).header


TARGETS: tuple[Target, ...] = (
    Target("business_units", "business_units", ("unit_id",), ("name", "parent_unit_id", "head"), "p.name"),
    Target("services", "services", ("service_id",),
           ("name", "unit_id", "tier", "owner", "rto_minutes", "rpo_minutes", "mtpd_minutes", "impact_cost_per_hour",
            "recovery_strategy", "lifecycle"), "p.service_id", {"lifecycle": "'live'"}),
    # A services row's aliases cell, one row per alias (its changes are shown as the cell's).
    Target("service_aliases", "services", ("service_id", "alias_key"), ("alias", "origin"),
           "p.service_id || ' alias ' || p.alias_key"),
    Target("suppliers", "suppliers", ("supplier_id",),
           ("name", "contracted_recovery_minutes", "substitutability", "contract_end"), "p.name"),
    Target("dependencies", "dependencies", ("service_id", "depends_on_id"), ("has_alternative",),
           "p.service_id || ' -> ' || p.depends_on_id"),
    Target("service_suppliers", "service_suppliers", ("service_id", "supplier_id"), (),
           "p.service_id || ' <- ' || p.supplier_id"),
    Target("plans", "plans", ("plan_id",), ("service_id", "title", "owner", "status", "approved_on", "document_link"),
           "p.plan_id", {"status": "'draft'"}),
    Target("plan_reviews", "plan_reviews", ("plan_id", "reviewed_on", "reviewed_by"), ("outcome", "notes"),
           "p.plan_id || ' reviewed ' || p.reviewed_on || coalesce(' by ' || p.reviewed_by, '')"),
    Target("drills", "drills", ("drill_id",),
           ("plan_id", "service_id", "held_on", "drill_type", "outcome", "rta_minutes", "data_loss_minutes"),
           "p.drill_id"),
    Target("drill_findings", "findings", ("finding_id",), ("drill_id", "what", "owner", "due_on", "state"),
           "p.finding_id", {"state": "'open'"}, stamped=True),
    Target("assets", "assets", ("asset_id",),
           ("name", "asset_class", "class_raw", "location", "owner", "supplier_id", "lifecycle", "status_raw",
            "last_verified", "verified_by"), "p.asset_id", {"lifecycle": "'live'"}),
    Target("service_assets", "service_assets", ("service_id", "asset_id"), ("relation",),
           "p.service_id || ' on ' || p.asset_id"),
)
TARGETS_BY_TABLE = {target.table: target for target in TARGETS}
# What --retire-missing does with a stored row absent from a sheet that has rows.
RETIRE = {"services": ("lifecycle", "'retired'"), "plans": ("status", "'retired'"),
          "assets": ("lifecycle", "'retired'")}
ID_PREFIXES = {"business_units": "bu", "services": "svc", "suppliers": "sup", "plans": "plan", "drills": "drill",
               "findings": "finding", "assets": "asset"}
