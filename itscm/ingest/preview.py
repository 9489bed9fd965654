"""Reading an upload into a preview: what was understood, what was rejected, nothing committed."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from itscm.ingest import dates
from itscm.ingest.decode import DEFAULT_MAX_BYTES, DELIMITER_NAMES, decode_upload
from itscm.ingest.errors import IngestError
from itscm.ingest.formats import (
    CUSTOM,
    FIELD_LABELS,
    FIELDS,
    FORMATS_BY_NAME,
    REQUIRED_FIELDS,
    apply_mapping,
    describe_columns,
    detect_formats,
    resolve_columns,
    source_prefix,
    suggest_mapping,
)
from itscm.ingest.mappings import load_mapping, matching_mapping, name_of_mapping
from itscm.ingest.reader import load_raw
from itscm.ingest.services import SERVICE_NAME_KEYS_SQL
from itscm.ingest.validate import ACCEPTED_SCHEMA, PROBLEM_COLUMNS, ProblemCounts, validate_rows
from itscm.store import Store

_SAMPLE_ROWS = 10


@dataclass(frozen=True)
class AsRead:
    """What read_upload checked about the accepted rows it made, so that a commit need not check
    it again: their incident ids are unique, and their service ids were matched against the store
    at data version `services_version`. It holds for that very table only (Arrow tables are
    immutable); a preview whose `accepted` was replaced is checked in full."""

    accepted: pa.Table
    services_version: int


@dataclass
class UploadPreview(ProblemCounts):
    """An upload read and checked, not committed. `accepted` is in store column layout (plus the
    file `row` each incident came from); `problems` has one line per problem: row (None for the
    whole file), column, severity ('error' rejects the row, 'warning' keeps it), reason, value."""

    file_name: str
    sha256: str
    size_bytes: int
    encoding: str
    delimiter: str
    columns: list[str]
    format: str  # servicenow, jira, pagerduty, opsgenie, generic, custom
    format_label: str
    source: str  # prefix of the incident ids
    detected_formats: list[tuple[str, float]]  # (format, confidence), best first
    mapping: dict[str, list[str]]  # field -> the columns read for it
    mapping_name: str | None
    needs_mapping: bool
    missing_fields: list[str]
    suggested_mapping: dict[str, str]
    timezone: str
    date_order: str  # day-first, month-first, unambiguous
    date_order_basis: str
    date_styles: dict[str, int]
    rows_read: int
    blank_rows: int
    superseded_rows: int
    accepted: pa.Table
    problems: pd.DataFrame
    sample: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    # Set by read_upload only; a copy made with dataclasses.replace starts without it.
    as_read: AsRead | None = field(default=None, init=False, repr=False, compare=False)

    def vouched(self) -> AsRead | None:
        """What read_upload checked, while `accepted` is still the very table it checked."""
        return self.as_read if self.as_read is not None and self.as_read.accepted is self.accepted else None

    @property
    def incidents(self) -> int:
        return self.accepted.num_rows

    @property
    def stored_format(self) -> str:
        """The format as recorded in the uploads table."""
        return f"{CUSTOM}:{self.mapping_name}" if self.format == CUSTOM and self.mapping_name else self.format

    def unmatched_services(self) -> pd.DataFrame:
        """service_name, incidents: names in this file that match no service (as the store is now)."""
        frame = self.accepted.select(["service_id", "service_name"]).to_pandas()
        frame = frame[frame["service_id"].isna() & frame["service_name"].notna()]
        counts = frame.groupby("service_name").size().rename("incidents").reset_index()
        return counts.sort_values(["incidents", "service_name"], ascending=[False, True], ignore_index=True)

    def first_problems(self, limit: int = 20) -> pd.DataFrame:
        return self.problems.head(limit)

    def summary(self) -> dict:
        return {
            "file_name": self.file_name,
            "format": self.stored_format,
            "format_label": self.format_label,
            "encoding": self.encoding,
            "delimiter": DELIMITER_NAMES.get(self.delimiter, self.delimiter),
            "timezone": self.timezone,
            "date_order": self.date_order,
            "date_order_basis": self.date_order_basis,
            "rows_read": self.rows_read,
            "incidents": self.incidents,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "superseded_rows": self.superseded_rows,
            "blank_rows": self.blank_rows,
            "needs_mapping": self.needs_mapping,
        }


def read_upload(
    data: bytes,
    file_name: str,
    *,
    store: Store,
    format: str | None = None,
    tz: str = "UTC",
    mapping: dict[str, str] | None = None,
    mapping_name: str | None = None,
    date_order: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    now: datetime | None = None,
) -> UploadPreview:
    """Read and check an upload; raise `IngestError` when the file cannot be read at all."""
    decoded = decode_upload(data, file_name, max_bytes=max_bytes)
    header = decoded.header
    choice = _choose_format(store, header, format, mapping, mapping_name)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    with (
        tempfile.TemporaryDirectory(prefix="itscm-ingest-") as workdir,
        tempfile.TemporaryDirectory(
            prefix="itscm-upload-", dir=memory_backed_dir(len(decoded.text))
        ) as upload_dir,
        _scratch(Path(workdir)) as con,
    ):
        timezone = dates.canonical_timezone(con, tz)
        raw = load_raw(
            con,
            decoded.text,
            delimiter=decoded.delimiter,
            n_columns=len(header),
            workdir=Path(upload_dir),
            file_name=file_name,
        )
        if raw.records <= 1:
            raise IngestError(f"{file_name} has a header but no data rows.")
        sample = _sample(con, header)
        base = dict(
            file_name=file_name,
            sha256=decoded.sha256,
            size_bytes=decoded.size_bytes,
            encoding=decoded.encoding,
            delimiter=decoded.delimiter,
            columns=header,
            format=choice.format,
            format_label=choice.label,
            source=choice.source,
            detected_formats=choice.detected,
            mapping={name: [header[i] for i in positions] for name, positions in choice.columns.items()},
            mapping_name=choice.mapping_name,
            missing_fields=choice.missing,
            suggested_mapping=suggest_mapping(header) if choice.missing else {},
            timezone=timezone,
            sample=sample,
        )
        if choice.missing:
            rows = con.execute("SELECT count(*) FROM ingest_raw WHERE row_no > 1").fetchone()[0]
            return UploadPreview(
                **base,
                needs_mapping=True,
                date_order=dates.UNAMBIGUOUS,
                date_order_basis="",
                date_styles={},
                rows_read=rows,
                blank_rows=raw.blank_rows,
                superseded_rows=0,
                accepted=_empty_accepted(),
                problems=_empty_problems(),
                notes=[_mapping_needed(choice, header)],
            )
        # Read before the services: a write committing in between makes the version look older
        # than the matches, and the commit then matches again (never the other way round).
        services_version = store.data_version()
        con.register("ingest_name_keys_arrow", store.arrow(SERVICE_NAME_KEYS_SQL))
        con.execute("CREATE TEMP TABLE ingest_name_keys AS SELECT * FROM ingest_name_keys_arrow")
        con.unregister("ingest_name_keys_arrow")
        validated = validate_rows(
            con,
            header=header,
            columns=choice.columns,
            source=choice.source,
            timezone=timezone,
            date_order=date_order,
            now=now,
            blank_lines=raw.blank_rows,
        )
    problems, notes = _file_level(validated, choice.columns, unbalanced_quotes=raw.unbalanced_quotes)
    preview = UploadPreview(
        **base,
        needs_mapping=False,
        date_order=validated.date_order.order,
        date_order_basis=validated.date_order.basis,
        date_styles=validated.date_styles,
        rows_read=validated.rows_read,
        blank_rows=validated.blank_rows,
        superseded_rows=validated.superseded_rows,
        accepted=validated.accepted,
        problems=problems,
        notes=notes,
    )
    # validate_rows keeps one row per incident id (the latest), so the ids are unique.
    preview.as_read = AsRead(validated.accepted, services_version)
    return preview


# Linux's RAM-backed folder. The upload's text is written to a file for DuckDB's parallel CSV
# reader; on disk, that write of a large file was throttled behind the store's own writes (about
# 0.3 s for 156 MB after a commit, against 0.06 s here). Spill files stay on disk.
_MEMORY_BACKED_DIR = Path("/dev/shm")
_MEMORY_HEADROOM_BYTES = 256 * 1024 * 1024


def memory_backed_dir(size_bytes: int) -> str | None:
    """The RAM-backed folder if it has room for the upload with headroom to spare, else None (the
    usual temporary folder): a container's /dev/shm is often only 64 MB. Shared with the change
    import (itscm/changes/read.py)."""
    try:
        stats = os.statvfs(_MEMORY_BACKED_DIR)
    except OSError:
        return None
    free = stats.f_bavail * stats.f_frsize
    if free < 2 * size_bytes + _MEMORY_HEADROOM_BYTES or not os.access(_MEMORY_BACKED_DIR, os.W_OK):
        return None
    return str(_MEMORY_BACKED_DIR)


@dataclass(frozen=True)
class _FormatChoice:
    format: str
    label: str
    source: str
    columns: dict[str, list[int]]
    detected: list[tuple[str, float]]
    mapping_name: str | None
    missing: list[str]


def _choose_format(
    store: Store,
    header: list[str],
    chosen: str | None,
    mapping: dict[str, str] | None,
    mapping_name: str | None,
) -> _FormatChoice:
    detected = [(match.name, match.confidence) for match in detect_formats(header)]
    user_mapping = dict(mapping or {})
    if mapping_name:
        try:
            mapping_name, saved = load_mapping(store, mapping_name)
        except IngestError:
            if not user_mapping:
                raise
            # A mapping being defined now under a new name: the name already sources the ids.
            mapping_name, saved = mapping_name.strip(), {}
            source_prefix(mapping_name)
        user_mapping = saved | user_mapping
    if chosen:
        chosen = chosen.strip().lower()
        if chosen != CUSTOM and chosen not in FORMATS_BY_NAME:
            raise IngestError(
                f"Unknown format '{chosen}'; the formats are {', '.join(FORMATS_BY_NAME)} (or custom)."
            )
    elif detected:
        chosen = detected[0][0]
    elif not user_mapping:
        remembered = matching_mapping(store, header)
        if remembered:
            mapping_name, user_mapping = remembered
        chosen = CUSTOM
    else:
        chosen = CUSTOM
        mapping_name = mapping_name or name_of_mapping(store, user_mapping)
    fmt = FORMATS_BY_NAME.get(chosen)
    columns = apply_mapping(resolve_columns(fmt, header), header, user_mapping)
    if fmt is not None:
        label, source = fmt.label, fmt.source
    elif mapping_name:
        label, source = f"Custom mapping '{mapping_name}'", source_prefix(mapping_name)
    else:
        label, source = "Custom column mapping", "generic"
    missing = [name for name in REQUIRED_FIELDS if name not in columns]
    return _FormatChoice(chosen, label, source, columns, detected, mapping_name, missing)


def _mapping_needed(choice: _FormatChoice, header: list[str]) -> str:
    fields = " and ".join(FIELD_LABELS[name] for name in choice.missing)
    if choice.format == CUSTOM:
        return f"The header matches no known export format; map at least the columns for {fields}."
    return (
        f"This {choice.label} has no column for {fields}; map {'them' if len(choice.missing) > 1 else 'it'}."
    )


def mapping_help(preview: UploadPreview) -> str:
    """One paragraph telling a command-line user how to map an unknown header."""
    example = preview.suggested_mapping or {}
    maps = " ".join(f"--map {name}={_shell_word(column)}" for name, column in example.items()) or (
        "--map id=COLUMN --map opened=COLUMN"
    )
    return (
        f"{preview.notes[0] if preview.notes else ''} Columns found: {describe_columns(preview.columns)}. "
        f"Map them with --map FIELD=COLUMN (fields: {', '.join(FIELDS)}), e.g. {maps}; "
        "add --save-mapping NAME to reuse it."
    )


def _shell_word(text: str) -> str:
    return (
        text
        if text and all(char.isalnum() or char in "_-./" for char in text)
        else "'" + text.replace("'", "'\\''") + "'"
    )


def _file_level(
    validated, columns: dict[str, list[int]], *, unbalanced_quotes: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Problems of the whole file (row empty) ahead of the row problems, and notes for the analyst."""
    issues: list[tuple[str, str, str]] = []
    notes: list[str] = []
    order = validated.date_order
    if order.ambiguous:
        issues.append(("", "warning", f"date order {order.order} {order.basis}"))
    if order.conflicting:
        issues.append(("", "warning", f"date order {order.order}: {order.basis}"))
    if "restored" not in columns and "resolved" in columns:
        issues.append(
            ("", "warning", "no restore column: resolved_at will serve as an estimated restore time")
        )
    if unbalanced_quotes:
        last = validated.rows_read + validated.blank_rows + 1
        issues.append(
            (
                "",
                "warning",
                "the file has an odd number of quote characters: if a quoted cell is never closed, the "
                f"rows after it were read into that cell; check that the last row read (row {last}) is "
                "the file's last",
            )
        )
    if "service" not in columns:
        issues.append(("", "warning", "no service column: every incident stays unmatched"))
    if validated.superseded_rows and "updated" in columns:
        # What an audit log is, said once: its earlier updates are not doubts to report row by row
        # (validate_rows reports the superseded rows of a list export only).
        incidents = validated.accepted.num_rows
        updates = incidents + validated.superseded_rows
        notes.append(
            f"An audit log: {_count(incidents, 'incident')} in {_count(updates, 'update')}; the latest "
            f"update of each is kept ({_count(validated.superseded_rows, 'earlier update')} superseded)."
        )
    if validated.blank_rows:
        notes.append(f"{validated.blank_rows} blank row(s) skipped.")
    head = pd.DataFrame(
        [
            {"row": None, "column": column, "severity": severity, "reason": reason, "value": None}
            for column, severity, reason in issues
        ],
        columns=PROBLEM_COLUMNS,
    )
    rows = validated.problems
    frame = pd.concat([head, rows], ignore_index=True) if len(head) else rows.copy()
    frame["row"] = frame["row"].astype("Int64")
    for column in ("column", "severity", "reason", "value"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame[PROBLEM_COLUMNS], notes


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _sample(con: duckdb.DuckDBPyConnection, header: list[str]) -> pd.DataFrame:
    """The first data rows as read, every value as text, for the mapping form and the preview."""
    columns = ", ".join(f"c{i}" for i in range(len(header)))
    rows = con.execute(
        f"SELECT row_no, {columns} FROM ingest_raw WHERE row_no > 1 ORDER BY row_no LIMIT {_SAMPLE_ROWS}"
    ).fetchall()
    frame = pd.DataFrame([list(row[1:]) for row in rows], columns=display_names(header))
    frame.index = pd.Index([row[0] for row in rows], name="row")
    return frame


def display_names(header: list[str]) -> list[str]:
    """Header names made unique for display ("Component/s", "Component/s (2)"): Arrow, and so
    Streamlit, refuse a table with two columns of one name."""
    seen: dict[str, int] = {}
    names = []
    for i, name in enumerate(header):
        base = name or f"column {i + 1}"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} ({seen[base]})")
    return names


def _empty_accepted() -> pa.Table:
    return ACCEPTED_SCHEMA.empty_table()


def _empty_problems() -> pd.DataFrame:
    frame = pd.DataFrame(columns=PROBLEM_COLUMNS)
    frame["row"] = frame["row"].astype("Int64")
    return frame


class _scratch:
    """A private in-memory DuckDB for parsing: a compute engine, not the store, so a preview never
    holds the store's write lock and leaves nothing behind."""

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        # Spill files go to the upload's temporary folder, not the working directory.
        self.con = duckdb.connect(":memory:", config={"temp_directory": str(self.workdir / "spill")})
        self.con.execute("SET TimeZone = 'UTC'")
        return self.con

    def __exit__(self, *exc) -> None:
        self.con.close()
