"""`streamlit run ...` in this process, with a probe thread that writes what the server holds to a
file a test can read: the store's open per-thread cursors (now and at their peak) and the live
threads. The app, the store and the server are the real ones; the probe only reads.

    python tests/browser/probed_server.py run app.py --server.port ...   (ITSCM_PROBE_FILE=path)
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

# Imported here, before the probe thread starts: two threads importing pandas at once can each
# see it half initialised.
from streamlit.web import cli

from itscm.store import open_store

PROBE_FILE_ENV = "ITSCM_PROBE_FILE"
SAMPLE_EVERY_SECONDS = 0.05
WRITE_EVERY_SAMPLES = 4


def _probe(out: Path) -> None:
    # The store handle of the path the app reads (ITSCM_STORE): `open_store` shares one handle
    # per path in a process, so this is the very handle the app's pages use.
    store = open_store()
    peak = 0
    samples = 0
    while True:
        cursors = store.open_cursors()
        peak = max(peak, cursors)
        samples += 1
        if samples % WRITE_EVERY_SAMPLES == 0:
            figures = {"open_cursors": cursors, "peak_open_cursors": peak, "threads": threading.active_count()}
            written = out.with_suffix(".tmp")
            written.write_text(json.dumps(figures))
            written.replace(out)
        time.sleep(SAMPLE_EVERY_SECONDS)


def main() -> None:
    threading.Thread(target=_probe, args=(Path(os.environ[PROBE_FILE_ENV]),), name="itscm-probe",
                     daemon=True).start()
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()
