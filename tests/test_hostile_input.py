"""Hostile input: markup and formulas in uploaded text stay text, odd files are refused or
reported cleanly, and no page renders raw HTML."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from itscm import access, ingest
from itscm.export import csv_for_spreadsheets
from itscm.filters import Filters
from itscm.ingest import IngestError, read_upload
from itscm.measures.attainment import worst_breaches
from itscm.store import open_store
from itscm.ui import plain
from tests import backends
from tests.conftest import SMALL_ORG_AS_OF

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_NAME = "![seen](https://tracker.example/p.png) <script>alert(1)</script>.csv"
HOSTILE_TITLE = "<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))"
FORMULA = "=HYPERLINK(\"https://evil.example\",\"click\")"
HOSTILE_CSV = (
    "incident_id,title,service,priority,opened_at,restored_at\n"
    f'H-1,"{HOSTILE_TITLE}",Core Ledger,1,2026-06-01 10:00,2026-06-01 20:00\n'
    f'H-2,"{FORMULA.replace(chr(34), chr(34) * 2)}",Core Ledger,1,2026-06-02 10:00,2026-06-02 13:00\n'
    "H-3,+cmd|' /C calc'!A0,Core Ledger,1,2026-06-03 10:00,2026-06-03 23:00\n"
).encode()



def rendered_text(app: AppTest) -> list[str]:
    """Every markdown source the page sent: markdown, captions, alerts, titles."""
    elements = [*app.markdown, *app.caption, *app.success, *app.error, *app.info, *app.warning, *app.title,
                *app.sidebar.caption]
    return [element.value for element in elements]


def test_an_upload_named_and_filled_with_markup_is_shown_as_text(store_path):
    app = AppTest.from_file(str(ROOT / "pages" / "Upload_incidents.py"), default_timeout=60).run()
    app.file_uploader(key="upload-file").upload(HOSTILE_NAME, HOSTILE_CSV, "text/csv").run()
    app.button(key="upload-commit").click().run()
    assert not app.exception, [e.message for e in app.exception]
    texts = rendered_text(app)
    assert any(plain("upl-") in text for text in texts)                     # the commit's message is there
    for text in texts:
        # Markup is escaped: nothing reaches the browser as a tag, an image or a link.
        assert not re.search(r"(?<!\\)<(script|img)", text), text
        assert not re.search(r"(?<!\\)!(?<!\\)\[", text) and "](" not in text, text
    store = open_store(store_path)
    assert store.scalar("SELECT file_name FROM uploads") == HOSTILE_NAME        # stored exactly as given
    assert store.scalar("SELECT title FROM incidents WHERE incident_id = 'generic:H-1'") == HOSTILE_TITLE

    # Uploading it again: the "already imported" message names the file, escaped too. (The page
    # says so in its dry run; the commit button is disabled, as committing would change nothing.)
    again = AppTest.from_file(str(ROOT / "pages" / "Upload_incidents.py"), default_timeout=60).run()
    again.file_uploader(key="upload-file").upload(HOSTILE_NAME, HOSTILE_CSV, "text/csv").run()
    assert again.button(key="upload-commit").disabled
    assert any(plain(HOSTILE_NAME) in text and "already imported" in text for text in rendered_text(again)), \
        rendered_text(again)


def test_a_measure_export_neutralises_formulas_from_uploaded_text(store_path):
    store = open_store(store_path)
    preview = read_upload(HOSTILE_CSV, "formulas.csv", store=store)
    ingest.commit_upload(access.Actor("ana@example.com", "analyst"), store, preview)
    breaches = worst_breaches(store, Filters(as_of=SMALL_ORG_AS_OF))
    assert {FORMULA, "+cmd|' /C calc'!A0"} <= set(breaches["title"])     # the real frame holds them
    cells = [cell for row in csv.reader(io.StringIO(csv_for_spreadsheets(breaches).decode("utf-8-sig")))
             for cell in row]
    assert "'" + FORMULA in cells and "'+cmd|' /C calc'!A0" in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and not _number(cell))]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_no_page_renders_raw_html():
    """Streamlit escapes HTML in markdown unless told otherwise; nothing here tells it otherwise."""
    sources = [*ROOT.joinpath("itscm").rglob("*.py"), *ROOT.joinpath("pages").glob("*.py"), ROOT / "app.py"]
    offenders = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in sources
                 for line in path.read_text(encoding="utf-8").splitlines()
                 if re.search(r"unsafe_allow_html\s*=\s*True|st\.html\(|components\.v1|\.html\(", line)]
    assert offenders == []


# Odd files that tests/test_ingest*.py do not already cover: each a preview or one clean line.
@pytest.mark.parametrize("name, data, outcome", [
    ("long_field.csv", b"incident_id,opened_at,title\nL-1,2025-07-14 10:00," + b"x" * 3_000_000 + b"\n",
     "field larger than field limit"),
    ("wide_header.csv", (",".join(f"c{i}" for i in range(50_000)) + "\n1\n").encode(),
     "has at least 10,950 columns in its header"),
    ("wide_row.csv", b"incident_id,opened_at,title\nW-1,2025-07-14 10:00," + b"," * 200_000 + b"\n",
     "more fields than the header"),
    ("deep_quotes.csv", b'incident_id,opened_at,title\nQ-1,2025-07-14 10:00,"' + b'""' * 50_000 + b'"\n', "preview"),
    ("nul_in_a_field.csv", b"incident_id,opened_at,title\nN-1,2025-07-14 10:00,a\x00b\n", "NUL bytes"),
    ("only_carriage_returns.csv", b"incident_id,opened_at\n" + b"\r" * 100_000, "no data rows"),
])
def test_odd_files_are_refused_or_reported_cleanly(name, data, outcome):
    store = backends.new_store()
    try:
        preview = read_upload(data, name, store=store)
    except IngestError as error:
        assert outcome in str(error) and "\n" not in str(error)
        return
    reported = " ".join(preview.problems["reason"].astype(str))
    assert outcome == "preview" or outcome in reported, reported
    if outcome == "preview":
        assert preview.accepted.column("title").to_pylist() == ['"' * 50_000]   # quotes kept, not mangled


def test_the_size_cap_is_checked_before_reading():
    with pytest.raises(IngestError, match="above the upload limit"):
        read_upload(b"incident_id,opened_at\n" + b"X-1,2025-07-14 10:00\n" * 1000, "big.csv",
                    store=backends.new_store(), max_bytes=1024)
