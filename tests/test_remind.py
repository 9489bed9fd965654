"""Reminders (`python -m itscm remind`), sent to a small SMTP server this test runs on the
loopback address: each owner with something due gets one message listing it; owners without an
address are skipped and named."""

from __future__ import annotations

import base64
import datetime as dt
import email
import socketserver
import threading
from email import policy

import pytest

from itscm import records
from itscm.access import Actor
from itscm.cli import main
from itscm.store import Store
from tests.conftest import SMALL_ORG_AS_OF

MANAGER = Actor("cm@example.com", "continuity manager")


class _SmtpSession(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        server = self.server
        self.reply("220 test ESMTP")
        envelope: dict = {"to": []}
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-test")
                self.reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                server.logins.append(base64.b64decode(command.split()[-1]).split(b"\0")[1:])
                self.reply("235 ok")
            elif verb == "MAIL":
                envelope = {"from": command.split(":", 1)[1].strip(" <>"), "to": []}
                self.reply("250 ok")
            elif verb == "RCPT":
                envelope["to"].append(command.split(":", 1)[1].strip(" <>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                envelope["message"] = email.message_from_bytes(b"".join(lines), policy=policy.default)
                server.received.append(envelope)
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSession)
    server.daemon_threads = True
    server.received, server.logins = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _owners(store_path) -> None:
    """Plans of three kinds of owner: an email address, a name mapped in the secrets, a name
    that is not; and an overdue finding of the email owner."""
    store = Store(store_path)
    try:
        with store.transaction() as cursor:
            cursor.execute("UPDATE plans SET owner = 'pat@example.com' WHERE plan_id = 'plan10'")   # overdue
            cursor.execute("UPDATE plans SET owner = 'Jane Doe' WHERE plan_id = 'plan13'")   # never tested
        records.record_drill(MANAGER, store, "svc1", SMALL_ORG_AS_OF - dt.timedelta(days=60), "tabletop", "partial",
                             findings=[records.Finding("Failover runbook <step 4> is wrong", owner="pat@example.com",
                                                       due_on=SMALL_ORG_AS_OF - dt.timedelta(days=10)),
                                       records.Finding("Backups unverified", owner="Sam Smith",
                                                       due_on=SMALL_ORG_AS_OF - dt.timedelta(days=3)),
                                       records.Finding("Not due yet", owner="pat@example.com",
                                                       due_on=SMALL_ORG_AS_OF + dt.timedelta(days=3))])
    finally:
        store.close()


def _secrets(tmp_path, port: int) -> str:
    path = tmp_path / "secrets.toml"
    path.write_text(f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nuser = "itscm"\npassword = "s3cret"\n'
                    'sender = "continuity@example.com"\nstarttls = false\n\n'
                    '[smtp.owners]\n"Jane Doe" = "jane.doe@example.com"\n', encoding="utf-8")
    return str(path)


def test_each_owner_gets_one_message_of_what_is_due(store_path, tmp_path, smtp_server, capsys):
    _owners(store_path)
    secrets = _secrets(tmp_path, smtp_server.server_address[1])
    assert main(["remind", "--store", str(store_path), "--as-of", str(SMALL_ORG_AS_OF), "--secrets", secrets]) == 0
    out = capsys.readouterr().out
    assert "2 reminders sent." in out
    assert "Skipped Sam Smith: 1 item: not an email address and no [smtp.owners] entry." in out
    assert smtp_server.logins == [[b"itscm", b"s3cret"]]
    by_address = {envelope["to"][0]: envelope["message"] for envelope in smtp_server.received}
    assert sorted(by_address) == ["jane.doe@example.com", "pat@example.com"]
    pat = by_address["pat@example.com"]
    assert pat["From"] == "continuity@example.com"
    body = pat.get_content()
    assert "Failover runbook <step 4> is wrong" in body and "10 days overdue" in body
    assert "Overdue drill findings:" in body and "Plan reviews:" in body and "Customer Portal" in body
    assert "Not due yet" not in body and "Backups unverified" not in body
    assert "Branch Teller" in by_address["jane.doe@example.com"].get_content()   # plan13's service


def test_dry_run_prints_and_sends_nothing(store_path, tmp_path, smtp_server, capsys):
    _owners(store_path)
    secrets = _secrets(tmp_path, smtp_server.server_address[1])
    assert main(["remind", "--store", str(store_path), "--as-of", str(SMALL_ORG_AS_OF), "--secrets", secrets,
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "To: pat@example.com" in out and "To: jane.doe@example.com" in out
    assert "2 reminders would be sent (dry run)." in out
    assert smtp_server.received == []


def test_a_server_that_is_not_there_is_one_line(store_path, tmp_path, capsys):
    _owners(store_path)
    secrets = _secrets(tmp_path, 1)   # nothing listens on port 1
    assert main(["remind", "--store", str(store_path), "--as-of", str(SMALL_ORG_AS_OF), "--secrets", secrets]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "failed after 0 of 2 reminders" in error
