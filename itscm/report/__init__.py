"""The board pack: the continuity report as one self-contained HTML page or as PDF, and the owner
packs (docs/DESIGN.md §18). No streamlit here: the Report page and `python -m itscm report` both
call `make_report`.
"""

from __future__ import annotations

import datetime as dt

from itscm.administration import organisation_name
from itscm.filters import Filters
from itscm.report import html
from itscm.report.pdf import MISSING_CHROMIUM, PdfUnavailable, pdf_available, print_pdf
from itscm.report.sections import SECTIONS, ReportContext, ReportSection, add_section, report_body
from itscm.store import Store

FORMATS = ("pdf", "html")


def report_html(store: Store, filters: Filters, *, made_by: str = "local user",
                made_at: dt.datetime | None = None) -> str:
    """The report for `filters`, whose `events` is the scope it names and counts."""
    context = ReportContext(store=store, filters=filters, organisation=organisation_name(store), made_by=made_by)
    if made_at is not None:
        context.made_at = made_at
    title = f"Continuity report {context.organisation} as of {filters.as_of:%Y-%m-%d}".replace("  ", " ")
    return html.document(title, report_body(context))


def make_report(store: Store, filters: Filters, report_format: str, **options) -> bytes:
    """The report as bytes: 'html' (UTF-8) or 'pdf' (PdfUnavailable where Chromium is missing)."""
    if report_format not in FORMATS:
        raise ValueError(f"a report is {' or '.join(FORMATS)}, not {report_format!r}")
    if report_format == "pdf" and not pdf_available():
        raise PdfUnavailable(MISSING_CHROMIUM)   # before the report's queries: say it at once
    page = report_html(store, filters, **options)
    return page.encode("utf-8") if report_format == "html" else print_pdf(page)


def report_file_name(filters: Filters, report_format: str) -> str:
    return f"continuity-report-{filters.as_of:%Y-%m-%d}.{report_format}"


__all__ = ["FORMATS", "MISSING_CHROMIUM", "SECTIONS", "PdfUnavailable", "ReportSection",
           "add_section", "make_report", "pdf_available", "report_file_name", "report_html"]
