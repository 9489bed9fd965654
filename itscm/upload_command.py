"""`python -m itscm uploads` and `python -m itscm undo`: the incident and change uploads from the
command line, listed and undone as the Upload incidents and Changes pages do (itscm/uploads.py).

    python -m itscm uploads --store PATH [--kind incidents|changes|all] [--json]
    python -m itscm undo UPLOAD_ID --store PATH [--as USER] [--json]

`undo` exits 0 when the upload is undone. An id no upload has, an upload already undone, or one
that a later committed upload changed again (named: undo that one first) is refused with one
line on stderr (with --json, also {"error": ...} on stdout) and exit status 1, nothing changed.
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from itscm.access import AccessDenied, command_line_actor
from itscm.ingest.errors import IngestError
from itscm.store import Store
from itscm.uploads import CHANGES, INCIDENTS, KINDS, list_all_uploads, undo_any_upload

ALL = "all"


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=(*KINDS, ALL), default=ALL,
                        help="incident uploads, change uploads, or both (default all)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON list, an object per upload with the keys of itscm/uploads.py COLUMNS")


def add_undo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("upload_id", metavar="UPLOAD_ID", help="an incident or change upload's id (see `uploads`)")
    parser.add_argument("--as", dest="user", metavar="USER", help="who undoes it (default: the OS user)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object: kind, upload_id, deleted, restored, message")


def run_list(args: argparse.Namespace, store: Store) -> int:
    uploads = list_all_uploads(store, KINDS if args.kind == ALL else (args.kind,))
    if args.json:
        print(uploads.to_json(orient="records", date_format="iso", date_unit="s"))
    else:
        print(_listing_text(uploads, args.kind))
    return 0


def run_undo(args: argparse.Namespace, store: Store) -> int:
    try:
        undone = undo_any_upload(command_line_actor(args.user), store, args.upload_id)
    except (IngestError, AccessDenied) as refused:
        if args.json:
            print(json.dumps({"error": str(refused)}))
        print(f"undo: {refused}", file=sys.stderr)
        return 1
    print(json.dumps(undone.as_dict()) if args.json else undone.message)
    return 0


_HELD = {INCIDENTS: "incident(s)", CHANGES: "change(s)"}


def _listing_text(uploads: pd.DataFrame, kind: str) -> str:
    if uploads.empty:
        return f"No {'' if kind == ALL else kind[:-1] + ' '}upload yet."
    lines = [f"{len(uploads):,} upload(s), newest first; times in UTC."]
    for upload in uploads.itertuples():
        if upload.state != "committed":
            undo = upload.state + ("" if pd.isna(upload.undone_at) else f" {upload.undone_at:%Y-%m-%d %H:%M}") + (
                f" by {upload.undone_by}" if upload.undone_by else "")
        elif upload.can_undo:
            undo = "can be undone"
        else:
            undo = f"undo blocked by {upload.undo_blocked_by}"
        lines.append(
            f"{upload.upload_id}  {upload.uploaded_at:%Y-%m-%d %H:%M}  {upload.kind:<9}  {upload.state:<9}  "
            f"{upload.file_name} ({upload.format}) by {upload.uploaded_by}: read {upload.rows_read:,}, "
            f"inserted {upload.inserted:,}, updated {upload.updated:,}, rejected {upload.rejected:,}; "
            f"holds {upload.held_now:,} {_HELD[upload.kind]}; {undo}")
    return "\n".join(lines)
