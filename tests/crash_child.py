"""The part every crash test's child process shares: its arguments (store path, action, argument,
pause point, the time to record) and a store whose write cursor pauses after the statement the pause
point names, waiting on stdin so that the parent's kill lands at a known place. The product code
has no test hooks. A child script is its imports (sys, datetime as dt, contextmanager, Store),
then PAUSING_STORE, then its action between pause_at("before") and pause_at("after")."""

import textwrap

PAUSING_STORE = textwrap.dedent("""
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
