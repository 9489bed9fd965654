"""The inventory workbook's sheets and columns, as data: what each column holds, how a cell is
read, and what the README sheet says about it. The reader, the planner, the template and the
export all iterate over `SHEETS`; a new column is one `Column` here (and its store column).

Headers are matched loosely (case, spaces, underscores, and a unit in brackets for durations:
"RTO (hours)" is the RTO column with its numbers in hours); sheets are matched by name the same
way, and a CSV file by its name without the extension.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from itscm.administration import LIFECYCLES, RECOVERY_STRATEGIES
from itscm.measures.coverage import DRILL_TYPES_WEAKEST_FIRST
from itscm.workbook.durations import header_unit

TIERS = ("1", "2", "3", "4")
PLAN_STATUSES = ("draft", "approved", "retired")
DRILL_OUTCOMES = ("passed", "partial", "failed")
FINDING_STATES = ("open", "closed", "risk accepted")
YES_NO = ("yes", "no")
ASSET_CLASSES = ("server", "database", "application", "network", "cloud service", "site", "other")
VERIFIED_BY = ("audit", "discovery", "review")
ASSET_RELATIONS = ("runs on", "hosted on", "depends on")
ALIAS_SEPARATOR = ";"

# How a cell is read (itscm/workbook/cells.py parses each kind).
TEXT, DURATION, MONEY, DATE, CHOICE, YESNO, LIST = "text", "duration", "money", "date", "choice", "yes/no", "list"


@dataclass(frozen=True)
class Column:
    header: str                         # as the template writes it
    field: str                          # the staged column's name (a store column, or a reference)
    kind: str = TEXT
    help: str = ""
    choices: tuple[str, ...] = ()       # for CHOICE and YESNO: the values accepted (any case)
    blank: str | None = None            # a closed list's value for a blank cell (None: blank is empty)
    required: bool = False              # a row without it is rejected; a sheet without it is not read
    other_headers: tuple[str, ...] = () # other headers read as this column
    width: int = 16                     # the template's column width, in characters

    @property
    def store_type(self) -> str:
        return {DURATION: "INTEGER", MONEY: "DOUBLE", DATE: "DATE", YESNO: "BOOLEAN"}.get(
            self.kind, "INTEGER" if self.choices == TIERS else "VARCHAR")


@dataclass(frozen=True)
class Sheet:
    name: str                           # the sheet's name, the CSV file's name, and the preview's table
    table: str                          # the store table it fills
    help: str
    columns: tuple[Column, ...]
    absent: str                         # what --retire-missing does with a stored row the files lack
    other_names: tuple[str, ...] = field(default=())

    def column(self, field_name: str) -> Column:
        return next(column for column in self.columns if column.field == field_name)


_SERVICE_REF = ("the service's id, name or one of its aliases (any case and spacing): a service in the "
                "store or on the services sheet")

SHEETS: tuple[Sheet, ...] = (
    Sheet(
        "business_units", "business_units",
        "One row per business unit. A unit is known by its name; a unit named on another sheet and "
        "missing here and in the store is created (and reported).",
        (
            Column("name", "name", required=True, width=28, help="The unit's name; it identifies the unit."),
            Column("parent", "parent", width=28,
                   help="The unit it belongs to, by name (empty for a top-level unit)."),
            Column("head", "head", width=24, help="Who heads the unit."),
        ),
        absent="removed when no service or unit refers to it, else reported",
        other_names=("units", "business units"),
    ),
    Sheet(
        "services", "services",
        "One row per IT service. A row is matched to a stored service by its id, else by its name or one "
        "of its aliases (any case and spacing); a row matching none is a new service (its id is made "
        "from its name when the id cell is empty).",
        (
            Column("id", "service_id", width=14, other_headers=("service id",),
                   help="The service's id; empty for a new service (one is made)."),
            Column("name", "name", width=32, other_headers=("service", "service name"),
                   help="The service's name (a new service needs one)."),
            Column("business unit", "unit", width=24, other_headers=("unit",),
                   help="The business unit that owns it, by name."),
            Column("tier", "tier", CHOICE, choices=TIERS, width=6,
                   help="1 = mission critical, 2 = business critical, 3 = business operational, 4 = administrative."),
            Column("owner", "owner", width=20, help="The service owner."),
            Column("RTO (minutes)", "rto_minutes", DURATION, width=14,
                   help="Recovery time objective."),
            Column("RPO (minutes)", "rpo_minutes", DURATION, width=14,
                   help="Recovery point objective: how much data may be lost."),
            Column("MTPD (minutes)", "mtpd_minutes", DURATION, width=14,
                   help="Maximum tolerable period of disruption (the impact tolerance)."),
            Column("impact cost per hour", "impact_cost_per_hour", MONEY, width=18, other_headers=("cost per hour",),
                   help="The business impact of an hour of outage, from the BIA, in the store's currency."),
            Column("recovery strategy", "recovery_strategy", CHOICE, choices=RECOVERY_STRATEGIES, width=16,
                   other_headers=("strategy",), help="How the service is recovered."),
            Column("lifecycle", "lifecycle", CHOICE, choices=LIFECYCLES, blank="live", width=10,
                   help="live or retired; empty means live."),
            Column("aliases", "aliases", LIST, width=40,
                   help="Other names of the service in incident logs (CMDB CI, PagerDuty service, Jira "
                        "component), separated by ';'. The cell replaces the service's aliases."),
        ),
        absent="lifecycle set to retired",
    ),
    Sheet(
        "dependencies", "dependencies",
        "One row per dependency: the service cannot recover before the one it depends on.",
        (
            Column("service", "service", required=True, width=32, help=_SERVICE_REF + "."),
            Column("depends on", "depends_on", required=True, width=32,
                   help="The service it depends on: " + _SERVICE_REF + "."),
            Column("alternative", "has_alternative", YESNO, choices=YES_NO, width=12,
                   other_headers=("has alternative", "alternative yes/no"),
                   help="yes when a working alternative exists, so a failure does not spread along this edge."),
        ),
        absent="removed",
    ),
    Sheet(
        "suppliers", "suppliers",
        "One row per supplier. A supplier is known by its name; one named on service_suppliers and "
        "missing here and in the store is created (and reported).",
        (
            Column("name", "name", required=True, width=28, other_headers=("supplier",), help="The supplier's name."),
            Column("contracted recovery time (minutes)", "contracted_recovery_minutes", DURATION, width=20,
                   other_headers=("contracted recovery",),
                   help="The recovery time the contract commits the supplier to."),
            Column("substitutability", "substitutability", width=20,
                   help="How readily another supplier could take over (for example easy, hard, none)."),
            Column("contract end", "contract_end", DATE, width=14, help="When the contract ends."),
        ),
        absent="removed when no service relies on it, else reported",
    ),
    Sheet(
        "service_suppliers", "service_suppliers",
        "One row per service relying on a supplier.",
        (
            Column("service", "service", required=True, width=32, help=_SERVICE_REF + "."),
            Column("supplier", "supplier", required=True, width=28,
                   help="The supplier, by name."),
        ),
        absent="removed", other_names=("service suppliers",),
    ),
    Sheet(
        "plans", "plans",
        "One row per continuity or recovery plan. A row without an id is matched to a stored plan of the "
        "same service with the same title, else it is a new plan.",
        (
            Column("id", "plan_id", width=14, other_headers=("plan id",), help="The plan's id; empty for a new plan."),
            Column("service", "service", required=True, width=32, help=_SERVICE_REF + "."),
            Column("title", "title", width=36, help="The plan's title."),
            Column("owner", "owner", width=20, help="Who owns the plan."),
            Column("status", "status", CHOICE, choices=PLAN_STATUSES, blank="draft", width=10,
                   help="draft, approved or retired; empty means draft."),
            Column("approved on", "approved_on", DATE, width=12, help="When it was approved."),
            Column("document link", "document_link", width=40, help="Where the plan document lives (a URL or path)."),
        ),
        absent="status set to retired",
    ),
    Sheet(
        "plan_reviews", "plan_reviews",
        "One row per review of a plan: the history behind staleness. A review is known by its plan, date "
        "and reviewer.",
        (
            Column("plan", "plan", required=True, width=14, other_headers=("plan id",),
                   help="The plan's id: a plan in the store or on the plans sheet."),
            Column("reviewed on", "reviewed_on", DATE, required=True, width=12, other_headers=("date",),
                   help="When it was reviewed."),
            Column("by", "reviewed_by", width=20, other_headers=("reviewed by", "reviewer"), help="Who reviewed it."),
            Column("outcome", "outcome", width=20, help="What the review concluded (for example no change, updated)."),
            Column("notes", "notes", width=40, help="Anything worth keeping about the review."),
        ),
        absent="removed", other_names=("plan reviews", "reviews"),
    ),
    Sheet(
        "drills", "drills",
        "One row per plan test or DR exercise. A row without an id is matched to a stored drill of the "
        "same service, day and type, else it is a new drill.",
        (
            Column("id", "drill_id", width=14, other_headers=("drill id",),
                   help="The drill's id; empty for a new drill."),
            Column("plan", "plan", width=14, other_headers=("plan id",),
                   help="The plan tested, by id (empty when none)."),
            Column("service", "service", required=True, width=32, help=_SERVICE_REF + "."),
            Column("held on", "held_on", DATE, required=True, width=12, other_headers=("date",),
                   help="When it was held."),
            Column("type", "drill_type", CHOICE, choices=tuple(DRILL_TYPES_WEAKEST_FIRST), required=True, width=16,
                   other_headers=("drill type",), help="From the weakest to the strongest test."),
            Column("outcome", "outcome", CHOICE, choices=DRILL_OUTCOMES, required=True, width=10,
                   help="passed, partial or failed."),
            Column("RTA (minutes)", "rta_minutes", DURATION, width=14, other_headers=("recovery time achieved",),
                   help="Recovery time achieved (empty when the drill did not measure one)."),
            Column("data loss (minutes)", "data_loss_minutes", DURATION, width=14,
                   help="Data lost, as a time span (empty when not measured)."),
        ),
        absent="removed when no finding refers to it, else reported",
    ),
    Sheet(
        "findings", "drill_findings",
        "One row per finding of a drill. A row without an id is matched to a stored finding of the same "
        "drill with the same text, else it is a new finding.",
        (
            Column("id", "finding_id", width=14, other_headers=("finding id",),
                   help="The finding's id; empty for a new finding."),
            Column("drill", "drill", required=True, width=14, other_headers=("drill id",),
                   help="The drill's id: a drill in the store or on the drills sheet."),
            Column("what", "what", required=True, width=48, other_headers=("finding",), help="What was found."),
            Column("owner", "owner", width=20, help="Who acts on it."),
            Column("due", "due_on", DATE, width=12, other_headers=("due on",), help="When it is due."),
            Column("state", "state", CHOICE, choices=FINDING_STATES, blank="open", width=14,
                   help="open, closed or risk accepted; empty means open."),
        ),
        absent="removed", other_names=("drill findings", "drill_findings"),
    ),
    Sheet(
        "assets", "assets",
        "One row per asset behind a service: a server, a database, an application, a network device, a cloud "
        "service or a site. An asset is known by its id (the asset tag, or the CI name); a row without an id is "
        "matched to the stored asset of that name, else it is a new asset (its id is made from its name).",
        (
            Column("id", "asset_id", width=18, other_headers=("asset id", "asset tag", "tag"),
                   help="The asset tag or CI name the source keys it by; empty for a new asset (one is made)."),
            Column("name", "name", width=32, other_headers=("asset", "asset name"),
                   help="The asset's name (a new asset needs one)."),
            Column("class", "asset_class", CHOICE, choices=ASSET_CLASSES, width=14, other_headers=("asset class",),
                   help="What kind of asset it is."),
            Column("class as the source wrote it", "class_raw", width=24, other_headers=("class raw",),
                   help="The category or CI class of the file it came from (Snipe-IT category, ServiceNow "
                        "sys_class_name), kept as written."),
            Column("location", "location", width=20, help="Where it is (a site, a data centre, a cloud region)."),
            Column("owner", "owner", width=20, help="Who answers for it."),
            Column("supplier", "supplier", width=24,
                   help="Who supplies or runs it, by name: a supplier in the store or on the suppliers sheet "
                        "(one known nowhere is created and reported)."),
            Column("lifecycle", "lifecycle", CHOICE, choices=LIFECYCLES, blank="live", width=10,
                   help="live or retired; empty means live."),
            Column("status as the source wrote it", "status_raw", width=20, other_headers=("status raw",),
                   help="The status of the file it came from (Snipe-IT status label, ServiceNow install status), "
                        "kept as written."),
            Column("last verified", "last_verified", DATE, width=14, other_headers=("verified on",),
                   help="When the asset was last seen to be as recorded: an audit, a discovery scan or a review."),
            Column("verified by", "verified_by", CHOICE, choices=VERIFIED_BY, width=12, other_headers=("verified how",),
                   help="How it was verified: audit, discovery or review."),
        ),
        absent="lifecycle set to retired",
    ),
    Sheet(
        "service_assets", "service_assets",
        "One row per asset a service runs on. A service is known by its id, name or alias; an asset by its "
        "id, else its name.",
        (
            Column("service", "service", required=True, width=32, help=_SERVICE_REF + "."),
            Column("asset", "asset", required=True, width=28, other_headers=("asset id", "asset tag"),
                   help="The asset, by id or name: an asset in the store or on the assets sheet."),
            Column("relation", "relation", CHOICE, choices=ASSET_RELATIONS, width=12,
                   help="How the service uses it: runs on, hosted on or depends on."),
        ),
        absent="removed", other_names=("service assets",),
    ),
)

SHEETS_BY_NAME = {sheet.name: sheet for sheet in SHEETS}
README_SHEET = "README"


def name_key(text: str) -> str:
    """A sheet name or header as matched: lower case, '_' and runs of spaces as one space."""
    return re.sub(r"[\s_]+", " ", str(text)).strip().lower()


_SHEET_NAMES = {name_key(name): sheet for sheet in SHEETS for name in (sheet.name, *sheet.other_names)}


def sheet_named(name: str) -> Sheet | None:
    """The sheet a workbook tab or a CSV file (its name without the extension) holds, if any."""
    return _SHEET_NAMES.get(name_key(name))


@dataclass(frozen=True)
class HeaderMatch:
    columns: dict[int, Column]           # position in the header -> column
    units: dict[str, str]                # field -> unit word from its header ("hours")
    ignored: list[str]                   # headers matching no column
    repeated: list[str]                  # headers naming a column already matched (the first is read)


def match_header(sheet: Sheet, header: list[str | None]) -> HeaderMatch:
    names = {}
    for column in sheet.columns:
        base, _ = header_unit(column.header) if column.kind == DURATION else (column.header, None)
        for name in (column.header, base, *column.other_headers):
            names.setdefault(name_key(name), column)
    columns: dict[int, Column] = {}
    units: dict[str, str] = {}
    ignored, repeated = [], []
    for position, text in enumerate(header):
        if text is None or not str(text).strip():
            continue
        key = name_key(text)
        column, unit = names.get(key), None
        if column is None:
            base, unit = header_unit(str(text))
            candidate = names.get(name_key(base))
            column = candidate if candidate is not None and candidate.kind == DURATION and unit else None
        if column is None:
            ignored.append(str(text))
        elif column in columns.values():
            repeated.append(str(text))
        else:
            columns[position] = column
            if column.kind == DURATION:
                units[column.field] = unit or header_unit(column.header)[1] or "minutes"
    return HeaderMatch(columns, units, ignored, repeated)
