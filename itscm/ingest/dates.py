"""Timestamps of an export, parsed column-wise in DuckDB and stored as UTC.

Accepted, in any mix within one file:
- ISO 8601 (`2025-07-14 15:42:07`, `2025-07-14T15:42:07.123`, `2025/07/14 15:42`, a date alone);
  with an offset or Z (`2025-07-14T15:42:07+02:00`) the offset wins over the upload's time zone;
  anything else after the time (`CEST`, `+99:99`) makes the value unparseable rather than ignored;
- numeric day/month dates with `/`, `.` or `-`, 2- or 4-digit years, 24-hour or AM/PM times
  (`14/07/2025 15:42`, `7/14/25 3:42 PM`, `14.07.2025 15:42:07`): day-first or month-first is
  decided once per file (see `survey_dates`);
- month names (`14/Jul/25 3:42 PM` as Jira writes it, `14 Jul 2025 15:42`, `Jul 14, 2025 3:42 PM`);
- epoch seconds (9-10 digits) and epoch milliseconds (12-13 digits), always UTC.

Times without an offset are local to the time zone chosen at upload and converted to UTC.

Speed: the common ISO shape (`2025-07-14 15:42:07`, what ServiceNow and most tools write) is
parsed first, for every value, by a cast (`iso_parse_sql`); only the values it leaves are
surveyed and parsed by `parse_sql`, which gives the same result for every value. DuckDB's
`try_strptime` with a list of formats is fast on the first format and slow on each one that fails,
so those values are first sorted by shape (a regex each), and within a shape the formats are
ordered by how many of a sample of the file's values they parse.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from itscm.ingest.errors import IngestError

DAY_FIRST = "day-first"
MONTH_FIRST = "month-first"
UNAMBIGUOUS = "unambiguous"
DATE_ORDERS = (DAY_FIRST, MONTH_FIRST)

_TIMES = (" %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", "")
_NAMED = (
    "%d/%b/%y %I:%M %p",
    "%d/%b/%Y %I:%M %p",
    "%d/%b/%y %H:%M",
    "%d/%b/%Y %H:%M",
    "%d/%b/%y",
    "%d-%b-%Y %H:%M:%S",
    "%d-%b-%Y %H:%M",
    "%d-%b-%y %H:%M:%S",
    "%d-%b-%y %H:%M",
    "%d-%b-%Y",
    "%d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M",
    "%d %b %Y %I:%M %p",
    "%d %b %Y",
    "%d %B %Y %H:%M:%S",
    "%d %B %Y %H:%M",
    "%d %B %Y",
    "%b %d, %Y %I:%M:%S %p",
    "%b %d, %Y %I:%M %p",
    "%b %d, %Y %H:%M:%S",
    "%b %d, %Y %H:%M",
    "%b %d, %Y",
    "%B %d, %Y %I:%M:%S %p",
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y",
    "%a %b %d %H:%M:%S %Y",
    "%a, %d %b %Y %H:%M:%S",
)

# Shapes of a value, tested in this order by the SQL below.
_EPOCH_S = r"\d{9,10}"
_EPOCH_MS = r"\d{12,13}"
# Offsets run from -12:00 to +14:00; anything beyond is not a time zone, so not an offset.
_OFFSET = r"(Z|UTC|GMT|[+-](0\d|1[0-4])(:?[0-5]\d)?)"
_OFFSET_TAIL = r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*" + _OFFSET + "$"
_SPLIT_OFFSET = r"^(.*?)\s*" + _OFFSET + "$"
_YEAR_FIRST = r"^\d{4}[-/]\d"
# DuckDB's cast to TIMESTAMP ignores whatever follows the time (an offset included), so only
# values of exactly this shape are cast; others with an offset go through _OFFSET_TAIL.
_ISO_LOCAL = r"\d{4}[-/]\d{1,2}[-/]\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"
_NUMERIC_4 = r"^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}"
# The bulk of most exports, tested first: values of this shape are ISO local times (_YEAR_FIRST and
# _ISO_LOCAL both match them). It is what the regex \d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2} matches,
# written as a GLOB, which DuckDB matches without a regex engine: about twice as fast.
_DIGIT = "[0-9]"
_COMMON_ISO_GLOB = f"{_DIGIT * 4}-{_DIGIT * 2}-{_DIGIT * 2}[T ]{_DIGIT * 2}:{_DIGIT * 2}:{_DIGIT * 2}"


def _common_iso(value: str) -> str:
    return f"({value} GLOB '{_COMMON_ISO_GLOB}')"


_NUMERIC_2 = r"^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2}(\D|$)"
_NUMERIC_DM = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}(\D|$)"


@dataclass(frozen=True)
class DateFormats:
    """The strptime lists for one file, each ordered by how well it fits the file."""

    numeric4: list[str]
    numeric2: list[str]
    named: list[str]


def numeric_formats(order: str, year: str) -> list[str]:
    first, second = ("%d", "%m") if order == DAY_FIRST else ("%m", "%d")
    return [f"{first}{sep}{second}{sep}{year}{time}" for sep in "/.-" for time in _TIMES]


def formats_for(order: str) -> DateFormats:
    return DateFormats(numeric_formats(order, "%Y"), numeric_formats(order, "%y"), list(_NAMED))


@dataclass(frozen=True)
class DateOrder:
    order: str  # day-first | month-first | unambiguous (no numeric day/month dates)
    basis: str  # why, in a sentence for the analyst
    ambiguous: bool  # assumed, not seen in the data
    conflicting: bool  # the file has dates only valid day-first and others only month-first


def _sql_list(items: list[str]) -> str:
    # Only ever called with the constant format strings above (no quotes in them).
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


@dataclass(frozen=True)
class DateSurvey:
    order: DateOrder
    styles: dict[str, int]  # shape -> number of values, e.g. {"ISO 8601": 950, "dd/mm/yyyy": 50}
    needs_formats: bool  # some values are parsed by strptime (not ISO, not epoch)


_STYLE_SQL = f"""
    CASE WHEN {_common_iso("v")} THEN 'iso'
         WHEN regexp_matches(v, '{_YEAR_FIRST}')
              THEN CASE WHEN regexp_full_match(v, '{_ISO_LOCAL}') THEN 'iso'
                        WHEN regexp_matches(v, '{_OFFSET_TAIL}', 'i') THEN 'iso-offset'
                        ELSE 'other' END
         WHEN regexp_full_match(v, '{_EPOCH_S}') THEN 'epoch-s'
         WHEN regexp_full_match(v, '{_EPOCH_MS}') THEN 'epoch-ms'
         WHEN regexp_matches(v, '{_NUMERIC_4}') THEN 'numeric4'
         WHEN regexp_matches(v, '{_NUMERIC_2}') THEN 'numeric2'
         ELSE 'named' END
"""
_STRPTIME_STYLES = ("numeric4", "numeric2", "named")


def survey_dates(
    con: duckdb.DuckDBPyConnection, values_sql: str, chosen: str | None, *, iso_parsed: int = 0
) -> DateSurvey:
    """One pass over the date values of the file (`values_sql` yields a text column `v`): the
    shapes present, and day-first or month-first for numeric dates (`14/07/2025` vs `07/14/2025`).
    A first number above 12 proves day-first, a second number above 12 proves month-first.
    `iso_parsed` values left out of `values_sql` were parsed by `iso_parse_sql`: ISO 8601."""
    rows = con.execute(
        f"""
        SELECT style, count(*),
               count(*) FILTER (WHERE a > 12 AND b <= 12), count(*) FILTER (WHERE b > 12 AND a <= 12)
        FROM (
            SELECT style,
                   CASE WHEN style LIKE 'numeric%'
                        THEN TRY_CAST(regexp_extract(v, $dm, 1) AS INTEGER) END AS a,
                   CASE WHEN style LIKE 'numeric%'
                        THEN TRY_CAST(regexp_extract(v, $dm, 2) AS INTEGER) END AS b
            FROM (SELECT v, {_STYLE_SQL} AS style FROM ({values_sql}))
        )
        GROUP BY style
        """,
        {"dm": _NUMERIC_DM},
    ).fetchall()
    counts = {style: count for style, count, _, _ in rows}
    if iso_parsed:
        counts["iso"] = counts.get("iso", 0) + iso_parsed
    day_only = sum(row[2] for row in rows)
    month_only = sum(row[3] for row in rows)
    numeric = counts.get("numeric4", 0) + counts.get("numeric2", 0)
    order = _decide_order(chosen, day_only, month_only, numeric)
    numeric_name = "mm/dd/yyyy" if order.order == MONTH_FIRST else "dd/mm/yyyy"
    names = {
        "iso": "ISO 8601",
        "iso-offset": "ISO 8601 with offset",
        "epoch-s": "epoch seconds",
        "epoch-ms": "epoch milliseconds",
        "numeric4": numeric_name,
        "numeric2": numeric_name[:-2],
        "named": "month names or other",
        "other": "ISO-like with an unreadable ending",
    }
    styles = {
        names[style]: count for style, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    }
    needs = any(counts.get(style) for style in _STRPTIME_STYLES)
    return DateSurvey(order, styles, needs)


def _decide_order(chosen: str | None, day_only: int, month_only: int, numeric: int) -> DateOrder:
    if chosen:
        if chosen not in DATE_ORDERS:
            raise IngestError(f"Unknown date order '{chosen}'; use {' or '.join(DATE_ORDERS)}.")
        against = month_only if chosen == DAY_FIRST else day_only
        basis = "chosen at upload"
        if against:
            basis += f"; {against} date(s) in the file can only be read the other way and are rejected"
        return DateOrder(chosen, basis, ambiguous=False, conflicting=bool(against))
    if not numeric:
        return DateOrder(
            UNAMBIGUOUS, "no day/month dates in the file (ISO, epoch or month names)", False, False
        )
    if day_only and month_only:
        order = DAY_FIRST if day_only >= month_only else MONTH_FIRST
        losers = month_only if order == DAY_FIRST else day_only
        return DateOrder(
            order,
            f"conflicting: {day_only} date(s) read only day-first, {month_only} only month-first; "
            f"{order} kept and the other {losers} rejected",
            ambiguous=False,
            conflicting=True,
        )
    if day_only:
        return DateOrder(DAY_FIRST, f"detected: {day_only} date(s) have a day above 12", False, False)
    if month_only:
        return DateOrder(
            MONTH_FIRST, f"detected: {month_only} date(s) have a day above 12 in second place", False, False
        )
    return DateOrder(
        DAY_FIRST,
        f"assumed: none of the {numeric} day/month dates has a number above 12, so the file does not "
        "say; choose month-first at upload if that is how it was exported",
        ambiguous=True,
        conflicting=False,
    )


def fit_formats(con: duckdb.DuckDBPyConnection, values_sql: str, survey: DateSurvey) -> DateFormats:
    """Order each format list by how many of a sample of the file's values it parses."""
    formats = formats_for(DAY_FIRST if survey.order.order == UNAMBIGUOUS else survey.order.order)
    if not survey.needs_formats:
        return formats
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ingest_date_sample AS
        SELECT v FROM ({values_sql}) WHERE ({_STYLE_SQL}) IN {_STRPTIME_STYLES} LIMIT 2000
        """
    )

    def fitted(candidates: list[str]) -> list[str]:
        counts = con.execute(
            "SELECT "
            + ", ".join(f"count(try_strptime(v, '{fmt}'))" for fmt in candidates)
            + " FROM ingest_date_sample"
        ).fetchone()
        ranked = sorted(range(len(candidates)), key=lambda i: (-counts[i], i))
        return [candidates[i] for i in ranked]

    result = DateFormats(fitted(formats.numeric4), fitted(formats.numeric2), fitted(formats.named))
    con.execute("DROP TABLE ingest_date_sample")
    return result


def _local_sql(expression: str, convert_zone: bool) -> str:
    return f"timezone('UTC', timezone($tz, {expression}))" if convert_zone else expression


def iso_parse_sql(value: str, *, convert_zone: bool) -> str:
    """SQL parsing the text expression `value` when it has the common ISO shape, exactly as
    `parse_sql` does; NULL for every other value (which `parse_sql` then parses). A value of that
    shape which is no real time (month 13) is NULL in both."""
    return f"CASE WHEN {_common_iso(value)} THEN {_local_sql(f'TRY_CAST({value} AS TIMESTAMP)', convert_zone)} END"


def parse_sql(value: str, formats: DateFormats, *, convert_zone: bool) -> str:
    """SQL turning the text expression `value` into a UTC TIMESTAMP (NULL when unparseable).

    ISO values are tested first because they are the bulk of most exports (ServiceNow, PagerDuty).
    With `convert_zone`, the statement must bind `$tz` to the upload's (validated) time zone."""

    def local(expression: str) -> str:
        return _local_sql(expression, convert_zone)

    with_offset = (
        f"TRY_CAST(regexp_extract({value}, '{_SPLIT_OFFSET}', 1, 'i') AS TIMESTAMP) "
        f"- to_minutes(ingest_offset_minutes(regexp_extract({value}, '{_SPLIT_OFFSET}', 2, 'i')))"
    )
    other = (
        f"CASE WHEN regexp_matches({value}, '{_NUMERIC_4}') "
        f"THEN try_strptime({value}, {_sql_list(formats.numeric4)}) "
        f"WHEN regexp_matches({value}, '{_NUMERIC_2}') "
        f"THEN try_strptime({value}, {_sql_list(formats.numeric2)}) "
        f"ELSE try_strptime({value}, {_sql_list(formats.named)}) END"
    )
    return (
        f"CASE WHEN {value} IS NULL THEN NULL "
        f"WHEN {_common_iso(value)} THEN {local(f'TRY_CAST({value} AS TIMESTAMP)')} "
        f"WHEN regexp_matches({value}, '{_YEAR_FIRST}') THEN "
        f"CASE WHEN regexp_full_match({value}, '{_ISO_LOCAL}') "
        f"THEN {local(f'TRY_CAST({value} AS TIMESTAMP)')} "
        f"WHEN regexp_matches({value}, '{_OFFSET_TAIL}', 'i') THEN {with_offset} END "
        f"WHEN regexp_full_match({value}, '{_EPOCH_S}') "
        f"THEN make_timestamp(CAST({value} AS BIGINT) * 1000000) "
        f"WHEN regexp_full_match({value}, '{_EPOCH_MS}') THEN make_timestamp(CAST({value} AS BIGINT) * 1000) "
        f"ELSE {local(other)} END"
    )


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE OR REPLACE TEMP MACRO ingest_offset_minutes(off) AS
            CASE WHEN upper(off) IN ('Z', 'UTC', 'GMT') THEN 0
                 ELSE (CASE WHEN off[1] = '-' THEN -1 ELSE 1 END)
                      * (CAST(off[2:3] AS INTEGER) * 60
                         + coalesce(TRY_CAST(nullif(replace(off[4:], ':', ''), '') AS INTEGER), 0))
            END
        """
    )


def canonical_timezone(con: duckdb.DuckDBPyConnection, zone: str | None) -> str:
    name = (zone or "UTC").strip()
    if name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return "UTC"
    row = con.execute(
        "SELECT name FROM pg_timezone_names() WHERE lower(name) = lower($name) LIMIT 1", {"name": name}
    ).fetchone()
    if row is None:
        raise IngestError(
            f"Unknown time zone '{zone}'; use an IANA name such as Europe/Paris, America/New_York or UTC."
        )
    return row[0]
