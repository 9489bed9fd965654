"""A real `streamlit run` server and headless Chromium, for what AppTest cannot show: real
rendering, the first request to a deep link, the sidebar navigation, uploads through the widget.

The server gets its own copy of the store (it holds the file's write lock; on DuckLake a lake of
its own) and a free port; it is ready when /_stcore/health answers, and a page is ready when
Streamlit's script state says so, as in Streamlit's own end-to-end tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import backends

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            # Under pytest-xdist (`make test`), every browser test goes to one worker, in turn: two
            # Chromiums and their servers at once would compete for the cores their timeouts assume.
            item.add_marker(pytest.mark.xdist_group("browser"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamlitServer:
    def __init__(self, store: Path, log: Path, *, port: int | None = None, extra_args: tuple[str, ...] = (),
                 launcher: tuple[str, ...] = ("-m", "streamlit"), extra_env: dict[str, str] | None = None):
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {**os.environ, "ITSCM_STORE": str(store), "PYTHONPATH": str(ROOT), **(extra_env or {})}
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, *launcher, "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", *extra_args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError(f"streamlit not healthy after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def _start_server(small_org_path: Path, folder: Path) -> StreamlitServer:
    store = backends.copy_store(small_org_path, folder / "store.duckdb")
    return StreamlitServer(store, folder / "streamlit.log")


@pytest.fixture(scope="session")
def server(small_org_path, tmp_path_factory):
    """One server shared by the tests that only read."""
    running = _start_server(small_org_path, tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture
def fresh_server(small_org_path, tmp_path):
    """A server that has served nothing yet: its first request is the test's."""
    running = _start_server(small_org_path, tmp_path)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `make browser` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="session")
def artifacts():
    folder = ROOT / "test-artifacts" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_ready(page, timeout: float = 60_000) -> None:
    """Streamlit has finished running the script (and is not about to run it again)."""
    page.wait_for_selector(READY, timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector(READY, timeout=timeout)


def select_first_row(page, table, timeout: float = 30_000) -> None:
    """Click the selection box of a dataframe's first data row.

    The grid is a canvas, so the click goes by position: the first column, one header row
    (35 px) down. As in Streamlit's own selection tests, it waits for the canvas to be drawn and
    to have stopped moving first: a click while the page above is still laying out lands
    elsewhere (CI of stop 24 lost one that way).
    """
    canvas = table.locator("canvas").first
    canvas.wait_for(state="visible", timeout=timeout)
    table.scroll_into_view_if_needed()
    box, still_since, deadline = table.bounding_box(), time.monotonic(), time.monotonic() + timeout / 1000
    while time.monotonic() - still_since < 0.5 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
        current = table.bounding_box()
        if any(abs(current[side] - box[side]) > 1 for side in ("x", "y", "width", "height")):
            box, still_since = current, time.monotonic()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
