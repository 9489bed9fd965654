"""The problem report of an upload as a file the analyst can download and open in Excel."""

from __future__ import annotations

import pandas as pd

from itscm.ingest.preview import UploadPreview
from itscm.ingest.validate import PROBLEM_COLUMNS

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def problems_frame(preview: UploadPreview) -> pd.DataFrame:
    """Every problem: row (empty for the whole file), column, severity, reason, value."""
    return preview.problems[PROBLEM_COLUMNS].copy()


def problems_csv(preview: UploadPreview) -> bytes:
    """The full problem report as CSV bytes: UTF-8 with a byte order mark so Excel shows accents,
    and values that a spreadsheet would run as a formula defused with a leading quote."""
    frame = problems_frame(preview)
    frame["value"] = [_defused(value) for value in frame["value"]]
    return frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def _defused(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
