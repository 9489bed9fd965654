"""An .xlsx file -> its cells, as rows of (sheet, row, column, kind, text) in a DuckDB table,
refusing hostile files with one line before anything is parsed.

Checks, in order, each a `WorkbookError`: the size (50 MB); the signature (an encrypted workbook or
an old .xls is an OLE compound file; a CSV renamed .xlsx is text); the zip's directory (a member
declaring more than 100 times its compressed size, or more than 1 GB in all, is a zip bomb: refused
before inflating anything; zipfile never inflates a member beyond its declared size); a DTD in the
prolog of any XML part (a workbook never declares entities: refused before any parser sees the
file, and defusedxml refuses them again in the parts openpyxl parses); a shared-string table
declaring more strings than its part could hold (calamine reserves memory for the count first);
more than 200,000 rows in a sheet. A macro-enabled workbook is read without its macros: only cell
values are read, nothing in the file is ever run, and the reader notes it.

Who reads what. Cell values are read by fastexcel (calamine, in Rust, to Arrow): an inventory of
10,000 services is a million cells, which it reads in well under a second, where openpyxl reads
about 40,000 cells a second. fastexcel hands each sheet over as text columns (dtypes "string"),
kept as they are for the reader to type (or turned into one row per cell by a DuckDB UNPIVOT where
a cell needs more than its text: an error value, a rounded number, a recognised export's row
rules); each cell's kind is recovered from that text,
whose shapes fastexcel fixes: a date '2024-03-01 00:00:00', a yes/no 'true', a number '60' or
'1.5' (printed with at most nine decimals, so a sheet holding a number with four or more is read a
second time as numbers, exactly), and an error value as a cell error ('Error(NA)' -> '#N/A'). A
text cell that looks exactly like one of these is read as that kind; the import parses such a cell
to the same value either way.

Three kinds of sheet are read by openpyxl instead (read-only, values only, through defusedxml), as
a plain scan of the sheet's inflated XML finds them -- substring checks, no parsing:
- a sheet holding a formula (an `<f>` element). Formulas are never evaluated: a formula's saved
  value is read, and a formula without one is a cell of kind 'f', which the import rejects.
  calamine reads a formula without a saved value as an empty cell, so it cannot tell them apart.
- a sheet whose cells do not all carry their plain reference (`<c r="B2"`), or whose element names
  carry a namespace prefix: the scan could not bound what calamine would allocate for it.
- a sheet reaching far (beyond column Z or row 99,999) whose grid would exceed 6 million cells:
  calamine holds a sheet as a dense grid of 32 bytes a cell, from its first used cell to its last,
  and one cell at XFD1048576 would ask for 550 GB and abort the process. A sheet reaching past row
  200,001 is refused there and then.
The scan of a sheet runs in a thread ahead of fastexcel, whose loads run in two threads (a reader
each). Tests read the same workbooks with fastexcel and with openpyxl and compare.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import re
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from posixpath import dirname, join, normpath

import fastexcel
import pyarrow as pa
import pyarrow.compute as pc
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from itscm.workbook.errors import WorkbookError

MAX_FILE_BYTES = 50 * 2**20
MAX_ROWS_PER_SHEET = 200_000
MAX_COMPRESSION_RATIO = 100           # deflate reaches 1,000:1 on a bomb; sheets compress 5-20:1
RATIO_CHECKED_FROM_BYTES = 2**20      # smaller members cannot inflate to anything that matters
MAX_UNCOMPRESSED_BYTES = 2**30
MAX_MEMBERS = 10_000
# calamine's dense grid of a sheet, at 32 bytes a cell: 6 million cells is 192 MB, room for the
# row cap at 26 columns (an inventory's largest sheet, 60,000 drills of 8 columns, is under half a
# million).
MAX_GRID_CELLS = 6_000_000
_BLOCK_BYTES = 8 * 2**20
_PROLOG_BYTES = 64 * 2**10
_MAX_PROLOG_BYTES = 2**20            # a workbook's prolog is a line; comments could pad it

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_SIGNATURE = b"PK\x03\x04"
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = _REL_NS + "/officeDocument"


@dataclass
class RawSheet:
    """A sheet as read: its cells are in the connection's `wb_cells` under `src`."""
    title: str
    src: int
    header: list[str | None]
    rows: int                       # data rows below the header (rows with at least one cell)
    reader: str                     # 'fastexcel' or 'openpyxl'
    # A sheet fastexcel read whole (no error value, no rounded number) is kept as its columns
    # (column number as text -> fastexcel's text, and row_no): only its header row is in wb_cells
    # until `cells_into_table` puts the rest there (a recognised export's row rules need them).
    columns: pa.Table | None = None
    epoch_1904: bool = False


@dataclass
class Workbook:
    sheets: list[RawSheet] = field(default_factory=list)
    ignored_sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- the package ---------------------------------------------------------------------------------


def check_package(data: bytes, file_name: str) -> tuple[zipfile.ZipFile, list[str]]:
    """The workbook's zip, opened after every check that needs no inflating; and notes."""
    if len(data) > MAX_FILE_BYTES:
        raise WorkbookError(f"{file_name} is {len(data) / 2**20:.1f} MB, above the limit of "
                            f"{MAX_FILE_BYTES / 2**20:.0f} MB for an inventory workbook.")
    if data.startswith(OLE_SIGNATURE):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise WorkbookError(f"{file_name} is password-protected (encrypted): save a copy without a "
                                "password and import that.")
        raise WorkbookError(f"{file_name} is an old-style Excel (.xls) or other Office file: save it as "
                            ".xlsx and import that.")
    if not data.startswith(ZIP_SIGNATURE):
        what = "a text file (a CSV renamed .xlsx?): give it the .csv extension" if _looks_like_text(data) \
            else "not an Excel workbook"
        raise WorkbookError(f"{file_name} is {what}.")
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        members = package.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise WorkbookError(f"{file_name} is a damaged workbook ({error}).") from None
    if len(members) > MAX_MEMBERS:
        raise WorkbookError(f"{file_name} holds {len(members):,} parts; a workbook holds a few dozen.")
    total = 0
    for member in members:
        if member.flag_bits & 0x1:
            raise WorkbookError(f"{file_name} is password-protected (encrypted): save a copy without a "
                                "password and import that.")
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise WorkbookError(
                f"{file_name} is refused: its part {member.filename} would inflate {ratio:,.0f} times "
                f"(to {member.file_size / 2**20:,.0f} MB), which only a zip bomb does.")
        total += member.file_size
    if total > MAX_UNCOMPRESSED_BYTES:
        raise WorkbookError(f"{file_name} is refused: it would inflate to {total / 2**30:,.1f} GB.")
    names = {member.filename for member in members}
    notes = []
    if "mimetype" in names and package.read("mimetype").startswith(b"application/vnd.oasis"):
        raise WorkbookError(f"{file_name} is an OpenDocument spreadsheet: save it as .xlsx and import that.")
    if not any(name.endswith("workbook.xml") for name in names) and "[Content_Types].xml" in names:
        raise WorkbookError(f"{file_name} is an Office file but not an Excel workbook.")
    if not any(name.endswith("workbook.xml") for name in names):
        raise WorkbookError(f"{file_name} is a ZIP archive, not an Excel workbook.")
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        notes.append(f"{file_name} is macro-enabled: its cell values were read, its macros were not "
                     "(nothing in a workbook is ever run).")
    _refuse_entity_declarations(package, file_name)
    return package, notes


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    if not head:
        return True
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("cp1252", "replace")
    controls = sum(1 for char in text if char < " " and char not in "\t\r\n")
    return controls <= len(text) // 100


def _refuse_entity_declarations(package: zipfile.ZipFile, file_name: str) -> None:
    """Refuses a part whose prolog (what precedes its root element) declares a DTD or an entity;
    every part is looked at, whatever its name, for a relationship can point anywhere. Only the
    first block of each part is inflated (more only for a prolog longer than a block)."""
    for member in package.infolist():
        if member.is_dir():
            continue
        try:
            with package.open(member) as part:
                head = part.read(_PROLOG_BYTES)
                complete = len(head) < _PROLOG_BYTES
                declares = _prolog_declares_entities(head, complete)
                while declares is None:
                    if len(head) >= _MAX_PROLOG_BYTES:
                        raise WorkbookError(f"{file_name} is refused: its part {member.filename} starts with "
                                            f"more than {_MAX_PROLOG_BYTES // 2**20} MB before its first element.")
                    more = part.read(_PROLOG_BYTES)
                    head, complete = head + more, len(more) < _PROLOG_BYTES
                    declares = _prolog_declares_entities(head, complete)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            raise WorkbookError(f"{file_name} is a damaged workbook ({member.filename}: {error}).") from None
        if declares:
            raise WorkbookError(f"{file_name} is refused: its part {member.filename} declares XML entities "
                                "(a DTD), which a workbook never does.")
        _check_declared_strings(head, member, file_name)


# A shared-string table's count, which calamine reserves memory for before reading a string: a
# count the part could not hold (an item is at least `<si/>`) would abort the process.
_DECLARED_STRINGS = re.compile(r"<(?:[^\s<>/!?]+:)?sst\s[^>]*?\buniqueCount\s*=\s*[\"'](\d+)")


def _check_declared_strings(head: bytes, member: zipfile.ZipInfo, file_name: str) -> None:
    declared = _DECLARED_STRINGS.search(_head_text(head))
    if declared and int(declared[1]) > member.file_size // len("<si/>") + 1:
        raise WorkbookError(f"{file_name} is a damaged workbook ({member.filename} declares {int(declared[1]):,} "
                            f"strings, more than its {member.file_size:,} bytes can hold).")


_UTF16_STARTS = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be", b"<\0": "utf-16-le",
                 b"\0<": "utf-16-be"}
_PROLOG_STEPS = (("<?", "?>"), ("<!--", "-->"))


def _head_text(head: bytes) -> str:
    """The start of a part as text (UTF-8, or UTF-16 by its byte order mark or its first '<')."""
    encoding = next((name for start, name in _UTF16_STARTS.items() if head.startswith(start)), "utf-8")
    return head.decode(encoding, "replace").lstrip("\ufeff \t\r\n")


def _prolog_declares_entities(head: bytes, complete: bool) -> bool | None:
    """True when an XML prolog holds a declaration (<!DOCTYPE, <!ENTITY); False when the root
    element, or anything that is not XML, comes first; None when `head` stops inside the prolog
    (never when `complete`). Comments and processing instructions are stepped over whole, so that
    a comment cannot hide a DTD behind something that looks like the root."""
    text = _head_text(head)
    at = 0
    while True:
        if len(text) - at < len("<!DOCTYPE") and not complete:
            return None
        if not text.startswith("<", at):
            return False                                  # not XML, or text before the root: no DTD
        step = next(((opening, closing) for opening, closing in _PROLOG_STEPS if text.startswith(opening, at)), None)
        if step is None:
            return text.startswith("<!", at)              # a declaration, or else the root element
        end = text.find(step[1], at + len(step[0]))
        if end < 0:
            return False if complete else None
        at = end + len(step[1])
        while at < len(text) and text[at] in " \t\r\n":
            at += 1


def _xml(package: zipfile.ZipFile, name: str, file_name: str):
    """A small part parsed by defusedxml (which refuses entities and external references)."""
    try:
        return ElementTree.fromstring(package.read(name))
    except KeyError:
        return None
    except DefusedXmlException as error:
        raise WorkbookError(f"{file_name} is refused: its part {name} declares XML entities "
                            f"({type(error).__name__}), which a workbook never does.") from None
    except (ElementTree.ParseError, zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise WorkbookError(f"{file_name} is a damaged workbook ({name}: {error}).") from None


def _rels(package: zipfile.ZipFile, part: str, file_name: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, target path in the package) of a part."""
    rels_name = join(dirname(part), "_rels", part.rsplit("/", 1)[-1] + ".rels")
    root = _xml(package, rels_name, file_name)
    found = {}
    if root is None:
        return found
    for rel in root.iter(f"{{{_PKG_REL_NS}}}Relationship"):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        path = target.lstrip("/") if target.startswith("/") else normpath(join(dirname(part), target))
        found[rel.get("Id")] = (rel.get("Type", ""), path)
    return found


@dataclass(frozen=True)
class _Parts:
    sheets: list[tuple[str, str]]        # (title, part path), in the workbook's order
    epoch_1904: bool


def _parts(package: zipfile.ZipFile, file_name: str) -> _Parts:
    root_rels = _rels(package, "", file_name) if "_rels/.rels" in package.namelist() else {}
    workbook = next((path for kind, path in root_rels.values() if kind == _OFFICE_DOCUMENT), "xl/workbook.xml")
    book = _xml(package, workbook, file_name)
    if book is None:
        raise WorkbookError(f"{file_name} is a damaged workbook (no {workbook}).")
    rels = _rels(package, workbook, file_name)
    sheets = []
    for sheet in book.iter(f"{{{_MAIN_NS}}}sheet"):
        target = rels.get(sheet.get(f"{{{_REL_NS}}}id"))
        if target and target[0].endswith("/worksheet"):
            sheets.append((sheet.get("name", ""), target[1]))
    properties = book.find(f"{{{_MAIN_NS}}}workbookPr")
    epoch_1904 = properties is not None and properties.get("date1904", "0").lower() in ("1", "true")
    return _Parts(sheets, epoch_1904)


# -- which reader reads a sheet ------------------------------------------------------------------

FASTEXCEL, OPENPYXL = "fastexcel", "openpyxl"
_FORMULA = re.compile(rb"<f[\s>/]")
# A cell whose reference is not its first attribute, or that has none (calamine would place it by
# counting, which the scan does not bound); a second reference; an element with a namespace prefix
# (looked for only where ':c' or ':f' occurs at all: one regular expression finds either in a
# third of the time two substring searches take, for every inline string holds 'xml:space').
_UNREFERENCED_CELL = re.compile(rb'<c(?! r="[A-Z])[\s>/]')
_SECOND_REFERENCE = b'" r="'
_COLON_C_OR_F = re.compile(rb":[cf]")
_PREFIXED_CELL = re.compile(rb"<[^\s<>/!?]+:[cf][\s>/]")
# References reduced to their shape (letters -> A, digits -> 0), so that a cell beyond column Z or
# row 99,999 is a plain substring; such a sheet's references are then read exactly.
_REFERENCE_SHAPES = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", b"A" * 26 + b"0" * 10)
_FAR_CELLS = (b'<c r="AA', b'<c r="A000000')
_NEAR_BOUND = (99_999, 26)
_REFERENCE = re.compile(rb'<c r="([A-Z]+)([0-9]+)"')


def _reader_for(package: zipfile.ZipFile, path: str, file_name: str, title: str) -> str:
    """FASTEXCEL or OPENPYXL, from substring checks on the sheet's cells (its <sheetData>),
    inflated in blocks cut before a '<' so that no tag is split; raises for a sheet past the row
    cap. Each check is a pass over the bytes in C (a regular expression with a literal start,
    a substring, a translation), not a parse."""
    inside, last_row, last_column = False, 0, 0
    carry = b""
    try:
        with package.open(path) as part:
            while True:
                block = part.read(_BLOCK_BYTES)
                text = carry + block if carry else block
                cut = len(text) if not block else max(text.rfind(b"<"), 0)
                low, carry = 0, text[cut:]
                if len(carry) > _BLOCK_BYTES:
                    # A tag, then more than a block of text without a '<': the text holds nothing
                    # the checks look for, so only the tag is carried on (carrying it all would
                    # copy it again with every block).
                    closing = carry.find(b">")
                    if closing < 0:
                        return OPENPYXL                           # a tag longer than a block
                    carry = carry[:closing + 1]
                if not inside:
                    low = text.find(b"<sheetData", 0, cut)
                    if low < 0:
                        if text.find(b":sheetData", 0, cut) >= 0:
                            return OPENPYXL
                        if not block:
                            return OPENPYXL                       # no cells the checks could see
                        continue
                    if text.startswith(b"<sheetData/>", low):
                        break
                    inside = True
                end = text.find(b"</sheetData>", low, cut)
                high = cut if end < 0 else end
                if _FORMULA.search(text, low, high) or _UNREFERENCED_CELL.search(text, low, high) \
                        or text.find(_SECOND_REFERENCE, low, high) >= 0 \
                        or (_COLON_C_OR_F.search(text, low, high) and _PREFIXED_CELL.search(text, low, high)):
                    return OPENPYXL
                shapes = text.translate(_REFERENCE_SHAPES)
                if any(shapes.find(far, low, high) >= 0 for far in _FAR_CELLS):
                    for letters, digits in _REFERENCE.findall(text, low, high):
                        last_row = max(last_row, int(digits))
                        last_column = max(last_column, _column_number(letters))
                    if last_row > MAX_ROWS_PER_SHEET + 1:
                        raise _too_many_rows(file_name, title)
                elif high > low:
                    last_row, last_column = max(last_row, _NEAR_BOUND[0]), max(last_column, _NEAR_BOUND[1])
                if end >= 0 or not block:
                    break
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise WorkbookError(f"{file_name} is a damaged workbook ({path}: {error}).") from None
    return OPENPYXL if last_row * last_column > MAX_GRID_CELLS else FASTEXCEL


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


# -- reading -------------------------------------------------------------------------------------

CELLS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS wb_cells (
    src     INTEGER NOT NULL,   -- the sheet read (numbered across every file of an import)
    row_no  INTEGER NOT NULL,   -- as the spreadsheet shows it: the header is row 1
    col_no  INTEGER NOT NULL,   -- 0 for column A
    kind    VARCHAR NOT NULL,   -- s text, n number, d date, b yes/no, e error, f formula without a value
    text    VARCHAR NOT NULL,
    plain   BOOLEAN             -- always true (kept for the readers of this table)
)
"""


def read_workbook(con, data: bytes, file_name: str, *, first_src: int, wanted) -> Workbook:
    """Every sheet `wanted(title)` accepts, into the connection's `wb_cells` (numbered from
    `first_src`); the others are listed as ignored. Raises WorkbookError for a refused file."""
    package, notes = check_package(data, file_name)
    result = Workbook(notes=notes)
    with package:
        parts = _parts(package, file_name)
        con.execute(CELLS_TABLE_SQL)
        to_read = []
        for title, path in parts.sheets:
            if not wanted(title):
                result.ignored_sheets.append(title)
                continue
            if path not in package.namelist():
                raise WorkbookError(f"{file_name} is a damaged workbook (its sheet {title!r} is missing).")
            to_read.append((title, path))
        # Each sheet's scan runs in a thread, ahead of the loads; the sheets the scan gives to
        # fastexcel are loaded by LOADERS threads, each with its own reader (fastexcel lets one
        # reader load one sheet at a time) and releasing the GIL while it parses: on two cores two
        # sheets parse at once while this thread puts the ones loaded into DuckDB. Sheets are taken
        # in the workbook's order, so a refused file fails as it did read one sheet after another.
        # Leaving the executors waits for a scan or a load under way, before the zip it reads is
        # closed. DuckDB inserts a sheet (one Arrow batch) on one thread: more only add overhead to
        # that insert (0.55 s of CPU instead of 0.3 for the 10,000-service workbook).
        threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        con.execute("SET threads = 1")
        loaders = _Loaders(data, file_name)
        with ThreadPoolExecutor(max_workers=1) as scanner, ThreadPoolExecutor(max_workers=LOADERS) as loader:
            # The largest sheets are scanned and loaded first: a sheet's load waits for its scan, and the
            # largest one's scan and load, which no other thread can share, bound the whole read.
            largest_first = sorted(range(len(to_read)), key=lambda at: -package.getinfo(to_read[at][1]).file_size)
            scans, loads = [None] * len(to_read), [None] * len(to_read)
            for at in largest_first:
                title, path = to_read[at]
                scans[at] = scanner.submit(_reader_for, package, path, file_name, title)
            for at in largest_first:
                loads[at] = loader.submit(loaders.load, to_read[at][0], scans[at])
            try:
                for src, ((title, _), load) in enumerate(zip(to_read, loads, strict=True), start=first_src):
                    loaded = load.result()
                    sheet = None
                    if loaded is not None:
                        sheet = _fastexcel_sheet(con, loaded, loaders, file_name, title, src, parts.epoch_1904)
                    if sheet is None:
                        sheet = _openpyxl_sheet(con, data, file_name, title, src)
                    result.sheets.append(sheet)
            finally:
                for pending in (*loads, *scans):
                    pending.cancel()
                con.execute(f"SET threads = {threads}")     # an integer DuckDB gave: nothing to inject
    return result


# Threads loading sheets through fastexcel: the machines this runs on have two cores.
LOADERS = 2


class _Loaders:
    """fastexcel's loads of a workbook's sheets, from any thread: a reader per thread, made on
    its first load (fastexcel refuses a second load on a reader while one is under way)."""

    def __init__(self, data: bytes, file_name: str):
        self.data, self.file_name = data, file_name
        self.local = threading.local()

    def reader(self, title: str):
        reader = getattr(self.local, "reader", None)
        if reader is None:
            reader = self.local.reader = _calamine(lambda: fastexcel.read_excel(self.data), self.file_name, title)
        return reader

    def load(self, title: str, scan, dtypes: str = "string"):
        """_load's answer for a sheet the scan (a future of _reader_for) gives to fastexcel, else None."""
        if scan is not None and scan.result() != FASTEXCEL:
            return None
        reader = self.reader(title)
        return _calamine(lambda: _load(reader, title, dtypes), self.file_name, title)


def _calamine(call, file_name: str, title: str):
    """fastexcel's answer, or its failure as one line (a damaged file). A Rust panic arrives as
    pyo3's PanicException, which derives from BaseException, not Exception."""
    try:
        return call()
    except Exception as error:
        detail = " ".join(str(error).split()) or type(error).__name__
    except BaseException as error:
        if type(error).__name__ != "PanicException":
            raise
        detail = "the reader failed on it"
    raise WorkbookError(f"{file_name} is a damaged workbook (sheet {title!r}: {detail[:160]}).")


# A number as fastexcel prints it (no leading zero, no trailing one), a date and time as it prints
# it, and the error values of calamine's CellErrorType.
_NUMBER_TEXT = r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?"
_DATE_TEXT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
_CELL_ERRORS = {"Div0": "#DIV/0!", "NA": "#N/A", "Name": "#NAME?", "Null": "#NULL!", "Num": "#NUM!",
                "Ref": "#REF!", "Value": "#VALUE!", "GettingData": "#GETTING_DATA"}
_CELL_ERROR_DETAIL = re.compile(r"'Error\((\w+)\)'")
# A cell's kind from the text fastexcel gives for it (`raw`), and the text `wb_cells` keeps for it
# (from `kind` and `raw`): SQL shared by the UNPIVOT below and the reader's typing of a sheet kept as
# columns (itscm/workbook/read.py), so that both see the same cells. A time of day alone: calamine
# puts it on the epoch's first day (1899-12-31, or 1904-01-01 in a 1904 workbook); openpyxl's time
# values, which the import was written against, on 1899-12-30.
KIND_SQL = f"""
CASE WHEN raw = 'true' OR raw = 'false' THEN 'b'
     -- Text not starting with a digit or '-' (most of it) skips the regular expressions:
     -- comparisons, which cost less than taking its first character.
     WHEN NOT ((raw >= '0' AND raw < ':') OR (raw >= '-' AND raw < '.')) THEN 's'
     WHEN regexp_full_match(raw, '{_NUMBER_TEXT}') THEN 'n'
     WHEN regexp_full_match(raw, '{_DATE_TEXT}') THEN 'd'
     ELSE 's' END
"""
TEXT_SQL = """
CASE kind WHEN 'b' THEN upper(raw)
          WHEN 'd' THEN CASE WHEN starts_with(raw, $time_day) THEN '1899-12-30T' || substr(raw, 12, 8)
                             ELSE left(raw, 10) || 'T' || substr(raw, 12, 8) END
          ELSE raw END
"""
# Text that none of KIND_SQL's other kinds or TEXT_SQL's rewrites can concern (a regular expression
# over a whole column, in Arrow): not 'true' or 'false', not shaped like a date.
REWRITTEN_TEXT = f"^(true|false|{_DATE_TEXT})$"
_UNPIVOT_SQL = f"""
INSERT INTO wb_cells
SELECT $src, row_no, col::INTEGER, kind, {TEXT_SQL}, TRUE
FROM (SELECT row_no, col, raw, {KIND_SQL} AS kind
      FROM (UNPIVOT wb_sheet ON COLUMNS(* EXCLUDE (row_no)) INTO NAME col VALUE raw)
      WHERE raw <> '')
"""


def time_day(epoch_1904: bool) -> str:
    """TEXT_SQL's $time_day: the day calamine puts a time of day alone on."""
    return "1904-01-01 " if epoch_1904 else "1899-12-31 "


_ROUNDED_NUMBER = r"^-?[0-9]+\.[0-9]{4,}$"
# A number printed with four or more decimals may have been rounded (fastexcel prints nine):
# its exact value, read as a number, written as openpyxl's reader writes it (repr).
_EXACT_NUMBERS_SQL = """
UPDATE wb_cells SET text = exact.text
FROM (SELECT row_no, col::INTEGER AS col_no,
             CASE WHEN value = trunc(value) AND abs(value) < 1e15 THEN CAST(value::BIGINT AS VARCHAR)
                  ELSE CAST(value AS VARCHAR) END AS text
      FROM (UNPIVOT wb_sheet ON COLUMNS(* EXCLUDE (row_no)) INTO NAME col VALUE value)) exact
WHERE wb_cells.src = $src AND wb_cells.kind = 'n' AND regexp_full_match(wb_cells.text, $rounded)
  AND exact.row_no = wb_cells.row_no AND exact.col_no = wb_cells.col_no
"""


def _fastexcel_sheet(con, loaded, loaders: _Loaders, file_name: str, title: str, src: int,
                     epoch_1904: bool) -> RawSheet | None:
    """The sheet's cells from fastexcel's load of it (`loaded`, _load's answer), or None when a
    cell is one it cannot give as text (openpyxl then reads the sheet). Rows and columns keep the
    spreadsheet's numbering: leading empty rows are kept (skip_rows=0) and each column is placed by
    its absolute index."""
    table, columns, errors = loaded
    error_cells = []
    for error in errors:
        named = _CELL_ERROR_DETAIL.search(error.detail)
        if named is None or named[1] not in _CELL_ERRORS:
            return None
        row, column = error.position
        error_cells.append((row + 1, columns[column], _CELL_ERRORS[named[1]]))
    # A plain substring search first: most columns hold no '.' at all, and it costs half the regex.
    rounded = any(pc.any(pc.match_substring(table.column(str(column)), ".")).as_py()
                  and pc.any(pc.match_substring_regex(table.column(str(column)), _ROUNDED_NUMBER)).as_py()
                  for column in columns)
    if not error_cells and not rounded:
        # Typed from its columns (itscm/workbook/read.py); the header row is all wb_cells needs.
        cells_into_table(con, table, src, epoch_1904, rows=(1, 1))
        return _raw_sheet(con, title, src, FASTEXCEL, rows=_rows_with_cells(table), columns=table,
                          epoch_1904=epoch_1904)
    cells_into_table(con, table, src, epoch_1904)
    if error_cells:
        con.execute("INSERT INTO wb_cells SELECT $src, unnest($rows), unnest($cols), 'e', unnest($texts), TRUE",
                    {"src": src, "rows": [row for row, _, _ in error_cells],
                     "cols": [column for _, column, _ in error_cells], "texts": [text for _, _, text in error_cells]})
    if rounded:
        exact, _, _ = loaders.load(title, None, "float")
        con.register("wb_sheet", exact)
        try:
            con.execute(_EXACT_NUMBERS_SQL, {"src": src, "rounded": _ROUNDED_NUMBER})
        finally:
            con.unregister("wb_sheet")
    return _raw_sheet(con, title, src, FASTEXCEL)


def cells_into_table(con, table: pa.Table, src: int, epoch_1904: bool, rows: tuple[int, int] | None = None) -> None:
    """fastexcel's columns of a sheet (`_load`, its row n at index n - 1) into wb_cells, one row
    per cell, the rows from `rows`[0] to `rows`[1] (all by default)."""
    if table.num_columns <= 1:       # row_no alone: no cell
        return
    first, last = rows or (1, table.num_rows)
    con.register("wb_sheet", table.slice(first - 1, max(last - first + 1, 0)))
    try:
        con.execute(_UNPIVOT_SQL, {"src": src, "time_day": time_day(epoch_1904)})
    finally:
        con.unregister("wb_sheet")


def _rows_with_cells(table: pa.Table) -> int:
    """The rows below the header holding a cell (a text that is not empty), as wb_cells would count them."""
    filled = pa.chunked_array([pa.array([False] * table.num_rows)])
    for name in table.column_names:
        if name != "row_no":
            filled = pc.or_(filled, pc.fill_null(pc.not_equal(table.column(name), ""), False))
    return pc.sum(filled.slice(1)).as_py() or 0


def _load(reader, title: str, dtypes: str) -> tuple[pa.Table, list[int], list]:
    """The sheet as an Arrow table (a column per used column, named by its number, column A = 0,
    and row_no, the header = 1), the column numbers, and the cells fastexcel could not convert."""
    sheet = reader.load_sheet(title, header_row=None, skip_rows=0, dtypes=dtypes)
    batch, errors = sheet.to_arrow_with_errors()
    columns = [column.absolute_index for column in sheet.selected_columns]
    table = pa.Table.from_batches([batch]).rename_columns([str(column) for column in columns])
    table = table.append_column("row_no", pa.array(range(1, table.num_rows + 1), pa.int32()))
    return table, columns, (errors.errors if errors else [])


def _too_many_rows(file_name: str, title: str) -> WorkbookError:
    return WorkbookError(f"{file_name} is refused: its sheet {title!r} has more than {MAX_ROWS_PER_SHEET:,} rows "
                         "(an inventory has far fewer; split it into several files).")


def _raw_sheet(con, title: str, src: int, reader: str, *, rows: int | None = None, columns: pa.Table | None = None,
               epoch_1904: bool = False) -> RawSheet:
    header_cells = con.execute("SELECT col_no, text FROM wb_cells WHERE src = $src AND row_no = 1 ORDER BY col_no",
                               {"src": src}).fetchall()
    header: list[str | None] = [None] * (max((col for col, _ in header_cells), default=-1) + 1)
    for col, text in header_cells:
        header[col] = text
    if rows is None:
        rows = con.execute("SELECT count(DISTINCT row_no) FROM wb_cells WHERE src = $src AND row_no > 1",
                           {"src": src}).fetchall()[0][0]
    return RawSheet(title, src, header, rows, reader, columns, epoch_1904)


def _openpyxl_sheet(con, data: bytes, file_name: str, title: str, src: int) -> RawSheet:
    """The slow, general path: openpyxl in read-only mode, twice (saved values, then which cells
    hold formulas: openpyxl gives one or the other)."""
    from openpyxl import load_workbook

    rows_seen = 0
    cells: dict[str, list] = {"row_no": [], "col_no": [], "kind": [], "text": []}
    try:
        values = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formulas = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        try:
            value_sheet, formula_sheet = values[title], formulas[title]
            value_sheet.reset_dimensions()
            formula_sheet.reset_dimensions()
            formula_rows = formula_sheet.iter_rows()
            for row in value_sheet.iter_rows():
                rows_seen += 1
                if rows_seen > MAX_ROWS_PER_SHEET + 1:
                    raise _too_many_rows(file_name, title)
                formula_row = next(formula_rows, ())
                is_formula = {cell.column: cell.data_type == "f" for cell in formula_row
                              if getattr(cell, "column", None)}
                for cell in row:
                    if getattr(cell, "column", None) is None:
                        continue
                    kind_text = _kind_and_text(cell.value, is_formula.get(cell.column, False))
                    if kind_text is not None:
                        cells["row_no"].append(cell.row)
                        cells["col_no"].append(cell.column - 1)
                        cells["kind"].append(kind_text[0])
                        cells["text"].append(kind_text[1])
        finally:
            values.close()
            formulas.close()
    except WorkbookError:
        raise
    except DefusedXmlException as error:
        raise WorkbookError(f"{file_name} is refused: it declares XML entities ({type(error).__name__}), "
                            "which a workbook never does.") from None
    except Exception as error:  # openpyxl's parse errors have many types; each means a damaged file
        raise WorkbookError(f"{file_name} is a damaged workbook (sheet {title!r}: "
                            f"{' '.join(str(error).split()) or type(error).__name__}).") from None
    table = pa.table({"src": pa.array([src] * len(cells["row_no"]), pa.int32()),
                      "row_no": pa.array(cells["row_no"], pa.int32()), "col_no": pa.array(cells["col_no"], pa.int32()),
                      "kind": pa.array(cells["kind"], pa.string()), "text": pa.array(cells["text"], pa.string())})
    con.register("wb_openpyxl_cells", table)
    try:
        con.execute("INSERT INTO wb_cells SELECT *, TRUE FROM wb_openpyxl_cells")
    finally:
        con.unregister("wb_openpyxl_cells")
    return _raw_sheet(con, title, src, "openpyxl")


def _kind_and_text(value, is_formula: bool) -> tuple[str, str] | None:
    """A value as openpyxl reads it -> (kind, text) as the fastexcel path writes them."""
    if value is None:
        return ("f", "") if is_formula else None
    if isinstance(value, bool):
        return "b", "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return "n", str(int(value))            # 60, as fastexcel prints it (not 60.0)
    if isinstance(value, int | float):
        return "n", repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return "d", value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, dt.date):
        return "d", value.isoformat() + "T00:00:00"
    if isinstance(value, dt.time):
        return "d", "1899-12-30T" + value.strftime("%H:%M:%S")
    if isinstance(value, dt.timedelta):
        return "d", (dt.datetime(1899, 12, 30) + value).strftime("%Y-%m-%dT%H:%M:%S")
    text = str(value)
    if text.startswith("#") and text in ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"):
        return "e", text
    return "s", text
