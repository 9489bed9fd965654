"""The command line: `python -m itscm COMMAND ...`.

Every failure the user can act on ends in one line on stderr and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb

from itscm.filters import EVENT_SCOPES, Filters, unknown_units
from itscm.report.pdf import PdfUnavailable
from itscm.store import Store, StoreError, resolve_store_path


class UsageError(Exception):
    """Bad arguments, reported as one line with exit status 2."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _tier(text: str) -> int:
    value = _positive_int(text)
    if not 1 <= value <= 4:
        raise argparse.ArgumentTypeError(f"tiers are 1 to 4, not {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (usage is one `--help` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _open(args: argparse.Namespace, *, create: bool = False, read_only: bool = False) -> Store:
    return Store(resolve_store_path(args.store), create=create, read_only=read_only)


# -- commands ----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path = resolve_store_path(args.store)
    store = Store(path, create=True)
    try:
        print(f"Store ready at {path} (schema version {store.schema_version()}).")
    finally:
        store.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from itscm.demo import build_demo

    path = resolve_store_path(args.store)
    store = Store(path, create=True)
    try:
        if store.scalar("SELECT count(*) FROM services"):
            raise UsageError(f"{path} already holds services; the demo is built into a new store only.")
        counts = build_demo(
            store, seed=args.seed, services=args.services, incidents=args.incidents, as_of=args.as_of,
            progress=None if args.quiet else (lambda step: print(step, file=sys.stderr)),
        )
    finally:
        store.close()
    print(f"Demo store built at {path}: " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))
    return 0


def _filters(args: argparse.Namespace, store: Store) -> Filters:
    units = tuple(args.unit or ())
    missing = unknown_units(store, units)
    if missing:
        known = ", ".join(name for (name,) in store.rows("SELECT name FROM business_units ORDER BY name"))
        raise UsageError(f"unknown business unit {', '.join(map(repr, missing))}; known units: {known or 'none'}")
    from itscm.administration import default_events

    try:
        return Filters(units=units, tiers=tuple(args.tier or ()), since=args.since, until=args.until,
                       as_of=args.as_of, events=args.events or default_events(store))
    except ValueError as error:
        raise UsageError(str(error)) from None


def summary_json(store: Store, filters: Filters) -> dict:
    """The documented JSON shape of `summary --json`: the incidents counted (`events`: continuity
    or all, docs/DESIGN.md §17), then each headline measure's JSON fields."""
    from itscm.measures.posture import measures_snapshot
    from itscm.measures.registry import headline_measures

    snapshot = measures_snapshot(store, filters)
    return {"events": filters.events,
            **{measure.name: {field: snapshot[measure.name][field] for field in measure.json_fields}
               for measure in headline_measures()}}


def cmd_summary(args: argparse.Namespace) -> int:
    from itscm.measures.posture import measures_snapshot

    store = _open(args, read_only=True)
    try:
        filters = _filters(args, store)
        if args.json:
            print(json.dumps(summary_json(store, filters)))
            return 0
        snapshot = measures_snapshot(store, filters)
        currency = store.currency()
    finally:
        store.close()
    print(_summary_text(filters, snapshot, currency))
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _figure(value: float | None, measure, currency: str) -> str:
    from itscm.measures.registry import MONEY

    if measure.format == MONEY:
        return f"{'n/a':>14} {currency}" if value is None else f"{value:>14,.0f} {currency}"
    return f"{_pct(value):>10}"


def _summary_text(filters: Filters, snapshot: dict, currency: str) -> str:
    from itscm.measures.registry import headline_measures

    scope = ", ".join(filters.units) or "all business units"
    tiers = ", ".join(map(str, filters.tiers)) or "all"
    lines = [f"Continuity posture for {scope}, tiers {tiers}; period {filters.since} to {filters.until}, "
             f"as of {filters.as_of}; incidents: {filters.events_label.lower()}"]
    for measure in headline_measures():
        summary = snapshot[measure.name]
        lines.append(f"  {measure.label:<27}{_figure(summary[measure.figure], measure, currency)}  "
                     f"({measure.summary_text(summary)})")
    return "\n".join(lines)


def cmd_verify(args: argparse.Namespace) -> int:
    """Compare the derived columns, the rollup and the change days with a full rebuild, and check
    that every key the writers keep unique is (itscm/uniqueness.py); 1 when anything differs."""
    from itscm import change_days, rollup, uniqueness

    # Read-only: opening for writing could fill derived data that was never filled, hiding it.
    store = _open(args, read_only=True)
    try:
        with store.read_transaction() as cursor:
            differences = (uniqueness.duplicate_keys(cursor) + rollup.differences(cursor)
                           + change_days.differences(cursor))
    finally:
        store.close()
    if args.json:
        print(json.dumps({"ok": not differences, "differences": differences}))
    elif not differences:
        print("Every key is unique; the derived columns, the rollup and the change days agree with a full rebuild.")
    else:
        for difference in differences:
            place = ", ".join(f"{key} {difference[key]}" for key in ("unique", "column", "service_id", "month", "key")
                              if key in difference)
            print(f"{difference['table']} ({place}): {difference['rows']:,} {difference['what']}")
    return 1 if differences else 0


def cmd_report(args: argparse.Namespace) -> int:
    """The board pack to a file, or with --per-owner one file per owner into a folder."""
    import getpass

    from itscm.report import make_report
    from itscm.report.owner_packs import owner_packs

    out = Path(args.out)
    report_format = args.format or (out.suffix.lstrip(".").lower() if out.suffix.lower() in (".pdf", ".html")
                                    else "pdf")
    if not args.per_owner and not out.parent.is_dir():
        # Said before the report is made, which takes seconds (a PDF, a lake), not after.
        raise UsageError(f"cannot write {out}: no folder {out.parent}")
    store = _open(args, read_only=True)
    try:
        filters = _filters(args, store)
        if args.per_owner:
            packs = owner_packs(store, filters, args.pack_format)
        else:
            content = make_report(store, filters, report_format, made_by=args.made_by or getpass.getuser())
    finally:
        store.close()
    try:
        if args.per_owner:
            out.mkdir(parents=True, exist_ok=True)
            for name, pack in packs.items():
                (out / name).write_bytes(pack)
        else:
            out.write_bytes(content)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror or error}") from None
    print(f"{len(packs):,} owner packs written to {out}" if args.per_owner
          else f"Report written to {out} ({len(content):,} bytes)")
    return 0


def cmd_remind(args: argparse.Namespace) -> int:
    """Each owner's due plans, drills and overdue findings, by email (or printed with --dry-run)."""
    from itscm import remind

    smtp = remind.read_smtp_settings(Path(args.secrets) if args.secrets else None)
    store = _open(args, read_only=True)
    try:
        reminders, skipped = remind.plan_reminders(store, _filters(args, store), smtp)
    finally:
        store.close()
    if args.dry_run:
        for reminder in reminders:
            print(f"To: {reminder.address}\nSubject: {reminder.subject}\n\n{reminder.body}\n{'-' * 72}")
        print(f"{len(reminders):,} reminders would be sent (dry run).")
    else:
        try:
            sent = remind.send_reminders(reminders, smtp)
        except remind.ReminderError as error:
            raise UsageError(str(error)) from None
        print(f"{sent:,} reminders sent.")
    for owner, why in skipped:
        print(f"Skipped {owner}: {why}.")
    return 0


def _same_filters_as(source: argparse.ArgumentParser, target: argparse.ArgumentParser) -> None:
    """Give `target` every filter option of `source` (summary's), whatever they become, so that
    a report or a reminder run takes exactly the filters `summary` takes."""
    for action in source._actions:
        if action.dest not in ("help", "json", "store"):
            target._add_action(action)


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m itscm", description="IT service continuity store and measures.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, help_text: str, handler: Callable) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--store", metavar="PATH",
                         help="the store file, or ducklake:postgres:<libpq connection string> (default: "
                              "$ITSCM_STORE, else data/itscm.duckdb)")
        sub.set_defaults(handler=handler)
        return sub

    add("init", "Create an empty store, or upgrade an existing one in place (never wipes it).", cmd_init)

    demo = add("demo", "Build the demo organisation into a new store.", cmd_demo)
    demo.add_argument("--seed", type=_positive_int, default=7)
    demo.add_argument("--services", type=_positive_int, default=300)
    demo.add_argument("--incidents", type=_positive_int, default=60_000)
    demo.add_argument("--as-of", type=_date, default=None, help="the last day of the history (default today)")
    demo.add_argument("--quiet", action="store_true", help="no progress on stderr")

    summary = add("summary", "The four continuity measures.", cmd_summary)
    summary.add_argument("--unit", action="append", metavar="NAME", help="business unit (repeatable)")
    summary.add_argument("--tier", action="append", type=_tier, help="tier 1-4 (repeatable)")
    summary.add_argument("--since", type=_date, help="first day of the period (default 12 months back)")
    summary.add_argument("--until", type=_date, help="last day of the period (default the as-of date)")
    summary.add_argument("--as-of", type=_date, help="the snapshot date (default today)")
    summary.add_argument("--events", choices=EVENT_SCOPES,
                         help="the incidents counted: the continuity events of the store's rule, or all "
                              "(default: the rule's default)")
    summary.add_argument("--json", action="store_true", help="one JSON object")

    report = add("report", "The board pack: the continuity report as PDF or self-contained HTML, or with "
                           "--per-owner each owner's gaps and due actions as one file each.", cmd_report)
    _same_filters_as(summary, report)
    report.add_argument("--format", choices=("pdf", "html"), help="default: from --out's suffix, else pdf")
    report.add_argument("--out", required=True, metavar="FILE", help="the report file (with --per-owner: a folder)")
    report.add_argument("--per-owner", action="store_true", help="owner packs into the folder --out")
    report.add_argument("--pack-format", choices=("csv", "xlsx"), default="csv", help="owner packs as (default csv)")
    report.add_argument("--made-by", metavar="NAME", help="who made it, on the title page (default the OS user)")

    remind = add("remind", "Email each owner their plans and drills due within 30 days or overdue and their "
                           "overdue drill findings, through the [smtp] server of the secrets file.", cmd_remind)
    _same_filters_as(summary, remind)
    remind.add_argument("--dry-run", action="store_true", help="print the messages instead of sending them")
    remind.add_argument("--secrets", metavar="PATH", help="the secrets file (default .streamlit/secrets.toml)")

    verify = add("verify", "Check that every key is unique and compare the derived columns, the monthly rollup "
                           "and the change days with a full rebuild; exit 1 on any difference.", cmd_verify)
    verify.add_argument("--json", action="store_true", help='one JSON object: {"ok": bool, "differences": [...]}')

    from itscm import bench

    timing = commands.add_parser("bench", help="Measure speed at a given size (builds its own store).",
                                 description=bench.__doc__)
    bench.add_arguments(timing)
    timing.set_defaults(handler=bench.run)

    from itscm import backup as backups

    backup = add("backup", "Back up the store to a new folder (Parquet per table and a manifest).",
                 backups.run_backup)
    backups.add_backup_arguments(backup)
    restore = add("restore", "Make the store at --store from a backup folder; an older backup is upgraded.",
                  backups.run_restore)
    backups.add_restore_arguments(restore)
    moving = commands.add_parser("migrate-store", help="Copy a store to a new one on the file or on DuckLake.",
                                 description=backups.migrate_store.__doc__)
    backups.add_migrate_arguments(moving)
    moving.set_defaults(handler=backups.run_migrate)

    from itscm import maintenance

    maintain = add("maintain", "Compact the store: on DuckLake merge small files, expire old snapshots, delete "
                               "unused files; on the file, a checkpoint. After large imports, and daily.",
                   lambda args: _run_with_store(args, maintenance.run, create=False))
    maintenance.add_arguments(maintain)

    from itscm.workbook import command as inventory_command

    inventory = commands.add_parser("inventory", help="The inventory workbook: template, export, import, undo.",
                                    description=inventory_command.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    inventory_command.add_arguments(inventory)

    from itscm.resilience import command as resilience_command

    scenario = add("scenario", "What a failure of services, suppliers or units costs: services reached, hours "
                               "past RTO and MTPD, cost.",
                   lambda args: _run_read_only(args, resilience_command.run_scenario_command))
    resilience_command.add_scenario_arguments(scenario)
    checks = add("checks", "The consistency checks of the inventory, each with its count.",
                 lambda args: _run_read_only(args, resilience_command.run_checks_command))
    resilience_command.add_checks_arguments(checks)

    # No ImportError guard: a broken import package must fail loudly, not make `ingest` vanish.
    from itscm.ingest import command as ingest_command

    ingest = add("ingest", "Import a CSV incident export.",
                 lambda args: _run_with_store(args, ingest_command.run))
    ingest_command.add_arguments(ingest)

    from itscm.changes import command as changes_command

    ingest_changes = add("ingest-changes", "Import a change export (ServiceNow, Jira Service Management, template).",
                         lambda args: _run_with_store(args, changes_command.run))
    changes_command.add_arguments(ingest_changes)

    from itscm import upload_command

    uploads = add("uploads", "The incident and change uploads, newest first: counts, state, what each holds "
                             "now, whether it can be undone and what blocks it.",
                  lambda args: _run_read_only(args, upload_command.run_list))
    upload_command.add_list_arguments(uploads)
    undo = add("undo", "Undo an incident or change upload: the store as it was before it.",
               lambda args: _run_with_store(args, upload_command.run_undo, create=False))
    upload_command.add_undo_arguments(undo)
    return parser


def _run_with_store(args: argparse.Namespace, run: Callable, *, create: bool = True) -> int:
    store = _open(args, create=create)
    try:
        return run(args, store)
    finally:
        store.close()


def _run_read_only(args: argparse.Namespace, run: Callable) -> int:
    store = _open(args, read_only=True)
    try:
        return run(args, store)
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, StoreError, ValueError, PdfUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except duckdb.Error as error:
        print(f"error: the store could not do that: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
