"""The report as one self-contained HTML page: escaped text, tables, charts and the A4 print
style. Every value from the store passes through `text` (or a table, which calls it), so markup
in a name prints as the characters typed. The one script is plotly.js itself, inlined once from
the installed plotly package: the page opens offline and references nothing outside itself.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from itscm.charts import AT_RISK, BREACHED, MUTED, NEUTRAL, ON_TARGET

FONT = "Liberation Sans, Arial, Helvetica, sans-serif"   # fonts-liberation: the same glyphs on every machine
CHART_WIDTH_PX = 700      # an A4 page less its margins (182 mm) at 96 px per inch is 688 px; the
CHART_HEIGHT_PX = 300     # charts are drawn at a fixed size so that print and screen agree
STATE_COLOURS = {"on target": ON_TARGET, "at risk": AT_RISK, "breached": BREACHED}


def text(value: object) -> str:
    """Any value as escaped HTML text; empty for None and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return ""
    return html.escape(str(value), quote=True)


def pct(value: float | None) -> str:
    """A percentage as the measures give it, one decimal: 52.7 %."""
    return "n/a" if value is None or pd.isna(value) else f"{value:.1f} %"


def money(value: float | None, currency: str) -> str:
    """Whole currency units with thousands separators, as `summary` prints them: 1,234,568 EUR."""
    return "n/a" if value is None or pd.isna(value) else f"{value:,.0f} {currency}"


def count(value: float | int | None) -> str:
    return "" if value is None or pd.isna(value) else f"{int(value):,}"


def hours(value: float | None) -> str:
    return "" if value is None or pd.isna(value) else f"{value:,.1f}"


def number(value: float | None, decimals: int = 1) -> str:
    return "" if value is None or pd.isna(value) else f"{value:,.{decimals}f}"


def day(value) -> str:
    """A date or timestamp to the day or minute, as a manager reads it."""
    if value is None or pd.isna(value):
        return ""
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Column:
    """A column of a report table: the frame's column, its header, how its values are written."""
    name: str
    header: str
    write: Callable[[object], str] = str
    numeric: bool = False


def table(frame: pd.DataFrame, columns: Sequence[Column], *, caption: str = "") -> str:
    """A table whose header row repeats on every printed page it spans (thead)."""
    head = "".join(f'<th class="{"num" if c.numeric else ""}">{text(c.header)}</th>' for c in columns)
    rows = []
    for record in frame.to_dict("records"):
        cells = "".join(
            f'<td class="{"num" if c.numeric else ""}">'
            f'{"" if _missing(record[c.name]) else text(c.write(record[c.name]))}</td>'
            for c in columns
        )
        rows.append(f"<tr>{cells}</tr>")
    caption_html = f"<caption>{text(caption)}</caption>" if caption else ""
    return f"<table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, (list, tuple, str)) and pd.isna(value))


def state_badge(state: str | None) -> str:
    colour = STATE_COLOURS.get(state or "", MUTED)
    return f'<span class="badge" style="background:{colour}">{text((state or "no data").capitalize())}</span>'


def figure(chart: go.Figure, chart_id: str, *, width: int = CHART_WIDTH_PX, height: int = CHART_HEIGHT_PX) -> str:
    """A plotly chart at a fixed size in the report's font; drawn by the page's one plotly.js."""
    chart.update_layout(width=width, height=height, autosize=False, font={"family": FONT, "size": 11},
                        paper_bgcolor="white", plot_bgcolor="white")
    chart.update_xaxes(gridcolor="#e4e7eb")
    chart.update_yaxes(gridcolor="#e4e7eb")
    div = pio.to_html(chart, full_html=False, include_plotlyjs=False, div_id=chart_id,
                      default_width=f"{width}px", default_height=f"{height}px",
                      config={"displayModeBar": False, "responsive": False})
    return f'<div class="chart">{div}</div>'


@cache
def _plotly_js() -> str:
    return plotly.offline.get_plotlyjs()


PRINT_CSS = f"""
@page {{
  size: A4;
  margin: 16mm 14mm 18mm 14mm;
  @bottom-right {{ content: "Page " counter(page) " of " counter(pages); font: 8pt {FONT}; color: #52606d; }}
}}
html {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
body {{ font-family: {FONT}; font-size: 9.5pt; line-height: 1.35; color: #1f2933; margin: 0; }}
@media screen {{ body {{ max-width: 190mm; margin: 8mm auto; padding: 0 6mm; }} }}
h1 {{ font-size: 24pt; margin: 0 0 6mm; color: {NEUTRAL}; }}
h2 {{ font-size: 14pt; margin: 7mm 0 2mm; color: {NEUTRAL}; border-bottom: 1px solid #cbd2d9;
      break-after: avoid; page-break-after: avoid; }}
h3 {{ font-size: 11pt; margin: 4mm 0 1.5mm; break-after: avoid; page-break-after: avoid; }}
p {{ margin: 1.5mm 0; }}
.note {{ color: #52606d; font-size: 8.5pt; }}
section.chapter {{ break-before: page; page-break-before: always; }}
section.title-page {{ padding-top: 45mm; }}
.kicker {{ text-transform: uppercase; letter-spacing: 0.08em; color: #52606d; font-size: 10pt; }}
dl.facts {{ display: grid; grid-template-columns: 38mm auto; gap: 2mm 4mm; font-size: 11pt; margin-top: 12mm; }}
dl.facts dt {{ color: #52606d; }}
dl.facts dd {{ margin: 0; }}
table {{ border-collapse: collapse; width: 100%; font-size: 8pt; margin: 2mm 0 4mm; }}
thead {{ display: table-header-group; }}
tr {{ break-inside: avoid; page-break-inside: avoid; }}
th {{ text-align: left; background: #eef2f7; border-bottom: 1px solid #9aa5b1; padding: 1.2mm 1.5mm; }}
td {{ border-bottom: 1px solid #e4e7eb; padding: 1mm 1.5mm; vertical-align: top; }}
caption {{ text-align: left; color: #52606d; font-size: 8pt; caption-side: bottom; padding-top: 1mm; }}
.num {{ text-align: right; white-space: nowrap; }}
.badge {{ color: white; border-radius: 2mm; padding: 0.3mm 1.8mm; font-size: 8pt; white-space: nowrap; }}
.chart {{ break-inside: avoid; page-break-inside: avoid; margin: 2mm 0; }}
ul.sentences li {{ margin: 1mm 0; }}
"""


def document(title: str, body: str) -> str:
    """The whole page: print style, plotly.js once, then the sections."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{text(title)}</title>'
        f"<style>{PRINT_CSS}</style>"
        f'<script type="text/javascript">{_plotly_js()}</script>'
        f"</head><body>{body}</body></html>\n"
    )
