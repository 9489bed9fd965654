"""The completed change days per service (docs/DESIGN.md §16.4): how they are built, kept current
and checked, and how a measure reads them at an as-of date. One module owns all of it, as
itscm/rollup.py does for the incidents' monthly rollup.

`service_change_days` holds, per service and calendar month, the days a completed change reached
the service (its CI is the service, or an asset the service runs on: service_assets; a change
matched both ways counts once), each with its completed changes and how many of them were
emergency or unsuccessful (`marked`), with the service's changes and latest change day before the
month. The staleness and coverage measures read it instead of the changes: a million changes
over 1,000 services are 36,000 rows here, and a measure finds each service's latest change day
by an as-of date with one equality join on the month (a range or ASOF join over per-day rows
cost 20 times as much: docs/DESIGN.md §16.4).

Upkeep is explicit, inside the writer's transaction; a write that touches neither changes nor
service_assets pays nothing.
- `after_changes_changed`: a writer that knows the change versions it wrote and removed (the
  change import, its undo, a CI mapping; `note_changes` first when the write loses the old
  versions): the rows of every service they reach are computed again from the changes as stored.
- `refresh`: a writer that changed which assets services run on (the inventory import and its
  undo), or cannot say what it changed (a test's builder, a restore): every row computed, the
  ones that differ replaced.
- `rebuild`: everything from scratch (a store just migrated, the demo).
`differences` compares the table with a full rebuild (`python -m itscm verify`).
"""

from __future__ import annotations

TABLE = "service_change_days"
BUILT_KEY = "change_days_built"  # its key in store_meta, set once the table was first filled

_MARKED = "coalesce(c.change_type = 'emergency' OR c.close_code = 'unsuccessful', FALSE)"


def _rows_sql(services: str | None = None) -> str:
    """The table's rows as the changes and service_assets give them now; with `services` (a table
    expression of service_id), those of the services it lists only. Constant SQL only."""
    def only(column: str) -> str:
        return f"AND {column} IN (SELECT service_id FROM {services})" if services else ""

    return f"""
    SELECT service_id, month, days, changes, marked,
           coalesce(sum(list_sum(changes)) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::INTEGER
               AS changes_before,
           lag(days[-1]) OVER w AS last_before, lead(month) OVER w AS next_month
    FROM (
        SELECT service_id, month, list_transform(by_day, d -> d.day) AS days,
               list_transform(by_day, d -> d.changes) AS changes, list_transform(by_day, d -> d.marked) AS marked
        FROM (
        -- sorted once as a list of structs (by day, their first field): three ordered aggregates
        -- cost 2.7 CPU s at a million changes, this 1.0
        SELECT service_id, date_trunc('month', day)::DATE AS month,
               list_sort(list({{'day': day, 'changes': changes, 'marked': marked}})) AS by_day
        FROM (
            SELECT service_id, day, count(*)::INTEGER AS changes, count(*) FILTER (WHERE marked)::INTEGER AS marked
            FROM (
                SELECT c.service_id, c.completed_at::DATE AS day, {_MARKED} AS marked
                FROM changes c
                WHERE c.completed_at IS NOT NULL AND c.service_id IS NOT NULL {only("c.service_id")}
                UNION ALL
                -- not UNION: a change matched to the service itself is left out here, which is
                -- cheaper than removing duplicates from every change
                SELECT sa.service_id, c.completed_at::DATE, {_MARKED}
                FROM changes c
                JOIN (SELECT DISTINCT service_id, asset_id FROM service_assets) sa ON sa.asset_id = c.asset_id
                WHERE c.completed_at IS NOT NULL AND c.service_id IS DISTINCT FROM sa.service_id
                      {only("sa.service_id")}
            )
            GROUP BY ALL
        )
        GROUP BY ALL
        )
    )
    WINDOW w AS (PARTITION BY service_id ORDER BY month)
    """


FULL_SQL = _rows_sql()  # the table as a rebuild makes it


def is_built(cursor) -> bool:
    """Whether the table was ever filled (an empty table is right for a store without changes)."""
    return bool(cursor.execute("SELECT count(*) FROM store_meta WHERE key = $key", {"key": BUILT_KEY})
                .fetchall()[0][0])


def rebuild(cursor) -> None:
    """Every row from scratch, inside the caller's transaction."""
    cursor.execute(f"DELETE FROM {TABLE}")
    cursor.execute(f"INSERT INTO {TABLE} {FULL_SQL}")
    if not is_built(cursor):
        cursor.execute("INSERT INTO store_meta VALUES ($key, 'yes')", {"key": BUILT_KEY})


# The change versions an upload wrote and those it replaced: what its commit and its undo touch.
UPLOAD_VERSIONS_SQL = """
    SELECT service_id, asset_id FROM changes WHERE upload_id = $upload_id
    UNION ALL
    SELECT service_id, asset_id FROM change_prior_versions WHERE upload_id = $upload_id
"""
_NOTED = "change_days_services"   # a temp table: the services whose rows are to be computed again


def note_changes(cursor, touched: str, params: dict | None = None) -> None:
    """Note the services the change versions `touched` selects (service_id, asset_id; constant
    SQL, values as parameters) reach, directly or through service_assets, for
    `after_changes_changed` to compute again: for a writer whose write loses the versions it
    replaces (an undo, a CI mapping), called before it writes."""
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_NOTED} (service_id TEXT)")
    # DISTINCT first, once: an import's million written versions name a few thousand CIs, and
    # both halves below read the pairs (0.14 -> 0.06 CPU s for a million new changes).
    cursor.execute(f"""
        INSERT INTO {_NOTED}
        WITH touched AS MATERIALIZED (SELECT DISTINCT service_id, asset_id FROM ({touched}))
        SELECT service_id FROM touched WHERE service_id IS NOT NULL
        UNION
        SELECT sa.service_id FROM service_assets sa
        WHERE sa.asset_id IN (SELECT asset_id FROM touched WHERE asset_id IS NOT NULL)
    """, params or {})


def after_changes_changed(cursor, touched: str | None = None, params: dict | None = None) -> None:
    """Keep the table current for a writer that knows which change versions it wrote and which it
    replaced or deleted, inside its transaction, once the changes are written: the rows of every
    service those versions reach (`touched`, as for `note_changes`, and any noted before) are
    computed again from the changes as stored."""
    if touched is not None:
        note_changes(cursor, touched, params)
    try:
        if not is_built(cursor):
            rebuild(cursor)
            return
        cursor.execute(f"DELETE FROM {TABLE} WHERE service_id IN (SELECT service_id FROM {_NOTED})")
        cursor.execute(f"INSERT INTO {TABLE} {_rows_sql(f'(SELECT DISTINCT service_id FROM {_NOTED})')}")
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {_NOTED}")


# Rows of the table that differ from a full rebuild: service_id, month (a row missing on either
# side differs).
_DIFFERENCES_SQL = f"""
    SELECT coalesce(a.service_id, b.service_id) AS service_id, coalesce(a.month, b.month) AS month
    FROM {TABLE} a FULL JOIN ({{now}}) b ON a.service_id = b.service_id AND a.month = b.month
    WHERE a.days IS DISTINCT FROM b.days OR a.changes IS DISTINCT FROM b.changes OR a.marked IS DISTINCT FROM b.marked
       OR a.changes_before IS DISTINCT FROM b.changes_before OR a.last_before IS DISTINCT FROM b.last_before
       OR a.next_month IS DISTINCT FROM b.next_month
"""


def refresh(cursor) -> None:
    """Bring the table up to date, inside the caller's transaction, for a writer that changed
    service_assets or cannot say what it changed: every row computed, those that differ replaced."""
    if not is_built(cursor):
        rebuild(cursor)
        return
    cursor.execute(f"CREATE OR REPLACE TEMP TABLE change_days_now AS {FULL_SQL}")
    try:
        cursor.execute("CREATE OR REPLACE TEMP TABLE change_days_stale AS "
                       + _DIFFERENCES_SQL.format(now="SELECT * FROM change_days_now"))
        if not cursor.execute("SELECT count(*) FROM change_days_stale").fetchall()[0][0]:
            return
        stale = "(SELECT service_id, month FROM change_days_stale)"
        cursor.execute(f"DELETE FROM {TABLE} WHERE (service_id, month) IN {stale}")
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM change_days_now WHERE (service_id, month) IN {stale}")
    finally:
        cursor.execute("DROP TABLE IF EXISTS change_days_now")
        cursor.execute("DROP TABLE IF EXISTS change_days_stale")


def differences(cursor) -> list[dict]:
    """Where the table differs from what a full rebuild would make of the changes and
    service_assets now: one dict per service and month, {table, service_id, month, rows, what};
    empty when they agree. Reads only."""
    found = [{"table": TABLE, "service_id": service_id, "month": month.isoformat(), "rows": 1,
              "what": "change days that differ from a full rebuild"}
             for service_id, month in cursor.execute(
                 _DIFFERENCES_SQL.format(now=FULL_SQL) + " ORDER BY 1, 2").fetchall()]
    if not is_built(cursor):
        found.append({"table": "store_meta", "key": BUILT_KEY, "rows": 1, "what": "the change days were never filled"})
    return found


# -- reading at an as-of date ------------------------------------------------------------------
#
# A measure asks, per service and as-of date: the latest day a completed change reached the
# service by then, and how many completed changes had by then (so that the changes after a
# review are the difference of two such counts). Each stored row answers for its own month (its
# days up to the date count) and every month up to the service's next row (all of them), so that
# the month of any date finds exactly one row by an equality join. What came before the row is
# stored with it: a window over the table on every read cost more than the rest of the query.

# Columns: service_id, covered (a month the row answers for), month, days, changes,
# changes_before, last_before. Covers every month up to `through_month`. Each row answers for its
# own month; only a row followed by months without changes (or the service's last) is unnested
# into those months, which keeps the read at about half the cost of unnesting every row.
# Constant SQL only.
COVERING_MONTHS_SQL = """
SELECT service_id, month AS covered, month, days, changes, changes_before, last_before
FROM service_change_days
WHERE month <= {through_month}
UNION ALL
SELECT service_id, (month + to_months(unnest(range(1, date_diff('month', month,
           least(next_month - INTERVAL 1 MONTH, {through_month})) + 1))))::DATE,
       month, days, changes, changes_before, last_before
FROM service_change_days
WHERE month < {through_month} AND (next_month IS NULL OR next_month > month + INTERVAL 1 MONTH)
"""
# The month of the latest date in the reader's `as_of_dates` CTE (a column `as_of`).
THROUGH_LATEST_AS_OF = "(SELECT date_trunc('month', max(as_of))::DATE FROM as_of_dates)"


def covering_months_sql(through_month: str = THROUGH_LATEST_AS_OF) -> str:
    """COVERING_MONTHS_SQL up to `through_month` (constant SQL: a parameter or a subquery)."""
    return COVERING_MONTHS_SQL.format(through_month=through_month)


def _days_by(row: str, day: str) -> str:
    """How many of the covering row's days are on or before `day` (all of them in a later month)."""
    return (f"CASE WHEN {row}.covered = {row}.month THEN len(list_filter({row}.days, d -> d <= {day})) "
            f"ELSE len({row}.days) END")


def last_change_sql(row: str, day: str) -> str:
    """The latest change day by `day` (inclusive) from the covering row `row` of `day`'s month;
    NULL when none (no row: the service had no change by then)."""
    by = _days_by(row, day)
    return f"CASE WHEN {by} > 0 THEN {row}.days[{by}] ELSE {row}.last_before END"


def changes_through_sql(row: str, day: str) -> str:
    """The completed changes that reached the service by `day` (inclusive), from the covering row
    `row` of `day`'s month; 0 without one."""
    return f"coalesce({row}.changes_before + coalesce(list_sum({row}.changes[:{_days_by(row, day)}]), 0), 0)"
