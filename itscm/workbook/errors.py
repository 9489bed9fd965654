"""The one exception of the inventory workbook: a file or an action refused as a whole, with a
one-line message that says what to do."""


class WorkbookError(Exception):
    pass
