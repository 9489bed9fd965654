"""Backup to Parquet and restore: same store back, consistent under writes, refusals, upgrades."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from itscm import access, backup, migrations, rollup
from itscm.backup import BackupError, backup_store, restore_store
from itscm.cli import summary_json
from itscm.filters import Filters
from itscm.store import Store, StoreLockedError, StoreVersionError
from tests import backends
from tests.command_line import run_cli
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents

ROOT = Path(__file__).resolve().parent.parent
FILTERS = Filters(as_of=SMALL_ORG_AS_OF)


@pytest.fixture
def org(small_org_path, tmp_path) -> str | Path:
    """A private copy of the small organisation on the chosen backend; the tests restore its
    backups into files (a lake's backup into a file is how a lake moves back, `migrate-store`)."""
    return backends.copy_store(small_org_path, tmp_path / "org.duckdb")


def test_a_restored_backup_is_the_same_store(org, tmp_path):
    with Store(org) as store:
        manifest = backup_store(store, tmp_path / "backup", created_by="ada")
        expected, summary = table_contents(store, data_version=False), summary_json(store, FILTERS)
        data_version = store.data_version()
    assert manifest["schema_version"] == migrations.LATEST_VERSION
    assert manifest["data_version"] == data_version and manifest["created_by"] == "ada"
    assert manifest["tables"]["incidents"] == 57 and manifest["tables"]["policy"] == 4
    assert json.loads((tmp_path / "backup" / "manifest.json").read_text()) == manifest
    assert {p.name for p in (tmp_path / "backup").iterdir()} == {"manifest.json"} | {
        f"{table}.parquet" for table in manifest["tables"]}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no staging folder left

    restore_store(tmp_path / "backup", tmp_path / "restored.duckdb")
    with Store(tmp_path / "restored.duckdb") as restored:
        assert table_contents(restored, data_version=False) == expected
        assert summary_json(restored, FILTERS) == summary
        assert restored.data_version() == data_version   # on DuckLake: a lake's back in a file


def test_backup_and_restore_from_the_command_line(org, tmp_path, capsys):
    made = run_cli(capsys, "backup", "--to", str(tmp_path / "b"), "--store", str(org), "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["tables"]["services"] == 6
    restored = run_cli(capsys, "restore", "--from", str(tmp_path / "b"), "--store", str(tmp_path / "r.duckdb"))
    assert restored.returncode == 0, restored.stderr
    summaries = [run_cli(capsys, "summary", "--store", str(path), "--json", "--as-of", str(SMALL_ORG_AS_OF))
                 for path in (org, tmp_path / "r.duckdb")]
    assert summaries[0].returncode == 0 and summaries[0].stdout == summaries[1].stdout

    again = run_cli(capsys, "restore", "--from", str(tmp_path / "b"), "--store", str(tmp_path / "r.duckdb"))
    assert again.returncode != 0 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    full = run_cli(capsys, "backup", "--to", str(tmp_path / "b"), "--store", str(org))
    assert full.returncode != 0 and "not an empty folder" in full.stderr and "Traceback" not in full.stderr


def test_a_backup_is_one_consistent_state_while_writes_land(org, tmp_path, monkeypatch):
    """A commit landing between two tables' files is in neither: every file is the same state."""
    store = Store(org)
    before = table_contents(store, data_version=False)
    copy_table, copied = backup._copy_table, []

    def copy_then_write(cursor, table, path):
        copy_table(cursor, table, path)
        copied.append(table)
        if len(copied) == 1:   # another thread commits after the first table is written
            writer = threading.Thread(target=lambda: access.grant_role(
                access.LOCAL_USER, store, "@example.com", "analyst"))
            writer.start()
            writer.join()

    monkeypatch.setattr(backup, "_copy_table", copy_then_write)
    manifest = backup_store(store, tmp_path / "b")
    assert store.scalar("SELECT count(*) FROM role_grants") == 1    # the write did commit
    assert manifest["tables"]["role_grants"] == 0
    assert manifest["data_version"] == store.data_version() - 1
    store.close()
    restore_store(tmp_path / "b", tmp_path / "r.duckdb")
    with Store(tmp_path / "r.duckdb") as restored:
        assert table_contents(restored, data_version=False) == before
        assert restored.data_version() == manifest["data_version"]


def test_restore_refuses_to_replace_a_store_unless_asked(org, tmp_path):
    with Store(org) as store:
        backup_store(store, tmp_path / "b")
    other = backends.new_target(tmp_path / "other.duckdb")
    Store(other).close()
    with pytest.raises(BackupError, match="already exists"):
        restore_store(tmp_path / "b", other)
    with Store(other) as untouched:
        assert untouched.scalar("SELECT count(*) FROM services") == 0
    restore_store(tmp_path / "b", other, overwrite=True)
    with Store(other) as replaced:
        assert replaced.scalar("SELECT count(*) FROM services") == 6
        assert replaced.scalar("SELECT count(*) FROM incidents") == 57


@pytest.mark.file_only   # the file's lock: a lake is held by any number of processes
def test_restore_will_not_replace_a_store_another_process_holds(org, tmp_path):
    with Store(org) as store:
        backup_store(store, tmp_path / "b")
    held = tmp_path / "held.duckdb"
    Store(held).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys; from itscm.store import Store; s = Store({str(held)!r}); "
                               "print('holding', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StoreLockedError, match=f"PID {holder.pid}"):
            restore_store(tmp_path / "b", held, overwrite=True)
    finally:
        holder.communicate("done\n", timeout=30)


def test_backup_refuses_a_folder_that_is_not_empty(org, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("keep me")
    with Store(org) as store:
        with pytest.raises(BackupError, match="not an empty folder"):
            backup_store(store, tmp_path / "b")
        backup_store(store, tmp_path / "empty")   # an empty folder is fine
        (tmp_path / "empty2").mkdir()
        backup_store(store, tmp_path / "empty2")
    assert (tmp_path / "b" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("damage, message", [
    (lambda m: m | {"schema_version": 99}, "newer than this program"),
    (lambda m: m | {"tables": m["tables"] | {"incidents": 58}}, "manifest says 58"),
    (lambda m: m | {"format": "something else"}, "not a manifest"),
])
def test_a_backup_from_a_newer_program_or_damaged_is_refused(org, tmp_path, damage, message):
    with Store(org) as store:
        manifest = backup_store(store, tmp_path / "b")
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(damage(manifest)))
    with pytest.raises((BackupError, StoreVersionError), match=message):
        restore_store(tmp_path / "b", tmp_path / "r.duckdb")
    assert not (tmp_path / "r.duckdb").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_missing_table_file_or_manifest_is_refused(org, tmp_path):
    with pytest.raises(BackupError, match=r"no manifest\.json"):
        restore_store(tmp_path, tmp_path / "r.duckdb")
    with Store(org) as store:
        backup_store(store, tmp_path / "b")
    (tmp_path / "b" / "drills.parquet").unlink()
    with pytest.raises(BackupError, match="lacks the table drills"):
        restore_store(tmp_path / "b", tmp_path / "r.duckdb")
    assert not (tmp_path / "r.duckdb").exists()


@pytest.mark.file_only   # an older backup restores into a file only (a lake takes the current schema)
def test_a_backup_of_an_older_schema_restores_then_upgrades(tmp_path, monkeypatch):
    monkeypatch.setattr("itscm.store.LATEST_VERSION", 2)
    with Store(tmp_path / "old.duckdb") as old:
        with old.transaction() as cursor:
            cursor.execute("INSERT INTO services (service_id, name, tier) VALUES ('svc-1', 'Core Ledger', 1)")
        manifest = backup_store(old, tmp_path / "b")
    monkeypatch.undo()
    assert manifest["schema_version"] == 2 and manifest["migrations"] == [1, 2]
    restore_store(tmp_path / "b", tmp_path / "r.duckdb")
    with Store(tmp_path / "r.duckdb") as restored:
        assert restored.schema_version() == migrations.LATEST_VERSION
        assert restored.rows("SELECT service_id, name, service_key FROM services") == [("svc-1", "Core Ledger", 1)]
        assert restored.scalar("SELECT count(*) FROM role_grants") == 0
        with restored.read_transaction() as cursor:
            assert rollup.differences(cursor) == []


def test_a_store_missing_a_migration_below_its_version_gets_it(tmp_path, monkeypatch):
    """Migration 3 came after 4 had shipped: a store at 1, 2, 4 must still get 3."""
    monkeypatch.setattr("itscm.store.MIGRATIONS", [m for m in migrations.MIGRATIONS if m[0] != 3])
    gap = backends.new_target(tmp_path / "gap.duckdb", migrated=False)
    Store(gap).close()
    monkeypatch.undo()
    with Store(gap) as store:
        assert sorted(store.rows("SELECT version FROM schema_version")) == [(v,) for v, _, _ in migrations.MIGRATIONS]
        assert store.scalar("SELECT count(*) FROM role_grants") == 0


def test_only_an_admin_backs_up_from_the_app(org, tmp_path):
    with Store(org) as store:
        for role in ("viewer", "analyst"):
            with pytest.raises(access.AccessDenied):
                backup.take_backup(access.Actor("someone@example.com", role), store, tmp_path / role)
            assert not (tmp_path / role).exists()
        manifest = backup.take_backup(access.Actor("boss@example.com", "admin"), store, tmp_path / "b")
    assert manifest["created_by"] == "boss@example.com"
