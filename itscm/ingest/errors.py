"""The one error type of the incident import."""

from __future__ import annotations


class IngestError(Exception):
    """A problem with an upload that the analyst can act on. Its message is one line, fit to show
    as is (no traceback, no DuckDB internals); anything else escaping the import is a bug."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
