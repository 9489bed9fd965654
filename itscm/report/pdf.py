"""The report's HTML printed to PDF by Debian's headless Chromium.

Each call gets its own temporary folder holding the page, the PDF and Chromium's profile
(`--user-data-dir`), so two reports made at once never share a browser; Chromium runs in a
process group of its own, which is killed whole when it overruns. The charts are drawn by the
page's plotly.js before Chromium prints, so they stay vector graphics. kaleido is not used: it
drives Chromium too and, under threads, returned another thread's figure (its bug #444).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
PRINT_TIMEOUT_SECONDS = 90
MISSING_CHROMIUM = ("A PDF needs Chromium, which is not installed: install Debian's `chromium` "
                    "(`make browser`, or `apt-get install chromium fonts-liberation`); the HTML report works "
                    "without it.")


class PdfUnavailable(Exception):
    """Chromium is missing or could not print: one line saying what to do."""


def chromium_path() -> str | None:
    override = os.environ.get("ITSCM_CHROMIUM")
    for candidate in ((override,) if override else CHROMIUM_CANDIDATES):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def pdf_available() -> bool:
    return chromium_path() is not None


def print_pdf(html_text: str, *, timeout: float = PRINT_TIMEOUT_SECONDS) -> bytes:
    chromium = chromium_path()
    if chromium is None:
        raise PdfUnavailable(MISSING_CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="itscm-report-") as folder:
        page, pdf = Path(folder) / "report.html", Path(folder) / "report.pdf"
        page.write_text(html_text, encoding="utf-8")
        command = [
            chromium, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={Path(folder) / 'profile'}", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
        ]
        if os.geteuid() == 0:   # Chromium refuses to run as root inside its sandbox (containers, CI)
            command.append("--no-sandbox")
        command.append(page.as_uri())
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise PdfUnavailable(f"Chromium did not print the report within {timeout:.0f} s.") from None
        finally:
            # Chromium's helpers may outlive the browser process: end the whole group either way.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if not pdf.exists() or pdf.stat().st_size == 0:
            last = (errors or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise PdfUnavailable(f"Chromium did not print the report (exit {process.returncode}): {last[0]}")
        return pdf.read_bytes()
