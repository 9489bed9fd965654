"""Where a test run's time goes: each test's worker, start, end and CPU, to see whether the
pytest-xdist workers end together and whether a worker waits rather than computes.

    pytest -p tests.timeline --timeline=run.jsonl -n 2 --dist loadgroup ...
    python -m tests.timeline run.jsonl

Each worker appends one JSON line per test (setup, call and teardown together) to the file, and
one when its session starts and ends. A test's CPU is that of the worker's whole process tree:
the worker, its live descendants (a Streamlit server, Chromium, a bench subprocess) and those
already reaped (their time is in their parent's cutime/cstime), read from /proc. A descendant
reaped by no process of the tree (an orphan, Chromium's at the end of the session) takes its time
with it: a test's CPU is then counted as 0, not negative, and the tree's figures are a floor. The
machine's busy share (/proc/stat), its CPU pressure (/proc/pressure/cpu) and the time the worker's
own threads waited for a core show a run on a loaded machine as one. Linux only.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

import pytest

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pytest_addoption(parser):
    parser.addoption("--timeline", metavar="PATH", default=None,
                     help="append each test's worker, start, end and process-tree CPU to PATH (JSON lines)")


def _process_times() -> dict[int, tuple[int, float]]:
    """Every process's parent and CPU seconds (its own and its reaped children's)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        found[int(entry.name)] = (int(fields[1]), sum(int(each) for each in fields[11:15]) / _CLOCK_TICKS)
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and its descendants, live or reaped."""
    processes = _process_times()
    children = collections.defaultdict(list)
    for pid, (parent, _) in processes.items():
        children[parent].append(pid)
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += processes.get(pid, (0, 0.0))[1]
        pending.extend(children[pid])
    return total


def own_run_delay_seconds() -> float:
    """Time this process's threads have spent ready to run but waiting for a core
    (/proc/<pid>/task/*/schedstat): on a loaded machine a test waits for CPU as well as for I/O."""
    total = 0
    for task in os.scandir(f"/proc/{os.getpid()}/task"):
        try:
            total += int(Path(task.path, "schedstat").read_text().split()[1])
        except (OSError, IndexError):
            continue
    return total / 1e9


def cpu_pressure_seconds() -> float:
    """Seconds during which some task on the machine waited for a core (/proc/pressure/cpu), or 0
    where the kernel does not report it."""
    try:
        return int(Path("/proc/pressure/cpu").read_text().split("total=", 1)[1].split()[0]) / 1e6
    except (OSError, IndexError):
        return 0.0


def machine_cpu() -> tuple[float, float]:
    """The machine's busy and total CPU seconds since boot, over all cores (/proc/stat)."""
    fields = [int(each) for each in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])       # guest time is already counted in user
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


class Timeline:
    def __init__(self, path: Path):
        self.path = path
        self.worker = os.environ.get("PYTEST_XDIST_WORKER", "main")

    def write(self, **record) -> None:
        line = json.dumps({"worker": self.worker, **record}) + "\n"
        with self.path.open("a") as out:
            out.write(line)  # one write of one line: the workers' lines never interleave

    def moment(self) -> dict:
        busy, total = machine_cpu()
        return {"wall": time.time(), "cpu": tree_cpu_seconds(os.getpid()), "run_delay": own_run_delay_seconds(),
                "machine_busy": busy, "machine_total": total, "cpu_pressure": cpu_pressure_seconds()}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session):
        self.write(event="session_start", **self.moment())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        start = self.moment()
        yield
        end = self.moment()
        self.write(event="test", test=item.nodeid, start=start, end=end)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        self.write(event="session_finish", **self.moment())


def pytest_configure(config):
    path = config.getoption("--timeline")
    if path:
        config.pluginmanager.register(Timeline(Path(path).resolve()), "itscm-timeline")


def _cpu(test: dict) -> float:
    return max(0.0, test["end"]["cpu"] - test["start"]["cpu"])


def summarise(path: Path, top: int = 8) -> str:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    tests = [each for each in records if each["event"] == "test"]
    sessions = [each for each in records if each["event"] == "session_start"]
    finishes = [each for each in records if each["event"] == "session_finish"]
    if not tests:
        return "no tests recorded"
    first = min(each["wall"] for each in sessions) if sessions else min(t["start"]["wall"] for t in tests)
    last = max(t["end"]["wall"] for t in tests)
    lines = [f"run: {last - first:.0f} s from the first worker's start to the last test's end"]
    machine_start = min(sessions, key=lambda each: each["wall"]) if sessions else None
    machine_end = max(finishes, key=lambda each: each["wall"]) if finishes else None
    if machine_start and machine_end:
        busy = machine_end["machine_busy"] - machine_start["machine_busy"]
        total = machine_end["machine_total"] - machine_start["machine_total"]
        lines.append(f"machine: {100 * busy / total:.0f} % of all its cores busy over the run "
                     f"({busy:.0f} of {total:.0f} CPU s), whoever used them; some task waiting for a core "
                     f"{100 * (machine_end['cpu_pressure'] - machine_start['cpu_pressure']) / (last - first):.0f} % "
                     "of the time")
    run_cpu = 0.0
    for worker in sorted({t["worker"] for t in tests}):
        mine = sorted((t for t in tests if t["worker"] == worker), key=lambda t: t["start"]["wall"])
        busy = sum(t["end"]["wall"] - t["start"]["wall"] for t in mine)
        cpu = sum(_cpu(t) for t in mine)
        delay = sum(t["end"]["run_delay"] - t["start"]["run_delay"] for t in mine)
        run_cpu += cpu
        end = mine[-1]["end"]["wall"] - first
        start = mine[0]["start"]["wall"] - first
        lines.append(f"{worker}: {len(mine)} tests, first starts at {start:.0f} s, last ends at {end:.0f} s; "
                     f"busy {busy:.0f} s, idle {last - first - busy:.0f} s (before its first test, between tests "
                     f"and after its last); CPU of its process tree in its tests {cpu:.0f} s "
                     f"({100 * cpu / busy:.0f} % of one core while busy); the worker's own threads waited "
                     f"{delay:.0f} s for a core")
        groups = collections.Counter()
        for t in mine:
            group = t["test"].rsplit("@", 1)[1] if "@" in t["test"].rsplit("]", 1)[-1] else "other"
            groups[group, "wall"] += t["end"]["wall"] - t["start"]["wall"]
            groups[group, "cpu"] += _cpu(t)
        for group in sorted({name for name, _ in groups}):
            lines.append(f"    {group}: {groups[group, 'wall']:.0f} s, CPU {groups[group, 'cpu']:.0f} s")
        lines.append("    last tests: " + "; ".join(
            f"{t['test']} {t['start']['wall'] - first:.0f}-{t['end']['wall'] - first:.0f} s" for t in mine[-3:]))
    lines.append(f"CPU of the workers' process trees in tests: {run_cpu:.0f} s over {last - first:.0f} s "
                 f"({run_cpu / (last - first):.2f} cores on average)")
    longest = sorted(tests, key=lambda t: t["start"]["wall"] - t["end"]["wall"])[:top]
    lines.append(f"longest {top} (wall, CPU of the tree):")
    for t in longest:
        wall = t["end"]["wall"] - t["start"]["wall"]
        cpu = _cpu(t)
        at = t["start"]["wall"] - first
        lines.append(f"    {wall:6.1f} s {cpu:6.1f} CPU s  {t['worker']} at {at:.0f} s  {t['test']}")
    lines.append("per minute, each worker's share of tests by wall and the tree's CPU (cores):")
    minutes = int((last - first) // 60) + 1
    for worker in sorted({t["worker"] for t in tests}):
        row = []
        for minute in range(minutes):
            low, high = first + 60 * minute, first + 60 * (minute + 1)
            wall = cpu = 0.0
            for t in tests:
                if t["worker"] != worker:
                    continue
                overlap = min(high, t["end"]["wall"]) - max(low, t["start"]["wall"])
                if overlap > 0:
                    span = max(t["end"]["wall"] - t["start"]["wall"], 1e-9)
                    wall += overlap
                    cpu += _cpu(t) * overlap / span
            row.append(f"{wall / 60:.1f}/{cpu / 60:.1f}")
        lines.append(f"    {worker}: " + " ".join(row))
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1])))
