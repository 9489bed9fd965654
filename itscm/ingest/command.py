"""`python -m itscm ingest FILE`: import an incident CSV export from the command line.

    python -m itscm ingest export.csv --store data/itscm.duckdb [--format NAME] [--tz ZONE]
        [--map FIELD=COLUMN]... [--mapping NAME] [--save-mapping NAME] [--date-order ORDER]
        [--dry-run] [--json] [--as USER] [--report PROBLEMS.csv] [--max-mb MB]

Exit status 0 when rows could be read (even if all were rejected: the report says why), 1 when
nothing could be read (unreadable file, unknown header without a mapping, bad option value).
Errors the user can act on are one line on stderr; with --json, stdout also gets one JSON object.
Anything else is a bug: its traceback goes to stderr before that line, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from itscm.access import AccessDenied, command_line_actor
from itscm.ingest.commit import commit_upload, diff_upload
from itscm.ingest.dates import DATE_ORDERS
from itscm.ingest.decode import DEFAULT_MAX_BYTES, DELIMITER_NAMES
from itscm.ingest.errors import IngestError
from itscm.ingest.formats import CUSTOM, FIELDS, FORMATS_BY_NAME
from itscm.ingest.mappings import save_mapping
from itscm.ingest.preview import UploadPreview, mapping_help, read_upload
from itscm.ingest.report import problems_csv
from itscm.store import Store, StoreError

_SHOWN_PROBLEMS = 10
_SHOWN_UNMATCHED = 10
# Errors whose message is the whole story for the user; any other exception is a bug.
USER_ERRORS = (IngestError, StoreError, AccessDenied)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the CSV export to import")
    parser.add_argument(
        "--format",
        choices=[*FORMATS_BY_NAME, CUSTOM],
        help="the export format, when detection from the header should be overridden",
    )
    parser.add_argument("--tz", default="UTC", help="time zone of times without an offset (default UTC)")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help=f"read FIELD from COLUMN; fields: {', '.join(FIELDS)} (repeatable)",
    )
    parser.add_argument("--mapping", metavar="NAME", help="use the saved column mapping NAME")
    parser.add_argument(
        "--save-mapping", metavar="NAME", help="save the mapping used under NAME for next time"
    )
    parser.add_argument("--date-order", choices=DATE_ORDERS, help="override day-first/month-first detection")
    parser.add_argument("--dry-run", action="store_true", help="read and check, commit nothing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--as", dest="uploaded_by", metavar="USER", help="who uploads (default: the OS user)")
    parser.add_argument("--report", metavar="PATH", help="write every problem to this CSV file")
    parser.add_argument(
        "--max-mb",
        type=float,
        default=DEFAULT_MAX_BYTES / 2**20,
        help="upload size limit in MB (default 200)",
    )


def run(args: argparse.Namespace, store: Store) -> int:
    return run_reporting_bugs("ingest", _run, _fail, args, store)


def run_reporting_bugs(command: str, run_command: Callable[[argparse.Namespace, Store], int],
                       fail: Callable[[argparse.Namespace, str], int], args: argparse.Namespace, store: Store) -> int:
    """`run_command`, a user error as its one line (`fail`), and a bug as its traceback then the same
    one line. Shared by the imports' commands (this one and itscm/changes/command.py)."""
    try:
        return run_command(args, store)
    except USER_ERRORS as error:
        return fail(args, str(error))
    except Exception as error:
        # A bug: a one-line message alone would hide where it happened, so the traceback comes
        # first (for the bug report), then the same one-line summary as any other failure.
        traceback.print_exc(file=sys.stderr)
        return fail(
            args, f"{command} failed unexpectedly ({type(error).__name__}: {' '.join(str(error).split())}); "
            "this is a bug, the traceback above shows where"
        )


def _run(args: argparse.Namespace, store: Store) -> int:
    mapping = _parse_maps(args.map)
    path = Path(args.file)
    max_bytes = int(args.max_mb * 2**20)
    data = _read_file(path, max_bytes)
    save_as = args.save_mapping
    preview = read_upload(
        data,
        path.name,
        store=store,
        format=args.format,
        tz=args.tz,
        mapping=mapping or None,
        mapping_name=save_as or args.mapping,
        date_order=args.date_order,
        max_bytes=max_bytes,
    )
    if preview.needs_mapping:
        message = mapping_help(preview)
        if args.json:
            print(
                json.dumps(
                    {
                        "error": message,
                        "columns": preview.columns,
                        "suggested_mapping": preview.suggested_mapping,
                    }
                )
            )
        print(f"ingest: {message}", file=sys.stderr)
        return 1
    if args.report:
        Path(args.report).write_bytes(problems_csv(preview))
    actor = command_line_actor(args.uploaded_by)
    if save_as and not args.dry_run:
        save_mapping(actor, store, save_as, {name: columns[0] for name, columns in preview.mapping.items()})
    result = diff_upload(store, preview) if args.dry_run else commit_upload(actor, store, preview)
    if args.json:
        print(json.dumps(result.as_dict() | _reading(preview), default=str))
    else:
        _print_human(preview, result, args)
    return 0 if preview.rows_read > 0 else 1


def _parse_maps(entries: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for entry in entries:
        name, sep, column = entry.partition("=")
        name = name.strip().lower()
        if not sep or name not in FIELDS:
            raise IngestError(
                f"--map {entry!r}: expected FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}."
            )
        mapping[name] = column
    return mapping


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            # Refused before reading, so a huge file is not loaded into memory only to be rejected.
            raise IngestError(
                f"{path.name} is {size / 2**20:.1f} MB, above the upload limit of "
                f"{max_bytes / 2**20:.1f} MB; export a shorter period or raise --max-mb."
            )
        if path.is_dir():
            raise IngestError(f"{path} is a folder, not a CSV file.")
        return path.read_bytes()
    except FileNotFoundError:
        raise IngestError(f"No file {path}.") from None
    except PermissionError:
        raise IngestError(f"Cannot read {path}: permission denied.") from None
    except OSError as error:
        raise IngestError(f"Cannot read {path}: {error.strerror or error}.") from None


def _reading(preview: UploadPreview) -> dict:
    return {
        "file_name": preview.file_name,
        "encoding": preview.encoding,
        "delimiter": DELIMITER_NAMES.get(preview.delimiter, preview.delimiter),
        "timezone": preview.timezone,
        "date_order": preview.date_order,
        "date_order_basis": preview.date_order_basis,
        "superseded_rows": preview.superseded_rows,
        "blank_rows": preview.blank_rows,
        "notes": preview.notes,
        "problems": [
            {key: (None if _missing(value) else value) for key, value in record.items()}
            for record in preview.first_problems(_SHOWN_PROBLEMS).to_dict("records")
        ],
    }


def _missing(value) -> bool:
    try:
        return value is None or bool(value != value)
    except (TypeError, ValueError):
        return False


def _fail(args: argparse.Namespace, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": message}))
    print(f"ingest: {message}", file=sys.stderr)
    return 1


def _print_human(preview: UploadPreview, result, args: argparse.Namespace) -> None:
    confidence = dict(preview.detected_formats).get(preview.format)
    detected = f", confidence {confidence:.0%}" if confidence is not None and not args.format else ""
    print(
        f"{preview.file_name}: {preview.format_label} ({preview.stored_format}{detected}); "
        f"{preview.encoding}, {DELIMITER_NAMES.get(preview.delimiter, preview.delimiter)}-separated; "
        f"times in {preview.timezone}; dates {preview.date_order} ({preview.date_order_basis})"
    )
    print(
        f"Read {preview.rows_read} row(s): {preview.incidents} incident(s) accepted, "
        f"{preview.rejected} row(s) rejected, {preview.warnings} warning(s)"
        + (f", {preview.superseded_rows} superseded row(s)" if preview.superseded_rows else "")
        + (f", {preview.blank_rows} blank row(s) skipped" if preview.blank_rows else "")
    )
    print(result.message)
    for note in preview.notes:
        print(f"Note: {note}")
    if len(preview.problems):
        print(f"Problems (first {min(_SHOWN_PROBLEMS, len(preview.problems))} of {len(preview.problems)}):")
        for record in preview.first_problems(_SHOWN_PROBLEMS).to_dict("records"):
            row = "file" if _missing(record["row"]) else f"row {record['row']}"
            column = f" [{record['column']}]" if record["column"] else ""
            value = f": {record['value']!r}" if not _missing(record["value"]) else ""
            print(f"  {row}{column} {record['severity']}: {record['reason']}{value}")
        if not args.report:
            print("  (the full report: --report PROBLEMS.csv)")
    unmatched = result.unmatched_services
    if len(unmatched):
        print(f"Service names matching no service ({len(unmatched)}); map them on the upload page:")
        shown = unmatched.head(_SHOWN_UNMATCHED)
        for name, count in zip(shown["service_name"], shown["incidents"], strict=True):
            print(f"  {name!r}: {count} incident(s)")
