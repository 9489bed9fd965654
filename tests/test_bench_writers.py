"""The writers' benchmark (itscm/bench_writers.py) runs end to end at a tiny size on a lake and
reports its figures beside its floor. (Its speed is read from its output, never asserted here.)"""

import multiprocessing
import signal
from types import SimpleNamespace

import pytest

from itscm.bench_writers import BENCH_ACTOR, _next_result, writer_timings
from itscm.store import Store
from tests import backends


@pytest.mark.ducklake_only
def test_the_writers_bench_reports_two_writers_beside_one_alone_and_every_commit_lands():
    lake = backends.new_target()
    figures = writer_timings(lake, writers=2, commits=3)
    assert figures["floor_one_writer"]["commits"] == 3 and figures["together"]["commits"] == 6
    for run in ("floor_one_writer", "together"):
        assert figures[run]["commits_per_s"] > 0 and figures[run]["seconds"] > 0
    assert figures["ratio_to_floor"] > 0
    with Store(lake) as store:
        # the floor twice and the two writers together, each writer three timed writes
        timed = store.scalar("SELECT count(*) FROM change_log WHERE changed_by = $by AND action = 'bench write'",
                             {"by": BENCH_ACTOR.name})
        assert timed == 3 + 6 + 3


@pytest.mark.no_store
def test_a_writer_that_dies_without_a_word_fails_the_bench_instead_of_hanging_it():
    silent = multiprocessing.get_context("spawn").Queue()
    killed = SimpleNamespace(exitcode=-signal.SIGKILL)
    with pytest.raises(RuntimeError, match=f"ended with exit code {-signal.SIGKILL} before it reported"):
        _next_result(silent, [killed])


def test_the_writers_bench_refuses_a_file_store():
    with pytest.raises(ValueError, match="DuckLake only"):
        writer_timings(":memory:")
