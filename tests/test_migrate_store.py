"""Moving a store between the file and DuckLake (`migrate-store`), and `maintain` on both."""

import json
from pathlib import Path

import pytest

from itscm import cli
from itscm.ducklake import METADATA_CATALOG
from itscm.store import Store
from tests import backends
from tests.conftest import SMALL_ORG_AS_OF
from tests.store_contents import table_contents


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def summary(capsys, store: str) -> dict:
    code, out, err = run(capsys, "summary", "--json", "--as-of", SMALL_ORG_AS_OF.isoformat(), "--store", store)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.ducklake_only
def test_a_file_store_moves_to_ducklake_and_back_and_a_backup_restores_over_a_lake(small_org_file, tmp_path, capsys):
    expected = summary(capsys, str(small_org_file))
    lake = backends.new_target(migrated=False)
    code, out, err = run(capsys, "migrate-store", "--from", str(small_org_file), "--to", lake, "--json")
    assert code == 0, err
    moved = json.loads(out)["tables"]
    assert moved["incidents"] > 0 and moved["services"] > 0
    assert summary(capsys, lake) == expected
    assert run(capsys, "verify", "--store", lake)[0] == 0

    back = tmp_path / "back.duckdb"
    code, _, err = run(capsys, "migrate-store", "--from", lake, "--to", str(back))
    assert code == 0, err
    assert summary(capsys, str(back)) == expected
    with Store(lake) as from_lake, Store(back) as from_file:
        # store_meta's data_version row is the file's count of its writes; a lake counts them in
        # its catalog's snapshots and leaves the row as the file had it. The file moved back goes
        # on from the lake's count (itscm/backup.py), so that no cache keyed on it sees an old one.
        assert table_contents(from_lake, data_version=False) == table_contents(from_file, data_version=False)
        assert from_file.data_version() == from_lake.data_version()

    code, _, err = run(capsys, "migrate-store", "--from", str(small_org_file), "--to", lake)
    assert code == 2 and "already exists" in err
    code, _, err = run(capsys, "migrate-store", "--from", lake, "--to", str(back))
    assert code == 2 and "already exists" in err
    assert summary(capsys, lake) == expected   # a refused move touches neither store

    with Store(lake) as changed, changed.transaction() as cursor:
        cursor.execute("DELETE FROM plans")
    assert summary(capsys, lake) != expected
    assert run(capsys, "backup", "--store", str(small_org_file), "--to", str(tmp_path / "backup"))[0] == 0
    code, _, err = run(capsys, "restore", "--from", str(tmp_path / "backup"), "--store", lake)
    assert code == 2 and "--overwrite" in err
    code, _, err = run(capsys, "restore", "--from", str(tmp_path / "backup"), "--store", lake, "--overwrite")
    assert code == 0, err
    assert summary(capsys, lake) == expected


@pytest.mark.ducklake_only
def test_maintain_merges_small_files_expires_snapshots_and_deletes_orphans(tmp_path, capsys):
    lake = backends.new_target()
    with Store(lake) as store:
        for n in range(6):   # six commits, six small files of one table
            with store.transaction() as cursor:
                cursor.execute("INSERT INTO business_units VALUES (?, ?, NULL, NULL)", [f"bu{n}", f"Unit {n}"])
        data_path = Path(store.scalar(f"SELECT value FROM {METADATA_CATALOG}.ducklake_metadata "
                                      "WHERE key = 'data_path'"))
    orphan = data_path / "main" / "business_units" / "ducklake-left-by-a-killed-writer.parquet"
    orphan.write_bytes(b"PAR1")

    code, out, err = run(capsys, "maintain", "--store", lake, "--retention-days", "0", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert done["data_files_after"] < done["data_files_before"]
    assert done["snapshots_expired"] >= 6 and done["old_files_deleted"] >= 6
    assert done["orphaned_files_deleted"] >= 1 and not orphan.exists()
    with Store(lake) as store:
        assert store.rows("SELECT name FROM business_units ORDER BY unit_id") == [(f"Unit {n}",) for n in range(6)]
    assert run(capsys, "verify", "--store", lake)[0] == 0


@pytest.mark.file_only
def test_maintain_checkpoints_a_file_store(small_org_file, tmp_path, capsys):
    path = tmp_path / "kept.duckdb"
    path.write_bytes(small_org_file.read_bytes())
    code, out, err = run(capsys, "maintain", "--store", str(path), "--json")
    assert code == 0, err
    assert json.loads(out) == {"backend": "file", "checkpoint": True}
    assert run(capsys, "maintain", "--store", str(tmp_path / "absent.duckdb"))[0] == 2


def test_backups_of_a_lake_taken_in_the_app_go_to_a_folder_not_one_made_of_its_connection_string(monkeypatch):
    from itscm import backup
    from itscm.store import DEFAULT_STORE_PATH

    lake = "ducklake:postgres:dbname=itscm host=/run/postgresql user=itscm"
    monkeypatch.delenv("ITSCM_BACKUP_DIR", raising=False)
    assert backup.backups_folder(lake) == DEFAULT_STORE_PATH.parent / "backups"
    assert backup.new_backup_folder(lake).name.startswith("ducklake-")
    monkeypatch.setenv("ITSCM_BACKUP_DIR", "/srv/backups")
    assert backup.new_backup_folder(lake).parent == Path("/srv/backups")
