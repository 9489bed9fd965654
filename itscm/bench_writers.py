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
import faulthandler
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path

from itscm import administration, ducklake
from itscm.access import Actor
from itscm.store import Store

BENCH_ACTOR = Actor("bench@example.com", "admin")
# How long a writer ready to start waits for the others to be (each opens the lake first).
BARRIER_WAIT_S = 600
# How long the parent waits with no writer reporting or ending before it takes the rest as hung:
# past the barrier's and the writers lock's own waits, so that they say why first.
QUIET_LIMIT_S = 900
# How long a writer process gets to start (an interpreter, the product's imports) before it is
# taken as hung: a loaded machine has taken tens of seconds.
START_WAIT_S = 600
# How long a writer that has reported gets to close the store and end.
EXIT_WAIT_S = 120
# How long a hung writer gets to write its threads' stacks before it is killed.
STACKS_WAIT_S = 30
# The last characters of a failed writer's stderr that its error carries.
STDERR_TAIL_CHARS = 4000


def _writer(target: str, commits: int, number: int, ready) -> tuple[float, float, float]:
    try:
        with Store(target) as store:
            # One write first, untimed: a process's first pays for loading the catalog.
            administration.record_change(BENCH_ACTOR, store, "bench warm-up", f"writer {number}")
            ready.wait(timeout=BARRIER_WAIT_S)   # every writer open and warm before any starts
            started = time.monotonic()
            for n in range(commits):
                administration.record_change(BENCH_ACTOR, store, "bench write", f"writer {number}", after={"n": n})
            return started, time.monotonic(), time.process_time()
    except BaseException:
        ready.abort()   # the others, waiting at the barrier, fail at once instead of after BARRIER_WAIT_S
        raise


def commits_per_second(target: str, *, writers: int, commits: int) -> dict:
    """`writers` processes making `commits` writes each at once: their commits per second all
    together (from the first start to the last end) and each process's CPU seconds."""
    ready = multiprocessing.get_context("spawn").Barrier(writers)
    timings = run_reporting(_writer, [(target, commits, n, ready) for n in range(writers)])
    elapsed = max(end for _, end, _ in timings) - min(start for start, _, _ in timings)
    return {"writers": writers, "commits": writers * commits, "seconds": round(elapsed, 3),
            "commits_per_s": round(writers * commits / elapsed, 1),
            "cpu_s_per_writer": round(max(cpu for *_, cpu in timings), 3)}


def run_reporting(work: Callable, arguments: list[tuple]) -> list:
    """`work(*arguments[n])` in a fresh interpreter each (spawned, as separate processes are), all
    at once: what each returned, in order. Any writer failing fails the whole with a
    `RuntimeError` naming it and saying how: its traceback; or, when it died without one (killed,
    crashed in DuckDB or an extension), its exit code and signal and what it wrote to stderr
    (a crash's stacks there, from faulthandler); or, hung, its threads' stacks. The others are
    then stopped: they would wait at the barrier for the one that failed."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="itscm-bench-writers-") as folder:
        writers = []
        try:
            for number, work_arguments in enumerate(arguments):
                writers.append(_Writer.start(context, number, work, work_arguments, Path(folder)))
            results = _collect(writers)
            for writer in writers:
                writer.end_after_reporting()
                writer.pass_on_stderr()
            return results
        finally:
            for writer in writers:
                writer.stop()


def _collect(writers: list[_Writer]) -> list:
    """Each writer's result, waiting on their pipes and their ends together, so that a writer that
    ends without a word is seen as soon as it ends, and a report is never taken for another's."""
    results: dict[int, object] = {}
    while len(results) < len(writers):
        pending = [writer for writer in writers if writer.number not in results]
        starting = [writer for writer in pending if not writer.started]
        quiet_limit = START_WAIT_S if starting else QUIET_LIMIT_S
        ready = wait([writer.pipe for writer in pending] + [writer.process.sentinel for writer in pending],
                     timeout=quiet_limit)
        if not ready:
            raise (starting or pending)[0].hung(f"has neither reported nor ended for {quiet_limit:g} s")
        for writer in pending:
            if writer.pipe in ready or writer.process.sentinel in ready:
                message = writer.next_message()   # raises for a writer that failed or died
                if message is not _STARTED:
                    results[writer.number] = message
    return [results[writer.number] for writer in writers]


_STARTED = object()   # a writer's first word: it is running its work, and would write its stacks if asked


def _child(work: Callable, arguments: tuple, stderr_path: str, pipe) -> None:
    """A writer process: its stderr into a file the parent reads should it fail, its Python stacks
    written there should it crash in native code (or be asked, hung), then its work, whose result
    or traceback goes through its pipe before the process ends (a pipe's send is done when it
    returns; a queue's is done later by a thread of its own, which a crash can forestall)."""
    descriptor = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(descriptor, sys.stderr.fileno())
    os.close(descriptor)
    faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    pipe.send(("started", None))
    try:
        result = work(*arguments)
    except BaseException:
        pipe.send(("failed", traceback.format_exc()))
        return
    pipe.send(("reported", result))


class _Writer:
    """One writer process as its parent sees it: its process, its pipe, its stderr."""

    def __init__(self, number: int, process, pipe, stderr_path: Path):
        self.number, self.process, self.pipe, self.stderr_path = number, process, pipe, stderr_path
        self.started = False

    @classmethod
    def start(cls, context, number: int, work: Callable, arguments: tuple, folder: Path) -> _Writer:
        stderr_path = folder / f"writer-{number}.stderr"
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(work, arguments, str(stderr_path), sending))
        process.start()
        sending.close()   # the child's end only: the pipe then reads as closed once the child has ended
        return cls(number, process, receiving, stderr_path)

    def next_message(self):
        """`_STARTED`, or the writer's result; a `RuntimeError` when it failed or ended without one."""
        try:
            kind, content = self.pipe.recv()
        except EOFError:
            self.process.join(EXIT_WAIT_S)
            raise RuntimeError(f"writer {self.number} ended with {_exit(self.process.exitcode)} before it reported"
                               f"{self._stderr()}") from None
        if kind == "started":
            self.started = True
            return _STARTED
        if kind == "failed":
            raise RuntimeError(f"writer {self.number} failed: {content}{self._stderr()}")
        return content

    def end_after_reporting(self) -> None:
        """A writer that reported must still end well: one that crashed closing the store, or
        hangs at exit, would do the same after any write of the product's."""
        self.process.join(EXIT_WAIT_S)
        if self.process.exitcode is None:
            raise self.hung(f"reported, then did not end within {EXIT_WAIT_S:g} s")
        if self.process.exitcode != 0:
            raise RuntimeError(f"writer {self.number} reported, then ended with {_exit(self.process.exitcode)}"
                               f"{self._stderr()}")

    def hung(self, how: str) -> RuntimeError:
        """The error for a writer stuck: with its threads' stacks, asked of it (faulthandler)."""
        if not self.started:
            return RuntimeError(f"writer {self.number} {how}, and never began its work (still starting)")
        if self.process.is_alive():
            written_before = len(self._stderr_text())
            os.kill(self.process.pid, signal.SIGUSR1)
            deadline = time.monotonic() + STACKS_WAIT_S
            while len(self._stderr_text()) <= written_before and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)   # the rest of the stacks, written a thread at a time
        return RuntimeError(f"writer {self.number} {how}{self._stderr()}")

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.pipe.close()

    def pass_on_stderr(self) -> None:
        """What a writer that did well wrote to stderr (warnings), to the parent's own."""
        text = self._stderr_text()
        if text:
            print(f"writer {self.number}'s stderr:\n{text}", file=sys.stderr)

    def _stderr(self) -> str:
        if not self.stderr_path.exists():
            return "; it ended before it began its work (what it wrote went to this process's stderr)"
        text = self._stderr_text()
        if not text:
            return "; it wrote nothing to stderr"
        return f"; its stderr ends:\n{text[-STDERR_TAIL_CHARS:]}"

    def _stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""


def _exit(code: int | None) -> str:
    """An exit code as people read it: a negative one is the signal that ended the process."""
    if code is not None and code < 0:
        return f"exit code {code} ({signal.Signals(-code).name})"
    return f"exit code {code}"


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
