"""Soak: thousands of reruns with fresh searches and filters on a real `streamlit run` server leave
its store cursors and its memory bounded.

Streamlit runs every rerun on a new thread, so anything kept per thread (a DuckDB cursor) or per
thing typed (a cached result) grows with use unless it is released or bounded. The reruns are
driven through Streamlit's own websocket protocol (tests/browser/stream_client.py): the messages
the frontend sends when a widget changes, to the real server, which runs the real script each
time; Chromium would spend most of the budget rendering. Several tabs are open at once, and each
closes after a while and a new one opens, as people come and go.

The server runs with a probe (tests/browser/probed_server.py) that reads the store's open cursors;
its resident memory is read from /proc.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests import backends
from tests.browser.conftest import ROOT, StreamlitServer
from tests.browser.stream_client import StreamClient

pytestmark = [pytest.mark.browser, pytest.mark.soak]

RERUNS = 3_000
# The DuckLake pass repeats the soak for the lake's own connections and cursors (their count is
# checked from the first sample); the long memory trend is the file pass's, which runs the same
# app code: three samples after warm-up there keep the lake pass four minutes shorter.
RERUNS_ON_DUCKLAKE = 1_250
WARM_UP_RERUNS = 500
TABS_AT_ONCE = 2
RERUNS_PER_TAB = 100         # then the tab closes and another one opens
SAMPLE_EVERY_RERUNS = 250
# After warm-up, over the remaining reruns: the lowest of the last three samples against the one
# after warm-up, since RSS moves about 10 MB either way from sample to sample while a leak only
# climbs. Runs without a leak grew 0 to 20 MB (glibc's per-thread arenas, the cache filling up).
# A cursor kept per rerun grew the server by about 40 MB over these reruns on this small store:
# the open cursors catch that leak, the memory bound only a larger one.
MAX_RSS_GROWTH_MB = 50

# The small organisation's units and services (tests/small_org.py); a search either finds some
# of them or is a string nobody has typed before.
UNITS = [(), ("Payments",), ("Cards",), ("Retail <b>Banking</b>",), ("Legal",), ("Payments", "Cards")]
TIERS = [(), ("1",), ("2",), ("1", "2"), ("3", "4")]
PERIODS = ["Last 12 months", "Last 3 months", "Last 6 months", "Last 24 months", "Year to date"]
FINDING_SEARCHES = ["", "e", "ledger", "card", "portal", "pay", "retail", "cbl-prod", "teller", "a"]


def rerun_request(number: int) -> tuple[str, str]:
    """The query string and search text of rerun `number`: every one a combination not asked for
    before (the as-of date moves back a day each time, from today: 3,000 days stay within the
    ten years the date input allows), half of the searches new strings too."""
    as_of = dt.date.today() - dt.timedelta(days=number)
    query = {"unit": UNITS[number % len(UNITS)], "tier": TIERS[number % len(TIERS)],
             "period": PERIODS[number % len(PERIODS)], "as_of": as_of.isoformat()}
    search = f"no service {number}" if number % 2 else FINDING_SEARCHES[(number // 2) % len(FINDING_SEARCHES)]
    return urlencode(query, doseq=True), search


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def cpu_seconds(pid: int) -> float:
    """User and system time the process has used (/proc/<pid>/stat, after the command name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Soak:
    """Drives reruns of the Services page on `TABS_AT_ONCE` tabs until a given total is reached."""

    def __init__(self, server: StreamlitServer):
        self.server = server
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.done = 0
        self.errors: list[BaseException] = []

    def _next(self, until: int) -> int | None:
        with self._lock:
            if self.done >= until:
                return None
            self.done += 1
            return next(self._numbers)

    def _tab(self, until: int) -> None:
        try:
            while True:
                with StreamClient(self.server.url) as client:
                    for rerun_in_tab in range(RERUNS_PER_TAB):
                        number = self._next(until)
                        if number is None:
                            return
                        query, search = rerun_request(number)
                        # A new tab opens the page from its URL; then the search box changes.
                        widgets = {"service-search": search} if rerun_in_tab else None
                        drawn = client.rerun("Services", query, widgets)
                        assert any("services shown" in text or "No service matches" in text
                                   for text in drawn.texts), drawn.texts
        except BaseException as error:  # collected, raised by run_until
            self.errors.append(error)

    def run_until(self, total: int) -> None:
        tabs = [threading.Thread(target=self._tab, args=(total,)) for _ in range(TABS_AT_ONCE)]
        for tab in tabs:
            tab.start()
        for tab in tabs:
            tab.join()
        if self.errors:
            raise AssertionError(f"{self.errors[0]}\n--- server log ---\n{self.server.log_tail()}")


@pytest.fixture
def probed_server(small_org_path, tmp_path):
    store = backends.copy_store(small_org_path, tmp_path / "store.duckdb")
    probe_file = tmp_path / "probe.json"
    running = StreamlitServer(store, tmp_path / "streamlit.log",
                              launcher=(str(ROOT / "tests" / "browser" / "probed_server.py"),),
                              extra_env={"ITSCM_PROBE_FILE": str(probe_file)})
    running.probe_file = probe_file
    yield running
    running.stop()


def sample(server, soak: Soak, started: float) -> dict:
    time.sleep(0.5)  # the probe writes a fresh sample after the last rerun has finished
    pid = server.process.pid
    return {"reruns": soak.done, "seconds": round(time.monotonic() - started, 1),
            "server_cpu_seconds": round(cpu_seconds(pid), 1), "rss_mb": round(rss_mb(pid), 1),
            "open_files": open_files(pid), **json.loads(server.probe_file.read_text())}


def test_reruns_with_fresh_searches_keep_cursors_and_memory_bounded(probed_server):
    soak = Soak(probed_server)
    started = time.monotonic()
    soak.run_until(WARM_UP_RERUNS)
    samples = [sample(probed_server, soak, started)]
    reruns = RERUNS_ON_DUCKLAKE if backends.on_ducklake() else RERUNS
    for total in range(WARM_UP_RERUNS + SAMPLE_EVERY_RERUNS, reruns + 1, SAMPLE_EVERY_RERUNS):
        soak.run_until(total)
        samples.append(sample(probed_server, soak, started))
    warm, end = samples[0], samples[-1]
    growth_mb = min(later["rss_mb"] for later in samples[-3:]) - warm["rss_mb"]

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "soak.json").write_text(json.dumps({"tabs_at_once": TABS_AT_ONCE, "samples": samples}, indent=1))
    print(f"\nsoak: {reruns} reruns in {end['seconds']:.0f} s (server CPU {end['server_cpu_seconds']:.0f} s); "
          f"RSS {warm['rss_mb']:.0f} MB after {WARM_UP_RERUNS}, {end['rss_mb']:.0f} MB at the end "
          f"(growth {growth_mb:.1f} MB); open cursors {warm['open_cursors']} -> {end['open_cursors']} "
          f"(peak {end['peak_open_cursors']}); threads {warm['threads']} -> {end['threads']}")
    for each in samples:
        print(f"  {each}")

    # Cursors: those of the script threads running now or just ended (released when the next
    # one starts) and of the measures' query workers (one per core), never one per rerun.
    assert end["peak_open_cursors"] <= 2 * TABS_AT_ONCE + (os.cpu_count() or 2), samples
    assert growth_mb < MAX_RSS_GROWTH_MB, samples
