"""Raw rows -> incidents in store layout, plus the problem report, all as set operations in DuckDB.

`ingest_parsed` is built from the raw rows in one statement: the mapped columns cleaned (trimmed;
'', '?' and 'NULL' are missing), priority levels and service names resolved, ISO timestamps (the
bulk of most exports) parsed to UTC, and two flags: `rejected` (the row has an error) and
`superseded_by` (a later row of the same incident is kept). Date values of any other shape are
surveyed and parsed afterwards, only them (see `_parse_other_dates`). Each check is one SQL filter
over that table, so a million rows cost a few scans, not a Python loop.

Among the rows of one incident id without errors the latest wins: by the `updated` field when the
file has one (audit-style logs, one row per update), otherwise the last row in the file.
Superseded rows of a list export are reported as warnings; those of an audit log are expected and
only counted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from itertools import pairwise

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from itscm.incident_columns import BY_NAME, FACT_COLUMNS, FACTS_ARROW_SCHEMA
from itscm.ingest import dates
from itscm.ingest.formats import DATE_FIELDS, priority_level

PROBLEM_COLUMNS = ["row", "column", "severity", "reason", "value"]
# The accepted incidents: the file row each came from, then its facts in store layout.
ACCEPTED_COLUMNS = ["row", *FACT_COLUMNS]
ACCEPTED_SCHEMA = pa.schema([("row", pa.int64()), *FACTS_ARROW_SCHEMA])
# Each accepted column from ingest_parsed where it is not the column of its name there (cast to
# the store's type, which costs nothing when it has it). The source is one for the whole file:
# the ids are qualified here, not stored per row.
_ACCEPTED_FROM_PARSED = {"incident_id": "$source || ':' || id_raw", "source": "$source"}
_ACCEPTED_SELECT = ", ".join(
    ['row_no AS "row"']
    + [
        f"CAST({_ACCEPTED_FROM_PARSED.get(name, name)} AS {BY_NAME[name].duckdb_type}) AS {name}"
        for name in FACT_COLUMNS
    ]
)
MAX_ID_LENGTH = 200
_VALUE_PREVIEW = 200
_FUTURE_SLACK = timedelta(days=1)
_EARLIEST = datetime(1970, 1, 1)
# Whitespace trimmed from every field, NBSP included (spreadsheets add it). Literal characters
# in the SQL text, so DuckDB sees a constant.
_TRIM_CHARS = " \t\r\n\u00a0"
_TRIM = f"'{_TRIM_CHARS}'"
# True when trimming would change v: its first or last character is one of _TRIM_CHARS. ascii()
# reads the first code point and suffix() compares the last bytes, both without scanning the
# value (a regex or right() reads it all, and this runs on every field of every row).
# list_contains, not IN: inside a subquery DuckDB turns `ascii(v) IN (...)` into a join with the
# constants, one per cleaned column, and a statement with joins no longer keeps its rows in file
# order (the change import relies on that order, see itscm/changes/read.py).
_EDGE_SPACE_SQL = (
    f"(list_contains([{', '.join(str(ord(char)) for char in _TRIM_CHARS)}], ascii(v)) OR "
    + " OR ".join(f"suffix(v, '{char}')" for char in _TRIM_CHARS)
    + ")"
)


class ProblemCounts:
    """What a preview's problem report (`problems`, PROBLEM_COLUMNS) counts: mixed into the
    incident and the change previews."""

    problems: pd.DataFrame

    @cached_property
    def rejected(self) -> int:
        """Rows with at least one error."""
        errors = self.problems[self.problems["severity"] == "error"]
        return int(errors["row"].dropna().nunique())

    @cached_property
    def warnings(self) -> int:
        """Warning lines of the report (a row kept with two doubts counts twice; the file's own
        doubts, such as an assumed date order, count once)."""
        return int((self.problems["severity"] == "warning").sum())


@dataclass(frozen=True)
class Validated:
    accepted: pa.Table
    problems: pd.DataFrame
    rows_read: int
    blank_rows: int
    superseded_rows: int
    date_order: dates.DateOrder
    date_styles: dict[str, int]


@dataclass(frozen=True)
class _Rule:
    severity: str
    field: str | None  # whose column is named in the report; None for the whole row
    reason: str
    condition: str  # SQL over ingest_parsed, constants only
    value: str = "NULL"
    reason_sql: str | None = None  # when the reason depends on the row


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    # Most fields need no trimming: test for edge whitespace first, it is cheaper than trimming.
    # strlen (bytes) <= 4 only spares lower() on longer values; it holds for '', '?' and 'null'.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP MACRO ingest_clean(v) AS
            CASE WHEN v IS NULL THEN NULL
                 WHEN NOT {_EDGE_SPACE_SQL}
                     THEN CASE WHEN strlen(v) <= 4 AND lower(v) IN ('', '?', 'null') THEN NULL ELSE v END
                 WHEN lower(trim(v, {_TRIM})) IN ('', '?', 'null') THEN NULL
                 ELSE trim(v, {_TRIM}) END
        """
    )
    dates.install_macros(con)


def validate_rows(
    con: duckdb.DuckDBPyConnection,
    *,
    header: list[str],
    columns: dict[str, list[int]],
    source: str,
    timezone: str,
    date_order: str | None,
    now: datetime,
    blank_lines: int,
) -> Validated:
    install_macros(con)
    n = len(header)
    _register_priorities(con, columns)
    _build_parsed(con, n, columns, timezone)
    survey = _parse_other_dates(con, columns, date_order, timezone)
    order = survey.order
    rows_read = con.execute("SELECT count(*) FROM ingest_parsed").fetchone()[0]
    data_records = con.execute("SELECT count(*) FROM ingest_raw WHERE row_no > 1").fetchone()[0]

    label = {
        name: header[positions[0]] or f"column {positions[0] + 1}" for name, positions in columns.items()
    }
    future = now + _FUTURE_SLACK
    params = {"future": future, "earliest": _EARLIEST}
    con.execute(
        'CREATE OR REPLACE TEMP TABLE ingest_problems ("row" BIGINT, "column" VARCHAR, severity VARCHAR, '
        "reason VARCHAR, value VARCHAR)"
    )
    for rule in _error_rules(columns, n, order, future):
        _apply(con, rule, label, params)
    con.execute(
        """
        UPDATE ingest_parsed SET rejected = true
        WHERE row_no IN (SELECT "row" FROM ingest_problems WHERE severity = 'error')
        """
    )
    audit_log = "updated" in columns
    superseded = _mark_superseded(con)
    for rule in _warning_rules(columns, n, future, audit_log=audit_log):
        # Doubts are reported for the rows kept; a superseded row only says it was superseded.
        if "superseded_by" not in rule.condition:
            rule = replace(rule, condition=f"superseded_by IS NULL AND ({rule.condition})")
        _apply(con, rule, label, params, kept_only=True)

    accepted = con.execute(
        f"SELECT {_ACCEPTED_SELECT} FROM ingest_parsed WHERE NOT rejected AND superseded_by IS NULL",
        {"source": source},
    ).fetch_arrow_table()
    accepted = in_file_order(accepted)
    problems = con.execute(
        "SELECT * FROM ingest_problems "
        'ORDER BY "row", CASE severity WHEN \'error\' THEN 0 ELSE 1 END, "column"'
    ).df()
    return Validated(
        accepted,
        problems,
        rows_read,
        blank_lines + data_records - rows_read,
        superseded,
        order,
        survey.styles,
    )

# With this many blocks or more the rows are mixed finely, and gathering them is as cheap.
_MAX_BLOCKS_TO_SPLICE = 256


def in_file_order(accepted: pa.Table) -> pa.Table:
    """The accepted rows by file row. DuckDB's parallel scans and joins do not keep ingest_parsed
    in file order, but they move whole row groups: the fetched rows are a few blocks, each in
    file order. The blocks are put in order by slicing and concatenating (no copy; gathering
    every column of a million rows by a sort's indices took up to half a second); rows mixed
    any finer way are gathered as a sort would. Shared with the change import."""
    if accepted.num_rows <= 1:
        return accepted
    rows = accepted["row"].to_numpy()
    if (rows[1:] > rows[:-1]).all():
        return accepted
    # stable: a timsort, linear on a few sorted blocks
    positions = np.argsort(rows, kind="stable")
    block_starts = np.flatnonzero(np.diff(positions) != 1) + 1
    if len(block_starts) >= _MAX_BLOCKS_TO_SPLICE:
        return accepted.take(positions)
    bounds = [0, *block_starts.tolist(), len(positions)]
    return pa.concat_tables(
        [accepted.slice(int(positions[start]), end - start) for start, end in pairwise(bounds)]
    )


def field_sql(columns: dict[str, list[int]], name: str) -> str:
    """SQL for a field read from the raw columns at `positions`: cleaned, the first filled wins
    (repeated or alternative columns). Shared with the change import (itscm/changes/read.py)."""
    positions = columns.get(name)
    if not positions:
        return "NULL::VARCHAR"
    cleaned = [f"ingest_clean(c{i})" for i in positions]
    return cleaned[0] if len(cleaned) == 1 else f"coalesce({', '.join(cleaned)})"


# What marks a major incident: ServiceNow's major_incident_state "Accepted" (display value or
# stored value), or a yes in a plain column. Anything else in a file that has the column (blank,
# Proposed, Rejected, Canceled, no) is not major; without the column nobody said: NULL.
MAJOR_VALUES = ("accepted", "yes", "y", "true", "1", "major")


def _major_sql(columns: dict[str, list[int]]) -> str:
    if "major" not in columns:
        return "NULL::BOOLEAN"
    return f"coalesce(list_contains({list(MAJOR_VALUES)}, lower(f.major_raw)), FALSE)"


def _register_priorities(con: duckdb.DuckDBPyConnection, columns: dict[str, list[int]]) -> None:
    # Priorities have few distinct values: normalised in Python once per value, joined in SQL.
    raw_values = []
    if "priority" in columns:
        raw_values = [
            raw
            for (raw,) in con.execute(
                f"""
                SELECT DISTINCT priority_raw
                FROM (SELECT {field_sql(columns, "priority")} AS priority_raw FROM ingest_raw WHERE row_no > 1)
                WHERE priority_raw IS NOT NULL
                """
            ).fetchall()
        ]
    table = pa.table(
        {
            "raw": pa.array(raw_values, pa.string()),
            "level": pa.array([priority_level(raw) for raw in raw_values], pa.int32()),
        }
    )
    con.register("ingest_priority_arrow", table)
    con.execute("CREATE OR REPLACE TEMP TABLE ingest_priorities AS SELECT * FROM ingest_priority_arrow")
    con.unregister("ingest_priority_arrow")


def _build_parsed(
    con: duckdb.DuckDBPyConnection,
    n: int,
    columns: dict[str, list[int]],
    timezone: str,
) -> None:
    """`ingest_parsed` from the raw rows in one statement: every field cleaned once (in the inner
    select), ISO dates parsed, services and priorities joined. Dates of other shapes are left NULL
    here and parsed by `_parse_other_dates`."""
    convert = timezone != "UTC"
    parsed = {
        name: dates.iso_parse_sql(f"f.{name}_raw", convert_zone=convert) if name in columns else "NULL::TIMESTAMP"
        for name in DATE_FIELDS
    }
    services = columns.get("service", [])
    service_sql = "".join(f"ingest_clean(c{i}) AS service_{k}, " for k, i in enumerate(services))
    concat = "concat_ws('', " + ", ".join(f"c{i}" for i in range(n)) + ")"
    joins = "".join(
        f" LEFT JOIN ingest_name_keys k{k} ON k{k}.name_key = lower(f.service_{k})"
        for k in range(len(services))
    )
    if len(services) > 1:
        # The first candidate column that names a known service wins, else the first one given.
        service_name = (
            "coalesce("
            + ", ".join(
                [
                    f"CASE WHEN k{k}.service_id IS NOT NULL THEN f.service_{k} END"
                    for k in range(len(services))
                ]
                + [f"f.service_{k}" for k in range(len(services))]
            )
            + ")"
        )
        service_id = "coalesce(" + ", ".join(f"k{k}.service_id" for k in range(len(services))) + ")"
    elif services:
        service_name, service_id = "f.service_0", "k0.service_id"
    else:
        service_name, service_id = "NULL::VARCHAR", "NULL::VARCHAR"
    params = {"tz": timezone} if convert else {}
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ingest_parsed AS
        SELECT f.row_no, f.id_raw, f.title, f.priority_raw, p.level AS priority, {_major_sql(columns)} AS major,
               {service_name} AS service_name, {service_id} AS service_id,
               f.opened_raw, {parsed["opened"]} AS opened_at,
               f.restored_raw, {parsed["restored"]} AS restored_at,
               f.resolved_raw, {parsed["resolved"]} AS resolved_at,
               f.closed_raw, {parsed["closed"]} AS closed_at,
               f.updated_raw, {parsed["updated"]} AS updated_at,
               f.too_many_fields, f.too_few_fields,
               false AS rejected, NULL::BIGINT AS superseded_by
        FROM (
            SELECT row_no,
                   {field_sql(columns, "id")} AS id_raw,
                   {field_sql(columns, "title")} AS title,
                   {field_sql(columns, "priority")} AS priority_raw,
                   {field_sql(columns, "major")} AS major_raw,
                   {field_sql(columns, "opened")} AS opened_raw,
                   {field_sql(columns, "restored")} AS restored_raw,
                   {field_sql(columns, "resolved")} AS resolved_raw,
                   {field_sql(columns, "closed")} AS closed_raw,
                   {field_sql(columns, "updated")} AS updated_raw,
                   {service_sql}
                   c{n} IS NOT NULL AS too_many_fields,
                   c{n - 1} IS NULL AS too_few_fields
            FROM ingest_raw
            WHERE row_no > 1
              -- Blank in every column (Excel's trailing ",,,," rows): skipped, not rejected.
              AND CASE WHEN c0 IS NOT NULL AND NOT regexp_matches(c0, '^[\\s\u00a0]*$') THEN true
                       ELSE trim({concat}, {_TRIM}) <> '' END
        ) f LEFT JOIN ingest_priorities p ON p.raw = f.priority_raw {joins}
        """,
        params,
    )


def _parse_other_dates(
    con: duckdb.DuckDBPyConnection, columns: dict[str, list[int]], date_order: str | None, timezone: str
) -> dates.DateSurvey:
    """Survey the date values `_build_parsed` did not parse as ISO (day-first or month-first,
    the shapes present) and parse them. A file of ISO dates only has none: this is one scan."""
    date_fields = [name for name in DATE_FIELDS if name in columns]
    counts = (
        con.execute(
            "SELECT "
            + ", ".join(
                f"count({name}_at), count(*) FILTER (WHERE {name}_raw IS NOT NULL AND {name}_at IS NULL)"
                for name in date_fields
            )
            + " FROM ingest_parsed"
        ).fetchone()
        if date_fields
        else ()
    )
    iso_parsed = sum(counts[0::2])
    other = [name for name, left in zip(date_fields, counts[1::2], strict=True) if left]
    values_sql = (
        " UNION ALL ".join(
            f"SELECT {name}_raw AS v FROM ingest_parsed WHERE {name}_raw IS NOT NULL AND {name}_at IS NULL"
            for name in other
        )
        or "SELECT NULL::VARCHAR AS v WHERE false"
    )
    survey = dates.survey_dates(con, values_sql, date_order, iso_parsed=iso_parsed)
    formats = dates.fit_formats(con, values_sql, survey)
    convert = timezone != "UTC"
    for name in other:
        con.execute(
            f"""
            UPDATE ingest_parsed SET {name}_at = {dates.parse_sql(f"{name}_raw", formats, convert_zone=convert)}
            WHERE {name}_raw IS NOT NULL AND {name}_at IS NULL
            """,
            {"tz": timezone} if convert else {},
        )
    return survey


def _error_rules(
    columns: dict[str, list[int]], n: int, order: dates.DateOrder, future: datetime
) -> list[_Rule]:
    hint = f" (numeric dates in this file are read {order.order})" if order.order in dates.DATE_ORDERS else ""
    rules = [
        _Rule("error", "id", "missing incident id", "id_raw IS NULL"),
        _Rule(
            "error",
            "id",
            f"incident id longer than {MAX_ID_LENGTH} characters",
            f"length(id_raw) > {MAX_ID_LENGTH}",
            "id_raw",
        ),
        _Rule("error", "opened", "missing opened date", "opened_raw IS NULL"),
    ]
    for name in ("opened", "restored", "resolved", "closed"):
        if name in columns:
            rules.append(
                _Rule(
                    "error",
                    name,
                    f"unparseable date{hint}",
                    f"{name}_raw IS NOT NULL AND {name}_at IS NULL",
                    f"{name}_raw",
                )
            )
    for name in ("restored", "resolved", "closed"):
        if name in columns:
            rules.append(
                _Rule("error", name, f"{name} before opened", f"{name}_at < opened_at", f"{name}_raw")
            )
    rules += [
        _Rule(
            "error",
            "opened",
            f"opened in the future (after {future:%Y-%m-%d %H:%M} UTC)",
            "opened_at > $future",
            "opened_raw",
        ),
        _Rule(
            "error",
            "opened",
            "opened before 1970: not a plausible incident date",
            "opened_at < $earliest",
            "opened_raw",
        ),
        _Rule(
            "error",
            None,
            f"row has more fields than the header's {n}: values may be shifted",
            "too_many_fields",
        ),
    ]
    return rules


def _warning_rules(
    columns: dict[str, list[int]], n: int, future: datetime, *, audit_log: bool
) -> list[_Rule]:
    rules = []
    if "priority" in columns:
        rules.append(
            _Rule(
                "warning",
                "priority",
                "priority not recognised: kept without a level",
                "priority_raw IS NOT NULL AND priority IS NULL",
                "priority_raw",
            )
        )
    if "restored" in columns and "resolved" in columns:
        rules.append(
            _Rule(
                "warning",
                "restored",
                "no restore time: resolved_at will serve as an estimated restore time",
                "restored_at IS NULL AND resolved_at IS NOT NULL",
            )
        )
    for name in ("restored", "resolved", "closed"):
        if name in columns:
            rules.append(
                _Rule(
                    "warning",
                    name,
                    f"{name} in the future (after {future:%Y-%m-%d %H:%M} UTC)",
                    f"{name}_at > $future",
                    f"{name}_raw",
                )
            )
    if "restored" in columns and "resolved" in columns:
        rules.append(
            _Rule(
                "warning", "resolved", "resolved before restored", "resolved_at < restored_at", "resolved_raw"
            )
        )
    if "resolved" in columns and "closed" in columns:
        rules.append(
            _Rule("warning", "closed", "closed before resolved", "closed_at < resolved_at", "closed_raw")
        )
    if "service" in columns:
        rules.append(
            _Rule(
                "warning", "service", "no service name: the incident stays unmatched", "service_name IS NULL"
            )
        )
    if "updated" in columns:
        rules.append(
            _Rule(
                "warning",
                "updated",
                "unparseable update time: file order used instead",
                "updated_raw IS NOT NULL AND updated_at IS NULL",
                "updated_raw",
            )
        )
    if n > 1:
        rules.append(
            _Rule(
                "warning",
                None,
                f"row has fewer fields than the header's {n}: the missing ones are empty",
                "too_few_fields",
            )
        )
    if not audit_log:
        rules.append(
            _Rule(
                "warning",
                "id",
                "",
                "superseded_by IS NOT NULL",
                "id_raw",
                reason_sql="'same incident id as row ' || superseded_by || ', which is kept'",
            )
        )
    return rules


def _apply(
    con: duckdb.DuckDBPyConnection,
    rule: _Rule,
    label: dict[str, str],
    params: dict,
    *,
    kept_only: bool = False,
) -> None:
    column = label.get(rule.field, "") if rule.field else ""
    used = {key: value for key, value in params.items() if f"${key}" in rule.condition}
    condition = f"NOT rejected AND ({rule.condition})" if kept_only else rule.condition
    con.execute(
        f"""
        INSERT INTO ingest_problems
        SELECT row_no, $column, $severity, {rule.reason_sql or "$reason"},
               left(CAST({rule.value} AS VARCHAR), {_VALUE_PREVIEW})
        FROM ingest_parsed WHERE {condition}
        """,
        {"column": column, "severity": rule.severity}
        | ({} if rule.reason_sql else {"reason": rule.reason})
        | used,
    )


def _mark_superseded(con: duckdb.DuckDBPyConnection) -> int:
    """Flag the rows without errors that a later row of the same incident replaces; returns how
    many there are. A file has one source, so its raw id names the incident as well as the
    source-qualified one (which is made only for the accepted rows)."""
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT id_raw) FROM ingest_parsed WHERE NOT rejected"
    ).fetchone()
    if total == distinct:
        return 0  # the common case: no window sort over a million rows
    con.execute(
        """
        UPDATE ingest_parsed SET superseded_by = ranked.kept_row
        FROM (
            SELECT row_no, row_number() OVER latest AS version_rank,
                   first_value(row_no) OVER latest AS kept_row
            FROM ingest_parsed WHERE NOT rejected
            WINDOW latest AS (PARTITION BY id_raw ORDER BY updated_at DESC NULLS LAST, row_no DESC)
        ) AS ranked
        WHERE ingest_parsed.row_no = ranked.row_no AND ranked.version_rank > 1
        """
    )
    return total - distinct
