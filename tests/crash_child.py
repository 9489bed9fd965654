"""The part every crash test's child process shares: its arguments (store path, action, argument,
pause point, the time to record) and a store whose write cursor pauses after the statement the pause
point names, waiting on stdin so that the parent's kill lands at a known place. The product code
has no test hooks. A child script is its imports (sys, datetime as dt, contextmanager, Store),
then PAUSING_STORE, then its action between pause_at("before") and pause_at("after")."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests import backends

ROOT = Path(__file__).resolve().parent.parent

PAUSING_STORE = textwrap.dedent("""
    from itscm import ducklake

    # As in the test process (tests/backends.py): the extensions' signature check, 0.7 CPU s a
    # child on DuckLake, proves nothing about a kill, and a test starts a dozen children at once.
    ducklake.VERIFY_EXTENSION_SIGNATURES = False
    path, action, argument, point = sys.argv[1:5]
    NOW = dt.datetime.fromisoformat(sys.argv[5])


    def pause_at(label):
        if label == point:
            print("paused", flush=True)
            sys.stdin.readline()   # the parent kills this process here


    class PausingCursor:
        # Runs each statement, then pauses if it is the one named by `point`.
        def __init__(self, cursor):
            self._cursor = cursor

        def execute(self, sql, *args):
            result = self._cursor.execute(sql, *args)
            if point.startswith("sql:") and point[4:] in " ".join(sql.split()):
                pause_at(point)
            return result

        def __getattr__(self, name):
            return getattr(self._cursor, name)


    class PausingStore(Store):
        @contextmanager
        def transaction(self):
            with super().transaction() as cursor:
                yield PausingCursor(cursor)


    store = PausingStore(path)
""")


def start_child(script: Path, path: Path | str, action: str, argument: str, point: str, now) -> subprocess.Popen:
    """The child script on the store at `path`, to pause at `point` (see PAUSING_STORE)."""
    return subprocess.Popen(
        [sys.executable, str(script), str(path), action, argument, point, now.isoformat()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def killed_at_each_point(script: Path, before: Path | str, folder: Path, action: str, argument: str,
                         points: list[tuple[str, str]], now, *,
                         copy=None) -> list[tuple[str, str, Path, subprocess.Popen]]:
    """A copy of the store `before` per pause point, a child started on each and paused at its point,
    then every child killed (SIGKILL): [(point, the state expected, the copy, the child)]; on DuckLake
    the copies are lakes, and each child opens its lake as any process does. The children start at
    once, so their imports overlap, which keeps the tests quick. `copy(before, n)`: the n-th copy's
    path or target, where a test makes its copies itself; else the backend's copy in `folder`."""
    copy = copy or (lambda store, n: backends.copy_store(store, folder / f"{action}-{n}.duckdb"))
    children = []
    for n, (point, state) in enumerate(points):
        path = copy(before, n)
        children.append((point, state, path, start_child(script, path, action, argument, point, now)))
    try:
        for point, _, _, child in children:
            line = child.stdout.readline().strip()
            assert line == "paused", f"{point}: {line!r} {child.stderr.read() if child.poll() is not None else ''}"
    finally:
        for *_, child in children:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=30)
    for point, _, _, child in children:
        assert child.returncode == -signal.SIGKILL, point
    return children
