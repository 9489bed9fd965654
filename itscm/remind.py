"""Reminders: each owner is told by email what falls to them before it lapses: their plans whose
review is due within 30 days or overdue, the drills due on their plans, and their overdue drill
findings, in one message each (`python -m itscm remind`, docs/DESIGN.md §18).

The mail server and the owners' addresses come from the app's secrets file
(.streamlit/secrets.toml), read here as plain TOML because itscm/ never imports streamlit:

    [smtp]
    host = "smtp.example.com"
    port = 587
    user = "itscm"            # optional: no login without it
    password = "..."
    sender = "continuity@example.com"
    starttls = true

    [smtp.owners]             # owners that are names, not email addresses
    "Jane Doe" = "jane.doe@example.com"

An owner that is an email address is written to as it is; another without a mapping is skipped,
and the command says so.
"""

from __future__ import annotations

import datetime as dt
import re
import smtplib
import ssl
import tomllib
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pandas as pd

from itscm.filters import Filters
from itscm.measures.staleness import DUE_SOON_DAYS, open_findings_worklist, plan_worklist
from itscm.store import PROJECT_ROOT, Store

DEFAULT_SECRETS = Path(".streamlit") / "secrets.toml"
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
SMTP_TIMEOUT_SECONDS = 30


class ReminderError(Exception):
    """The secrets or the mail server stop the reminders: one line saying why."""


@dataclass
class Reminder:
    owner: str
    address: str
    as_of: dt.date
    reviews: list[str] = field(default_factory=list)
    drills: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        count = len(self.reviews) + len(self.drills) + len(self.findings)
        return f"Continuity: {count} item{'s' if count != 1 else ''} due for you as of {self.as_of:%Y-%m-%d}"

    @property
    def body(self) -> str:
        lines = [f"Hello {self.owner},", "",
                 f"As of {self.as_of:%Y-%m-%d} these continuity items are yours and due within "
                 f"{DUE_SOON_DAYS} days or overdue:"]
        for heading, items in (("Plan reviews", self.reviews), ("Drills", self.drills),
                               ("Overdue drill findings", self.findings)):
            if items:
                lines += ["", f"{heading}:"] + [f"  - {item}" for item in items]
        lines += ["", "This reminder was sent by the IT service continuity dashboard."]
        return "\n".join(lines)

    def message(self, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, self.address, self.subject
        message.set_content(self.body)
        return message


def _day(value) -> str:
    return "never" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def _due(value, soon: pd.Timestamp) -> bool:
    """Due within the window or past it; never done counts as due."""
    return value is None or pd.isna(value) or pd.Timestamp(value) <= soon


def owner_items(store: Store, filters: Filters) -> dict[str, dict[str, list[str]]]:
    """{owner: {reviews, drills, findings}} for the owners with anything due."""
    soon = pd.Timestamp(filters.as_of + dt.timedelta(days=DUE_SOON_DAYS))
    items: dict[str, dict[str, list[str]]] = {}

    def add(owner, kind: str, line: str) -> None:
        if owner is None or pd.isna(owner) or not str(owner).strip():
            owner = ""
        items.setdefault(str(owner).strip(), {"reviews": [], "drills": [], "findings": []})[kind].append(line)

    plans = plan_worklist(store, filters)
    for plan in plans.loc[plans["plan_id"].notna()].to_dict("records"):
        where = f"{plan['plan']} ({plan['service']}, tier {plan['tier']})"
        if _due(plan["review_due"], soon):
            add(plan["owner"], "reviews", f"{where}: review due {_day(plan['review_due'])}")
        if _due(plan["test_due"], soon):
            add(plan["owner"], "drills", f"{where}: drill due {_day(plan['test_due'])}")
    findings = open_findings_worklist(store, filters)
    for finding in findings.loc[findings["overdue"]].to_dict("records"):
        add(finding["owner"], "findings", f"{finding['what']} ({finding['service']}, drill {finding['drill_id']}): "
                                          f"due {_day(finding['due_on'])}, {finding['days_overdue']} days overdue")
    return items


def read_smtp_settings(path: Path | None = None) -> dict:
    """The [smtp] table of the secrets file (the working folder's, else the project's)."""
    candidates = [path] if path else [DEFAULT_SECRETS, PROJECT_ROOT / DEFAULT_SECRETS]
    for candidate in candidates:
        if candidate.is_file():
            try:
                secrets = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
                raise ReminderError(f"{candidate} is not valid TOML: {error}") from None
            return dict(secrets.get("smtp", {}))
    if path:
        raise ReminderError(f"no secrets file at {path}")
    return {}


def plan_reminders(store: Store, filters: Filters, smtp: dict) -> tuple[list[Reminder], list[tuple[str, str]]]:
    """(one reminder per owner with an address, [(owner, why skipped)])."""
    mapping = {str(name).strip().casefold(): str(address) for name, address in dict(smtp.get("owners", {})).items()}
    reminders, skipped = [], []
    for owner, due in sorted(owner_items(store, filters).items()):
        if not owner:
            skipped.append(("(no owner)", f"{_count(due)} without an owner"))
            continue
        address = owner if _EMAIL.match(owner) else mapping.get(owner.casefold())
        if not address or not _EMAIL.match(address):
            skipped.append((owner, f"{_count(due)}: not an email address and no [smtp.owners] entry"))
            continue
        reminders.append(Reminder(owner, address, filters.as_of, **due))
    return reminders, skipped


def _count(due: dict[str, list[str]]) -> str:
    n = sum(len(lines) for lines in due.values())
    return f"{n} item{'s' if n != 1 else ''}"


def send_reminders(reminders: list[Reminder], smtp: dict) -> int:
    """Send each reminder through the configured server, on one connection; how many were sent."""
    if not reminders:
        return 0
    host, sender = smtp.get("host"), smtp.get("sender")
    if not host or not sender:
        raise ReminderError("the secrets file's [smtp] needs at least host and sender to send reminders")
    starttls = bool(smtp.get("starttls", False))
    port = int(smtp.get("port", 587 if starttls else 25))
    sent = 0
    try:
        with smtplib.SMTP(str(host), port, timeout=SMTP_TIMEOUT_SECONDS) as server:
            if starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.get("user"):
                server.login(str(smtp["user"]), str(smtp.get("password", "")))
            for reminder in reminders:
                server.send_message(reminder.message(str(sender)))
                sent += 1
    except (OSError, smtplib.SMTPException) as error:
        raise ReminderError(f"the mail server {host}:{port} failed after {sent} of {len(reminders)} reminders: "
                            f"{error}") from None
    return sent
