"""The files continuity managers already have, recognised from their header row, whatever the
file or sheet is called, and mapped onto the inventory sheets (itscm/workbook/sheets.py) so that
they go through the same preview, commit and undo; a file updates only the columns it carries.

    ServiceNow CMDB service lists   cmdb_ci_service and its classes, CSV (field names) or XLSX (labels)
    ServiceNow relationships        cmdb_rel_ci: parent, type, child -> the dependencies sheet, and
                                    the service_assets sheet for a service running on an asset
    ServiceNow CI lists             cmdb_ci_server, cmdb_ci_appl, cmdb_ci_db_instance, ... -> assets
    Snipe-IT asset reports          Asset Tag, Asset Name, Category, Status, Last Audit, ... -> assets
    ciso-assistant assets           intuitem's asset export: primary assets -> services
    business impact analyses        a service column and RTO, RPO, MTPD or impact columns

`recognise(header, sheet_by_name)` says which format a header row is (the distinctive exports first,
then a sheet named after an inventory sheet, then a BIA); `prepare` applies the format's row rules to
the cells read (itscm/workbook/read.py), before they are typed: rows a format does not import are
reported and dropped, and the cells one sheet column is made from (a lifecycle from two statuses, RTO,
RPO and MTPD from one ciso-assistant cell) are written as extra columns, so the ordinary parsing,
problem reporting and planning apply to them. docs/DESIGN.md ("Inventory import") lists the rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from itscm.workbook.durations import header_unit
from itscm.workbook.sheets import DURATION, MONEY, SHEETS_BY_NAME, Column, HeaderMatch, Sheet, name_key

SERVICENOW_SERVICES = "servicenow cmdb services"
SERVICENOW_RELATIONSHIPS = "servicenow relationships"
CISO_ASSISTANT_ASSETS = "ciso-assistant assets"
BUSINESS_IMPACT_ANALYSIS = "business impact analysis"
SERVICENOW_CIS = "servicenow cmdb cis"
SNIPE_IT_ASSETS = "snipe-it assets"
# Reasons in warnings name the format as people know it.
LABELS = {SERVICENOW_SERVICES: "a ServiceNow CMDB service list", SERVICENOW_RELATIONSHIPS: "a ServiceNow "
          "relationship export (cmdb_rel_ci)", CISO_ASSISTANT_ASSETS: "a ciso-assistant asset export",
          BUSINESS_IMPACT_ANALYSIS: "a business impact analysis",
          SERVICENOW_CIS: "a ServiceNow CI list (servers, applications, databases, ...)",
          SNIPE_IT_ASSETS: "a Snipe-IT asset report"}
SHOWN_ROWS = 10   # rows named in a warning about many rows


def _keys(*names: str) -> tuple[str, ...]:
    return tuple(name_key(name) for name in names)


# Header names (as name_key leaves them) -> sheet field, per format.
_SERVICE_NAME = _keys("service", "service name", "business service", "application", "application name",
                      "process", "business process", "process name", "name")
_RTO = _keys("rto", "recovery time objective", "u_rto", "rto target", "target rto")
_RPO = _keys("rpo", "recovery point objective", "u_rpo", "rpo target", "target rpo", "maximum data loss")
_MTPD = _keys("mtpd", "mtd", "mto", "mao", "u_mtpd", "u_mtd", "maximum tolerable downtime",
              "maximum tolerable period of disruption", "maximum tolerable outage", "maximum acceptable outage",
              "max tolerable downtime")
_PER_HOUR = _keys("impact cost per hour", "cost per hour", "impact per hour", "revenue per hour",
                  "financial impact per hour", "loss per hour", "downtime cost per hour", "revenue at risk per hour")
_PER_DAY = _keys("cost per day", "impact per day", "financial impact per day", "revenue per day", "loss per day",
                 "downtime cost per day", "impact cost per day")
_TIER = _keys("tier", "service tier", "criticality", "business criticality", "criticality tier")
_OWNER = _keys("owner", "service owner", "business owner", "process owner")

# ServiceNow: field names (CSV export) and labels (XLSX export) of cmdb_ci_service and its classes.
_SN_CRITICALITY = _keys("busines_criticality", "business_criticality", "business criticality")
_SN_OPERATIONAL = _keys("operational_status", "operational status")
_SN_INSTALL = _keys("install_status", "install status", "status")
_SN_USED_FOR = _keys("used_for", "used for")
# Columns that say the file is a ServiceNow export (two are needed besides the name).
_SN_MARKERS = set(_SN_CRITICALITY + _SN_OPERATIONAL + _keys("install_status", "install status") + _SN_USED_FOR
                  + _keys("owned_by", "owned by", "sys_class_name", "class", "sys_id", "support_group",
                          "support group", "managed_by", "managed by", "service_classification",
                          "service classification"))
# ServiceNow columns known and deliberately not imported (not reported one by one).
_SN_UNREAD = set(_keys("sys_id", "sys_class_name", "class", "support_group", "support group", "managed_by",
                       "managed by", "service_classification", "service classification", "short_description",
                       "short description", "description", "company", "location", "department", "cost_center",
                       "cost center", "sys_updated_on", "updated", "sys_created_on", "created", "sys_updated_by",
                       "sys_created_by", "assigned_to", "assigned to", "environment", "version", "comments",
                       "number", "managed_by_group", "managed by group", "portfolio_status", "service_status",
                       "vendor"))

_REL_PARENT, _REL_TYPE, _REL_CHILD = name_key("parent"), name_key("type"), name_key("child")
_REL_UNREAD = set(_keys("sys_id", "connection_strength", "connection strength", "port", "percent_outage",
                        "percent outage", "sys_updated_on", "updated", "sys_created_on", "created", "sys_updated_by",
                        "sys_created_by", "sys_mod_count", "parent.sys_class_name", "child.sys_class_name",
                        "parent class", "child class"))
# cmdb_rel_ci types imported as a dependency of the parent on the child (see docs/DESIGN.md); a
# "Depends on::Used by" row whose child is an asset rather than a service is a service_assets row
# (itscm/workbook/plan.py decides, knowing the store).
DEPENDENCY_TYPES = {"depends on::used by", "uses::used by"}
# cmdb_rel_ci types that say a service runs on an asset: always service_assets rows.
ASSET_RELATION_TYPES = {"runs on::runs": "runs on", "hosted on::hosts": "hosted on"}
# The split-off service_assets rows of a relationship export are read as a source of their own.
SPLIT_SOURCE_OFFSET = 1_000_000

# ServiceNow CI list exports (cmdb_ci and its classes: cmdb_ci_server, cmdb_ci_appl,
# cmdb_ci_db_instance, ...): field names (CSV) or labels (XLSX). A column only a CI carries tells
# it from a service list (which has the same name, class and status columns).
_CI_MARKERS = set(_keys("last_discovered", "most recent discovery", "first_discovered", "first discovered",
                        "discovery_source", "discovery source", "ip_address", "ip address", "fqdn", "host_name",
                        "host name", "serial_number", "serial number", "asset_tag", "asset tag", "model_id",
                        "model id", "manufacturer", "os", "operating system", "cpu_count", "cpu count", "ram",
                        "install_directory", "install directory", "tcp_port", "tcp port(s)", "instance_name",
                        "dns_domain", "dns domain"))
_CI_CLASS = _keys("sys_class_name", "class")
_CI_DISCOVERED = _keys("last_discovered", "most recent discovery")
_CI_UNREAD = set(_keys("sys_id", "sys_updated_on", "updated", "sys_created_on", "created", "sys_updated_by",
                       "sys_created_by", "first_discovered", "first discovered", "discovery_source",
                       "discovery source", "ip_address", "ip address", "fqdn", "host_name", "host name",
                       "serial_number", "serial number", "model_id", "model id", "manufacturer", "os",
                       "operating system", "os_version", "os version", "cpu_count", "cpu count", "ram",
                       "install_directory", "install directory", "tcp_port", "tcp port(s)", "instance_name",
                       "dns_domain", "dns domain", "support_group", "support group", "managed_by", "managed by",
                       "assigned_to", "assigned to", "company", "department", "short_description", "description",
                       "environment", "version", "vendor", "used_for", "used for", "busines_criticality",
                       "business criticality", "cost_center", "cost center", "category", "subcategory",
                       "comments"))

# Snipe-IT's custom asset report (ReportsController::postCustom, English labels).
_SNIPE_TAG = _keys("asset tag")
_SNIPE_MARKERS = set(_keys("asset name", "category", "model", "model no.", "status", "last audit",
                           "next audit date", "serial", "manufacturer", "checked out", "default location",
                           "order number", "purchased", "eol"))
_SNIPE_UNREAD = set(_keys("company", "model", "model no.", "manufacturer", "serial", "purchased", "cost",
                          "purchase cost", "eol", "order number", "default location", "address", "city", "state",
                          "country", "zip", "checked out", "type", "username", "employee no.", "manager",
                          "department", "title", "warranty", "warranty expires", "value", "diff",
                          "fully depreciated", "checkout date", "expected checkin date", "created at", "updated at",
                          "deleted", "next audit date", "notes"))

# ciso-assistant's asset export (backend/core/views.py AssetViewSet.export_config; older releases
# wrote fewer columns under the same names).
_CISO_MARKERS = set(_keys("disaster_recovery_objectives", "security_objectives", "parent_assets",
                          "security_capabilities", "recovery_capabilities", "is a business function ?",
                          "business_value"))
_CISO_UNREAD = set(_keys("internal_id", "description", "ref_id", "asset_class", "folder", "security_objectives",
                         "security_capabilities", "recovery_capabilities", "link", "reference_link",
                         "parent_assets", "labels", "filtering_labels", "observation", "is a business function ?",
                         "business_value"))
_CISO_OBJECTIVES = {"rto": "rto_minutes", "rpo": "rpo_minutes", "mtd": "mtpd_minutes"}


@dataclass
class Recognised:
    """A header row recognised: which sheet it fills, and how."""
    format: str
    sheet: Sheet
    match: HeaderMatch
    special: dict[str, int] = field(default_factory=dict)   # role -> position of a column `prepare` reads
    unread: list[str] = field(default_factory=list)          # known columns deliberately not imported


@dataclass(frozen=True)
class _Field:
    field: str
    unit: str | None = None   # a duration's unit, or "day" for an amount per day


def _match(sheet: Sheet, header: list[str | None], names: dict[str, _Field], special: dict[str, tuple[str, ...]],
           unread: set[str]) -> Recognised:
    columns: dict[int, Column] = {}
    units: dict[str, str] = {}
    ignored, repeated, known = [], [], []
    found: dict[str, int] = {}
    for position, text in enumerate(header):
        if text is None or not str(text).strip():
            continue
        key = name_key(text)
        role = next((role for role, keys in special.items() if key in keys), None)
        if role is not None:
            if role in found:
                repeated.append(str(text))
            else:
                found[role] = position
            continue
        target, unit = names.get(key), None
        if target is None:
            # "RTO (hours)": the unit from the header; "Cost per day (EUR)": a currency in brackets
            # says nothing about the column.
            base, unit = header_unit(str(text))
            if unit is None:
                base = re.sub(r"\s*[(\[][^)\]]*[)\]]\s*$", "", base)
            target = names.get(name_key(base))
            kind = sheet.column(target.field).kind if target is not None else None
            if kind != DURATION and unit is not None:
                target = None   # "Owner (days)" is not the owner column
        if target is None:
            (known if key in unread else ignored).append(str(text))
            continue
        column = sheet.column(target.field)
        if column in columns.values():
            repeated.append(str(text))
            continue
        columns[position] = column
        if column.kind == DURATION:
            units[column.field] = unit or target.unit or "minutes"
        elif column.kind == MONEY and target.unit:
            units[column.field] = target.unit
    return Recognised("", sheet, HeaderMatch(columns, units, ignored, repeated), found, known)


def _names(**groups: tuple[tuple[str, ...], _Field]) -> dict[str, _Field]:
    names: dict[str, _Field] = {}
    for keys, target in groups.values():
        for key in keys:
            names.setdefault(key, target)
    return names


_BIA_NAMES = _names(name=(_SERVICE_NAME, _Field("name")), rto=(_RTO, _Field("rto_minutes")),
                    rpo=(_RPO, _Field("rpo_minutes")), mtpd=(_MTPD, _Field("mtpd_minutes")),
                    hour=(_PER_HOUR, _Field("impact_cost_per_hour")),
                    day=(_PER_DAY, _Field("impact_cost_per_hour", "day")), tier=(_TIER, _Field("tier")),
                    owner=(_OWNER, _Field("owner")), unit=(_keys("business unit", "department", "division"),
                                                           _Field("unit")),
                    strategy=(_keys("recovery strategy", "strategy"), _Field("recovery_strategy")))
_SN_NAMES = _names(name=(_keys("name"), _Field("name")), tier=(_SN_CRITICALITY, _Field("tier")),
                   owner=(_keys("owned_by", "owned by"), _Field("owner")),
                   rto=(_keys("u_rto", "rto", "u_recovery_time_objective", "recovery time objective"),
                        _Field("rto_minutes")),
                   rpo=(_keys("u_rpo", "rpo", "u_recovery_point_objective", "recovery point objective"),
                        _Field("rpo_minutes")),
                   mtpd=(_keys("u_mtpd", "u_mtd", "u_mao", "mtpd", "mtd"), _Field("mtpd_minutes")))
_CISO_NAMES = _names(name=(_keys("name"), _Field("name")), owner=(_keys("owners", "owner"), _Field("owner")))
_CI_NAMES = _names(name=(_keys("name"), _Field("name")), tag=(_keys("asset_tag", "asset tag"), _Field("asset_id")),
                   location=(_keys("location"), _Field("location")),
                   owner=(_keys("owned_by", "owned by"), _Field("owner")))
_SNIPE_NAMES = _names(location=(_keys("location"), _Field("location")), supplier=(_keys("supplier"),
                                                                                  _Field("supplier")))


def recognise(header: list[str | None], named: Sheet | None) -> Recognised | None:
    """The format of a header row; `named` is the inventory sheet the file or tab is named after,
    if any (it wins over a business impact analysis, not over a distinctive export)."""
    keys = {name_key(text) for text in header if text is not None and str(text).strip()}
    if keys & set(_SNIPE_TAG) and keys & _SNIPE_MARKERS:
        found = _match(SHEETS_BY_NAME["assets"], header, _SNIPE_NAMES,
                       {"tag": _SNIPE_TAG, "name": _keys("asset name"), "category": _keys("category"),
                        "status": _keys("status"), "audit": _keys("last audit")}, _SNIPE_UNREAD)
        found.format = SNIPE_IT_ASSETS
        return found
    if name_key("name") in keys and keys & _CI_MARKERS:
        found = _match(SHEETS_BY_NAME["assets"], header, _CI_NAMES,
                       {"class": _CI_CLASS, "operational": _SN_OPERATIONAL, "install": _SN_INSTALL,
                        "discovered": _CI_DISCOVERED}, _CI_UNREAD)
        found.format = SERVICENOW_CIS
        return found
    if {_REL_PARENT, _REL_TYPE, _REL_CHILD} <= keys:
        names = {_REL_PARENT: _Field("service"), _REL_CHILD: _Field("depends_on")}
        found = _match(SHEETS_BY_NAME["dependencies"], header, names, {"type": (_REL_TYPE,)}, _REL_UNREAD)
        found.format = SERVICENOW_RELATIONSHIPS
        return found
    if name_key("name") in keys and name_key("type") in keys and keys & _CISO_MARKERS:
        found = _match(SHEETS_BY_NAME["services"], header, _CISO_NAMES,
                       {"type": _keys("type"), "objectives": _keys("disaster_recovery_objectives")}, _CISO_UNREAD)
        found.format = CISO_ASSISTANT_ASSETS
        return found
    if name_key("name") in keys and len(keys & _SN_MARKERS) >= 2:
        found = _match(SHEETS_BY_NAME["services"], header, _SN_NAMES,
                       {"operational": _SN_OPERATIONAL, "install": _SN_INSTALL, "used_for": _SN_USED_FOR},
                       _SN_UNREAD)
        found.format = SERVICENOW_SERVICES
        return found
    if named is not None:
        return None
    found = _match(SHEETS_BY_NAME["services"], header, _BIA_NAMES, {}, set())
    fields = {column.field for column in found.match.columns.values()}
    if "name" in fields and fields & {"rto_minutes", "rpo_minutes", "mtpd_minutes", "impact_cost_per_hour"}:
        found.format = BUSINESS_IMPACT_ANALYSIS
        return found
    return None


# -- row rules, on the cells read ----------------------------------------------------------------

# ServiceNow's operational_status and install_status choices (labels and stored values) -> lifecycle.
_OPERATIONAL = {"operational": "live", "non-operational": "live", "non operational": "live",
                "repair in progress": "live", "dr standby": "live", "ready": "live", "pipeline": "live",
                "catalog": "live", "retired": "retired", "1": "live", "2": "live", "3": "live", "4": "live",
                "5": "live", "6": "retired", "7": "live", "8": "live"}
_INSTALL = {"installed": "live", "on order": "live", "in maintenance": "live", "pending install": "live",
            "pending repair": "live", "in stock": "live", "retired": "retired", "stolen": "live", "absent": "live",
            "in use": "live", "1": "live", "2": "live", "3": "live", "4": "live", "5": "live", "6": "live",
            "7": "retired", "8": "live", "100": "live"}


def _cells(con, src: int, positions: list[int]) -> list[tuple[int, int, str]]:
    return con.execute("SELECT row_no, col_no, text FROM wb_cells WHERE src = $src AND row_no > 1 "
                       "AND list_contains($cols, col_no) AND trim(text) <> '' ORDER BY row_no, col_no",
                       {"src": src, "cols": positions}).fetchall()


def _add_column(con, source, header: str, column: Column, unit: str | None, values: dict[int, str]) -> None:
    """A column made from others: its cells written after the file's own, read as `column`."""
    position = len(source.header)
    source.header.append(header)
    source.match.columns[position] = column
    if unit:
        source.match.units[column.field] = unit
    rows = sorted(values)
    if not rows:
        return
    con.execute("INSERT INTO wb_cells SELECT $src, unnest($rows), $col, 's', unnest($texts), TRUE",
                {"src": source.src, "rows": rows, "col": position, "texts": [values[row] for row in rows]})


def _drop_rows(con, source, rows: list[int]) -> None:
    if rows:
        con.execute("DELETE FROM wb_cells WHERE src = $src AND list_contains($rows, row_no)",
                    {"src": source.src, "rows": rows})
        source.rows -= len(rows)


def _row_list(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:SHOWN_ROWS]))
    return shown + (f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else "")


def _servicenow_services(con, result, source, found: Recognised) -> None:
    special = found.special
    if "used_for" in special:
        for row_no, _, text in _cells(con, source.src, [special["used_for"]]):
            if name_key(text) != "production":
                result.problem(source, row_no, source.header[special["used_for"]], "warning",
                               "used for something other than production; the service is imported all the same",
                               text.strip())
    statuses = [special[role] for role in ("operational", "install") if role in special]
    if not statuses:
        return
    # A row is retired when either status says so; an unknown status is kept as written, so that the
    # lifecycle column refuses it with its reason; otherwise it is live.
    said: dict[int, list[str]] = {}
    for row_no, col_no, text in _cells(con, source.src, statuses):
        table = _OPERATIONAL if col_no == special.get("operational") else _INSTALL
        said.setdefault(row_no, []).append(table.get(name_key(text), text.strip()))
    lifecycle = {row_no: "retired" if "retired" in values else next((v for v in values if v != "live"), "live")
                 for row_no, values in said.items()}
    header = " / ".join(str(source.header[position]) for position in statuses)
    _add_column(con, source, header, source.sheet.column("lifecycle"), None, lifecycle)


def _servicenow_relationships(con, result, source, found: Recognised) -> None:
    if "type" not in found.special:
        result.problem(source, 1, None, "error", "the relationship export has no type column")
        return
    position = found.special["type"]
    typed = {row_no: text.strip() for row_no, _, text in _cells(con, source.src, [position])}
    rows_below = [row for (row,) in con.execute("SELECT DISTINCT row_no FROM wb_cells WHERE src = $src AND "
                                                "row_no > 1 ORDER BY row_no", {"src": source.src}).fetchall()]
    skipped: dict[str, list[int]] = {}
    on_assets: dict[int, str] = {}
    for row_no in rows_below:
        kind = typed.get(row_no, "")
        key = re.sub(r"\s+", " ", kind).lower()
        if key in ASSET_RELATION_TYPES:
            on_assets[row_no] = ASSET_RELATION_TYPES[key]
        elif key not in DEPENDENCY_TYPES:
            skipped.setdefault(kind, []).append(row_no)
    for kind, rows in sorted(skipped.items()):
        reason = (f"{len(rows)} relationship(s) of type {kind!r} not imported (only 'Depends on::Used by' and "
                  "'Uses::Used by' are dependencies, and 'Runs on::Runs' and 'Hosted on::Hosts' say what a "
                  "service runs on): rows " if kind else
                  f"{len(rows)} relationship(s) without a type not imported: rows ") + _row_list(rows)
        result.problem(source, rows[0], source.header[position], "warning", reason, kind or None)
    if on_assets:
        _split_asset_rows(con, result, source, on_assets)
    _drop_rows(con, source, [row for rows in skipped.values() for row in rows] + sorted(on_assets))


def _split_asset_rows(con, result, source, relations: dict[int, str]) -> None:
    """The rows saying a service runs on or is hosted on a CI, read as service_assets rows: a
    source of their own over the same file, with the relation as a column."""
    from itscm.workbook.read import Source  # read.py imports this module

    sheet = SHEETS_BY_NAME["service_assets"]
    columns = {position: column.field for position, column in source.match.columns.items()}
    parent = next(position for position, field_name in columns.items() if field_name == "service")
    child = next(position for position, field_name in columns.items() if field_name == "depends_on")
    rows = sorted(relations)
    split = Source(SPLIT_SOURCE_OFFSET + source.src, source.file, source.format, source.title, sheet,
                   [source.header[parent], source.header[child], "relation"],
                   HeaderMatch({0: sheet.column("service"), 1: sheet.column("asset"), 2: sheet.column("relation")},
                               {}, [], []), len(rows), source.reader, blank_keeps=True)
    con.execute("""
        INSERT INTO wb_cells SELECT $split, row_no, CASE col_no WHEN $parent THEN 0 ELSE 1 END, kind, text, TRUE
        FROM wb_cells WHERE src = $src AND list_contains($rows, row_no) AND col_no IN ($parent, $child)
    """, {"split": split.src, "src": source.src, "rows": rows, "parent": parent, "child": child})
    con.execute("INSERT INTO wb_cells SELECT $split, unnest($rows), 2, 's', unnest($texts), TRUE",
                {"split": split.src, "rows": rows, "texts": [relations[row] for row in rows]})
    result.sources.append(split)


_ASSET_CLASS_WORDS = (   # the first class whose words appear in a category or CI class wins
    ("database", r"\bdb\b|database|sql|oracle|postgres|mysql|mongo|db2|sybase"),
    ("network", r"network|netgear|router|switch|firewall|load balancer|\blb\b|\bwan\b|\blan\b"),
    ("cloud service", r"cloud|saas|paas|iaas|\baws\b|azure|\bgcp\b"),
    ("site", r"data ?cent(er|re)|datacenter|\bsite\b|building|facility|\blocation\b"),
    ("server", r"server|\bhost\b|\bvm\b|virtual|hypervisor|esx|\bcomputer\b|mainframe"),
    ("application", r"\bappl\b|application|software|\bapp\b"),
)


def asset_class(raw: str) -> str:
    """The asset class a Snipe-IT category or a ServiceNow class (field name or label) says:
    server, database, application, network, cloud service, site, else other."""
    words = name_key(raw)
    return next((name for name, pattern in _ASSET_CLASS_WORDS if re.search(pattern, words)), "other")


# Snipe-IT writes a status as "name (meta)": meta is deployable, deployed, pending, undeployable
# or archived (AssetPresenter::statusMeta). Archived assets are retired; the rest exist.
_SNIPE_RETIRED = {"archived"}


def _snipe_lifecycle(status: str) -> str:
    meta = re.search(r"\(([^()]*)\)\s*$", status)
    word = name_key(meta[1] if meta else status)
    return "retired" if word in _SNIPE_RETIRED else "live"


def _texts(con, source, role_position: int | None) -> dict[int, str]:
    if role_position is None:
        return {}
    return {row_no: text.strip() for row_no, _, text in _cells(con, source.src, [role_position])}


def _snipe_it_assets(con, result, source, found: Recognised) -> None:
    special = found.special
    tags = _texts(con, source, special.get("tag"))
    names = _texts(con, source, special.get("name"))
    sheet = source.sheet
    _add_column(con, source, source.header[special["tag"]], sheet.column("asset_id"), None, tags)
    if "name" in special or tags:
        # An asset without a name in Snipe-IT is known by its tag.
        _add_column(con, source, source.header[special["name"]] if "name" in special else "Asset Tag (as name)",
                    sheet.column("name"), None, {row: names.get(row) or tag for row, tag in tags.items()}
                    | {row: name for row, name in names.items() if row not in tags})
    if "category" in special:
        categories = _texts(con, source, special["category"])
        header = source.header[special["category"]]
        _add_column(con, source, header, sheet.column("class_raw"), None, categories)
        _add_column(con, source, f"{header} (class)", sheet.column("asset_class"), None,
                    {row: asset_class(text) for row, text in categories.items()})
    if "status" in special:
        statuses = _texts(con, source, special["status"])
        header = source.header[special["status"]]
        _add_column(con, source, header, sheet.column("status_raw"), None, statuses)
        _add_column(con, source, f"{header} (lifecycle)", sheet.column("lifecycle"), None,
                    {row: _snipe_lifecycle(text) for row, text in statuses.items()})
    if "audit" in special:
        audits = _texts(con, source, special["audit"])
        header = source.header[special["audit"]]
        _add_column(con, source, header, sheet.column("last_verified"), None, audits)
        _add_column(con, source, f"{header} (how)", sheet.column("verified_by"), None,
                    {row: "audit" for row in audits})


def _servicenow_cis(con, result, source, found: Recognised) -> None:
    special = found.special
    sheet = source.sheet
    if "class" in special:
        classes = _texts(con, source, special["class"])
        header = source.header[special["class"]]
        _add_column(con, source, header, sheet.column("class_raw"), None, classes)
        _add_column(con, source, f"{header} (class)", sheet.column("asset_class"), None,
                    {row: asset_class(text.removeprefix("cmdb_ci_")) for row, text in classes.items()})
    statuses = [special[role] for role in ("install", "operational") if role in special]
    if statuses:
        said: dict[int, list[str]] = {}
        raw: dict[int, str] = {}
        for row_no, col_no, text in _cells(con, source.src, statuses):
            table = _OPERATIONAL if col_no == special.get("operational") else _INSTALL
            said.setdefault(row_no, []).append(table.get(name_key(text), text.strip()))
            raw.setdefault(row_no, text.strip())   # the install status when there is one
        header = " / ".join(str(source.header[position]) for position in statuses)
        _add_column(con, source, header, sheet.column("status_raw"), None, raw)
        _add_column(con, source, f"{header} (lifecycle)", sheet.column("lifecycle"), None,
                    {row: "retired" if "retired" in values else next((v for v in values if v != "live"), "live")
                     for row, values in said.items()})
    if "discovered" in special:
        discovered = _texts(con, source, special["discovered"])
        header = source.header[special["discovered"]]
        _add_column(con, source, header, sheet.column("last_verified"), None, discovered)
        _add_column(con, source, f"{header} (how)", sheet.column("verified_by"), None,
                    {row: "discovery" for row in discovered})


def _objectives(text: str) -> tuple[dict[str, str], list[str]]:
    """ciso-assistant's disaster recovery objectives cell -> {rto|rpo|mtd: duration text}, and what
    could not be read. The export writes "rto: 4h,rpo: 02m,mtd: 1h30m" (Asset.
    get_disaster_recovery_objectives_display); the stored JSON, {"objectives": {"rto": {"value":
    14400}}}, holds seconds."""
    text = text.strip()
    if text.startswith("{"):
        try:
            objectives = json.loads(text).get("objectives", {})
            return ({key: f"{item['value']} seconds" for key, item in objectives.items()
                     if isinstance(item, dict) and item.get("value") is not None}, [])
        except (ValueError, AttributeError, TypeError):
            return {}, [text]
    found, unread = {}, []
    for part in re.split(r"[,;\n]", text):
        key, colon, value = part.partition(":")
        if colon and value.strip():
            found[key.strip().lower()] = value.strip()
        elif part.strip():
            unread.append(part.strip())
    return found, unread


def _ciso_assets(con, result, source, found: Recognised) -> None:
    special = found.special
    if "type" in special:
        position = special["type"]
        typed = {row_no: text.strip() for row_no, _, text in _cells(con, source.src, [position])}
        rows_below = [row for (row,) in con.execute("SELECT DISTINCT row_no FROM wb_cells WHERE src = $src AND "
                                                    "row_no > 1 ORDER BY row_no", {"src": source.src}).fetchall()]
        supporting = [row for row in rows_below if typed.get(row, "").upper() in ("SP", "SUPPORT", "SUPPORTING")]
        unknown = [row for row in rows_below if typed.get(row, "").upper() not in
                   ("SP", "SUPPORT", "SUPPORTING", "PR", "PRIMARY")]
        if supporting:
            result.problem(source, supporting[0], source.header[position], "warning",
                           f"{len(supporting)} supporting asset(s) (type SP) not imported: they are the "
                           "servers, applications and sites a service runs on (assets come later); rows "
                           + _row_list(supporting), "SP")
        if unknown:
            result.problem(source, unknown[0], source.header[position], "warning",
                           f"{len(unknown)} asset(s) of an unknown type (neither PR nor SP) not imported: rows "
                           + _row_list(unknown), typed.get(unknown[0]))
        _drop_rows(con, source, supporting + unknown)
    if "objectives" not in special:
        return
    position = special["objectives"]
    by_objective: dict[str, dict[int, str]] = {key: {} for key in _CISO_OBJECTIVES}
    for row_no, _, text in _cells(con, source.src, [position]):
        objectives, unread = _objectives(text)
        for key, value in objectives.items():
            if key in by_objective:
                by_objective[key][row_no] = value
            else:
                unread.append(f"{key}: {value}")
        if unread:
            result.problem(source, row_no, source.header[position], "warning",
                           "part of the objectives not read (rto, rpo and mtd are)", "; ".join(unread))
    for key, field_name in _CISO_OBJECTIVES.items():
        if by_objective[key]:
            _add_column(con, source, f"{source.header[position]} ({key})", source.sheet.column(field_name),
                        "minutes", by_objective[key])


PREPARE: dict[str, Callable] = {SERVICENOW_SERVICES: _servicenow_services,
                                SERVICENOW_RELATIONSHIPS: _servicenow_relationships,
                                CISO_ASSISTANT_ASSETS: _ciso_assets, SNIPE_IT_ASSETS: _snipe_it_assets,
                                SERVICENOW_CIS: _servicenow_cis}


def prepare(con, result, source, found: Recognised) -> None:
    """Apply the format's row rules to the source's cells, and say what was recognised."""
    rule = PREPARE.get(found.format)
    if rule is not None:
        rule(con, result, source, found)
    note = f"{source.file}" + (f" ({source.title})" if source.title != source.file else "") \
        + f": read as {LABELS[found.format]}"
    if found.unread:
        note += "; columns not imported: " + ", ".join(found.unread)
    result.notes.append(note + ".")
