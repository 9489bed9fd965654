"""The monthly incident rollup and the derived columns it reads: how they are built, kept current
and checked, and how a period is read from them: one module owns all of it.

Derived columns. At 10M incidents, joining incidents to services on integer keys and reading a
stored outage end is several times faster than joining on text ids and recomputing it per query
(docs/PERFORMANCE.md). Services carry a `service_key`, made here, never by a sequence (a DuckLake
catalog has none: docs/DESIGN.md §10.2); incidents carry their service's key, `outage_end` (restored_at,
else resolved_at, an estimate), `rta_minutes` and `active_until`.

The rollup. `incident_months` holds, per service key (or unmatched name) and calendar month, what
the period measures need from incidents: outage and breach seconds clipped to the month, and for
the incidents opened in the month their attainment counts. A period's whole months are read from
it, only the days around them from incidents (`period_params`, `period_events_sql`,
`period_outages_sql`). Durations are raw seconds, so a service's BIA cost, unit or tier can change
without touching it; the counts that depend on the RTO are recomputed for a service whose RTO
changed (`incident_month_rtos` records the RTO each service's rows were computed with).

Upkeep is explicit: a writer that changes what the rollup summarises says so inside its own
transaction, and a write that changes none of it (a role grant, a target) pays nothing.
- `after_incidents_changed`: a writer that knows the incident versions it wrote and replaced
  (import, undo, a mapped service name); the change is added, or its months rebuilt when cheaper.
- `after_services_changed`: services added, or their RTOs changed.
- `refresh`: a writer that cannot say; a stamp of every incident's facts and every service key
  tells whether anything changed, month fingerprints (`incident_month_marks`) which months.
- `rebuild`: everything from scratch (a store just migrated, the demo).
`differences` compares all of it with a full rebuild (`python -m itscm verify`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from itscm import ducklake
from itscm.incident_columns import DERIVED_FROM

if TYPE_CHECKING:  # the store imports this module to fill a migrated store
    from itscm.filters import Filters
    from itscm.store import Store

# -- derived columns ---------------------------------------------------------------------------


def derived_values_sql(alias: str) -> dict[str, str]:
    """The derived incident columns as expressions over `alias`'s facts, for writers that fill
    them as they write. service_key needs a join with services."""
    end = f"coalesce({alias}.restored_at, {alias}.resolved_at)"
    return {
        "outage_end": end,
        "rta_minutes": f"epoch({end} - {alias}.opened_at) / 60.0",
        "active_until": f"coalesce({alias}.restored_at, {alias}.resolved_at, {alias}.closed_at, 'infinity'::TIMESTAMP)",
    }


_EXPECTED = derived_values_sql("incidents")

# Services without a key get the next free ones.
_KEY_NEW_SERVICES_SQL = """
    UPDATE services SET service_key = fresh.service_key
    FROM (
        SELECT service_id,
               (SELECT coalesce(max(service_key), 0) FROM services)
                   + row_number() OVER (ORDER BY service_id) AS service_key
        FROM services WHERE service_key IS NULL
    ) AS fresh
    WHERE services.service_id = fresh.service_id
"""

# Every derived column brought to what the facts give, touching only the rows that differ.
_DERIVED_COLUMNS_SQL = [
    _KEY_NEW_SERVICES_SQL,
    """
    UPDATE incidents SET service_key = s.service_key
    FROM services s
    WHERE s.service_id = incidents.service_id AND incidents.service_key IS DISTINCT FROM s.service_key
    """,
    # no service, or one that is gone: no key (a key left behind could be given to a new service)
    """
    UPDATE incidents SET service_key = NULL
    WHERE service_key IS NOT NULL AND (service_id IS NULL OR service_id NOT IN (SELECT service_id FROM services))
    """,
    f"""
    UPDATE incidents SET outage_end = {_EXPECTED["outage_end"]}, rta_minutes = {_EXPECTED["rta_minutes"]}
    WHERE outage_end IS DISTINCT FROM {_EXPECTED["outage_end"]}
       OR rta_minutes IS DISTINCT FROM {_EXPECTED["rta_minutes"]}
    """,
    f"""
    UPDATE incidents SET active_until = {_EXPECTED["active_until"]}
    WHERE active_until IS DISTINCT FROM {_EXPECTED["active_until"]}
    """,
]

# -- what the rollup holds ---------------------------------------------------------------------

BANDS = range(1, 7)


def ratio_band_sql(rta: str, rto: str) -> str:
    """The RTA/RTO band of an event, 1..6 (attainment.RATIO_BANDS); NULL without an RTO."""
    ratio = f"({rta} / nullif({rto}, 0))"
    return (f"CASE WHEN {ratio} <= 0.5 THEN 1 WHEN {ratio} <= 1 THEN 2 WHEN {ratio} <= 1.5 THEN 3 "
            f"WHEN {ratio} <= 2 THEN 4 WHEN {ratio} <= 4 THEN 5 WHEN {ratio} > 4 THEN 6 END")


def overlap_seconds_sql(start: str, end: str, lo: str, hi: str) -> str:
    """Seconds of [start, end) inside [lo, hi), never negative; NULL when end is NULL."""
    # least() and greatest() skip NULLs, so an unknown end is tested first.
    return (f"CASE WHEN {end} IS NOT NULL "
            f"THEN greatest(epoch(least({end}, {hi})) - epoch(greatest({start}, {lo})), 0) END")


def breach_seconds_sql(opened: str, end: str, rto: str, lo: str, hi: str) -> str:
    """Seconds past opened + RTO of [opened, end) inside [lo, hi); NULL without an RTO."""
    return (f"CASE WHEN {rto} IS NOT NULL AND {end} IS NOT NULL THEN greatest(epoch(least({end}, {hi})) "
            f"- greatest(epoch({opened}) + 60 * {rto}, epoch({lo})), 0) END")


# The rule's parts as the readers of a period take them: parameters (Filters.query_params), which
# DuckDB folds into the expression, instead of three subqueries per scanned row.
RULE_AS_PARAMETERS = {"max_priority": "$event_max_priority", "marked_major": "$event_marked_major",
                      "outage_past_rto": "$event_outage_past_rto"}
# ... and as the rollup's writers and `verify` take them: from the rule's one-row table, so that
# their SQL needs no parameter and a rebuild always follows the stored rule.
RULE_FROM_TABLE = {part: f"(SELECT {part} FROM continuity_event_rule)" for part in RULE_AS_PARAMETERS}


def continuity_event_sql(priority: str, major: str, opened: str, outage_end: str, active_until: str, rto: str,
                         rule: dict[str, str] = RULE_AS_PARAMETERS) -> str:
    """Whether an incident is a continuity event by the store's rule (docs/DESIGN.md §17): its
    priority is 1 to the rule's max_priority, or, when the rule says so, the source marked it
    major, or its outage lasts longer than its service's RTO (to its end; without one, to its
    close; still open: it is running). Never NULL, so that it can key the rollup. Arguments are
    constant SQL; `rule` says where the rule's parts come from."""
    return (f"(coalesce({priority} <= {rule['max_priority']}, FALSE) "
            f"OR coalesce({major} AND {rule['marked_major']}, FALSE) "
            f"OR coalesce({rule['outage_past_rto']} "
            f"AND coalesce({outage_end}, {active_until}) > {opened} + to_minutes({rto}::BIGINT), FALSE))")


# A hash per incident of what the rollup reads, reduced modulo a prime so that the sums of any
# number of incidents stay a BIGINT (it survives a Parquet backup, which has no 128-bit integers).
_FINGERPRINT_SQL = """
    (hash(service_key, service_id IS NULL, CASE WHEN service_id IS NULL THEN service_name END,
          opened_at, outage_end, restored_at IS NULL, priority, major, active_until) % 4294967291)::BIGINT
"""


def _marks_sql(where: str = "TRUE", incidents: str = "incidents") -> str:
    """Month marks of the incidents the `where` condition keeps: per month opened, how many, the
    sum of their fingerprints and the last month any of them reached. Constant SQL only."""
    return f"""
    SELECT month, count(*) AS incidents, sum(fingerprint)::BIGINT AS fingerprint,
           greatest(month, coalesce(max(date_trunc('month', outage_end))::DATE, month)) AS last_month
    FROM (SELECT date_trunc('month', opened_at)::DATE AS month, outage_end, {_FINGERPRINT_SQL} AS fingerprint
          FROM {incidents} WHERE {where})
    GROUP BY month
"""


MONTH_MARKS_SQL = _marks_sql()  # the marks of every stored incident, as a rebuild makes them

_BAND = ratio_band_sql("rta_minutes", "rto_minutes")


def _rollup_rows_from(src: str, months: str, weight: str = "1") -> str:
    """Rollup rows of the incidents `src` selects (service_key, unmatched, unmatched_name,
    continuity, opened_at, outage_end, rta_minutes, estimated, rto_minutes, opened_month and the
    `weight` column), for the months the `months` condition keeps. Constant SQL only, never user text."""
    # Each piece's month end and conditions are computed once, and the sums are plain sums of
    # CASE (no FILTER per aggregate): a month's calendar arithmetic and thirteen filters per row
    # were most of the cost of rebuilding a month, which every large import pays.
    return f"""
WITH src AS (SELECT *, opened_month + INTERVAL 1 MONTH AS opened_month_end FROM ({src})),
pieces AS (
    SELECT *, opened_month AS month, opened_month_end AS month_end FROM src
    WHERE outage_end IS NULL OR outage_end <= opened_month_end
    UNION ALL
    SELECT * EXCLUDE (spanned), spanned AS month, spanned + INTERVAL 1 MONTH AS month_end FROM (
        SELECT *, unnest(generate_series(opened_month, outage_end, INTERVAL 1 MONTH)) AS spanned FROM src
        WHERE outage_end > opened_month_end
    )
),
facts AS (
    SELECT service_key, unmatched, unmatched_name, continuity, month, {weight} AS weight,
           -- the weight of an incident opened in this month with an outage end, else 0
           CASE WHEN month = opened_month AND outage_end IS NOT NULL THEN {weight} ELSE 0 END AS opened_here,
           estimated, rta_minutes <= rto_minutes AS attained, outage_end IS NULL AS no_end, {_BAND} AS band,
           {overlap_seconds_sql("opened_at", "outage_end", "month", "month_end")} AS outage_seconds,
           {breach_seconds_sql("opened_at", "outage_end", "rto_minutes", "month", "month_end")} AS breach_seconds
    FROM pieces
    WHERE {months}
)
SELECT service_key, unmatched, unmatched_name, continuity, month::DATE AS month,
       sum(opened_here)::INTEGER AS opened,
       sum(CASE WHEN estimated THEN opened_here ELSE 0 END)::INTEGER AS estimated,
       sum(CASE WHEN attained THEN opened_here ELSE 0 END)::INTEGER AS attained,
       sum(CASE WHEN no_end THEN weight ELSE 0 END)::INTEGER AS no_end,
       {", ".join(f"sum(CASE WHEN band = {k} THEN opened_here ELSE 0 END)::INTEGER AS band_{k}" for k in BANDS)},
       coalesce(sum(weight * outage_seconds), 0) AS outage_seconds,
       coalesce(sum(weight * breach_seconds), 0) AS breach_seconds
FROM facts
GROUP BY ALL
"""


_ROLLUP_SRC_COLUMNS = f"""
    i.service_key, i.service_id IS NULL AS unmatched, CASE WHEN i.service_id IS NULL THEN i.service_name END
    AS unmatched_name, i.opened_at, i.outage_end, i.rta_minutes, i.restored_at IS NULL AS estimated, s.rto_minutes,
    date_trunc('month', i.opened_at) AS opened_month,
    {continuity_event_sql("i.priority", "i.major", "i.opened_at", "i.outage_end", "i.active_until", "s.rto_minutes",
                          RULE_FROM_TABLE)} AS continuity
"""


def _stored_incident_rows_sql(where: str, months: str, incidents: str = "incidents") -> str:
    """Rollup rows of the stored incidents the `where` condition keeps (on `i`), for the months
    the `months` condition keeps. Constant SQL only."""
    return _rollup_rows_from(f"""
        SELECT {_ROLLUP_SRC_COLUMNS}
        FROM {incidents} i LEFT JOIN services s ON s.service_key = i.service_key
        WHERE {where}
    """, months)


FULL_ROLLUP_SQL = _stored_incident_rows_sql("TRUE", "TRUE")  # the rollup as a rebuild makes it
# The rows of the months listed in $months: every incident active in [$lo, $hi).
_MONTHS_ROWS_SQL = _stored_incident_rows_sql(
    "i.opened_at < $hi AND i.active_until >= $lo", "list_contains($months::DATE[], month::DATE)")
# The rows of the services in the temp table rollup_keys, outside the months listed in $months.
_KEYS_ROWS_SQL = _stored_incident_rows_sql(
    "i.service_key IN (SELECT service_key FROM rollup_keys)", "NOT list_contains($months::DATE[], month::DATE)")

_RECORD_RTOS_SQL = [
    "DELETE FROM incident_month_rtos",
    "INSERT INTO incident_month_rtos SELECT service_key, rto_minutes FROM services WHERE service_key IS NOT NULL",
]

# -- the facts stamp ---------------------------------------------------------------------------
#
# What every derived value and rollup row is computed from, as one cheap stamp, stored with the
# rollup: when it has not moved, no incident fact or service key changed since the rollup was
# last brought up to date, and `refresh` has nothing to search for. Stored as
# "<incidents>:<sum of their fact hashes>/<services>:<sum of their key hashes>".

_INCIDENT_FACTS_HASH = f"""
    (hash({", ".join(DERIVED_FROM)}) % 4294967291)::BIGINT
"""
_INCIDENT_FACTS_STAMP_SQL = f"""
SELECT count(*) || ':' || coalesce(sum({_INCIDENT_FACTS_HASH}), 0)::BIGINT FROM incidents
"""
_SERVICE_KEYS_STAMP_SQL = """
SELECT count(*) || ':' || coalesce(sum((hash(service_id, service_key) % 4294967291)::BIGINT), 0) FROM services
"""
STAMP_KEY = "derived_facts_stamp"  # its key in store_meta


def _stored_stamp(cursor) -> str | None:
    rows = cursor.execute("SELECT value FROM store_meta WHERE key = $key", {"key": STAMP_KEY}).fetchall()
    return rows[0][0] if rows else None


def _incidents_stamp(cursor) -> str:
    return cursor.execute(_INCIDENT_FACTS_STAMP_SQL).fetchall()[0][0]


def _services_stamp(cursor) -> str:
    return cursor.execute(_SERVICE_KEYS_STAMP_SQL).fetchall()[0][0]


def _store_stamp(cursor, stamp: str) -> None:
    cursor.execute("DELETE FROM store_meta WHERE key = $key", {"key": STAMP_KEY})
    cursor.execute("INSERT INTO store_meta VALUES ($key, $stamp)", {"key": STAMP_KEY, "stamp": stamp})


def _stamp_plus(stamp: str, count: int, total: int) -> str:
    """`stamp` with `count` incidents whose fact hashes sum to `total` added (signed)."""
    incidents_part, services_part = stamp.split("/")
    stored_count, stored_total = (int(part) for part in incidents_part.split(":"))
    return f"{stored_count + count}:{stored_total + total}/{services_part}"


def is_built(cursor) -> bool:
    """Whether the derived data was ever filled (its stamp is there)."""
    return _stored_stamp(cursor) is not None


# -- build -------------------------------------------------------------------------------------


def rebuild(cursor) -> None:
    """Every derived column, the rollup, its month marks, the RTOs it was computed with and the
    facts stamp, from scratch, inside the caller's transaction."""
    for statement in _DERIVED_COLUMNS_SQL:
        cursor.execute(statement)
    cursor.execute("DELETE FROM incident_month_marks")
    cursor.execute(f"INSERT INTO incident_month_marks {MONTH_MARKS_SQL}")
    cursor.execute("DELETE FROM incident_months")
    cursor.execute(f"INSERT INTO incident_months {FULL_ROLLUP_SQL}")
    for statement in _RECORD_RTOS_SQL:
        cursor.execute(statement)
    _store_stamp(cursor, f"{_incidents_stamp(cursor)}/{_services_stamp(cursor)}")


def after_continuity_rule_changed(cursor) -> None:
    """The rollup rows again, inside the caller's transaction, after the rule of which incidents
    are continuity events changed: every row's scope may have moved (a rare admin change, so a
    rebuild of the rows rather than bookkeeping). The marks and the stamp hold incident facts
    only, so they stand."""
    cursor.execute("DELETE FROM incident_months")
    cursor.execute(f"INSERT INTO incident_months {FULL_ROLLUP_SQL}")


# -- upkeep ------------------------------------------------------------------------------------

_ROLLUP_KEY_MATCH = """
    d.month = m.month AND d.unmatched = m.unmatched AND d.continuity = m.continuity
    AND d.service_key IS NOT DISTINCT FROM m.service_key
    AND d.unmatched_name IS NOT DISTINCT FROM m.unmatched_name
"""
_ROLLUP_SUMS = ", ".join(
    f"sum({c})::{t} AS {c}" for c, t in
    [("opened", "INTEGER"), ("estimated", "INTEGER"), ("attained", "INTEGER"), ("no_end", "INTEGER")]
    + [(f"band_{k}", "INTEGER") for k in BANDS] + [("outage_seconds", "DOUBLE"), ("breach_seconds", "DOUBLE")]
)


def after_incidents_changed(cursor, changes: str, params: dict | None = None) -> None:
    """Keep the rollup, its month marks and the facts stamp current for a writer that knows
    exactly which incident versions it wrote and which it replaced or deleted, inside its
    transaction, once the incidents are written (with their derived columns: see
    `derived_values_sql`).

    `changes` selects service_id, service_name, opened_at, restored_at, resolved_at, closed_at,
    priority (DERIVED_FROM) and sign (+1 for a version written, -1 for one replaced or deleted); constant SQL, values as
    parameters. The rollup, the marks and the stamp are all sums over incidents, so a change is
    added, not recomputed; a change too large for that has its months rebuilt instead."""
    stamp = _stored_stamp(cursor)
    if stamp is None:  # never filled: nothing to add to
        refresh(cursor)
        return
    # Adding costs about as much per changed incident as rebuilding a month costs per incident in
    # it: when the change outnumbers the incidents already stored in the months it touches (a
    # first import into a young store), rebuilding those months is the cheaper way.
    # One pass over the change tells both, and what either needs.
    changed, stored_there, signed_count, signed_total, opened_months = cursor.execute(f"""
        WITH c AS (
            SELECT count(*) AS changed, coalesce(sum(sign), 0)::BIGINT AS signed_count,
                   coalesce(sum(sign * {_INCIDENT_FACTS_HASH}), 0)::BIGINT AS signed_total,
                   list(DISTINCT date_trunc('month', opened_at)::DATE) AS opened_months
            FROM ({changes})
        )
        SELECT changed,
               (SELECT coalesce(sum(incidents), 0) FROM incident_month_marks
                WHERE list_contains(c.opened_months, month)),
               signed_count, signed_total, opened_months
        FROM c
    """, params or {}).fetchall()[0]
    if not changed:
        return
    if changed > stored_there:
        _rebuild_opened_months(cursor, opened_months)
    else:
        _add_change(cursor, changes, params or {})
    _store_stamp(cursor, _stamp_plus(stamp, signed_count, signed_total))


def _add_change(cursor, changes: str, params: dict) -> None:
    """The change's own rollup rows and month marks, signed, added to the stored ones."""
    end = derived_values_sql("c")
    cursor.execute(f"""
        CREATE OR REPLACE TEMP TABLE rollup_changes AS
        SELECT c.*, k.service_key, {end["outage_end"]} AS outage_end, {end["rta_minutes"]} AS rta_minutes,
               {end["active_until"]} AS active_until
        FROM ({changes}) c LEFT JOIN services k ON k.service_id = c.service_id
    """, params)
    try:
        # marks: per opened-month count and fingerprint, added; last_month can only grow
        cursor.execute(f"""
            CREATE OR REPLACE TEMP TABLE rollup_marks_new AS
            SELECT month, sum(incidents)::BIGINT AS incidents, sum(fingerprint)::BIGINT AS fingerprint,
                   max(last_month) AS last_month
            FROM (
                SELECT * FROM incident_month_marks
                WHERE month IN (SELECT DISTINCT date_trunc('month', opened_at)::DATE FROM rollup_changes)
                UNION ALL
                SELECT month, sum(sign), sum(sign * fingerprint),
                       greatest(month, coalesce(max(date_trunc('month', outage_end))::DATE, month))
                FROM (SELECT date_trunc('month', opened_at)::DATE AS month, sign, outage_end,
                             {_FINGERPRINT_SQL} AS fingerprint FROM rollup_changes)
                GROUP BY month
            )
            GROUP BY month HAVING sum(incidents) <> 0
        """)
        cursor.execute("""
            DELETE FROM incident_month_marks
            WHERE month IN (SELECT DISTINCT date_trunc('month', opened_at)::DATE FROM rollup_changes)
        """)
        cursor.execute("INSERT INTO incident_month_marks SELECT * FROM rollup_marks_new")
        delta = _rollup_rows_from(f"""
            SELECT {_ROLLUP_SRC_COLUMNS}, i.sign
            FROM rollup_changes i LEFT JOIN services s ON s.service_key = i.service_key
        """, "TRUE", weight="sign")
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE rollup_delta AS {delta}")
        cursor.execute(f"""
            CREATE OR REPLACE TEMP TABLE rollup_rows_new AS
            SELECT service_key, unmatched, unmatched_name, continuity, month, {_ROLLUP_SUMS}
            FROM (
                SELECT m.* FROM incident_months m WHERE EXISTS (SELECT 1 FROM rollup_delta d WHERE {_ROLLUP_KEY_MATCH})
                UNION ALL
                SELECT * FROM rollup_delta
            )
            GROUP BY ALL
        """)
        cursor.execute(
            f"DELETE FROM incident_months m WHERE EXISTS (SELECT 1 FROM rollup_delta d WHERE {_ROLLUP_KEY_MATCH})")
        cursor.execute("INSERT INTO incident_months SELECT * FROM rollup_rows_new")
    finally:
        for table in ("rollup_changes", "rollup_marks_new", "rollup_delta", "rollup_rows_new"):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _rebuild_opened_months(cursor, opened_months: list[dt.date]) -> None:
    """The rollup rows and month marks of a large change, rebuilt from the incidents as written,
    for the months it touched only: the months its versions (written or replaced) were opened in,
    and every month an incident opened in them reaches, before or after the change."""
    if not opened_months:
        return
    lo = dt.datetime.combine(min(opened_months), dt.time())
    hi = dt.datetime.combine(_next_month(max(opened_months)), dt.time())
    cursor.execute(f"""
        CREATE OR REPLACE TEMP TABLE rollup_marks_now AS
        SELECT * FROM ({_marks_sql("opened_at >= $lo AND opened_at < $hi")})
        WHERE list_contains($months::DATE[], month)
    """, {"lo": lo, "hi": hi, "months": opened_months})
    try:
        spans = cursor.execute("""
            SELECT m.month, greatest(m.month, coalesce(n.last_month, m.month), coalesce(o.last_month, m.month))
            FROM (SELECT unnest($months::DATE[]) AS month) m
            LEFT JOIN rollup_marks_now n ON n.month = m.month
            LEFT JOIN incident_month_marks o ON o.month = m.month
        """, {"months": opened_months}).fetchall()
        months = sorted({month for first, last in spans for month in _month_list(first, last)})
        cursor.execute("DELETE FROM incident_month_marks WHERE list_contains($months::DATE[], month)",
                       {"months": opened_months})
        cursor.execute("INSERT INTO incident_month_marks SELECT * FROM rollup_marks_now")
    finally:
        cursor.execute("DROP TABLE IF EXISTS rollup_marks_now")
    _rebuild_months(cursor, months)


def _rebuild_months(cursor, months: list[dt.date]) -> None:
    """The rollup rows of `months` (sorted), from the incidents as stored."""
    cursor.execute("DELETE FROM incident_months WHERE list_contains($months::DATE[], month)", {"months": months})
    cursor.execute(f"INSERT INTO incident_months {_MONTHS_ROWS_SQL}", {
        "lo": dt.datetime.combine(months[0], dt.time()),
        "hi": dt.datetime.combine(_next_month(months[-1]), dt.time()),
        "months": months,
    })


def after_services_changed(cursor) -> None:
    """Keep the derived data current for a writer that added services or changed their RTOs,
    inside its transaction: a new service gets the next free key, and the rollup rows of a
    service whose RTO changed are recomputed (those of its incidents only)."""
    stamp = _stored_stamp(cursor)
    unkeyed = cursor.execute("SELECT list(service_id) FROM services WHERE service_key IS NULL").fetchall()[0][0]
    if stamp is None or (unkeyed and cursor.execute(
            "SELECT count(*) FROM incidents WHERE list_contains($ids, service_id)", {"ids": unkeyed}
    ).fetchall()[0][0]):
        refresh(cursor)  # never filled, or incidents already name a service that had no key
        return
    if unkeyed:
        cursor.execute(_KEY_NEW_SERVICES_SQL)
        _store_stamp(cursor, f"{stamp.split('/')[0]}/{_services_stamp(cursor)}")
    _recompute_changed_rtos(cursor, rebuilt=[])


def _recompute_changed_rtos(cursor, *, rebuilt: list[dt.date]) -> None:
    """The rollup rows of every service whose RTO differs from the one its rows were computed
    with (or that is new or gone), outside the months just `rebuilt` (with the current RTOs)."""
    cursor.execute("""
        CREATE OR REPLACE TEMP TABLE rollup_keys AS
        SELECT coalesce(s.service_key, r.service_key) AS service_key
        FROM (SELECT service_key, rto_minutes FROM services WHERE service_key IS NOT NULL) s
        FULL JOIN incident_month_rtos r ON r.service_key = s.service_key
        WHERE s.service_key IS NULL OR r.service_key IS NULL OR s.rto_minutes IS DISTINCT FROM r.rto_minutes
    """)
    try:
        if not cursor.execute("SELECT count(*) FROM rollup_keys").fetchall()[0][0]:
            return
        untouched = cursor.execute(
            "SELECT count(*) FROM incident_month_marks WHERE NOT list_contains($months::DATE[], month)",
            {"months": rebuilt},
        ).fetchall()[0][0]
        if untouched:  # else every month was just rebuilt with the current RTOs
            cursor.execute(
                "DELETE FROM incident_months WHERE service_key IN (SELECT service_key FROM rollup_keys) "
                "AND NOT list_contains($months::DATE[], month)", {"months": rebuilt})
            cursor.execute(f"INSERT INTO incident_months {_KEYS_ROWS_SQL}", {"months": rebuilt})
        for statement in _RECORD_RTOS_SQL:
            cursor.execute(statement)
    finally:
        cursor.execute("DROP TABLE IF EXISTS rollup_keys")


def refresh(cursor) -> None:
    """Bring every derived column and the rollup up to date, inside the caller's transaction, for
    a writer that cannot say what it changed (a test's builder, a restore). When the facts stamp
    has not moved this is a few cheap reads; when it has, the derived columns are refreshed and the
    months whose incidents changed (by their fingerprints) rebuilt, with every month an old or new
    version of a changed incident spanned."""
    incidents_stamp = _incidents_stamp(cursor)
    rebuilt: list[dt.date] = []
    if f"{incidents_stamp}/{_services_stamp(cursor)}" != _stored_stamp(cursor):
        for statement in _DERIVED_COLUMNS_SQL:
            cursor.execute(statement)
        rebuilt = _rebuild_months_that_changed(cursor)
        # the incidents' facts are as they were; services may have new keys
        _store_stamp(cursor, f"{incidents_stamp}/{_services_stamp(cursor)}")
    _recompute_changed_rtos(cursor, rebuilt=rebuilt)


def _rebuild_months_that_changed(cursor) -> list[dt.date]:
    """Compare the fingerprint of each opened-month's incidents with the one recorded, rebuild
    the months that changed and every month their incidents reached; returns those months."""
    now = cursor.execute(
        f"SELECT count(*), coalesce(sum({_FINGERPRINT_SQL}), 0)::BIGINT FROM incidents").fetchall()[0]
    marked = cursor.execute(
        "SELECT coalesce(sum(incidents), 0)::BIGINT, coalesce(sum(fingerprint), 0)::BIGINT FROM incident_month_marks"
    ).fetchall()[0]
    if now == marked:
        return []
    cursor.execute(f"CREATE OR REPLACE TEMP TABLE rollup_marks_now AS {MONTH_MARKS_SQL}")
    try:
        changed = cursor.execute("""
            SELECT coalesce(n.month, o.month), n.last_month, o.last_month
            FROM rollup_marks_now n FULL JOIN incident_month_marks o ON o.month = n.month
            WHERE n.incidents IS DISTINCT FROM o.incidents OR n.fingerprint IS DISTINCT FROM o.fingerprint
               OR n.last_month IS DISTINCT FROM o.last_month
        """).fetchall()
        months: set[dt.date] = set()
        for month, new_last, old_last in changed:
            months.update(_month_list(month, max(d for d in (month, new_last, old_last) if d is not None)))
        cursor.execute("DELETE FROM incident_month_marks")
        cursor.execute("INSERT INTO incident_month_marks SELECT * FROM rollup_marks_now")
    finally:
        cursor.execute("DROP TABLE IF EXISTS rollup_marks_now")
    rebuilt = sorted(months)
    if rebuilt:
        _rebuild_months(cursor, rebuilt)
    return rebuilt


def _next_month(day: dt.date) -> dt.date:
    """The first day of the month after `day`'s: a date for a date, midnight for a datetime."""
    return type(day)(day.year + day.month // 12, day.month % 12 + 1, 1)


def _month_list(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first day of every month from `first`'s to `last`'s."""
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


# -- verify ------------------------------------------------------------------------------------

# The incidents with their derived columns as their facts give them, as a rebuild stores them.
_INCIDENTS_FROM_FACTS = f"""(
    SELECT i.* REPLACE ({", ".join(f"{sql} AS {name}" for name, sql in derived_values_sql("i").items())},
                        s.service_key AS service_key)
    FROM incidents i LEFT JOIN services s ON s.service_id = i.service_id
)"""
_ROLLUP_FROM_FACTS_SQL = _stored_incident_rows_sql("TRUE", "TRUE", _INCIDENTS_FROM_FACTS)
_MARKS_FROM_FACTS_SQL = _marks_sql(incidents=_INCIDENTS_FROM_FACTS)

_SECONDS_AGREE = "abs(coalesce(a.{c}, 0) - coalesce(b.{c}, 0)) <= 0.001 + 1e-9 * abs(coalesce(b.{c}, 0))"
_ROLLUP_COUNTS = ["opened", "estimated", "attained", "no_end", *(f"band_{k}" for k in BANDS)]
_ROLLUP_DIFFERS = " OR ".join(
    [f"coalesce(a.{c}, 0) <> coalesce(b.{c}, 0)" for c in _ROLLUP_COUNTS]
    + [f"NOT ({_SECONDS_AGREE.format(c=c)})" for c in ("outage_seconds", "breach_seconds")]
)
_ROLLUP_BY_KEY = f"""
    SELECT service_key, unmatched, unmatched_name, continuity, month,
           {", ".join(f"sum({c}) AS {c}" for c in [*_ROLLUP_COUNTS, "outage_seconds", "breach_seconds"])}
    FROM ({{rows}}) GROUP BY ALL
"""
# Rows of the stored rollup that differ from a full rebuild, per month. A row of zeros is the same
# as no row (taking a change off can leave one), and several stored rows of one key are summed, as
# the measures read them.
_ROLLUP_DIFFERENCES_SQL = f"""
    SELECT coalesce(a.month, b.month) AS month, count(*) AS rows
    FROM ({_ROLLUP_BY_KEY.format(rows="SELECT * FROM incident_months")}) a
    FULL JOIN ({_ROLLUP_BY_KEY.format(rows=_ROLLUP_FROM_FACTS_SQL)}) b
      ON a.month = b.month AND a.unmatched = b.unmatched AND a.continuity = b.continuity
     AND a.service_key IS NOT DISTINCT FROM b.service_key
     AND a.unmatched_name IS NOT DISTINCT FROM b.unmatched_name
    WHERE {_ROLLUP_DIFFERS}
    GROUP BY ALL ORDER BY month
"""
# Month marks that differ from a rebuild's. A mark's last month may lie later than its incidents
# now reach (a change added to the marks can raise a maximum, not lower it): that only widens a
# later rebuild. Earlier would leave a month out of one.
_MARKS_DIFFERENCES_SQL = f"""
    SELECT coalesce(a.month, b.month) AS month
    FROM incident_month_marks a FULL JOIN ({_MARKS_FROM_FACTS_SQL}) b ON a.month = b.month
    WHERE a.incidents IS DISTINCT FROM b.incidents OR a.fingerprint IS DISTINCT FROM b.fingerprint
       OR a.last_month IS NULL OR b.last_month IS NULL OR a.last_month < b.last_month
    ORDER BY 1
"""
_RTO_DIFFERENCES_SQL = """
    SELECT count(*) FROM (SELECT service_key, rto_minutes FROM services WHERE service_key IS NOT NULL) s
    FULL JOIN incident_month_rtos r ON r.service_key = s.service_key
    WHERE s.service_key IS NULL OR r.service_key IS NULL OR s.rto_minutes IS DISTINCT FROM r.rto_minutes
"""
_DERIVED_COLUMN_DIFFERENCES_SQL = f"""
    SELECT count(*) FILTER (WHERE i.service_key IS DISTINCT FROM s.service_key),
           {", ".join(f"count(*) FILTER (WHERE i.{name} IS DISTINCT FROM {sql})"
                      for name, sql in derived_values_sql("i").items())}
    FROM incidents i LEFT JOIN services s ON s.service_id = i.service_id
"""


def differences(cursor) -> list[dict]:
    """Where the derived columns and the rollup differ from what a full rebuild would make of the
    facts (services' and incidents' own columns) now: one dict per difference, {table, column or
    month or key, rows, what}; empty when all agree. Reads only (run it in a read transaction, so
    that it compares one committed state)."""
    found: list[dict] = []

    def differ(table: str, rows: int, what: str, **where) -> None:
        found.append({"table": table, **where, "rows": int(rows), "what": what})

    # Keys are surrogates, numbered afresh by a rebuild: what must hold is one per service, each its own.
    missing, doubled = cursor.execute(
        "SELECT count(*) FILTER (WHERE service_key IS NULL), count(service_key) - count(DISTINCT service_key) "
        "FROM services").fetchall()[0]
    if missing:
        differ("services", missing, "services without a service key", column="service_key")
    if doubled:
        differ("services", doubled, "service keys shared with another service", column="service_key")
    counts = cursor.execute(_DERIVED_COLUMN_DIFFERENCES_SQL).fetchall()[0]
    for column, rows in zip(["service_key", *derived_values_sql("i")], counts, strict=True):
        if rows:
            differ("incidents", rows, "incidents whose stored value differs from their facts", column=column)
    for month, rows in cursor.execute(_ROLLUP_DIFFERENCES_SQL).fetchall():
        differ("incident_months", rows, "rollup rows that differ from a full rebuild", month=month.isoformat())
    for (month,) in cursor.execute(_MARKS_DIFFERENCES_SQL).fetchall():
        differ("incident_month_marks", 1, "month mark that differs from a full rebuild", month=month.isoformat())
    rtos = cursor.execute(_RTO_DIFFERENCES_SQL).fetchall()[0][0]
    if rtos:
        differ("incident_month_rtos", rtos, "services whose recorded RTO differs from their RTO", column="rto_minutes")
    stamp = _stored_stamp(cursor)
    if stamp != f"{_incidents_stamp(cursor)}/{_services_stamp(cursor)}":
        differ("store_meta", 1, "the facts stamp is missing" if stamp is None else
               "the facts stamp differs from the incidents' facts and service keys", key=STAMP_KEY)
    return found


# -- reading a period --------------------------------------------------------------------------
#
# A period [period_start, period_end) is read as whole calendar months [body_start, body_end)
# from the rollup, and, from incidents, the pieces around them, each within one calendar month:
# the head (the days before the first whole month) and the tail (after the last) are added; when
# the last whole month runs past the period's end (the complement, see period_params), its days
# after the end are taken off. Constant guards ($body_end < $period_end ...) let DuckDB drop the
# scans of a piece a period does not have, and keep each scan's time range a constant, so that
# its zone maps skip the row groups outside it (the incidents are stored in time order).


def period_params(store: Store, filters: Filters) -> dict:
    """The period measures' parameters (Filters.query_params) plus the calendar months read from
    the rollup, [body_start, body_end). The head is computed from the incidents. The period's
    last, partial month is either computed from the incidents too (the tail), or, when that is the
    cheaper read, taken whole from the rollup less the days after the period's end (the
    complement): then body_end is past period_end. Without a whole month in the period it is all
    head."""
    start, end = filters.period_start, filters.period_end
    first = start if start.day == 1 else _next_month(start)
    last = end.replace(day=1)
    within_one_month = first > last
    partial_last_month = not within_one_month and last < end
    fewer_days_after = partial_last_month and _next_month(last) - end < end - last
    # Whether anything was recorded after the end decides it otherwise: read with the rule.
    ask = partial_last_month and not fewer_days_after
    params = filters.query_params(store, read_with=(_NOTHING_AFTER, _NOTHING_AFTER_SQL) if ask else None)
    nothing_after = bool(params.pop(_NOTHING_AFTER, False))
    if within_one_month:  # all head
        first = last = end
    elif fewer_days_after or nothing_after:
        last = _next_month(last)
    return {**params, "body_start": first, "body_end": last}


# The complement is also the cheaper read when no incident was opened, and no outage ended, at or
# after the period's end: as of today, nothing later has been recorded yet (the usual case). Two
# scans, so that each skips every row group by its own column's range.
_NOTHING_AFTER = "nothing_after"
_NOTHING_AFTER_SQL = """
(NOT EXISTS (SELECT 1 FROM incidents WHERE opened_at >= $period_end)
 AND NOT EXISTS (SELECT 1 FROM incidents WHERE outage_end >= $period_end))
"""


def incidents_scan(columns: str, where: str, *, few: bool = False, matched_only: bool = False) -> str:
    """SELECT service_key, unmatched, unmatched_name, <columns> FROM incidents WHERE <where>.

    Many rows, on a file: two scans, matched incidents without reading any text column (most of
    the cost of a scan there), the rest with the name they were logged under (filtering on the
    integer key: testing a text column for NULL reads all of it). On a lake one scan, as with
    `few`: there each scan costs a round of catalog queries, its file list, its delete files and
    one query per filtered column's statistics, more than decoding the names costs there (at 1M
    and at 10M incidents: docs/PERFORMANCE.md, 3 December). `few`: one scan, the text read for the
    rows kept. `matched_only`: the matched incidents alone, for figures unmatched ones never enter
    (events judged against an RTO, priced downtime). Incidents naming a service that no longer
    exists come out as neither matched nor unmatched, and no measure places them. Arguments are
    constant SQL."""
    matched = f"""
        SELECT service_key, FALSE AS unmatched, NULL::TEXT AS unmatched_name, {columns}
        FROM incidents WHERE service_key IS NOT NULL AND {where}
    """
    if matched_only:
        return matched
    one_scan = f"""
        SELECT service_key, service_id IS NULL AS unmatched,
               CASE WHEN service_id IS NULL THEN service_name END AS unmatched_name, {columns}
        FROM incidents WHERE {where}
    """
    if few:
        return one_scan
    # Folded like a constant: the branch the backend does not take is dropped before any read.
    on_lake = f"coalesce(getvariable('{ducklake.ON_DUCKLAKE_VARIABLE}'), FALSE)"
    return f"""
        SELECT * FROM ({matched}) WHERE NOT {on_lake}
        UNION ALL
        SELECT NULL::INTEGER, service_id IS NULL, service_name, {columns}
        FROM incidents WHERE NOT {on_lake} AND service_key IS NULL AND {where}
        UNION ALL
        SELECT * FROM ({one_scan}) WHERE {on_lake}
    """


@dataclass(frozen=True)
class _Piece:
    """Days of the period read from incidents, within one calendar month, added to the whole
    months (sign 1) or taken off them (sign -1). Bounds are SQL parameters."""
    start: str
    end: str
    sign: int
    guard: str          # a constant condition, false when the period has no such piece
    first: bool = False  # the period's first piece: what was under way when the period began counts here


_PIECES = (
    _Piece("$period_start", "$body_start", 1, "TRUE", first=True),        # the head
    _Piece("$body_end", "$period_end", 1, "$body_end < $period_end"),      # the tail
    _Piece("$period_end", "$body_end", -1, "$period_end < $body_end"),     # the complement
)


def _whole_months(columns: str, *, matched_only: bool, where: str = "TRUE") -> str:
    """The rollup rows of the period's whole months: service_key, unmatched, unmatched_name,
    continuity, month and `columns`. The month is compared as a date, so that the rollup's zone
    maps apply."""
    return f"""
        SELECT service_key, unmatched, unmatched_name, continuity, month, {columns}
        FROM incident_months
        WHERE month >= $body_start::DATE AND month < $body_end::DATE AND {where}
              {"AND service_key IS NOT NULL" if matched_only else ""}
    """


def period_events_sql(*, matched_only: bool = False) -> str:
    """The recovery events from incidents (docs/DESIGN.md §4.2): the incidents opened in the period
    whose outage ended by the as-of date (before $as_of_end). Per service key (or unmatched name),
    scope and month opened: service_key, unmatched, unmatched_name, continuity (whether they are
    continuity events, docs/DESIGN.md §17), month, events, estimated (ended at
    the resolve time), attained (RTA within the service's RTO; NULL or 0 without one), band_1 ..
    band_6 (the RTA/RTO band). Parameters: `period_params`. `matched_only`: the incidents of a
    matched service alone.

    The whole months hold every incident opened in them with an outage end: the head and tail add
    those opened in them, the complement takes off those opened after the period, and the whole
    months' incidents not recovered by the as-of date are taken off."""
    def scan(sign: int, where: str) -> str:
        return incidents_scan(f"opened_at, rta_minutes, restored_at IS NULL AS estimated, priority, major, outage_end, "
                              f"active_until, {sign} AS sign", where, matched_only=matched_only)

    scans = [scan(piece.sign, f"{piece.guard} AND opened_at >= {piece.start} AND opened_at < {piece.end} "
                              "AND outage_end < $as_of_end") for piece in _PIECES]
    scans.append(scan(-1, "opened_at >= $body_start AND opened_at < $body_end AND outage_end >= $as_of_end"))
    bands = ", ".join(f"band_{k}" for k in BANDS)
    return f"""
        {_whole_months(f"opened AS events, estimated, attained, {bands}", matched_only=matched_only,
                       where="opened > 0")}
        UNION ALL
        SELECT service_key, unmatched, unmatched_name, continuity, month, sign, sign * estimated, sign * attained,
               {", ".join(f"sign * (band = {k})::INTEGER" for k in BANDS)}
        FROM (   -- each event's RTA/RTO band computed once
            SELECT i.service_key, i.unmatched, i.unmatched_name,
                   {continuity_event_sql("i.priority", "i.major", "i.opened_at", "i.outage_end", "i.active_until",
                                         "s.rto_minutes")} AS continuity,
                   date_trunc('month', i.opened_at)::DATE AS month,
                   i.sign, i.estimated::INTEGER AS estimated, (i.rta_minutes <= s.rto_minutes)::INTEGER AS attained,
                   {ratio_band_sql("i.rta_minutes", "s.rto_minutes")} AS band
            FROM ({" UNION ALL ".join(scans)}) i LEFT JOIN services s ON s.service_key = i.service_key
        )
    """


def period_outages_sql(*, matched_only: bool = False) -> str:
    """The outages of the period as of the as-of date (docs/DESIGN.md §4.3), per service key (or
    unmatched name), scope and month: service_key, unmatched, unmatched_name, continuity (whether
    they are continuity events, docs/DESIGN.md §17), month,
      outages          ended outages counted there: opened that month, or, in the period's first
                       month, already under way when the period began;
      estimated        of which ended at the resolve time (an estimate);
      ongoing          incidents without an outage end still open at the as-of date (closed_at
                       missing or not before $as_of_end): their outage lasts to the period's end;
      closed           incidents without an outage end closed by the as-of date: no known length;
                       both counted in the month their time in the period starts;
      outage_seconds   time inside the period and the month of the ended and ongoing outages,
      breach_seconds   and of it the time past opened_at + the service's RTO.
    Parameters: `period_params`. `matched_only`: the incidents of a matched service alone."""
    def scan(columns: str, where: str, *, few: bool = False) -> str:
        return incidents_scan(columns, where, few=few, matched_only=matched_only)

    # Ended outages reaching into each piece: their time inside it; counted in the piece they
    # were opened in (the first piece also counts those under way when the period began).
    ended = " UNION ALL ".join(scan(
        f"opened_at, restored_at IS NULL AS estimated, outage_end, priority, major, active_until, "
        f"{piece.start} AS seg_start, {piece.end} AS seg_end, "
        f"date_trunc('month', {piece.start})::DATE AS month, "
        f"{'TRUE' if piece.first else f'opened_at >= {piece.start}'} AS counted, {piece.sign} AS sign",
        f"{piece.guard} AND opened_at < {piece.end} AND outage_end > {piece.start}") for piece in _PIECES)
    # Without an outage end: those opened in each piece (the first piece also takes those opened
    # before it and not closed by its start), ongoing or closed by the as-of date; and the whole
    # months', which the rollup counts as closed, those still ongoing moved to ongoing.
    still_open = "(active_until >= $as_of_end)::INTEGER"
    open_scans = [scan(
        f"opened_at, priority, major, active_until, {piece.sign} * {still_open} AS ongoing, "
        f"{piece.sign} * (1 - {still_open}) AS closed",
        f"outage_end IS NULL AND opened_at < {piece.end} AND active_until >= {piece.start}" if piece.first else
        f"{piece.guard} AND outage_end IS NULL AND opened_at >= {piece.start} AND opened_at < {piece.end}",
        few=True) for piece in _PIECES]
    open_scans.append(scan(
        "opened_at, priority, major, active_until, 1, -1",
        "outage_end IS NULL AND opened_at >= $body_start AND opened_at < $body_end AND active_until >= $as_of_end",
        few=True))
    open_continuity = continuity_event_sql("o.priority", "o.major", "o.opened_at", "NULL", "o.active_until",
                                           "s.rto_minutes")
    return f"""
    WITH ended AS ({ended}),
    open AS ({" UNION ALL ".join(open_scans)}),
    segments AS (   -- the period cut at month starts, for ongoing outages
        SELECT m::DATE AS month, greatest(m, $period_start) AS seg_start,
               least(m + INTERVAL 1 MONTH, $period_end) AS seg_end
        FROM range(date_trunc('month', $period_start), $period_end, INTERVAL 1 MONTH) t(m)
    )
    {_whole_months("opened AS outages, estimated, 0 AS ongoing, no_end AS closed, outage_seconds, breach_seconds",
                   matched_only=matched_only)}
    UNION ALL
    SELECT e.service_key, e.unmatched, e.unmatched_name,
           {continuity_event_sql("e.priority", "e.major", "e.opened_at", "e.outage_end", "e.active_until",
                                 "s.rto_minutes")},
           e.month, e.sign * e.counted::INTEGER, e.sign * (e.counted AND e.estimated)::INTEGER, 0, 0,
           e.sign * {overlap_seconds_sql("e.opened_at", "e.outage_end", "e.seg_start", "e.seg_end")},
           e.sign * coalesce({breach_seconds_sql("e.opened_at", "e.outage_end", "s.rto_minutes", "e.seg_start",
                                                 "e.seg_end")}, 0)
    FROM ended e LEFT JOIN services s ON s.service_key = e.service_key
    UNION ALL
    SELECT o.service_key, o.unmatched, o.unmatched_name, {open_continuity},
           date_trunc('month', greatest(o.opened_at, $period_start))::DATE, 0, 0, o.ongoing, o.closed, 0, 0
    FROM open o LEFT JOIN services s ON s.service_key = o.service_key
    UNION ALL
    -- ongoing outages last to the end of the period, through every month segment
    SELECT o.service_key, o.unmatched, o.unmatched_name, {open_continuity}, g.month, 0, 0, 0, 0,
           o.ongoing * {overlap_seconds_sql("o.opened_at", "$period_end", "g.seg_start", "g.seg_end")},
           o.ongoing * coalesce({breach_seconds_sql("o.opened_at", "$period_end", "s.rto_minutes", "g.seg_start",
                                                    "g.seg_end")}, 0)
    FROM open o JOIN segments g ON g.seg_end > o.opened_at
    LEFT JOIN services s ON s.service_key = o.service_key
    WHERE o.ongoing <> 0
    """
