"""The board pack (docs/DESIGN.md §18): what it says against `summary --json`, that it is one
self-contained page, that markup in a name stays text, and that two made at once are both right."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from html.parser import HTMLParser
from io import BytesIO

import plotly.offline
import pytest

from itscm import administration
from itscm.access import Actor
from itscm.cli import main, summary_json
from itscm.filters import Filters
from itscm.measures.common import percent
from itscm.measures.downtime import downtime_summary
from itscm.measures.registry import MONEY, headline_measures
from itscm.report import PdfUnavailable, make_report, report_html
from itscm.report import sections as report_sections
from itscm.report.definitions import HEADLINE_DEFINITIONS
from itscm.report.owner_packs import owner_actions, owner_packs, owner_packs_zip
from itscm.store import Store
from tests.conftest import SMALL_ORG_AS_OF

ADMIN = Actor("admin@example.com", "admin")
FILTERS = Filters(as_of=SMALL_ORG_AS_OF)
CHROMIUM, PDFTOTEXT = "/usr/bin/chromium", shutil.which("pdftotext")
needs_pdf_tools = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and PDFTOTEXT),
    reason="PDF tests need /usr/bin/chromium and pdftotext (`make browser` installs chromium and poppler-utils)",
)


@pytest.fixture
def store(store_path):
    """A private copy, for the tests that write (the organisation's name)."""
    opened = Store(store_path)
    yield opened
    opened.close()


@pytest.fixture
def shared_store(small_org_path):
    """The session's small organisation opened read-only, for the tests that only read: no copy
    (on DuckLake a lake each), and a write would fail instead of changing what others read."""
    opened = Store(small_org_path, read_only=True)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def report_page(small_org_path) -> str:
    """The report for FILTERS, made once for the tests that only read it (on DuckLake each one
    made costs seconds)."""
    with Store(small_org_path, read_only=True) as store:
        return report_html(store, FILTERS)


def pdf_text(pdf: bytes) -> str:
    return subprocess.run([PDFTOTEXT, "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def pdf_pages(pdf: bytes) -> int:
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def headline_figures(figures: dict, currency: str = "EUR") -> list[str]:
    """Each headline figure of `summary --json` as the report writes it: a percentage to the one
    decimal the JSON carries, money in whole units."""
    written = []
    for measure in headline_measures():
        fields = figures[measure.name]
        # `summary --json` gives stale plans as its counts: the figure is theirs, as the measure defines it
        value = fields[measure.figure] if measure.figure in fields else percent(
            fields["overdue"] + fields["never_tested"], fields["plans"])
        if value is None:                         # as the tile says it: "no assets yet"
            written.append(measure.missing_figure(fields))
            continue
        written.append(f"{value:,.0f} {currency}" if measure.format == MONEY else f"{value} %")
    return written


class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.references: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.references += [value or "" for name, value in attrs if name in ("src", "href", "srcset", "action")]


def test_the_html_report_references_nothing_outside_itself(report_page):
    page = report_page
    parser = _References()
    parser.feed(page)
    assert not [ref for ref in parser.references if ref.startswith(("http:", "https:", "//", "file:"))]
    # plotly.js inlined once, then one small script per chart; no stylesheet imported
    assert page.count('class="chart"') == 2
    assert page.count("<script") == 1 + 2
    assert page.count(plotly.offline.get_plotlyjs()[:2000]) == 1
    assert "@import" not in page.split("<script", 1)[0]
    assert page.count("<table>") == page.count("<thead>") >= 5   # headers repeat on every printed page


def test_markup_in_a_name_is_printed_as_text(report_page):
    body = report_page.split("<body>", 1)[1]
    assert "Retail &lt;b&gt;Banking&lt;/b&gt;" in body
    assert "Retail <b>Banking</b>" not in body


def test_the_title_page_names_organisation_scope_period_and_maker(store):
    administration.set_organisation_name(ADMIN, store, "Acme <i>Bank</i>")
    page = report_html(store, replace(FILTERS, events="continuity"), made_by="Ann Auditor",
                       made_at=dt.datetime(2026, 7, 1, 9, 30))
    title = page.split('<section class="title-page">', 1)[1].split("</section>", 1)[0]
    for expected in ("Acme &lt;i&gt;Bank&lt;/i&gt;", "continuity events", "2025-07-01 to 2026-06-30", "2026-06-30",
                     "Ann Auditor", "2026-07-01 09:30 UTC"):
        assert expected in title
    assert "all incidents" in report_html(store, replace(FILTERS, events="all")).split("</section>", 1)[0]


def test_the_executive_summary_says_each_headline_in_words(shared_store):
    sentences = report_sections.summary_sentences(report_sections.ReportContext(shared_store, FILTERS, organisation=""))
    assert len(sentences) == len(headline_measures())
    assert sentences[0].startswith("Critical-service coverage rose 40.0 points to 40.0 %, below the 95 % target; "
                                   "3 of 5 critical services have gaps")


def test_every_headline_measure_has_a_definition_in_the_appendix(report_page):
    assert {measure.key for measure in headline_measures()} <= set(HEADLINE_DEFINITIONS)
    appendix = report_page.split('id="definitions"', 1)[1]
    for measure in headline_measures():
        assert f"<h3>{measure.label}</h3>" in appendix


def test_a_section_is_one_entry(shared_store, monkeypatch):
    monkeypatch.setattr(report_sections, "SECTIONS", list(report_sections.SECTIONS))
    report_sections.add_section(report_sections.ReportSection("spof", "Single points of failure",
                                                              lambda context: "<p>no SPOF table yet</p>"))
    page = report_html(shared_store, FILTERS)
    assert page.index("Single points of failure") < page.index("Appendix: definitions")
    with pytest.raises(ValueError, match="exists already"):
        report_sections.add_section(report_sections.ReportSection("spof", "again", lambda context: None))


def test_the_annual_cost_adds_up_to_each_years_downtime(shared_store):
    table = report_sections.annual_cost_table(shared_store, FILTERS)
    assert list(table["year"]) == sorted(table["year"]) and table["year"].iloc[-1] == SMALL_ORG_AS_OF.year
    this_year = downtime_summary(shared_store,
                                 Filters(since=dt.date(SMALL_ORG_AS_OF.year, 1, 1), as_of=SMALL_ORG_AS_OF))
    assert table["cost"].iloc[-1] == pytest.approx(this_year["total"])
    assert table["incidents"].iloc[-1] == this_year["incidents"]


def test_a_pdf_without_chromium_says_what_to_install(shared_store, monkeypatch, capsys, small_org_path, tmp_path):
    monkeypatch.setenv("ITSCM_CHROMIUM", "no-such-chromium")
    with pytest.raises(PdfUnavailable, match="install Debian's `chromium`"):
        make_report(shared_store, FILTERS, "pdf")
    assert main(["report", "--store", str(small_org_path), "--out", str(tmp_path / "r.pdf")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "chromium" in error
    assert make_report(shared_store, FILTERS, "html").startswith(b"<!DOCTYPE html>")   # the HTML still works


def test_owner_packs_hold_every_gap_and_due_action_per_owner(shared_store):
    actions = owner_actions(shared_store, FILTERS)
    assert set(actions["kind"]) == {"coverage gap", "plan"}
    uncovered = summary_json(shared_store, FILTERS)["coverage"]
    assert (actions["kind"] == "coverage gap").sum() == uncovered["in_scope"] - uncovered["covered"]
    packs = owner_packs(shared_store, FILTERS, "csv")
    assert set(packs) == {f"{owner}.csv" for owner in actions["owner"].unique()}
    archive = zipfile.ZipFile(BytesIO(owner_packs_zip(shared_store, FILTERS, "xlsx")))
    assert sorted(archive.namelist()) == sorted(name.replace(".csv", ".xlsx") for name in packs)


def test_report_per_owner_writes_a_file_per_owner(small_org_path, tmp_path, capsys):
    out = tmp_path / "packs"
    assert main(["report", "--store", str(small_org_path), "--as-of", str(SMALL_ORG_AS_OF), "--per-owner",
                 "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["Owner.csv", "Planner.csv"]
    assert "Retail <b>Banking</b>" in (out / "Planner.csv").read_text(encoding="utf-8-sig")


@pytest.mark.long
@needs_pdf_tools
def test_the_pdf_states_each_headline_figure_as_summary_json_gives_it(small_org_path, tmp_path, capsys):
    for filter_args in ([], ["--unit", "Payments"]):
        args = ["--store", str(small_org_path), "--as-of", str(SMALL_ORG_AS_OF), *filter_args]
        assert main(["summary", "--json", *args]) == 0
        figures = json.loads(capsys.readouterr().out)
        out = tmp_path / f"report{len(filter_args)}.pdf"
        assert main(["report", *args, "--out", str(out)]) == 0
        assert "Report written" in capsys.readouterr().out
        text = pdf_text(out.read_bytes())
        for figure in headline_figures(figures):
            assert figure in text, f"{figure!r} is not in the PDF"
        assert "Retail <b>Banking</b>" in text or filter_args   # markup prints as the characters typed
        assert "Page 1 of" in text


@pytest.mark.long
@needs_pdf_tools
def test_two_reports_made_at_once_are_both_right_and_paginate_alike(shared_store):
    payments = Filters(units=("Payments",), as_of=SMALL_ORG_AS_OF)
    jobs = [FILTERS, payments, FILTERS]
    with ThreadPoolExecutor(max_workers=3) as pool:
        pdfs = list(pool.map(lambda filters: make_report(shared_store, filters, "pdf"), jobs))
    for filters, pdf in zip(jobs, pdfs, strict=True):
        text = pdf_text(pdf)
        for figure in headline_figures(summary_json(shared_store, filters)):
            assert figure in text
        assert ("all business units" in text) == (filters is FILTERS)
    assert pdf_pages(pdfs[0]) == pdf_pages(pdfs[2])


def test_the_organisation_name_is_an_admin_setting_logged_in_the_history(store):
    assert administration.organisation_name(store) == ""
    assert administration.set_organisation_name(ADMIN, store, "  Acme   Bank ") == ("", "Acme Bank")
    assert administration.set_organisation_name(ADMIN, store, "Acme Bank") is None   # no change, no entry
    history = administration.change_history(store)
    assert list(history.loc[history["action"] == "set organisation name", "changed_by"]) == ["admin@example.com"]
    with pytest.raises(ValueError, match="at most 200"):
        administration.set_organisation_name(ADMIN, store, "x" * 201)
    assert administration.set_organisation_name(ADMIN, store, "") == ("Acme Bank", "")
    assert administration.organisation_name(store) == ""


def test_a_filter_that_keeps_nothing_says_so_instead_of_praising_it(shared_store):
    page = report_html(shared_store, Filters(units=("Legal",), as_of=SMALL_ORG_AS_OF))
    assert "Critical-service coverage: nothing to measure for this filter." in page
    assert "No live critical service matches these filters." in page
    assert "Every critical service in scope meets every control" not in page
    assert "Every plan in scope is current" not in page


def test_an_unwritable_output_is_one_line(small_org_path, tmp_path, capsys):
    assert main(["report", "--store", str(small_org_path), "--format", "html",
                 "--out", str(tmp_path / "no-such-folder" / "r.html")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot write" in error


def test_the_resilience_and_asset_tables_are_in_the_report(report_page):
    page = report_page

    def section(key: str) -> str:
        return page.split(f'id="{key}">', 1)[1].split("</section>", 1)[0]

    # Card Authorisation depends on Core Ledger without an alternative: the ledger fails it too.
    single_points = section("single_points")
    assert "Core Ledger" in single_points and "Single points of failure" in single_points
    assert "No asset is recorded behind a critical service" in section("inventory_currency")
    assert page.index('id="single_points"') < page.index('id="definitions"')
