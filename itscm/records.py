"""The continuity records kept day to day in the app: new services, dependencies, suppliers,
plans and their reviews (the continuity manager's), drills and their findings (the recovery
team's, docs/DESIGN.md §3b).

Each write takes the acting user first and checks their role (`@writes`, itscm/access.py), checks
every value (one-line `ChangeRefused`, itscm/checks.py), and writes the rows and their record in
change_log (who, when, before and after) in one transaction. Ids are made here from the names
(`svc-payments-gateway`, `-2` when taken), never by a sequence (docs/DESIGN.md §10.2). A service's
facts are edited and a service retired with `administration.edit_service`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from itscm import rollup
from itscm.access import Actor, writes
from itscm.administration import SERVICE, _log, _now, _unit_exists, checked_changes
from itscm.checks import ChangeRefused, day, one_of, text, whole_minutes
from itscm.measures.coverage import DRILL_TYPES_WEAKEST_FIRST
from itscm.store import Store

PLAN_STATUSES = ("draft", "approved", "retired")
DRILL_TYPES = tuple(DRILL_TYPES_WEAKEST_FIRST)
DRILL_OUTCOMES = ("passed", "partial", "failed")
FINDING_STATES = ("open", "closed", "risk accepted")
SUBSTITUTABILITY = ("easy", "hard", "none")   # the form's choices; stored as text, a workbook may say more


def _today(now: dt.datetime | None) -> dt.date:
    return _now(now).date()


def _slug(text_value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text_value or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40] or "x"


# The tables whose ids are made here, and their id columns: constant SQL, never the caller's text.
_ID_COLUMNS = {"services": "service_id", "suppliers": "supplier_id", "plans": "plan_id", "drills": "drill_id",
               "drill_findings": "finding_id"}


def _taken_ids(cursor, table: str, prefix: str) -> set[str]:
    column = _ID_COLUMNS[table]
    return {taken for (taken,) in cursor.execute(
        f"SELECT lower({column}) FROM {table} WHERE starts_with(lower({column}), $prefix)",
        {"prefix": prefix}).fetchall()}


def _made_id(cursor, table: str, prefix: str, base: str, also_taken: Iterable[str] = ()) -> str:
    """`prefix-slug(base)`, with -2, -3 ... when that is taken (ids compared in any case, as the
    workbook matches them)."""
    stem = f"{prefix}-{_slug(base)}"
    taken = _taken_ids(cursor, table, prefix + "-") | {made.lower() for made in also_taken}
    candidate, number = stem, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}-{number}"
    return candidate


def _one_row(cursor, sql: str, params: dict, missing: str) -> tuple:
    rows = cursor.execute(sql, params).fetchall()
    if not rows:
        raise ChangeRefused(missing)
    return rows[0]


def _service(cursor, service_id: str) -> tuple:
    """(service_id, name, lifecycle) of a service, or ChangeRefused."""
    return _one_row(cursor, "SELECT service_id, name, lifecycle FROM services WHERE service_id = $id",
                    {"id": service_id}, f"There is no service {service_id!r}.")


# -- services -------------------------------------------------------------------------------------


def _name_is_free(cursor, name: str) -> None:
    clash = cursor.execute(
        "SELECT service_id FROM services WHERE lifecycle = 'live' AND lower(trim(name)) = lower($name) LIMIT 1",
        {"name": name}).fetchall()
    if clash:
        raise ChangeRefused(f"A live service is already called {name!r} ({clash[0][0]}).")


@writes("continuity manager", "create a service")
def create_service(actor: Actor, store: Store, facts: dict, *, service_id: str | None = None,
                   now: dt.datetime | None = None) -> str:
    """A new service with `facts` (administration.SERVICE_FIELDS; name required, lifecycle live
    unless given); its id is made from the name unless given. Returns the id."""
    wanted = checked_changes(SERVICE, {"lifecycle": "live", **facts})
    if wanted.get("name") is None:
        raise ChangeRefused("Name cannot be empty.")
    given_id = text("Service id", service_id, longest=60)

    def write_in(cursor):
        _unit_exists(cursor, wanted)
        if wanted["lifecycle"] == "live":
            _name_is_free(cursor, wanted["name"])
        if given_id is None:
            new_id = _made_id(cursor, "services", "svc", wanted["name"])
        elif cursor.execute("SELECT count(*) FROM services WHERE lower(service_id) = lower($id)",
                            {"id": given_id}).fetchall()[0][0]:
            raise ChangeRefused(f"There is already a service {given_id!r}.")
        else:
            new_id = given_id
        row = {"service_id": new_id, **wanted}
        columns = list(row)   # SERVICE's own field names and service_id: never the caller's text
        cursor.execute(f"INSERT INTO services ({', '.join(columns)}) VALUES ({', '.join('$' + c for c in columns)})",
                       row)
        # a new service needs its key, and its RTO recorded for the rollup (itscm/rollup.py)
        rollup.after_services_changed(cursor)
        _log(cursor, actor.name, "create service", new_id, {}, row, _now(now))
        return new_id

    return store.write(write_in)


# -- dependencies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DependencyAdded:
    service_id: str
    depends_on_id: str
    cycle: list[str]   # service ids from the service back to itself through the new edge; empty: none

    @property
    def makes_a_cycle(self) -> bool:
        return bool(self.cycle)


def _shortest_chain(cursor, start: str, goal: str) -> list[str]:
    """The shortest chain of dependencies from `start` to `goal` (both included), or [] when
    there is none: breadth first over the edges, each service visited once, so a tangled graph
    costs one read of the edges and no more."""
    edges: dict[str, list[str]] = {}
    for service_id, depends_on_id in cursor.execute("SELECT service_id, depends_on_id FROM dependencies").fetchall():
        edges.setdefault(service_id, []).append(depends_on_id)
    came_from: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier and goal not in came_from:
        reached = []
        for node in frontier:
            for nxt in edges.get(node, ()):
                if nxt not in came_from:
                    came_from[nxt] = node
                    reached.append(nxt)
        frontier = reached
    if goal not in came_from:
        return []
    chain, node = [], goal
    while node is not None:
        chain.append(node)
        node = came_from[node]
    return chain[::-1]


def _optional_yes_no(label: str, value) -> bool | None:
    return one_of(label, value, (True, False, None))


@writes("continuity manager", "change the dependencies")
def add_dependency(actor: Actor, store: Store, service_id: str, depends_on_id: str, *,
                   has_alternative: bool | None = None, now: dt.datetime | None = None) -> DependencyAdded:
    """Record that `service_id` depends on `depends_on_id` (a failure spreads along it unless
    `has_alternative`). A cycle is allowed, as services do depend on each other, and returned."""
    has_alternative = _optional_yes_no("Has an alternative", has_alternative)
    if service_id == depends_on_id:
        raise ChangeRefused("A service cannot depend on itself.")

    def write_in(cursor):
        _service(cursor, service_id)
        _service(cursor, depends_on_id)
        if cursor.execute("SELECT count(*) FROM dependencies WHERE service_id = $s AND depends_on_id = $d",
                          {"s": service_id, "d": depends_on_id}).fetchall()[0][0]:
            raise ChangeRefused(f"{service_id} already depends on {depends_on_id}.")
        back = _shortest_chain(cursor, depends_on_id, service_id)
        cursor.execute("INSERT INTO dependencies (service_id, depends_on_id, has_alternative) VALUES ($s, $d, $alt)",
                       {"s": service_id, "d": depends_on_id, "alt": has_alternative})
        after = {"depends_on": depends_on_id, "has_alternative": has_alternative}
        _log(cursor, actor.name, "add dependency", service_id, {}, after, _now(now))
        return back

    back = store.write(write_in)
    return DependencyAdded(service_id, depends_on_id, [service_id, *back] if back else [])


@writes("continuity manager", "change the dependencies")
def remove_dependency(actor: Actor, store: Store, service_id: str, depends_on_id: str, *,
                      now: dt.datetime | None = None) -> None:
    def write_in(cursor):
        row = _one_row(cursor, "SELECT has_alternative FROM dependencies WHERE service_id = $s AND depends_on_id = $d",
                       {"s": service_id, "d": depends_on_id},
                       f"{service_id} does not depend on {depends_on_id}.")
        cursor.execute("DELETE FROM dependencies WHERE service_id = $s AND depends_on_id = $d",
                       {"s": service_id, "d": depends_on_id})
        _log(cursor, actor.name, "remove dependency", service_id,
             {"depends_on": depends_on_id, "has_alternative": row[0]}, {}, _now(now))

    store.write(write_in)


# -- suppliers ------------------------------------------------------------------------------------


@writes("continuity manager", "change the suppliers")
def add_supplier(actor: Actor, store: Store, name: str, *, contracted_recovery_minutes: int | None = None,
                 substitutability: str | None = None, contract_end: dt.date | str | None = None,
                 now: dt.datetime | None = None) -> str:
    """A new supplier, known by its name (any case, as the workbook knows it). Returns its id."""
    row = {
        "name": text("Supplier name", name, required=True),
        "contracted_recovery_minutes": whole_minutes("Contracted recovery time", contracted_recovery_minutes),
        "substitutability": text("Substitutability", substitutability, longest=60),
        "contract_end": day("Contract end", contract_end),
    }

    def write_in(cursor):
        clash = cursor.execute("SELECT supplier_id FROM suppliers WHERE lower(trim(name)) = lower($name) LIMIT 1",
                               {"name": row["name"]}).fetchall()
        if clash:
            raise ChangeRefused(f"There is already a supplier called {row['name']!r} ({clash[0][0]}).")
        supplier_id = _made_id(cursor, "suppliers", "sup", row["name"])
        cursor.execute("INSERT INTO suppliers (supplier_id, name, contracted_recovery_minutes, substitutability, "
                       "contract_end) VALUES ($id, $name, $minutes, $subst, $end)",
                       {"id": supplier_id, "name": row["name"], "minutes": row["contracted_recovery_minutes"],
                        "subst": row["substitutability"], "end": row["contract_end"]})
        _log(cursor, actor.name, "add supplier", supplier_id, {}, row, _now(now))
        return supplier_id

    return store.write(write_in)


def suppliers(store: Store) -> dict[str, str]:
    """supplier_id -> name, by name: the choices for linking a supplier."""
    return dict(store.rows("SELECT supplier_id, name FROM suppliers ORDER BY lower(name), supplier_id"))


def _linked(cursor, service_id: str, supplier_id: str) -> bool:
    return bool(cursor.execute("SELECT count(*) FROM service_suppliers WHERE service_id = $s AND supplier_id = $p",
                               {"s": service_id, "p": supplier_id}).fetchall()[0][0])


@writes("continuity manager", "change the suppliers")
def link_supplier(actor: Actor, store: Store, service_id: str, supplier_id: str, *,
                  now: dt.datetime | None = None) -> None:
    """Record that `service_id` relies on `supplier_id`."""

    def write_in(cursor):
        _service(cursor, service_id)
        _one_row(cursor, "SELECT name FROM suppliers WHERE supplier_id = $id", {"id": supplier_id},
                 f"There is no supplier {supplier_id!r}.")
        if _linked(cursor, service_id, supplier_id):
            raise ChangeRefused(f"{service_id} already relies on {supplier_id}.")
        cursor.execute("INSERT INTO service_suppliers (service_id, supplier_id) VALUES ($s, $p)",
                       {"s": service_id, "p": supplier_id})
        _log(cursor, actor.name, "link supplier", service_id, {}, {"supplier": supplier_id}, _now(now))

    store.write(write_in)


@writes("continuity manager", "change the suppliers")
def unlink_supplier(actor: Actor, store: Store, service_id: str, supplier_id: str, *,
                    now: dt.datetime | None = None) -> None:
    def write_in(cursor):
        if not _linked(cursor, service_id, supplier_id):
            raise ChangeRefused(f"{service_id} does not rely on {supplier_id}.")
        cursor.execute("DELETE FROM service_suppliers WHERE service_id = $s AND supplier_id = $p",
                       {"s": service_id, "p": supplier_id})
        _log(cursor, actor.name, "unlink supplier", service_id, {"supplier": supplier_id}, {}, _now(now))

    store.write(write_in)


# -- plans and reviews ----------------------------------------------------------------------------


def _plan(cursor, plan_id: str) -> tuple:
    """(service_id, status, approved_on) of a plan, or ChangeRefused."""
    return _one_row(cursor, "SELECT service_id, status, approved_on FROM plans WHERE plan_id = $id",
                    {"id": plan_id}, f"There is no plan {plan_id!r}.")


@writes("continuity manager", "change the plans")
def create_plan(actor: Actor, store: Store, service_id: str, title: str, *, owner: str | None = None,
                document_link: str | None = None, now: dt.datetime | None = None) -> str:
    """A draft plan of a service. Returns its id."""
    row = {"service_id": service_id, "title": text("Title", title, required=True),
           "owner": text("Owner", owner), "status": "draft",
           "document_link": text("Document link", document_link, longest=1000)}

    def write_in(cursor):
        _service(cursor, service_id)
        plan_id = _made_id(cursor, "plans", "plan", f"{service_id} {row['title']}")
        cursor.execute("INSERT INTO plans (plan_id, service_id, title, owner, status, document_link) "
                       "VALUES ($id, $service_id, $title, $owner, $status, $document_link)", {"id": plan_id, **row})
        _log(cursor, actor.name, "create plan", plan_id, {}, row, _now(now))
        return plan_id

    return store.write(write_in)


@writes("continuity manager", "change the plans")
def approve_plan(actor: Actor, store: Store, plan_id: str, *, approved_on: dt.date | str | None = None,
                 now: dt.datetime | None = None) -> None:
    """Approve a draft plan (or approve one again, on a later day): status approved, approved on
    `approved_on` (today unless given, never in the future)."""
    on = day("Approved on", approved_on, not_after=_today(now)) or _today(now)

    def write_in(cursor):
        _, status, was_on = _plan(cursor, plan_id)
        if status == "retired":
            raise ChangeRefused(f"Plan {plan_id} is retired; create a new plan instead.")
        if status == "approved" and was_on == on:
            raise ChangeRefused(f"Plan {plan_id} is already approved on {on.isoformat()}.")
        cursor.execute("UPDATE plans SET status = 'approved', approved_on = $on WHERE plan_id = $id",
                       {"on": on, "id": plan_id})
        _log(cursor, actor.name, "approve plan", plan_id, {"status": status, "approved_on": was_on},
             {"status": "approved", "approved_on": on}, _now(now))

    store.write(write_in)


@writes("continuity manager", "change the plans")
def retire_plan(actor: Actor, store: Store, plan_id: str, *, now: dt.datetime | None = None) -> None:
    """Retire a plan: it no longer counts for coverage or staleness; its history stays."""

    def write_in(cursor):
        _, status, _ = _plan(cursor, plan_id)
        if status == "retired":
            raise ChangeRefused(f"Plan {plan_id} is already retired.")
        cursor.execute("UPDATE plans SET status = 'retired' WHERE plan_id = $id", {"id": plan_id})
        _log(cursor, actor.name, "retire plan", plan_id, {"status": status}, {"status": "retired"}, _now(now))

    store.write(write_in)


@writes("continuity manager", "record a plan review")
def record_review(actor: Actor, store: Store, plan_id: str, reviewed_on: dt.date | str, *,
                  reviewed_by: str | None = None, outcome: str | None = None, notes: str | None = None,
                  now: dt.datetime | None = None) -> None:
    """A review of a plan, on a day not in the future, by `reviewed_by` (the acting user unless
    given). A plan's reviews are its history: staleness reads the latest one at each date."""
    row = {"plan_id": plan_id,
           "reviewed_on": day("Reviewed on", reviewed_on, required=True, not_after=_today(now)),
           "reviewed_by": text("Reviewed by", reviewed_by) or actor.name,
           "outcome": text("Outcome", outcome), "notes": text("Notes", notes, longest=2000)}

    def write_in(cursor):
        _, status, _ = _plan(cursor, plan_id)
        if status == "retired":
            raise ChangeRefused(f"Plan {plan_id} is retired; its reviews are history.")
        if cursor.execute("SELECT count(*) FROM plan_reviews WHERE plan_id = $plan_id AND reviewed_on = $reviewed_on "
                          "AND reviewed_by IS NOT DISTINCT FROM $reviewed_by",
                          {k: row[k] for k in ("plan_id", "reviewed_on", "reviewed_by")}).fetchall()[0][0]:
            raise ChangeRefused(f"{row['reviewed_by']} already recorded a review of {plan_id} on "
                                f"{row['reviewed_on'].isoformat()}.")
        cursor.execute("INSERT INTO plan_reviews (plan_id, reviewed_on, reviewed_by, outcome, notes) "
                       "VALUES ($plan_id, $reviewed_on, $reviewed_by, $outcome, $notes)", row)
        _log(cursor, actor.name, "record plan review", plan_id, {}, row, _now(now))

    store.write(write_in)


# -- drills and findings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    what: str
    owner: str | None = None
    due_on: dt.date | str | None = None


# drills.open_findings is the count the demo and older stores carry; kept equal to the drill's
# open findings whenever findings are written here.
_COUNT_OPEN_FINDINGS_SQL = """
    UPDATE drills SET open_findings = (
        SELECT count(*) FROM drill_findings f WHERE f.drill_id = drills.drill_id AND f.state = 'open')
    WHERE drill_id = $drill_id
"""


@writes("recovery team", "record a drill")
def record_drill(actor: Actor, store: Store, service_id: str, held_on: dt.date | str, drill_type: str,
                 outcome: str, *, plan_id: str | None = None, rta_minutes: int | None = None,
                 data_loss_minutes: int | None = None, findings: Iterable[Finding] = (),
                 now: dt.datetime | None = None) -> str:
    """A drill of a service (of one of its plans, or of none in particular) held on a day not in
    the future, with its findings, each open. Returns the drill's id."""
    drill = {"service_id": service_id, "plan_id": text("Plan", plan_id),
             "held_on": day("Held on", held_on, required=True, not_after=_today(now)),
             "drill_type": one_of("Drill type", drill_type, DRILL_TYPES),
             "outcome": one_of("Outcome", outcome, DRILL_OUTCOMES),
             "rta_minutes": whole_minutes("RTA", rta_minutes),
             "data_loss_minutes": whole_minutes("Data loss", data_loss_minutes)}
    found = [{"what": text(f"Finding {number}", finding.what, required=True, longest=1000),
              "owner": text(f"Owner of finding {number}", finding.owner),
              "due_on": day(f"Due date of finding {number}", finding.due_on)}
             for number, finding in enumerate(findings, start=1)]
    at = _now(now)

    def write_in(cursor):
        _service(cursor, service_id)
        if drill["plan_id"] is not None:
            plan_service, _, _ = _plan(cursor, drill["plan_id"])
            if plan_service != service_id:
                raise ChangeRefused(f"Plan {drill['plan_id']} is a plan of {plan_service}, not of {service_id}.")
        drill_id = _made_id(cursor, "drills", "drill", f"{service_id} {drill['held_on'].isoformat()}")
        cursor.execute(
            "INSERT INTO drills (drill_id, service_id, plan_id, held_on, drill_type, outcome, rta_minutes, "
            "data_loss_minutes, open_findings) VALUES ($id, $service_id, $plan_id, $held_on, $drill_type, $outcome, "
            "$rta_minutes, $data_loss_minutes, 0)", {"id": drill_id, **drill})
        made: list[str] = []
        for finding in found:
            finding_id = _made_id(cursor, "drill_findings", "finding", drill_id, also_taken=made)
            made.append(finding_id)
            cursor.execute(
                "INSERT INTO drill_findings (finding_id, drill_id, what, owner, due_on, state, recorded_by, "
                "recorded_at) VALUES ($id, $drill_id, $what, $owner, $due_on, 'open', $by, $at)",
                {"id": finding_id, "drill_id": drill_id, **finding, "by": actor.name, "at": at})
        cursor.execute(_COUNT_OPEN_FINDINGS_SQL, {"drill_id": drill_id})
        _log(cursor, actor.name, "record drill", drill_id, {},
             {**drill, "findings": [{"finding_id": i, **f} for i, f in zip(made, found, strict=True)]}, at)
        return drill_id

    return store.write(write_in)


@writes("recovery team", "change a finding")
def set_finding_state(actor: Actor, store: Store, finding_id: str, state: str, *,
                      now: dt.datetime | None = None) -> None:
    """Open, close or accept the risk of a drill's finding."""
    state = one_of("State", state, FINDING_STATES)
    at = _now(now)

    def write_in(cursor):
        drill_id, was = _one_row(cursor, "SELECT drill_id, state FROM drill_findings WHERE finding_id = $id",
                                 {"id": finding_id}, f"There is no finding {finding_id!r}.")
        if was == state:
            raise ChangeRefused(f"Finding {finding_id} is already {state}.")
        cursor.execute("UPDATE drill_findings SET state = $state, recorded_by = $by, recorded_at = $at "
                       "WHERE finding_id = $id", {"state": state, "by": actor.name, "at": at, "id": finding_id})
        cursor.execute(_COUNT_OPEN_FINDINGS_SQL, {"drill_id": drill_id})
        _log(cursor, actor.name, "change finding", finding_id, {"state": was}, {"state": state}, at)

    store.write(write_in)


def service_plans(store: Store, service_id: str) -> dict[str, str]:
    """plan_id -> 'title (status)' of a service's plans: the choices on its card's forms."""
    return {plan_id: f"{title or plan_id} ({status})" for plan_id, title, status in store.rows(
        "SELECT plan_id, title, status FROM plans WHERE service_id = $id ORDER BY status, plan_id",
        {"id": service_id})}
