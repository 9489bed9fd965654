"""The completed change days per service (itscm/change_days.py, docs/DESIGN.md §16.4): kept equal
to a rebuild from scratch by every writer of changes and asset links, filled for a store from
before it, named by `verify` when it is wrong; and the measures reading it give what the changes
themselves give."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from itscm import change_days
from itscm.access import Actor
from itscm.changes import commit_changes, map_change_ci, read_changes, undo_change_upload
from itscm.cli import main
from itscm.demo import build_demo
from itscm.filters import Filters
from itscm.measures.coverage import coverage_by_service
from itscm.measures.staleness import changes_behind_plans, plan_worklist
from itscm.store import Store
from itscm.workbook import undo_inventory_import
from tests import backends
from tests.inventory_workbooks import MANAGER, imported, workbook

ANA = Actor("ana@example.com", "analyst")
NOW = dt.datetime(2026, 6, 30, 12)
HEADER = "change_id,title,ci,change_type,state,close_code,work_end\n"


def verified(store: Store) -> list[dict]:
    with store.read_transaction() as cursor:
        return change_days.differences(cursor)


def days_of(store: Store, service_id: str) -> list[tuple]:
    """(day, changes, marked) of the service, as stored."""
    return [day for row in store.rows(
        "SELECT days, changes, marked FROM service_change_days WHERE service_id = $id ORDER BY month",
        {"id": service_id}) for day in zip(*row, strict=True)]


def commit(store: Store, name: str, rows: list[str]):
    preview = read_changes((HEADER + "\n".join(rows) + "\n").encode(), name, store=store, now=NOW)
    return commit_changes(ANA, store, preview, now=NOW)


def asset_book(links: list[list[str]]) -> bytes:
    return workbook({"assets": [["id", "name", "class"], ["SRV-001", "ledger-db-01", "database"],
                                ["SRV-002", "teller-app-01", "server"]],
                     "service_assets": [["service", "asset", "relation"], *links]})


def test_every_writer_keeps_the_change_days_equal_to_a_rebuild(store_path):
    may, june = dt.date(2026, 5, 10), dt.date(2026, 6, 2)
    with Store(store_path) as store:
        ledger, teller, cards = (store.scalar("SELECT service_id FROM services WHERE name = $n", {"n": name})
                                 for name in ("Core Ledger", "Branch Teller", "Card Authorisation"))
        _, links = imported(store, [("assets.xlsx", asset_book([["Core Ledger", "SRV-001", "runs on"]]))])
        assert verified(store) == []

        first = commit(store, "first.csv", [
            "C1,Ledger patch,Core Ledger,normal,closed,successful,2026-05-10 10:00",
            "C2,Ledger database,ledger-db-01,emergency,closed,successful,2026-05-10 22:00",   # through the asset
            "C3,Cards,Card Authorisation,normal,implemented,unsuccessful,2026-06-02 09:00",
            "C4,Unknown host,srv-9999,normal,closed,successful,2026-06-02 10:00",
            "C5,Cancelled,Core Ledger,normal,cancelled,,2026-06-03 10:00",
        ])
        assert days_of(store, ledger) == [(may, 2, 1)] and days_of(store, cards) == [(june, 1, 1)]
        assert verified(store) == []

        # an update moves C3 from the cards service to the teller's server (unmatched until mapped)
        second = commit(store, "second.csv", ["C3,Cards,teller-app-01,normal,closed,successful,2026-06-05 09:00"])
        assert second.updated == 1 and days_of(store, cards) == [] and verified(store) == []

        # the teller's server and its link come in: a change to it reaches the teller once mapped
        _, more_links = imported(store, [("more.xlsx", asset_book([["Core Ledger", "SRV-001", "runs on"],
                                                                   ["Branch Teller", "SRV-002", "runs on"]]))])
        assert verified(store) == []
        assert map_change_ci(ANA, store, "teller-app-01", asset_id="SRV-002", now=NOW) == 1
        assert days_of(store, teller) == [(dt.date(2026, 6, 5), 1, 0)] and verified(store) == []
        assert map_change_ci(ANA, store, "srv-9999", service_id=teller, now=NOW) == 1
        assert len(days_of(store, teller)) == 2 and verified(store) == []

        # the ledger's database also runs the cards service now: its change reaches both
        imported(store, [("shared.xlsx", asset_book([["Core Ledger", "SRV-001", "runs on"],
                                                      ["Card Authorisation", "SRV-001", "runs on"]]))])
        assert days_of(store, cards) == [(may, 1, 1)] and verified(store) == []
        undo_inventory_import(MANAGER, store, store.scalar(
            "SELECT import_id FROM inventory_imports WHERE state = 'committed' ORDER BY imported_at DESC, "
            "import_id DESC LIMIT 1"))
        assert days_of(store, cards) == [] and verified(store) == []

        undo_change_upload(ANA, store, second.upload_id, now=NOW)
        assert days_of(store, cards) == [(june, 1, 1)] and verified(store) == []
        undo_change_upload(ANA, store, first.upload_id, now=NOW)
        assert store.scalar("SELECT count(*) FROM service_change_days") == 0 and verified(store) == []
        undo_inventory_import(MANAGER, store, more_links.import_id)
        undo_inventory_import(MANAGER, store, links.import_id)
        assert verified(store) == []


def test_verify_names_a_wrong_change_day_and_the_command_exits_1(store_path, capsys):
    with Store(store_path) as store:
        commit(store, "one.csv", ["C1,Ledger patch,Core Ledger,normal,closed,successful,2026-05-10 10:00"])
        ledger = store.scalar("SELECT service_id FROM services WHERE name = 'Core Ledger'")
    assert main(["verify", "--store", str(store_path)]) == 0
    capsys.readouterr()
    with backends.raw_connection(store_path) as raw:   # behind the store's back
        raw.execute("UPDATE service_change_days SET days = [DATE '2026-05-11'] "
                    "WHERE service_id = $id AND month = DATE '2026-05-01'", {"id": ledger})
    with Store(store_path, read_only=True) as store:
        assert [{k: d[k] for k in ("table", "service_id", "month")} for d in verified(store)] == [
            {"table": "service_change_days", "service_id": ledger, "month": "2026-05-01"}]
    assert main(["verify", "--store", str(store_path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["differences"][0]["service_id"] == ledger


def test_a_store_from_before_the_change_days_gets_them_filled(demo_path, tmp_path):
    path = backends.copy_store(demo_path, tmp_path / "old.duckdb")
    with backends.raw_connection(path) as raw:   # the store as version 12 left it
        raw.execute("DROP TABLE service_change_days")
        raw.execute("DELETE FROM schema_version WHERE version = 13")
        raw.execute("DELETE FROM store_meta WHERE key = $key", {"key": change_days.BUILT_KEY})
    with Store(path) as store:
        assert store.scalar("SELECT count(*) FROM schema_version WHERE version = 13") == 1
        assert store.scalar("SELECT count(*) FROM service_change_days") > 0 and verified(store) == []


# -- the measures read the change days as the changes give them ---------------------------------


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("change-days") / "demo.duckdb"
    with Store(path) as store:
        build_demo(store, services=150, incidents=500, as_of=NOW.date())
    return backends.moved_here(path)


def as_date(value) -> dt.date | None:
    return None if pd.isna(value) else pd.Timestamp(value).date()


def completed_reaching(store: Store) -> pd.DataFrame:
    """service_id, change_id, day, marked, completed_at: every completed change reaching every
    service, from the changes themselves (the rule of docs/DESIGN.md §16.1, without the table)."""
    return store.df("""
        SELECT DISTINCT r.service_id, c.source || ':' || c.number AS change_id, c.completed_at::DATE AS day,
               c.completed_at, coalesce(c.change_type = 'emergency' OR c.close_code = 'unsuccessful', FALSE) AS marked
        FROM changes c
        JOIN (SELECT source, number, service_id FROM changes
              UNION SELECT c.source, c.number, sa.service_id FROM changes c
                    JOIN service_assets sa ON sa.asset_id = c.asset_id
             ) r ON r.source = c.source AND r.number = c.number
        WHERE c.completed_at IS NOT NULL AND r.service_id IS NOT NULL
    """).assign(day=lambda frame: frame["day"].map(as_date))


AS_OF_DATES = [NOW.date(), dt.date(2026, 5, 31), dt.date(2025, 11, 17), dt.date(2024, 2, 29)]


@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_worklist_and_coverage_agree_with_the_changes_themselves(demo_path, as_of):
    with Store(demo_path, read_only=True) as store:
        reaching = completed_reaching(store)
        worklist = plan_worklist(store, Filters(as_of=as_of)).dropna(subset=["plan_id"])
        coverage = coverage_by_service(store, Filters(as_of=as_of))
    by_service = {service: group for service, group in reaching[reaching["day"] <= as_of].groupby("service_id")}
    empty = reaching.iloc[0:0]
    for row in worklist.itertuples():
        seen = by_service.get(row.service_id, empty)
        expected_last = seen["day"].max() if len(seen) else None
        assert as_date(row.last_change) == expected_last, row.plan_id
        after = 0 if pd.isna(row.change_baseline) else int((seen["day"] > as_date(row.change_baseline)).sum())
        assert row.changes_since_review == after, row.plan_id
    assert worklist["changes_since_review"].sum() > 0 or as_of < dt.date(2025, 1, 1)
    for row in coverage.itertuples():
        seen = by_service.get(row.service_id, empty)
        assert as_date(row.last_change) == (seen["day"].max() if len(seen) else None), row.service_id


@pytest.mark.parametrize("per_plan", [1, 3, 20])
def test_changes_behind_plans_are_the_first_of_all_their_changes(demo_path, per_plan):
    with Store(demo_path, read_only=True) as store:
        reaching = completed_reaching(store)
        worklist = plan_worklist(store, Filters(as_of=NOW.date()))
        listed = changes_behind_plans(store, Filters(as_of=NOW.date()), per_plan=per_plan)
    flagged = worklist[worklist["state"] == "changed since review"]
    assert len(flagged) > 0
    expected = set()
    for plan in flagged.itertuples():
        behind = reaching[(reaching["service_id"] == plan.service_id)
                          & (reaching["day"] > as_date(plan.change_baseline))
                          & (reaching["day"] <= NOW.date())]
        first = behind.sort_values(["marked", "completed_at", "change_id"], ascending=[False, False, True])
        expected |= {(plan.plan_id, change) for change in first["change_id"].head(per_plan)}
    assert set(zip(listed["plan_id"], listed["change_id"], strict=True)) == expected


def test_the_demo_reaches_plans_through_the_servers_services_run_on(demo_path, tmp_path):
    path = backends.copy_store(demo_path, tmp_path / "demo.duckdb")
    with Store(path, read_only=True) as store:
        listed = changes_behind_plans(store, Filters(as_of=NOW.date()))
        assert (listed["reached_through"] != "service").any() and (listed["reached_through"] == "service").any()
        assert verified(store) == []
