"""The writers' benchmark (itscm/bench_writers.py) runs end to end at a tiny size on a lake and
reports its figures beside its floor. (Its speed is read from its output, never asserted here.)

A writer process that fails says which one and how, whatever the way it ends: the tests' own
writers below, spawned as the bench's are, fail in each of those ways."""

import atexit
import faulthandler
import os
import resource
import signal
import sys
import time

import pytest

from itscm import bench_writers
from itscm.bench_writers import BENCH_ACTOR, run_reporting, writer_timings
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


def test_the_writers_bench_refuses_a_file_store():
    with pytest.raises(ValueError, match="DuckLake only"):
        writer_timings(":memory:")


# -- the tests' writers, each a process of its own (module level: a spawned process imports them) ---

def reports(figures):
    return figures


def reports_after(figures, seconds: float):
    time.sleep(seconds)
    return figures


def reports_then_ends_badly(figures, exit_code: int):
    """Reports, then ends with `exit_code` as its interpreter shuts down: as a crash in a
    library's clean-up at exit would."""
    atexit.register(os._exit, exit_code)
    return figures


def raises(message: str):
    raise ValueError(message)


def is_killed_after_a_word():
    print("writer about to be killed", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def crashes_in_native_code():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # no core file left in the test's folder
    faulthandler._sigsegv()


def hangs():
    time.sleep(3600)


@pytest.mark.no_store
def test_each_writer_s_result_comes_back_in_the_writers_order():
    assert run_reporting(reports_after, [("slow", 1.0), ("fast", 0.0)]) == ["slow", "fast"]


@pytest.mark.no_store
def test_a_writer_that_raises_fails_the_run_with_its_traceback_and_the_others_are_stopped():
    with pytest.raises(RuntimeError, match=r"(?s)writer 1 failed: Traceback.*ValueError: the lake is gone"):
        run_reporting(hangs_or_raises, [("hang",), ("raise",)])


def hangs_or_raises(what: str):
    """One writer hangs while the other raises: the run must not wait for the one hanging."""
    return hangs() if what == "hang" else raises("the lake is gone")


@pytest.mark.no_store
def test_a_writer_killed_before_it_reports_is_named_with_its_signal_and_what_it_wrote_last():
    with pytest.raises(RuntimeError, match=r"(?s)writer 0 ended with exit code -9 \(SIGKILL\) before it reported"
                                           r".*writer about to be killed"):
        run_reporting(is_killed_after_a_word, [()])


@pytest.mark.no_store
def test_a_writer_that_crashes_in_native_code_leaves_its_python_stack_in_the_error():
    with pytest.raises(RuntimeError, match=r"(?s)exit code -11 \(SIGSEGV\) before it reported"
                                           r".*Segmentation fault.*crashes_in_native_code"):
        run_reporting(crashes_in_native_code, [()])


@pytest.mark.no_store
def test_a_writer_that_reported_and_then_ended_badly_is_not_blamed_for_another_still_writing():
    """The first writer reports and then ends with exit code 3 while the second still writes: the
    run waits for the second's report, then fails on the first for what it did, after reporting.
    (The bench used to say the first ended 'before it reported' as soon as it had ended, and
    never waited for the second.)"""
    with pytest.raises(RuntimeError, match=r"writer 0 reported, then ended with exit code 3") as failure:
        run_reporting(reports_then_ends_badly_or_late, [(0,), (1,)])
    assert "before it reported" not in str(failure.value)


def reports_then_ends_badly_or_late(number: int):
    return reports_then_ends_badly("first", 3) if number == 0 else reports_after("second", 5.0)


@pytest.mark.no_store
def test_a_hung_writer_fails_the_run_with_its_threads_stacks(monkeypatch):
    monkeypatch.setattr(bench_writers, "QUIET_LIMIT_S", 5)
    with pytest.raises(RuntimeError, match=r"(?s)writer 0 has neither reported nor ended for 5 s.*in hangs"):
        run_reporting(hangs, [()])
