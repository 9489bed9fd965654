"""`python -m itscm inventory ...`: the inventory workbook from the command line.

    python -m itscm inventory template --to FILE.xlsx
    python -m itscm inventory export --store PATH --to FILE.xlsx|FOLDER
    python -m itscm inventory import FILE|FOLDER... --store PATH [--dry-run] [--retire-missing] [--json] [--as USER]
    python -m itscm inventory undo ID --store PATH [--as USER]
    python -m itscm inventory list --store PATH [--json]

The command line acts as a local user with every role (the roles are checked all the same, in
the commit and the undo). A file refused as a whole is one line on stderr and exit status 1, the
store untouched; rows rejected are reported and do not fail the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from itscm.store import Store, StoreError, resolve_store_path
from itscm.workbook.errors import WorkbookError

# The reader, the planner and openpyxl are imported by the actions that use them, so that every
# other command of `python -m itscm` starts without them.

SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="inventory_action", required=True, parser_class=type(parser))

    def action(name: str, help_text: str, *, store: bool = True) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        if store:
            sub.add_argument("--store", metavar="PATH",
                             help="the store file (default: $ITSCM_STORE, else data/itscm.duckdb)")
        return sub

    template = action("template", "Write the empty inventory workbook (README, sheets, dropdowns).", store=False)
    template.add_argument("--to", required=True, metavar="FILE.xlsx")

    export = action("export", "Write the store's inventory to a workbook, or a folder of one CSV per sheet.")
    export.add_argument("--to", required=True, metavar="FILE.xlsx|FOLDER")

    imported = action("import", "Import inventory workbooks or CSV files (named after their sheet) in one "
                                "transaction; a folder means the workbooks and CSV files in it.")
    imported.add_argument("files", nargs="+", metavar="FILE")
    imported.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    imported.add_argument("--retire-missing", nargs="?", const=True, default=False, type=_sheet_names,
                          metavar="SHEET,...",
                          help="retire services and plans absent from the files, remove other absent rows; from "
                               "every sheet, or only from the sheets named (e.g. --retire-missing=services,plans)")
    imported.add_argument("--json", action="store_true", help="print one JSON object")
    imported.add_argument("--as", dest="user", metavar="USER", help="who imports (default: the OS user)")

    undo = action("undo", "Undo an inventory import: every row it wrote back as it was.")
    undo.add_argument("import_id", metavar="ID")
    undo.add_argument("--as", dest="user", metavar="USER", help="who undoes it (default: the OS user)")
    undo.add_argument("--json", action="store_true")

    listed = action("list", "The inventory imports, newest first.")
    listed.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _ACTIONS[args.inventory_action](args)
    except (WorkbookError, StoreError) as error:
        return _fail(args, str(error))
    except PermissionError as error:
        return _fail(args, f"cannot write {error.filename}: permission denied")
    except Exception as error:  # a bug: still one line for the user, never a traceback
        return _fail(args, f"the inventory command failed unexpectedly ({type(error).__name__}: "
                           f"{' '.join(str(error).split())})")


def _fail(args: argparse.Namespace, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": message}))
    print(f"inventory: {message}", file=sys.stderr)
    return 1


def _actor(args: argparse.Namespace):
    from itscm.access import command_line_actor

    return command_line_actor(getattr(args, "user", None))


def _template(args: argparse.Namespace) -> int:
    from itscm.workbook.export import write_template

    path = write_template(args.to)
    print(f"Empty inventory workbook written to {path}.")
    return 0


def _export(args: argparse.Namespace) -> int:
    from itscm.workbook.export import export_inventory

    with Store(resolve_store_path(args.store), read_only=True, create=False) as store:
        counts = export_inventory(store, args.to)
    print(f"Inventory written to {args.to}: " + ", ".join(f"{n:,} {sheet}" for sheet, n in counts.items()))
    return 0


def _files(names: list[str]) -> list[tuple[str, bytes]]:
    from itscm.workbook.read import CSV_EXTENSIONS, WORKBOOK_EXTENSIONS
    from itscm.workbook.xlsx import MAX_FILE_BYTES

    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            readable = (*WORKBOOK_EXTENSIONS, *CSV_EXTENSIONS)
            # "~$name.xlsx" is the lock file Excel leaves beside an open workbook.
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in readable and not p.name.startswith("~$"))
            if not found:
                raise WorkbookError(f"{path} holds no workbook or CSV file.")
            paths += found
        else:
            paths.append(path)
    files = []
    for path in paths:
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:   # refused before reading: a huge file is never loaded
                raise WorkbookError(f"{path.name} is {size / 2**20:.1f} MB, above the limit of "
                                    f"{MAX_FILE_BYTES / 2**20:.0f} MB for an inventory file.")
            files.append((path.name, path.read_bytes()))
        except FileNotFoundError:
            raise WorkbookError(f"No file {path}.") from None
        except PermissionError:
            raise WorkbookError(f"Cannot read {path}: permission denied.") from None
        except IsADirectoryError:
            raise WorkbookError(f"{path} is a folder.") from None
    return files


def _sheet_names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _import(args: argparse.Namespace) -> int:
    from itscm.workbook.commit import commit_inventory, preview_inventory

    files = _files(args.files)
    with Store(resolve_store_path(args.store)) as store:
        preview = preview_inventory(store, files, retire_missing=args.retire_missing)
        if args.dry_run:
            report, message = preview.as_dict(), preview.as_dict()["message"]
        else:
            result = commit_inventory(_actor(args), store, preview)
            report, message = result.as_dict(), result.message
    if args.json:
        print(json.dumps(report, default=str))
    else:
        _print_report(report, message)
    return 0


def _print_report(report: dict, message: str) -> None:
    for file in report["files"]:
        print(f"{file['file']}: {file['table']}, {file['rows']} row(s)")
    for note in report["notes"]:
        print(f"Note: {note}")
    print(f"{'sheet':18s} {'added':>7s} {'changed':>8s} {'same':>8s} {'retired':>8s} {'rejected':>9s} {'absent':>7s}")
    for sheet, counts in report["tables"].items():
        if any(counts.values()):
            print(f"{sheet:18s} {counts['inserted']:7,d} {counts['updated']:8,d} {counts['unchanged']:8,d} "
                  f"{counts['retired']:8,d} {counts['rejected']:9,d} {counts['absent']:7,d}")
    changes = report["changes"]
    if changes:
        print(f"Changes (first {min(SHOWN, len(changes))}):")
        for change in changes[:SHOWN]:
            print(f"  {change['sheet']} {change['row_key']}: {change['field']} {change['old']!r} -> {change['new']!r}")
    problems = report["problems"]
    if problems:
        print(f"Problems (first {min(SHOWN, len(problems))} of {report['rejected']} rejected row(s), "
              f"{report['warnings']} warning(s)):")
        for problem in problems[:SHOWN]:
            where = " ".join(part for part in (problem["file"], problem["sheet"],
                                               f"row {problem['row']}" if problem["row"] else None,
                                               f"[{problem['column']}]" if problem["column"] else None) if part)
            value = f": {problem['value']!r}" if problem["value"] is not None else ""
            print(f"  {where} {problem['severity']}: {problem['reason']}{value}")
    print(message)


def _undo(args: argparse.Namespace) -> int:
    from itscm.workbook.commit import undo_inventory_import

    with Store(resolve_store_path(args.store), create=False) as store:
        result = undo_inventory_import(_actor(args), store, args.import_id)
    if args.json:
        print(json.dumps({"import_id": result.import_id, "restored": result.restored, "message": result.message}))
    else:
        print(result.message)
    return 0


def _list(args: argparse.Namespace) -> int:
    from itscm.workbook.commit import list_inventory_imports

    with Store(resolve_store_path(args.store), read_only=True, create=False) as store:
        imports = list_inventory_imports(store)
    if args.json:
        print(imports.to_json(orient="records", date_format="iso"))
        return 0
    if imports.empty:
        print("No inventory import yet.")
    for row in imports.itertuples():
        print(f"{row.import_id}  {row.imported_at:%Y-%m-%d %H:%M}  {row.imported_by}  {row.state}  "
              f"{', '.join(json.loads(row.files))}")
    return 0


_ACTIONS = {"template": _template, "export": _export, "import": _import, "undo": _undo, "list": _list}
