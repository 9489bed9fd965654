"""`python -m itscm ingest-changes FILE`: import a change export from the command line.

    python -m itscm ingest-changes changes.csv --store data/itscm.duckdb [--format NAME] [--tz ZONE]
        [--map FIELD=COLUMN]... [--date-order ORDER] [--dry-run] [--json] [--as USER] [--max-mb MB]

CSV or XLSX (ServiceNow change_request, Jira Service Management, the generic template). The
--json object has the incident import's keys (format, rows_read, inserted, updated, unchanged,
rejected, warnings, upload_id, already_imported, dry_run, message, problems, ...) with `changes`
for `incidents` and `unmatched_cis` for `unmatched_services`. Exit status as `ingest`: 0 when
rows could be read, 1 when nothing could be, one line on stderr for an error the user can act on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from itscm.access import command_line_actor
from itscm.changes.commit import commit_changes, diff_changes
from itscm.changes.formats import CUSTOM, FIELDS, FORMATS_BY_NAME
from itscm.changes.read import ChangePreview, read_changes

# The incident command's file reading (size limit before reading, one-line errors).
from itscm.ingest.command import _missing, _read_file, run_reporting_bugs
from itscm.ingest.dates import DATE_ORDERS
from itscm.ingest.decode import DEFAULT_MAX_BYTES
from itscm.ingest.errors import IngestError
from itscm.store import Store

_SHOWN = 10
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the change export to import (CSV or XLSX)")
    parser.add_argument("--format", choices=[*FORMATS_BY_NAME, CUSTOM],
                        help="the export format, when detection from the header should be overridden")
    parser.add_argument("--tz", default="UTC", help="time zone of times without an offset (default UTC)")
    parser.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                        help=f"read FIELD from COLUMN; fields: {', '.join(FIELDS)} (repeatable)")
    parser.add_argument("--date-order", choices=DATE_ORDERS, help="override day-first/month-first detection")
    parser.add_argument("--dry-run", action="store_true", help="read and check, commit nothing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--as", dest="uploaded_by", metavar="USER", help="who uploads (default: the OS user)")
    parser.add_argument("--max-mb", type=float, default=DEFAULT_MAX_BYTES / 2**20,
                        help="upload size limit in MB (default 200)")


def run(args: argparse.Namespace, store: Store) -> int:
    return run_reporting_bugs("ingest-changes", _run, _fail, args, store)


def _run(args: argparse.Namespace, store: Store) -> int:
    mapping = {}
    for entry in args.map:
        name, sep, column = entry.partition("=")
        if not sep or name.strip().lower() not in FIELDS:
            raise IngestError(f"--map {entry!r}: expected FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}.")
        mapping[name.strip().lower()] = column
    path = Path(args.file)
    max_bytes = int(args.max_mb * 2**20)
    preview = read_changes(_read_file(path, max_bytes), path.name, store=store, format=args.format, tz=args.tz,
                           mapping=mapping, date_order=args.date_order, max_bytes=max_bytes)
    if preview.needs_mapping:
        message = (f"{preview.notes[0]} Columns found: {', '.join(map(repr, preview.columns))}. "
                   f"Map them with --map FIELD=COLUMN (fields: {', '.join(FIELDS)}).")
        return _fail(args, message, {"columns": preview.columns})
    actor = command_line_actor(args.uploaded_by)
    result = diff_changes(store, preview) if args.dry_run else commit_changes(actor, store, preview)
    if args.json:
        print(json.dumps(result.as_dict() | _reading(preview), default=str))
    else:
        _print_human(preview, result)
    return 0 if preview.rows_read > 0 else 1


def _reading(preview: ChangePreview) -> dict:
    return {
        "file_name": preview.file_name, "timezone": preview.timezone, "date_order": preview.date_order,
        "superseded_rows": preview.superseded_rows, "notes": preview.notes,
        "problems": [{key: (None if _missing(value) else value) for key, value in record.items()}
                     for record in preview.problems.head(_SHOWN).to_dict("records")],
    }


def _fail(args: argparse.Namespace, message: str, extra: dict | None = None) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": message} | (extra or {})))
    print(f"ingest-changes: {message}", file=sys.stderr)
    return 1


def _print_human(preview: ChangePreview, result) -> None:
    print(f"{preview.file_name}: {preview.format_label} ({preview.format}); times in {preview.timezone}; "
          f"dates {preview.date_order}")
    print(f"Read {preview.rows_read} row(s): {preview.changes} change(s) accepted, {preview.rejected} row(s) "
          f"rejected, {preview.warnings} warning(s)")
    print(result.message)
    for note in preview.notes:
        print(f"Note: {note}")
    if len(preview.problems):
        print(f"Problems (first {min(_SHOWN, len(preview.problems))} of {len(preview.problems)}):")
        for record in preview.problems.head(_SHOWN).to_dict("records"):
            row = "file" if _missing(record["row"]) else f"row {record['row']}"
            column = f" [{record['column']}]" if record["column"] else ""
            value = f": {record['value']!r}" if not _missing(record["value"]) else ""
            print(f"  {row}{column} {record['severity']}: {record['reason']}{value}")
    unmatched = result.unmatched_cis
    if len(unmatched):
        print(f"CI names matching no service or asset ({len(unmatched)}); map them on the Changes page:")
        for name, count in zip(unmatched["ci_name"].head(_SHOWN), unmatched["changes"].head(_SHOWN), strict=True):
            print(f"  {name!r}: {count} change(s)")
