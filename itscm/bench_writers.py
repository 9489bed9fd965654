"""Commits per second on one store from several processes at once (issue #16 item 7).

Each writer is a process of its own with its own handle on the store, as two app replicas or an
app and a scheduled import are; each makes `commits` small writes (a change-log row, through
`administration.record_change`, so through `Store.write` and, on DuckLake, the writers lock). The
floor is one writer alone on the same store: with the writers taking turns (docs/DESIGN.md §19),
two writers' rate is about the floor's, a little above it where work outside the lock (taking
it, Python) overlaps, below it by the cost of handing the lock over.

    python -m itscm.bench_writers --store ducklake:postgres:... [--commits 100] [--writers 2]

A file store cannot be opened by two processes (§10.1), so this measures DuckLake only; it adds
change-log rows to the store it is given, so give it a scratch lake.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import time
import traceback

from itscm import administration, ducklake
from itscm.access import Actor
from itscm.store import Store

BENCH_ACTOR = Actor("bench@example.com", "admin")
# How long a writer ready to start waits for the others to be (each opens the lake first).
BARRIER_WAIT_S = 600


def _writer(target: str, commits: int, number: int, ready, results) -> None:
    try:
        with Store(target) as store:
            # One write first, untimed: a process's first pays for loading the catalog.
            administration.record_change(BENCH_ACTOR, store, "bench warm-up", f"writer {number}")
            ready.wait(timeout=BARRIER_WAIT_S)   # every writer open and warm before any starts
            started = time.monotonic()
            for n in range(commits):
                administration.record_change(BENCH_ACTOR, store, "bench write", f"writer {number}", after={"n": n})
            results.put((started, time.monotonic(), time.process_time()))
    except BaseException:
        # Said to the parent, which would otherwise wait for this writer's figures for ever, and
        # which then stops the others; the barrier is broken so none starts timing meanwhile.
        ready.abort()
        results.put(f"writer {number}: {traceback.format_exc()}")


def commits_per_second(target: str, *, writers: int, commits: int) -> dict:
    """`writers` processes making `commits` writes each at once: their commits per second all
    together (from the first start to the last end) and each process's CPU seconds."""
    context = multiprocessing.get_context("spawn")   # a fresh interpreter per writer, as separate processes are
    ready, results = context.Barrier(writers), context.Queue()
    processes = [context.Process(target=_writer, args=(target, commits, n, ready, results)) for n in range(writers)]
    for process in processes:
        process.start()
    try:
        timings = [_next_result(results, processes) for _ in processes]
    except RuntimeError:
        for process in processes:
            process.kill()   # the others would wait at the barrier for the one that failed
        raise
    for process in processes:
        process.join()
    elapsed = max(end for _, end, _ in timings) - min(start for start, _, _ in timings)
    return {"writers": writers, "commits": writers * commits, "seconds": round(elapsed, 3),
            "commits_per_s": round(writers * commits / elapsed, 1),
            "cpu_s_per_writer": round(max(cpu for *_, cpu in timings), 3)}


def _next_result(results, processes) -> tuple:
    """The next writer's figures; a `RuntimeError` with its traceback when it failed, or with its
    exit code once a writer has died without a word (killed, crashed), rather than waiting."""
    while True:
        try:
            result = results.get(timeout=1)
        except queue.Empty:
            dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if dead and results.empty():
                raise RuntimeError(f"a writer process ended with exit code {dead[0]} before it reported") from None
            continue
        if isinstance(result, str):
            raise RuntimeError(f"a writer process failed: {result}")
        return result


def writer_timings(target: str, *, writers: int = 2, commits: int = 100) -> dict:
    """The floor (one writer alone) and `writers` writers at once on the lake `target`. The floor
    is taken before and after the writers together, the faster kept, so that a load that
    changes during the run does not favour either side."""
    if not ducklake.is_ducklake(target):
        raise ValueError("Several processes write one store on DuckLake only: give a ducklake:postgres:... store.")
    first = commits_per_second(target, writers=1, commits=commits)
    together = commits_per_second(target, writers=writers, commits=commits)
    last = commits_per_second(target, writers=1, commits=commits)
    alone = max(first, last, key=lambda run: run["commits_per_s"])
    return {"floor_one_writer": alone, "together": together,
            "ratio_to_floor": round(together["commits_per_s"] / alone["commits_per_s"], 2),
            "load_average": round(os.getloadavg()[0], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m itscm.bench_writers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="a scratch DuckLake store (ducklake:postgres:...)")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--commits", type=int, default=100, help="commits per writer")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = writer_timings(args.store, writers=args.writers, commits=args.commits)
    if args.json:
        print(json.dumps(figures))
    else:
        alone, together = figures["floor_one_writer"], figures["together"]
        print(f"one writer alone (floor): {alone['commits_per_s']:,.1f} commits/s "
              f"({alone['commits']} in {alone['seconds']:.2f} s)")
        print(f"{together['writers']} writers at once: {together['commits_per_s']:,.1f} commits/s all together "
              f"({together['commits']} in {together['seconds']:.2f} s), {figures['ratio_to_floor']:.2f}x the floor; "
              f"load average {figures['load_average']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
