"""Threads started together, as the concurrency tests need them."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_together(work: Callable[[], None], times: int, *, timeout: float) -> None:
    """`work` on `times` threads started at once; returns when all have ended (or `timeout` passed
    for each): the test then checks what they recorded."""
    threads = [threading.Thread(target=work) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
