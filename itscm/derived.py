"""Columns kept beside the facts they derive from, so the measures' hot paths stay cheap.

At 10M incidents, joining incidents to services on integer keys and reading a stored outage end
is several times faster than joining on text ids and recomputing it per query (see
docs/PERFORMANCE.md). Every write transaction of the store ends by bringing these columns up to
date (`Store.transaction`), so no writer, present or future, can leave them stale: a service
gets the next free `service_key`, and an incident whose service, restore or resolve time changed
gets its key, `outage_end` and `rta_minutes` again. When nothing changed, this finds nothing.
"""

from __future__ import annotations

import datetime as dt

DERIVED_SINCE_VERSION = 4  # the schema version that added these columns

REFRESH_DERIVED_SQL = [
    # Surrogate keys are made here, never by sequences: a DuckLake catalog has none (DESIGN 6).
    """
    UPDATE services SET service_key = fresh.service_key
    FROM (
        SELECT service_id,
               (SELECT coalesce(max(service_key), 0) FROM services)
                   + row_number() OVER (ORDER BY service_id) AS service_key
        FROM services WHERE service_key IS NULL
    ) AS fresh
    WHERE services.service_id = fresh.service_id
    """,
    """
    UPDATE incidents SET service_key = s.service_key
    FROM services s
    WHERE s.service_id = incidents.service_id AND incidents.service_key IS DISTINCT FROM s.service_key
    """,
    "UPDATE incidents SET service_key = NULL WHERE service_id IS NULL AND service_key IS NOT NULL",
    """
    UPDATE incidents
    SET outage_end = coalesce(restored_at, resolved_at),
        rta_minutes = epoch(coalesce(restored_at, resolved_at) - opened_at) / 60.0
    WHERE outage_end IS DISTINCT FROM coalesce(restored_at, resolved_at)
       OR rta_minutes IS DISTINCT FROM epoch(coalesce(restored_at, resolved_at) - opened_at) / 60.0
    """,
]

# Version 4 of the schema adds the columns; the same statements fill them for existing rows.
ADD_DERIVED_COLUMNS_SQL = """
ALTER TABLE services ADD COLUMN service_key INTEGER;
ALTER TABLE incidents ADD COLUMN service_key INTEGER;
ALTER TABLE incidents ADD COLUMN outage_end TIMESTAMP;     -- restored_at, else resolved_at (an estimate)
ALTER TABLE incidents ADD COLUMN rta_minutes DOUBLE;       -- outage_end - opened_at, in minutes
""" + ";\n".join(REFRESH_DERIVED_SQL) + ";\n"


def derived_values_sql(alias: str) -> dict[str, str]:
    """The derived incident columns as expressions over `alias`'s facts, for writers that fill
    them as they write (the refresh then finds nothing to do). service_key needs a join."""
    end = f"coalesce({alias}.restored_at, {alias}.resolved_at)"
    return {
        "outage_end": end,
        "rta_minutes": f"epoch({end} - {alias}.opened_at) / 60.0",
        "active_until": f"coalesce({alias}.restored_at, {alias}.resolved_at, {alias}.closed_at, 'infinity'::TIMESTAMP)",
    }


# What every derived value and rollup row is computed from, as one cheap stamp: when it has not
# moved since the last refresh, no incident fact or service key changed and the full-table
# refresh statements would find nothing (one pass over a few columns instead of several). Derived
# columns are written only by the refresh and by writers using `derived_values_sql`.
_INCIDENT_FACTS_HASH = """
    (hash(service_id, service_name, opened_at, restored_at, resolved_at, closed_at) % 4294967291)::BIGINT
"""
_INCIDENT_FACTS_STAMP_SQL = f"""
SELECT count(*) || ':' || coalesce(sum({_INCIDENT_FACTS_HASH}), 0)::BIGINT FROM incidents
"""
_SERVICE_KEYS_STAMP_SQL = """
SELECT count(*) || ':' || coalesce(sum((hash(service_id, service_key) % 4294967291)::BIGINT), 0) FROM services
"""
_STAMP_KEY = "derived_facts_stamp"


def refresh_derived(cursor) -> None:
    """Bring the derived columns, and the monthly rollup once the schema has it, up to date,
    inside the caller's transaction."""
    if not has_rollup(cursor):
        for statement in REFRESH_DERIVED_SQL:
            cursor.execute(statement)
        return
    incidents_stamp = cursor.execute(_INCIDENT_FACTS_STAMP_SQL).fetchall()[0][0]
    services_stamp = cursor.execute(_SERVICE_KEYS_STAMP_SQL).fetchall()[0][0]
    stored = cursor.execute("SELECT value FROM store_meta WHERE key = $key", {"key": _STAMP_KEY}).fetchall()
    changed = not stored or stored[0][0] != f"{incidents_stamp}/{services_stamp}"
    if changed:
        for statement in REFRESH_DERIVED_SQL:
            cursor.execute(statement)
        cursor.execute(REFRESH_ACTIVE_UNTIL_SQL)
    refresh_rollup(cursor, incidents_changed=changed)
    if changed:  # the refresh gives new services keys; the incidents' facts are as they were
        services_stamp = cursor.execute(_SERVICE_KEYS_STAMP_SQL).fetchall()[0][0]
        cursor.execute("DELETE FROM store_meta WHERE key = $key", {"key": _STAMP_KEY})
        cursor.execute("INSERT INTO store_meta VALUES ($key, $stamp)",
                       {"key": _STAMP_KEY, "stamp": f"{incidents_stamp}/{services_stamp}"})


# -- the monthly rollup ------------------------------------------------------------------------
#
# `incident_months` holds, per service key (or unmatched name) and calendar month, what the period
# measures need from incidents: outage and breach seconds clipped to the month, and for the
# incidents opened in the month their attainment counts. A period's whole months are read from
# it; only the days before the first and after the last whole month are computed from incidents
# (see itscm/measures/attainment.py and downtime.py). Durations are raw seconds, so a service's
# BIA cost, unit or tier can change without touching it; the counts that depend on the RTO
# (attained, RTA/RTO bands, breach seconds) are recomputed for a service whose RTO changed.
#
# No writer has to know about it: a write transaction whose facts stamp moved (see
# refresh_derived) compares a fingerprint of the incidents of each opened-month with the one
# recorded (`incident_month_marks`) and rebuilds only the months that changed, including every
# month an old or new version of a changed incident spanned.

ROLLUP_SINCE_VERSION = 6

# The RTA/RTO band of an event, 1..6 (attainment.RATIO_BANDS); NULL without an RTO.
def ratio_band_sql(rta: str, rto: str) -> str:
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


BANDS = range(1, 7)

ADD_ROLLUP_SQL = """
ALTER TABLE incidents ADD COLUMN active_until TIMESTAMP;  -- outage end, else closed_at, else 'infinity' (open)

CREATE TABLE incident_months (
    service_key     INTEGER,            -- NULL: no service (unmatched, or a service gone)
    unmatched       BOOLEAN NOT NULL,   -- the incident names no known service
    unmatched_name  TEXT,               -- the name logged, for unmatched incidents
    month           DATE NOT NULL,      -- first day of the calendar month
    opened          INTEGER NOT NULL,   -- incidents opened this month with an outage end
    estimated       INTEGER NOT NULL,   -- ... whose end is the resolve time (an estimate)
    attained        INTEGER NOT NULL,   -- ... whose RTA is within the service's RTO
    no_end          INTEGER NOT NULL,   -- incidents opened this month with no outage end
    """ + ",\n    ".join(f"band_{k} INTEGER NOT NULL" for k in BANDS) + """,
    outage_seconds  DOUBLE NOT NULL,    -- outage time of ended incidents inside this month
    breach_seconds  DOUBLE NOT NULL     -- of which past opened_at + RTO
);

-- Per month incidents were opened in: how many, a fingerprint of the facts the rollup reads,
-- and the last month any of them reached (so a change rebuilds every month it touched).
CREATE TABLE incident_month_marks (
    month        DATE NOT NULL,
    incidents    BIGINT NOT NULL,
    fingerprint  BIGINT NOT NULL,
    last_month   DATE NOT NULL
);

-- The RTO each service's rollup rows were computed with.
CREATE TABLE incident_month_rtos (
    service_key  INTEGER NOT NULL,
    rto_minutes  INTEGER
);
"""

_ACTIVE_UNTIL_SQL = "coalesce(restored_at, resolved_at, closed_at, 'infinity'::TIMESTAMP)"
REFRESH_ACTIVE_UNTIL_SQL = f"""
    UPDATE incidents SET active_until = {_ACTIVE_UNTIL_SQL}
    WHERE active_until IS DISTINCT FROM {_ACTIVE_UNTIL_SQL}
"""

# A hash per incident of what the rollup reads, reduced modulo a prime so that the sums of any
# number of incidents stay a BIGINT (it survives a Parquet backup, which has no 128-bit integers).
_FINGERPRINT_SQL = """
    (hash(service_key, service_id IS NULL, CASE WHEN service_id IS NULL THEN service_name END,
          opened_at, outage_end, restored_at IS NULL) % 4294967291)::BIGINT
"""
def _marks_sql(where: str = "TRUE") -> str:
    """Month marks of the incidents the `where` condition keeps. Constant SQL only."""
    return f"""
    SELECT month, count(*) AS incidents, sum(fingerprint)::BIGINT AS fingerprint,
           greatest(month, coalesce(max(date_trunc('month', outage_end))::DATE, month)) AS last_month
    FROM (SELECT date_trunc('month', opened_at)::DATE AS month, outage_end, {_FINGERPRINT_SQL} AS fingerprint
          FROM incidents WHERE {where})
    GROUP BY month
"""


_MARKS_SQL = _marks_sql()

_BAND = ratio_band_sql("rta_minutes", "rto_minutes")
def _rollup_rows_from(src: str, months: str, weight: str = "1") -> str:
    """Rollup rows of the incidents `src` selects (service_key, unmatched, unmatched_name,
    opened_at, outage_end, rta_minutes, estimated, rto_minutes, opened_month and the `weight`
    column), for the months the `months` condition keeps. Constant SQL only, never user text."""
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
    SELECT service_key, unmatched, unmatched_name, month, {weight} AS weight,
           -- the weight of an incident opened in this month with an outage end, else 0
           CASE WHEN month = opened_month AND outage_end IS NOT NULL THEN {weight} ELSE 0 END AS opened_here,
           estimated, rta_minutes <= rto_minutes AS attained, outage_end IS NULL AS no_end, {_BAND} AS band,
           {overlap_seconds_sql("opened_at", "outage_end", "month", "month_end")} AS outage_seconds,
           {breach_seconds_sql("opened_at", "outage_end", "rto_minutes", "month", "month_end")} AS breach_seconds
    FROM pieces
    WHERE {months}
)
SELECT service_key, unmatched, unmatched_name, month::DATE AS month,
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


_ROLLUP_SRC_COLUMNS = """
    i.service_key, i.service_id IS NULL AS unmatched, CASE WHEN i.service_id IS NULL THEN i.service_name END
    AS unmatched_name, i.opened_at, i.outage_end, i.rta_minutes, i.restored_at IS NULL AS estimated, s.rto_minutes,
    date_trunc('month', i.opened_at) AS opened_month
"""


def rollup_rows_sql(lo: str, hi: str, all_keys: str, months: str) -> str:
    """Rollup rows of the incidents active in [lo, hi) (or of the services in the temp table
    rollup_keys), for the months the `months` condition keeps. Constant SQL only."""
    return _rollup_rows_from(f"""
        SELECT {_ROLLUP_SRC_COLUMNS}
        FROM incidents i LEFT JOIN services s ON s.service_key = i.service_key
        WHERE i.opened_at < {hi} AND i.active_until >= {lo}
          AND ({all_keys} OR i.service_key IN (SELECT service_key FROM rollup_keys))
    """, months)


_REFRESH_ROWS_SQL = rollup_rows_sql(
    "$lo", "$hi", "$all_keys", "$all_keys = list_contains($months::DATE[], month::DATE)")
_FAR_PAST = dt.datetime(1, 1, 1)
_FAR_FUTURE = dt.datetime(9999, 12, 31)


def _month_list(first: dt.date, last: dt.date) -> list[dt.date]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(dt.date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def has_rollup(cursor) -> bool:
    return bool(cursor.execute(
        "SELECT count(*) FROM schema_version WHERE version = $v", {"v": ROLLUP_SINCE_VERSION}
    ).fetchall()[0][0])


def _next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def refresh_rollup(cursor, *, incidents_changed: bool = True) -> None:
    """Bring `incident_months` up to date with the incidents and the services' RTOs, inside the
    caller's transaction: only the months whose incidents changed, and the services whose RTO
    changed, are recomputed. `incidents_changed=False` (the facts stamp did not move) skips the
    search for changed months."""
    months: set[dt.date] = set()
    now = marked = None
    if incidents_changed:
        now = cursor.execute(
            f"SELECT count(*), coalesce(sum({_FINGERPRINT_SQL}), 0)::BIGINT FROM incidents").fetchall()[0]
        marked = cursor.execute(
            "SELECT coalesce(sum(incidents), 0)::BIGINT, coalesce(sum(fingerprint), 0)::BIGINT "
            "FROM incident_month_marks"
        ).fetchall()[0]
    if now != marked:
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE rollup_marks_now AS {_MARKS_SQL}")
        changed = cursor.execute("""
            SELECT coalesce(n.month, o.month), n.last_month, o.last_month
            FROM rollup_marks_now n FULL JOIN incident_month_marks o ON o.month = n.month
            WHERE n.incidents IS DISTINCT FROM o.incidents OR n.fingerprint IS DISTINCT FROM o.fingerprint
               OR n.last_month IS DISTINCT FROM o.last_month
        """).fetchall()
        for month, new_last, old_last in changed:
            months.update(_month_list(month, max(d for d in (month, new_last, old_last) if d is not None)))
        cursor.execute("DELETE FROM incident_month_marks")
        cursor.execute("INSERT INTO incident_month_marks SELECT * FROM rollup_marks_now")
        cursor.execute("DROP TABLE rollup_marks_now")
    done = sorted(months)
    cursor.execute("""
        CREATE OR REPLACE TEMP TABLE rollup_keys AS
        SELECT coalesce(s.service_key, r.service_key) AS service_key
        FROM (SELECT service_key, rto_minutes FROM services WHERE service_key IS NOT NULL) s
        FULL JOIN incident_month_rtos r ON r.service_key = s.service_key
        WHERE s.service_key IS NULL OR r.service_key IS NULL OR s.rto_minutes IS DISTINCT FROM r.rto_minutes
    """)
    if done:
        cursor.execute("DELETE FROM incident_months WHERE list_contains($months::DATE[], month)", {"months": done})
        cursor.execute(f"INSERT INTO incident_months {_REFRESH_ROWS_SQL}", {
            "lo": dt.datetime.combine(done[0], dt.time()),
            "hi": dt.datetime.combine(_next_month(done[-1]), dt.time()),
            "all_keys": True, "months": done,
        })
    if cursor.execute("SELECT count(*) FROM rollup_keys").fetchall()[0][0]:
        untouched = cursor.execute(
            "SELECT count(*) FROM incident_month_marks WHERE NOT list_contains($months::DATE[], month)",
            {"months": done},
        ).fetchall()[0][0]
        if untouched:  # else every month was just rebuilt with the current RTOs
            cursor.execute(
                "DELETE FROM incident_months WHERE service_key IN (SELECT service_key FROM rollup_keys) "
                "AND NOT list_contains($months::DATE[], month)", {"months": done})
            cursor.execute(f"INSERT INTO incident_months {_REFRESH_ROWS_SQL}", {
                "lo": _FAR_PAST, "hi": _FAR_FUTURE, "all_keys": False, "months": done,
            })
        cursor.execute("DELETE FROM incident_month_rtos")
        cursor.execute("INSERT INTO incident_month_rtos SELECT service_key, rto_minutes FROM services "
                       "WHERE service_key IS NOT NULL")
    cursor.execute("DROP TABLE rollup_keys")


# Version 6 of the schema adds the rollup and fills it for the incidents already stored.
ADD_ROLLUP_AND_FILL_SQL = ADD_ROLLUP_SQL + REFRESH_ACTIVE_UNTIL_SQL + f""";
INSERT INTO incident_month_marks {_MARKS_SQL};
INSERT INTO incident_month_rtos SELECT service_key, rto_minutes FROM services WHERE service_key IS NOT NULL;
CREATE TEMP TABLE rollup_keys (service_key INTEGER);
INSERT INTO incident_months {rollup_rows_sql("TIMESTAMP '0001-01-01'", "'infinity'::TIMESTAMP", "TRUE", "TRUE")};
DROP TABLE rollup_keys;
"""


# -- writers that know what they changed ---------------------------------------------------------

_ROLLUP_KEY_MATCH = """
    d.month = m.month AND d.unmatched = m.unmatched AND d.service_key IS NOT DISTINCT FROM m.service_key
    AND d.unmatched_name IS NOT DISTINCT FROM m.unmatched_name
"""
_ROLLUP_SUMS = ", ".join(
    f"sum({c})::{t} AS {c}" for c, t in
    [("opened", "INTEGER"), ("estimated", "INTEGER"), ("attained", "INTEGER"), ("no_end", "INTEGER")]
    + [(f"band_{k}", "INTEGER") for k in BANDS] + [("outage_seconds", "DOUBLE"), ("breach_seconds", "DOUBLE")]
)


def apply_incident_changes(
    cursor, changes: str, params: dict | None = None, *, incidents_written: bool = False
) -> None:
    """Keep the rollup, its month marks and the facts stamp current for a writer that knows
    exactly which incident versions it added and removed, inside its transaction, so that the
    refresh at commit finds them current instead of rebuilding whole months.

    `changes` selects service_id, service_name, opened_at, restored_at, resolved_at, closed_at
    and sign (+1 for a version written, -1 for one replaced or deleted); constant SQL, values as
    parameters. All three are sums over incidents, so a change is added, not recomputed. If the
    writer got it wrong, the stamp no longer matches the incidents and the refresh rebuilds.

    `incidents_written`: the incidents table already holds the change (else it is about to), so a
    change too large to add can be rebuilt from it here, for the months it touched."""
    stored = cursor.execute("SELECT value FROM store_meta WHERE key = $key", {"key": _STAMP_KEY}).fetchall()
    if not stored or not has_rollup(cursor):
        return  # the refresh at commit does everything
    # Adding costs about as much per changed incident as rebuilding a month costs per incident in
    # it: when the change outnumbers the incidents already stored in the months it touches (a
    # first import into a young store), rebuilding those months is the cheaper way: here once the
    # incidents are written, else by the refresh at commit.
    # One pass over the change tells both, and what a rebuild needs.
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
    if changed > stored_there:
        if incidents_written:
            _rebuild_changed_months(cursor, opened_months, stored[0][0], signed_count, signed_total)
        return
    end = derived_values_sql("c")
    cursor.execute(f"""
        CREATE OR REPLACE TEMP TABLE rollup_changes AS
        SELECT c.*, k.service_key, {end["outage_end"]} AS outage_end, {end["rta_minutes"]} AS rta_minutes
        FROM ({changes}) c LEFT JOIN services k ON k.service_id = c.service_id
    """, params or {})
    try:
        count, total = cursor.execute(f"""
            SELECT coalesce(sum(sign), 0)::BIGINT,
                   coalesce(sum(sign * {_INCIDENT_FACTS_HASH}), 0)::BIGINT FROM rollup_changes
        """).fetchall()[0]
        if not changed:
            return
        incidents_part, services_part = stored[0][0].split("/")
        stored_count, stored_total = (int(part) for part in incidents_part.split(":"))
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
        # rollup rows: the changes' own rows, signed, added to the stored ones
        delta = _rollup_rows_from(f"""
            SELECT {_ROLLUP_SRC_COLUMNS}, i.sign
            FROM rollup_changes i LEFT JOIN services s ON s.service_key = i.service_key
        """, "TRUE", weight="sign")
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE rollup_delta AS {delta}")
        cursor.execute(f"""
            CREATE OR REPLACE TEMP TABLE rollup_rows_new AS
            SELECT service_key, unmatched, unmatched_name, month, {_ROLLUP_SUMS}
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
        cursor.execute("DELETE FROM store_meta WHERE key = $key", {"key": _STAMP_KEY})
        cursor.execute("INSERT INTO store_meta VALUES ($key, $stamp)", {
            "key": _STAMP_KEY, "stamp": f"{stored_count + count}:{stored_total + total}/{services_part}"})
    finally:
        for table in ("rollup_changes", "rollup_marks_new", "rollup_delta", "rollup_rows_new"):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _rebuild_changed_months(
    cursor, opened_months: list[dt.date], stamp: str, signed_count: int, signed_total: int
) -> None:
    """The rollup rows, month marks and facts stamp of a large change, rebuilt from the incidents
    as written, for the months the change touched only. The refresh at commit would rebuild the
    same months, but it finds them by fingerprinting every stored incident and first runs the
    safety-net updates over every stored incident; with the stamp current it does neither.
    `opened_months` are the months the changed versions (written or replaced) were opened in;
    `signed_count` and `signed_total` the change's sums for the facts stamp."""
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
        # Every month an incident opened in a changed month reaches, before or after the change.
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
    # The rebuild reads rollup_keys only when it is not rebuilding every service (all_keys).
    cursor.execute("CREATE OR REPLACE TEMP TABLE rollup_keys (service_key INTEGER)")
    try:
        cursor.execute("DELETE FROM incident_months WHERE list_contains($months::DATE[], month)", {"months": months})
        cursor.execute(f"INSERT INTO incident_months {_REFRESH_ROWS_SQL}", {
            "lo": dt.datetime.combine(months[0], dt.time()),
            "hi": dt.datetime.combine(_next_month(months[-1]), dt.time()),
            "all_keys": True, "months": months,
        })
    finally:
        cursor.execute("DROP TABLE IF EXISTS rollup_keys")
    incidents_part, services_part = stamp.split("/")
    stored_count, stored_total = (int(part) for part in incidents_part.split(":"))
    cursor.execute("DELETE FROM store_meta WHERE key = $key", {"key": _STAMP_KEY})
    cursor.execute("INSERT INTO store_meta VALUES ($key, $stamp)", {
        "key": _STAMP_KEY,
        "stamp": f"{stored_count + signed_count}:{stored_total + signed_total}/{services_part}"})

