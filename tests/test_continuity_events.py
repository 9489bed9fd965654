"""Continuity events against all incidents (docs/DESIGN.md §17), worked by hand.

The period is 2025-07-01 .. 2026-06-30, as of 2026-06-30. Payments runs service A (RTO 60 min,
1,000 an hour), Cards runs service B (RTO 240 min, 500 an hour). By the default rule (priority
1 or 2, or an outage longer than the RTO), incidents 1, 2, 5, 7 and the ongoing one are
continuity events; 3, 4, 6 (unmatched) and 8 are not:

| # | service | opened           | outage  | priority | continuity event by     | RTO      |
|---|---------|------------------|---------|----------|-------------------------|----------|
| 1 | A       | 2026-01-10 09:00 | 30 min  | 1        | priority                | attained |
| 2 | A       | 2026-02-10 09:00 | 90 min  | 3        | outage past RTO         | breach   |
| 3 | A       | 2026-03-10 09:00 | 20 min  | 4        | -                       | attained |
| 4 | B       | 2026-03-15 09:00 | 100 min | 3        | -                       | attained |
| 5 | B       | 2026-04-01 09:00 | 300 min | 2        | priority                | breach   |
| 6 | (Ghost) | 2026-04-05 09:00 | 10 min  | 4        | -                       | no RTO   |
| 7 | B       | 2026-06-10 09:00 | 500 min | 4        | outage past RTO         | breach   |
| 8 | A       | 2026-06-12 09:00 | 10 min  | 4        | -                       | attained |
| o | B       | 2026-06-29 10:00 | ongoing | 4        | still running past RTO  | -        |

and one drill of A on 2026-05-01 with an RTA of 30 min, which counts in both scopes.
"""

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm import administration, ingest, rollup, ui
from itscm.access import AccessDenied, Actor
from itscm.cli import main
from itscm.filters import EVENT_SCOPES, Filters
from itscm.measures.attainment import (
    attainment_by_month,
    attainment_by_unit,
    attainment_summary,
    events_without_rto,
    judged_attainment,
    rta_ratio_distribution,
    worst_breaches,
)
from itscm.measures.downtime import downtime_summary
from itscm.measures.posture import posture_summary, posture_trend, unit_gaps
from itscm.store import Store
from tests import backends
from tests.builders import OrgBuilder, at
from tests.test_rollup import (  # demo_path: the rollup tests' demo store, a fixture
    ROLLUP_FILTERS,
    TESTER,
    assert_rollup_matches_rows,
    demo_path,  # noqa: F401
    export,
)

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 6, 30)
ALL = Filters(since=dt.date(2025, 7, 1), until=AS_OF, as_of=AS_OF)
CONTINUITY = replace(ALL, events="continuity")
BOSS = Actor("boss", "admin")
MINUTE = dt.timedelta(minutes=1)


def build(store: Store) -> OrgBuilder:
    org = OrgBuilder(store)
    org.a = org.service(org.unit("Payments"), name="Service A", rto_minutes=60, impact_cost_per_hour=1000.0)
    org.b = org.service(org.unit("Cards"), name="Service B", tier=2, rto_minutes=240, impact_cost_per_hour=500.0)
    for number, service, day, minutes, priority in [
        (1, org.a, dt.date(2026, 1, 10), 30, 1), (2, org.a, dt.date(2026, 2, 10), 90, 3),
        (3, org.a, dt.date(2026, 3, 10), 20, 4), (4, org.b, dt.date(2026, 3, 15), 100, 3),
        (5, org.b, dt.date(2026, 4, 1), 300, 2), (6, None, dt.date(2026, 4, 5), 10, 4),
        (7, org.b, dt.date(2026, 6, 10), 500, 4), (8, org.a, dt.date(2026, 6, 12), 10, 4),
    ]:
        opened = at(day, 9)
        org.incident(service, opened, incident_id=f"test:{number}", priority=priority,
                     service_name=service or "Ghost CI", restored_at=opened + minutes * MINUTE)
    org.incident(org.b, at(dt.date(2026, 6, 29), 10), incident_id="test:ongoing", priority=4)
    org.drill(org.a, dt.date(2026, 5, 1), rta_minutes=30)
    return org


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple:
    """The organisation built once, in a file, and moved to the chosen backend; the tests get
    copies (built a row at a time on a lake, a commit each, it cost 5-12 s a test under load)."""
    path = tmp_path_factory.mktemp("continuity") / "org.duckdb"
    with Store(path) as store:
        org = build(store)
    return backends.moved_here(path), org.a, org.b


@pytest.fixture
def org(built, tmp_path):
    org = OrgBuilder(Store(backends.copy_store(built[0], tmp_path / "org.duckdb")))
    org.a, org.b = built[1], built[2]
    yield org
    org.store.close()


def by_scope(function, store: Store, **kwargs) -> tuple:
    return function(store, ALL, **kwargs), function(store, CONTINUITY, **kwargs)


def test_attainment_counts_the_scope_s_incidents_and_every_drill(org):
    everything, continuity = by_scope(attainment_summary, org.store)
    # all: incidents 1-5, 7, 8 and the drill judged (6 has no service); attained 1, 3, 4, 8 and the drill
    assert everything == {"events": 8, "attained": 5, "pct": 62.5, "without_rto": 1, "unmatched": 1,
                          "estimated_restores": 0}
    # continuity events: 1, 2, 5, 7 and the drill; attained 1 and the drill
    assert continuity == {"events": 5, "attained": 2, "pct": 40.0, "without_rto": 0, "unmatched": 0,
                          "estimated_restores": 0}
    assert by_scope(judged_attainment, org.store) == ({"events": 8, "attained": 5, "pct": 62.5},
                                                      {"events": 5, "attained": 2, "pct": 40.0})


def test_every_attainment_breakdown_differs_by_scope(org):
    months = {scope: {(m.strftime("%Y-%m"), s): int(n) for m, s, n in frame[["month", "source", "events"]].itertuples(
        index=False)} for scope, frame in zip(("all", "continuity"), by_scope(attainment_by_month, org.store),
                                               strict=True)}
    assert months["all"] == {("2026-01", "incident"): 1, ("2026-02", "incident"): 1, ("2026-03", "incident"): 2,
                             ("2026-04", "incident"): 1, ("2026-05", "drill"): 1, ("2026-06", "incident"): 2}
    assert months["continuity"] == {("2026-01", "incident"): 1, ("2026-02", "incident"): 1,
                                    ("2026-04", "incident"): 1, ("2026-05", "drill"): 1, ("2026-06", "incident"): 1}
    everything, continuity = (frame.set_index("unit") for frame in by_scope(attainment_by_unit, org.store))
    assert (everything.loc["Payments", "pct"], everything.loc["Cards", "pct"]) == (80.0, 33.3)
    assert (continuity.loc["Payments", "pct"], continuity.loc["Cards", "pct"]) == (66.7, 0.0)
    assert "(unmatched)" in everything.index and "(unmatched)" not in continuity.index
    everything, continuity = by_scope(rta_ratio_distribution, org.store)
    assert everything["events"].sum() == 8 and continuity["events"].sum() == 5
    everything, continuity = by_scope(events_without_rto, org.store)
    assert list(everything["name"]) == ["Ghost CI"] and continuity.empty


def test_worst_breaches_follow_the_rule(org):
    everything, continuity = by_scope(worst_breaches, org.store)
    # by default every breach is a continuity event: an outage past its RTO is one
    assert sorted(everything["event_id"]) == sorted(continuity["event_id"]) == ["test:2", "test:5", "test:7"]
    administration.edit_continuity_event_rule(BOSS, org.store, {"outage_past_rto": False})
    everything, continuity = by_scope(worst_breaches, org.store)
    assert sorted(everything["event_id"]) == ["test:2", "test:5", "test:7"]
    assert list(continuity["event_id"]) == ["test:5"]


def test_downtime_cost_counts_every_incident_with_the_continuity_events_share(org):
    everything, continuity = by_scope(downtime_summary, org.store)
    assert everything == continuity   # the same figures whatever the scope
    # 500 + 1,500 + 333.33 + 833.33 + 2,500 + 4,166.67 + 166.67, and the ongoing one's 38 h at 500
    assert everything["total"] == 29000.0
    assert everything["continuity_cost"] == 27666.67   # 1, 2, 5, 7 and the ongoing one
    assert everything["continuity_pct"] == 95.4


def test_posture_summary_trend_and_unit_table_differ_by_scope(org):
    everything, continuity = by_scope(posture_summary, org.store)
    assert everything["headlines"]["attainment_pct"]["value"] == 62.5
    assert continuity["headlines"]["attainment_pct"]["value"] == 40.0
    assert everything["headlines"]["downtime_cost"] == continuity["headlines"]["downtime_cost"]
    everything, continuity = (frame.set_index("month")["attainment_pct"]
                              for frame in by_scope(posture_trend, org.store))
    assert everything[dt.datetime(2026, 3, 1)] == 100.0 and continuity.isna()[dt.datetime(2026, 3, 1)]
    assert everything[dt.datetime(2026, 6, 1)] == 50.0 and continuity[dt.datetime(2026, 6, 1)] == 0.0
    everything, continuity = (frame.set_index("unit") for frame in by_scope(unit_gaps, org.store))
    assert list(everything.loc["Cards", ["recovery_events", "breaches"]]) == [3, 2]
    assert list(continuity.loc["Cards", ["recovery_events", "breaches"]]) == [2, 2]
    assert list(everything.loc["Payments", ["recovery_events", "breaches"]]) == [5, 1]
    assert list(continuity.loc["Payments", ["recovery_events", "breaches"]]) == [3, 1]


def test_a_changed_rule_rebuilds_the_rollup_and_is_logged(org):
    changed = administration.edit_continuity_event_rule(BOSS, org.store, {"max_priority": 1, "outage_past_rto": False})
    assert changed == {"max_priority": (2, 1), "outage_past_rto": (True, False)}
    with org.store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []
    assert attainment_summary(org.store, CONTINUITY)["events"] == 2   # incident 1 and the drill
    assert downtime_summary(org.store, ALL)["continuity_cost"] == 500.0
    history = administration.change_history(org.store)
    assert history.iloc[0]["action"] == "edit continuity event rule"
    assert administration.edit_continuity_event_rule(BOSS, org.store, {"max_priority": 1}) == {}
    administration.edit_continuity_event_rule(BOSS, org.store, {"max_priority": None})
    assert attainment_summary(org.store, CONTINUITY) == {"events": 1, "attained": 1, "pct": 100.0, "without_rto": 0,
                                                         "unmatched": 0, "estimated_restores": 0}  # the drill alone


def test_the_rule_is_checked_and_an_admin_s_to_change(org):
    with pytest.raises(ValueError, match="default"):
        administration.edit_continuity_event_rule(BOSS, org.store, {"default_events": "some"})
    with pytest.raises(ValueError, match="not part of"):
        administration.edit_continuity_event_rule(BOSS, org.store, {"title": "x"})
    with pytest.raises(AccessDenied):
        administration.edit_continuity_event_rule(Actor("ann", "analyst"), org.store, {"max_priority": 3})
    assert administration.continuity_event_rule(org.store) == {"max_priority": 2, "outage_past_rto": True,
                                                               "marked_major": True, "default_events": "all"}


SERVICENOW_MAJOR = b"""number,short_description,priority,opened_at,u_restored_at,cmdb_ci,major_incident_state
INC9001,Card auth down,4 - Low,2026-05-10 09:00:00,2026-05-10 09:10:00,Service A,Accepted
INC9002,Card auth slow,4 - Low,2026-05-11 09:00:00,2026-05-11 09:10:00,Service A,Proposed
INC9003,Card auth blip,4 - Low,2026-05-12 09:00:00,2026-05-12 09:10:00,Service A,
"""


def test_an_incident_the_source_marked_major_is_a_continuity_event(org):
    result = ingest.commit_upload(TESTER, org.store, ingest.read_upload(SERVICENOW_MAJOR, "major.csv", store=org.store))
    assert result.inserted == 3
    assert org.store.rows("SELECT incident_id, major FROM incidents WHERE source = 'servicenow' ORDER BY 1") == [
        ("servicenow:INC9001", True), ("servicenow:INC9002", False), ("servicenow:INC9003", False)]
    assert org.store.scalar("SELECT count(*) FROM incidents WHERE major IS NULL") == 9   # the builder's said nothing
    # three short priority 4 outages within the RTO: only the accepted major incident is a continuity event
    assert attainment_summary(org.store, ALL)["events"] == 8 + 3
    assert attainment_summary(org.store, CONTINUITY)["events"] == 5 + 1
    with org.store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []
    administration.edit_continuity_event_rule(BOSS, org.store, {"marked_major": False})
    assert attainment_summary(org.store, CONTINUITY)["events"] == 5
    with org.store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []
    administration.edit_continuity_event_rule(BOSS, org.store, {"marked_major": True})
    ingest.undo_upload(TESTER, org.store, result.upload_id)
    assert attainment_summary(org.store, CONTINUITY)["events"] == 5
    with org.store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []


def test_an_rto_change_moves_an_incident_out_of_the_continuity_events(org):
    administration.edit_service(BOSS, org.store, org.b, {"rto_minutes": 600})   # incident 7 is no longer past it
    with org.store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []
    assert attainment_summary(org.store, CONTINUITY)["events"] == 4   # 1, 2, 5 and the drill


def test_a_partial_period_reads_the_scope_from_the_days_around_whole_months(org):
    # head 5-31 January (incident 1), whole months February to May, tail 1-20 June (7 and 8)
    filters = Filters(since=dt.date(2026, 1, 5), until=dt.date(2026, 6, 20), as_of=AS_OF, events="continuity")
    assert attainment_summary(org.store, filters) == {
        "events": 5, "attained": 2, "pct": 40.0, "without_rto": 0, "unmatched": 0, "estimated_restores": 0}
    assert attainment_summary(org.store, replace(filters, events="all"))["events"] == 8


def test_the_rollup_equals_row_by_row_in_the_continuity_scope_through_imports(demo_path, tmp_path):  # noqa: F811
    path = backends.copy_store(demo_path, tmp_path / "scope.duckdb")
    store = Store(path)
    continuity_filters = [replace(filters, events="continuity") for filters in ROLLUP_FILTERS]
    assert_rollup_matches_rows(store, continuity_filters)
    name = store.scalar("SELECT alias FROM service_aliases WHERE origin = 'cmdb' ORDER BY alias LIMIT 1")
    first = export([
        f"INC1,Long,4 - Low,2025-05-20 10:00:00,2025-08-03 09:00:00,2025-08-03 10:00:00,,{name}",
        f"INC2,Short,4 - Low,2026-06-05 10:00:00,2026-06-05 10:05:00,,,{name}",
        f"INC3,Open,4 - Low,2026-06-29 10:00:00,,,,{name}",
    ])
    result = ingest.commit_upload(TESTER, store, ingest.read_upload(first, "first.csv", store=store))
    assert_rollup_matches_rows(store, continuity_filters)
    short = "SELECT count(*) FROM incident_months WHERE continuity AND month = DATE '2026-06-01' AND opened > 0"
    before = store.scalar(short)
    # the same incidents, only the priority raised: a continuity event now
    raised = export([f"INC2,Short,1 - Critical,2026-06-05 10:00:00,2026-06-05 10:05:00,,,{name}"])
    second = ingest.commit_upload(TESTER, store, ingest.read_upload(raised, "raised.csv", store=store))
    assert second.updated == 1
    assert_rollup_matches_rows(store, continuity_filters)
    with store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []
    assert store.scalar(short) >= before
    ingest.undo_upload(TESTER, store, second.upload_id)
    ingest.undo_upload(TESTER, store, result.upload_id)
    assert_rollup_matches_rows(store, continuity_filters)
    with store.read_transaction() as cursor:
        assert rollup.differences(cursor) == []
    store.close()


@pytest.fixture
def org_path(built, tmp_path, monkeypatch):
    path = backends.copy_store(built[0], tmp_path / "scope.duckdb")
    monkeypatch.setenv("ITSCM_STORE", str(path))
    monkeypatch.syspath_prepend(str(ROOT))
    return path


def summary_json(capsys, path, *args) -> dict:
    assert main(["summary", "--store", str(path), "--as-of", str(AS_OF), "--since", "2025-07-01", *args,
                 "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_summary_json_says_its_scope_and_follows_it(org_path, capsys):
    everything = summary_json(capsys, org_path)
    assert everything["events"] == "all"   # the rule's default
    assert everything["rto_attainment"] == {"events": 8, "attained": 5, "pct": 62.5, "without_rto": 1}
    continuity = summary_json(capsys, org_path, "--events", "continuity")
    assert continuity["events"] == "continuity"
    assert continuity["rto_attainment"] == {"events": 5, "attained": 2, "pct": 40.0, "without_rto": 0}
    assert continuity["downtime_cost"] == everything["downtime_cost"] == {
        "total": 29000.0, "unpriced_hours": 0.17, "continuity_cost": 27666.67, "continuity_pct": 95.4}
    with Store(org_path) as store:
        administration.edit_continuity_event_rule(BOSS, store, {"default_events": "continuity"})
    assert summary_json(capsys, org_path)["events"] == "continuity"
    assert main(["summary", "--store", str(org_path), "--as-of", str(AS_OF)]) == 0
    assert "incidents: continuity events" in capsys.readouterr().out


def run_page(page: str, **query) -> AppTest:
    app = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    app.query_params.update({"as_of": AS_OF.isoformat(), "period": "Last 12 months", **query})
    return app.run()


def tile(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_the_scope_is_read_from_the_url_and_shown(org_path):
    everything = run_page("RTO_attainment.py")
    assert not everything.exception
    assert everything.radio(key="events").value == "all"
    assert tile(everything, "Attainment") == ui.pct(62.5)
    assert "all incidents" in everything.caption[0].value
    continuity = run_page("RTO_attainment.py", events="continuity")
    assert not continuity.exception
    assert continuity.radio(key="events").value == "continuity"
    assert tile(continuity, "Attainment") == ui.pct(40.0)
    assert "continuity events" in continuity.caption[0].value
    assert any("RTO attainment counts continuity events" in caption.value for caption in continuity.caption)
    assert continuity.query_params["events"] == "continuity"
    # choosing in the sidebar writes the choice to the URL; the default leaves it out
    chosen = everything.radio(key="events").set_value("continuity").run()
    assert tile(chosen, "Attainment") == ui.pct(40.0) and chosen.query_params["events"] == "continuity"
    back = chosen.radio(key="events").set_value("all").run()
    assert tile(back, "Attainment") == ui.pct(62.5) and "events" not in back.query_params
    downtime = run_page("Downtime_cost.py", events="continuity")
    assert tile(downtime, "Downtime cost") == ui.money(29000.0, "EUR")
    assert any("continuity events €28 k of it (95.4 %)" in caption.value for caption in downtime.caption)


def test_a_nonsense_scope_in_the_url_falls_back_to_the_default(org_path):
    app = run_page("Overview.py", events="<b>x</b>")
    assert not app.exception
    assert app.radio(key="events").value == "all"
    assert tile(app, "RTO attainment") == ui.pct(62.5)


def test_the_radio_is_sent_with_the_current_choice_on_every_run(org_path):
    # A browser that draws the radio anew (switching the Resilience page's tabs quickly) shows the
    # index it was sent: it must be the current choice, not the first scope, or the choice flips.
    app = run_page("RTO_attainment.py")
    radio = app.radio(key="events")
    assert radio.proto.default == EVENT_SCOPES.index("all")
    app = radio.set_value("continuity").run()
    app = app.run()                                       # a later run, nothing changed
    assert app.radio(key="events").proto.default == EVENT_SCOPES.index("continuity")
    assert app.radio(key="events").value == "continuity"
