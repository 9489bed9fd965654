"""An .xlsx file -> its cells, as rows of (sheet, row, column, kind, text) in a DuckDB table,
refusing hostile files with one line before anything is inflated or parsed.

Checks, in order, each a `WorkbookError`: the size (50 MB); the signature (an encrypted workbook or
an old .xls is an OLE compound file; a CSV renamed .xlsx is text); the zip's directory (a member
declaring more than 100 times its compressed size, or more than 1 GB in all, is a zip bomb: refused
before inflating anything; zipfile never inflates a member beyond its declared size); a DTD in any
part (a workbook never declares entities; defusedxml refuses them in the parts parsed as XML); more
than 200,000 rows in a sheet. A macro-enabled workbook is read without its macros: only cell values
are read, nothing in the file is ever run, and the reader notes it.

Reading. openpyxl parses cells at about 40,000 a second on our machines, and an inventory of
10,000 services is a million cells; so cell values take a fast path: each sheet's XML is inflated
in blocks, cut into rows in Python, and its cells are matched by DuckDB's regular expressions
against the plain shape every spreadsheet program writes (`<c r="B2" s="1" t="s"><v>0</v></c>`,
with an optional formula and a saved value, or an inline string). A sheet with anything else (a
cell without a reference or with its attributes in another order, a namespace prefix, a character
reference or an entity other than XML's five, CDATA) is read by openpyxl instead (read-only, values
only, through defusedxml), and so is a shared-string table that is not plain: the fast path only
ever reads what it fully understands, and never expands an entity. Tests read the same workbooks
both ways and compare.

Formulas are never evaluated: a formula's saved value is read, and a formula without one is a
cell of kind 'f', which the import rejects.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from posixpath import dirname, join, normpath

import duckdb
import pyarrow as pa
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from itscm.workbook.errors import WorkbookError

MAX_FILE_BYTES = 50 * 2**20
MAX_ROWS_PER_SHEET = 200_000
MAX_COMPRESSION_RATIO = 100           # deflate reaches 1,000:1 on a bomb; sheets compress 5-20:1
RATIO_CHECKED_FROM_BYTES = 2**20      # smaller members cannot inflate to anything that matters
MAX_UNCOMPRESSED_BYTES = 2**30
MAX_MEMBERS = 10_000
_BLOCK_BYTES = 8 * 2**20

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_SIGNATURE = b"PK\x03\x04"
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = _REL_NS + "/officeDocument"
_DTD = re.compile(r"<!DOCTYPE|<!ENTITY")


@dataclass
class RawSheet:
    """A sheet as read: its cells are in the connection's `wb_cells` under `src`."""
    title: str
    src: int
    header: list[str | None]
    rows: int                       # data rows below the header (rows with at least one cell)
    reader: str                     # 'fast' or 'openpyxl'


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
    workbook: str
    sheets: list[tuple[str, str]]        # (title, part path), in the workbook's order
    shared_strings: str | None
    date_styles: list[int]               # style ids whose number format shows a date or time
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
    shared = next((path for kind, path in rels.values() if kind.endswith("/sharedStrings")), None)
    styles = next((path for kind, path in rels.values() if kind.endswith("/styles")), None)
    properties = book.find(f"{{{_MAIN_NS}}}workbookPr")
    epoch_1904 = properties is not None and properties.get("date1904", "0").lower() in ("1", "true")
    return _Parts(workbook, sheets, shared, _date_styles(package, styles, file_name), epoch_1904)


def _date_styles(package: zipfile.ZipFile, styles: str | None, file_name: str) -> list[int]:
    """Cell style ids showing dates or times, as openpyxl decides them (its `is_date_format`)."""
    from openpyxl.styles.numbers import builtin_format_code, is_date_format

    root = _xml(package, styles, file_name) if styles else None
    if root is None:
        return []
    custom = {int(fmt.get("numFmtId", -1)): fmt.get("formatCode", "")
              for fmt in root.iter(f"{{{_MAIN_NS}}}numFmt")}
    cell_xfs = root.find(f"{{{_MAIN_NS}}}cellXfs")
    found = []
    for index, xf in enumerate(() if cell_xfs is None else cell_xfs.iter(f"{{{_MAIN_NS}}}xf")):
        number_format = int(xf.get("numFmtId", 0))
        code = custom.get(number_format) or builtin_format_code(number_format)
        if code and is_date_format(code):
            found.append(index)
    return found


# -- cells ---------------------------------------------------------------------------------------

CELLS_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS wb_cells (
    src     INTEGER NOT NULL,   -- the sheet read (numbered across every file of an import)
    row_no  INTEGER NOT NULL,   -- as the spreadsheet shows it: the header is row 1
    col_no  INTEGER NOT NULL,   -- 0 for column A
    kind    VARCHAR NOT NULL,   -- s text, n number, d date, b yes/no, e error, f formula without a value
    text    VARCHAR NOT NULL,
    plain   BOOLEAN             -- the fast path understood it fully (see _fast_sheet)
)
"""


def _unescaped(expr: str) -> str:
    """XML's five entities decoded (&amp; last, so '&amp;lt;' stays '&lt;') and line ends as an XML
    parser normalises them; only for text holding either. Character references are not plain."""
    decoded = expr
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "''"), ("&amp;", "&")):
        decoded = f"replace({decoded}, '{entity}', '{char}')"
    decoded = f"replace(replace({decoded}, chr(13) || chr(10), chr(10)), chr(13), chr(10))"
    return f"CASE WHEN contains({expr}, '&') OR contains({expr}, chr(13)) THEN {decoded} ELSE {expr} END"


def _not_plain_text(expr: str) -> str:
    """Text holding CDATA, a comment, a character reference or an entity other than XML's five.
    CASE, not AND: DuckDB evaluates both sides of an AND for every row, and the regex only needs
    to look at the rare text with an '&'."""
    return (f"(contains({expr}, '<!') OR CASE WHEN contains({expr}, '&') THEN contains("
            f"regexp_replace({expr}, '&(?:amp|lt|gt|quot|apos);', '', 'g'), '&') ELSE FALSE END)")


def _runs_text(expr: str) -> str:
    """The text of a string item: its <t> and its rich-text runs' <t>, phonetic runs left out."""
    return (f"array_to_string(regexp_extract_all(regexp_replace({expr}, '<rPh\\b[\\s\\S]*?</rPh>', '', 'g'), "
            f"'<t(?:\\s[^>]*)?>([^<]*)</t>', 1), '')")


_SHARED_STRINGS_SQL = f"""
INSERT INTO wb_shared_strings
SELECT idx, replace({_unescaped(_runs_text("si"))}, 'x005F_', ''), NOT {_not_plain_text("si")}
FROM (SELECT idx, regexp_replace(piece, '^[\\s\\S]*?(<si>)', '\\1') AS si FROM wb_pieces)
WHERE contains(si, '<si>')
"""

# Row start tags and empty cells carry nothing; what is left of a row splits into cells. Without
# an empty element in the row, its start tag is all there is to cut (most rows: cheaper).
_ROW_TAGS_AND_EMPTY_CELLS = r"<row\b[^>]*>|<c [^>]*/>"
# The plain cell: reference (column and row lengths checked after: a bounded repetition costs RE2
# more than the check), then style, then type, then any other attributes; a formula (kept
# only to know there was one); a value, or an inline string (plain: one <t>; else runs). The
# closing tag is cut by the split.
_PLAIN_CELL = (r'^<c r="([A-Z]+)([0-9]+)"(?: s="([0-9]+)")?(?: t="([A-Za-z]+)")?(?: [a-zA-Z:0-9]+="[^"]*")*>'
               r'(<f[^>]*/>|<f[^>]*>[^<]*</f>)?(?:<v>([^<]*)</v>|<v\s*/>)?'
               r'(?:<is><t(?: xml:space="preserve")?>([^<]*)</t></is>|<is>([\s\S]*?)</is>)?$')
# A date cell's serial -> ISO text, as openpyxl's from_excel computes it (1900's phantom leap day
# included); a time of day alone is put on 1899-12-30, as openpyxl's time values are read.
_DATE_FROM_SERIAL = """
    CASE WHEN serial >= 0 AND serial < 1
         THEN strftime(TIMESTAMP '1899-12-30' + to_milliseconds(round(serial * 86400000)::BIGINT), '%Y-%m-%dT%H:%M:%S')
         WHEN serial >= 1 AND serial < 2958466
         THEN strftime($epoch + to_days((floor(serial) + CASE WHEN NOT $epoch_1904 AND serial < 60 THEN 1 ELSE 0 END)
                                        ::INTEGER)
                       + to_milliseconds(round((serial - floor(serial)) * 86400000)::BIGINT), '%Y-%m-%dT%H:%M:%S')
    END
"""
_COL_NO = ("(CASE len(col) WHEN 1 THEN ascii(col[1]) - 65 "
           "WHEN 2 THEN (ascii(col[1]) - 64) * 26 + ascii(col[2]) - 65 "
           "ELSE ((ascii(col[1]) - 64) * 26 + ascii(col[2]) - 64) * 26 + ascii(col[3]) - 65 END)")
# Two statements per block of rows: cells matched, then typed and written, each
# with whether the fast path fully understood it (a sheet with any cell it did not is read again
# by openpyxl). Temp tables between them, not CTEs: each field of a match read from its struct
# would run the regex again, and a materialised CTE cost more than the tables here.
_FAST_MATCH_SQL = """
CREATE OR REPLACE TEMP TABLE wb_matched AS
SELECT unnest(regexp_extract(cell, $plain_cell, ['col', 'rn', 's', 't', 'f', 'v', 'simple', 'rich']))
FROM (SELECT ltrim(unnest(string_split(
          CASE WHEN contains(piece, '/>') THEN regexp_replace(piece, $row_tags_and_empty_cells, '', 'g')
               ELSE substr(piece, strpos(piece, '>') + 1) END, '</c>'))) AS cell
      FROM wb_pieces)
WHERE cell <> ''
"""
_FAST_CELLS_SQL = f"""
INSERT INTO wb_cells
SELECT $src, coalesce(rn, 0), CASE WHEN len(col) BETWEEN 1 AND 3 THEN {_COL_NO} ELSE 0 END,
    CASE WHEN f AND v = '' AND simple = '' AND rich = '' THEN 'f'
         WHEN t IN ('s', 'inlineStr', 'str') THEN 's'
         WHEN t IN ('b', 'e', 'd') THEN t
         WHEN is_date THEN CASE WHEN date_text IS NULL THEN 'e' ELSE 'd' END
         ELSE 'n' END,
    coalesce(CASE WHEN f AND v = '' AND simple = '' AND rich = '' THEN ''
         WHEN t = 's' THEN ss.text
         WHEN t = 'inlineStr' AND rich <> '' THEN {_unescaped(_runs_text("rich"))}
         WHEN t = 'inlineStr' THEN {_unescaped("simple")}
         WHEN t = 'str' THEN {_unescaped("v")}
         WHEN t = 'b' THEN CASE WHEN v = '1' THEN 'TRUE' ELSE 'FALSE' END
         WHEN t IN ('e', 'd') THEN v
         WHEN is_date THEN coalesce(date_text, '#VALUE!')
         ELSE v END, ''),      -- '' only for a cell that is not plain (a sheet openpyxl reads again)
    col <> '' AND len(col) <= 3 AND rn BETWEEN 1 AND 1048576 AND t IN ('', 's', 'inlineStr', 'str', 'b', 'e', 'd', 'n')
        AND (t <> 's' OR ss.idx IS NOT NULL)
        AND NOT {_not_plain_text("v")} AND NOT {_not_plain_text("simple")} AND NOT {_not_plain_text("rich")}
FROM (SELECT col, TRY_CAST(nullif(rn, '') AS INTEGER) AS rn, t, f <> '' AS f, v, simple, rich, is_date,
             CASE WHEN is_date THEN {_DATE_FROM_SERIAL.replace("serial", "TRY_CAST(v AS DOUBLE)")} END AS date_text
      FROM (SELECT *, t IN ('', 'n') AND list_contains($date_styles, nullif(s, '')::INTEGER) AS is_date
            FROM wb_matched)
      WHERE v <> '' OR simple <> '' OR rich <> '' OR f <> '' OR col = '')
LEFT JOIN wb_shared_strings ss ON ss.idx = CASE WHEN t = 's' THEN TRY_CAST(v AS INTEGER) END
"""
_FAST_CELLS_INLINE_SQL = (_FAST_CELLS_SQL.replace("LEFT JOIN wb_shared_strings ss ON ss.idx = CASE WHEN t = 's' "
                                                  "THEN TRY_CAST(v AS INTEGER) END", "")
                          .replace("ss.text", "NULL").replace("ss.idx", "NULL"))


class _NotPlain(Exception):
    pass


def read_workbook(con, data: bytes, file_name: str, *, first_src: int, wanted) -> Workbook:
    """Every sheet `wanted(title)` accepts, into the connection's `wb_cells` (numbered from
    `first_src`); the others are listed as ignored. Raises WorkbookError for a refused file."""
    package, notes = check_package(data, file_name)
    result = Workbook(notes=notes)
    with package:
        parts = _parts(package, file_name)
        con.execute(CELLS_TABLE_SQL)
        con.execute("CREATE OR REPLACE TEMP TABLE wb_shared_strings (idx INTEGER, text VARCHAR, plain BOOLEAN)")
        shared_plain = parts.shared_strings is None or _fast_shared_strings(con, package, parts.shared_strings,
                                                                                file_name)
        src = first_src
        for title, path in parts.sheets:
            if not wanted(title):
                result.ignored_sheets.append(title)
                continue
            if path not in package.namelist():
                raise WorkbookError(f"{file_name} is a damaged workbook (its sheet {title!r} is missing).")
            sheet = None
            if shared_plain:
                try:
                    sheet = _fast_sheet(con, package, path, file_name, title, src, parts)
                except (_NotPlain, duckdb.Error):   # anything the fast path did not foresee: openpyxl reads it
                    sheet = None
            if sheet is None:
                sheet = _openpyxl_sheet(con, data, file_name, title, src)
            result.sheets.append(sheet)
            src += 1
        con.execute("DROP TABLE IF EXISTS wb_shared_strings")
    return result


def _blocks(package: zipfile.ZipFile, path: str, file_name: str, start: str) -> Iterator[str]:
    """A part's text after its `start` element's opening tag, in blocks of about 8 MB (nothing for
    an empty `<start/>`). Refuses a DTD in what precedes it; anything but plain UTF-8 without
    namespace prefixes is not plain."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    head, started = "", False
    try:
        with package.open(path) as part:
            while True:
                block = part.read(_BLOCK_BYTES)
                final = not block
                text = decoder.decode(block, final=final)
                if not started:
                    head += text
                    at = head.find(start)
                    opened = head.find(">", at) if at >= 0 else -1
                    if _DTD.search(head if opened < 0 else head[:at]):
                        raise WorkbookError(f"{file_name} is refused: its part {path} declares XML entities "
                                            "(a DTD), which a workbook never does.")
                    if opened < 0:
                        if final:
                            return
                        continue
                    declaration = head[:200]
                    if ('encoding="' in declaration
                            and not re.search(r'encoding="utf-?8"', declaration, re.IGNORECASE)) \
                            or _PREFIXED_ROOT.search(head[:at]):
                        raise _NotPlain
                    if head[opened - 1] == "/":
                        return
                    text, head, started = head[opened + 1:], "", True
                if text:
                    yield text
                if final:
                    return
    except UnicodeDecodeError:
        raise _NotPlain from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise WorkbookError(f"{file_name} is a damaged workbook ({path}: {error}).") from None


_PREFIXED_ROOT = re.compile(r"<[A-Za-z_][\w.-]*:(?:worksheet|sst)\b")


def _pieces(package, path, file_name, start: str, separator: str, end: str) -> Iterator[list[str]]:
    """The part's elements up to `end`, split on `separator` (cut off), a list per block."""
    rest = ""
    for block in _blocks(package, path, file_name, start):
        text = rest + block
        stop = text.find(end)
        if stop >= 0:
            yield text[:stop].split(separator)
            return
        cut = text.rfind(separator)
        if cut < 0:
            rest = text
            continue
        yield text[:cut].split(separator)
        rest = text[cut + len(separator):]
    if rest.strip():
        yield [rest]   # no end tag: a cut-off part, whose last piece the reader will not find plain


def _fast_shared_strings(con, package, path, file_name) -> bool:
    offset = 0
    try:
        for pieces in _pieces(package, path, file_name, "<sst", "</si>", "</sst>"):
            counted = [piece for piece in pieces if "<si>" in piece]
            if any("<si/" in piece or "<si " in piece for piece in pieces):
                return _openpyxl_shared_strings(con, package, path, file_name)
            con.register("wb_pieces", pa.table({"idx": pa.array(range(offset, offset + len(counted)), pa.int32()),
                                                "piece": pa.array(counted, pa.string())}))
            try:
                con.execute(_SHARED_STRINGS_SQL)
            finally:
                con.unregister("wb_pieces")
            offset += len(counted)
    except _NotPlain:
        return _openpyxl_shared_strings(con, package, path, file_name)
    if con.execute("SELECT count(*) FROM wb_shared_strings WHERE NOT plain").fetchall()[0][0]:
        return _openpyxl_shared_strings(con, package, path, file_name)
    return True


def _openpyxl_shared_strings(con, package, path, file_name) -> bool:
    """A shared-string table the fast path does not fully understand, read by openpyxl's own
    reader (through defusedxml). The sheets still take the fast path."""
    from openpyxl.reader.strings import read_string_table

    try:
        with package.open(path) as part:
            strings = read_string_table(part)
    except DefusedXmlException as error:
        raise WorkbookError(f"{file_name} is refused: its part {path} declares XML entities "
                            f"({type(error).__name__}), which a workbook never does.") from None
    except Exception as error:  # openpyxl's parse errors have many types; each means a damaged part
        raise WorkbookError(f"{file_name} is a damaged workbook ({path}: {error}).") from None
    con.execute("DELETE FROM wb_shared_strings")
    con.register("wb_strings", pa.table({"idx": pa.array(range(len(strings)), pa.int32()),
                                         "text": pa.array([str(s) for s in strings], pa.string())}))
    try:
        con.execute("INSERT INTO wb_shared_strings SELECT idx, text, TRUE FROM wb_strings")
    finally:
        con.unregister("wb_strings")
    return True


def _fast_sheet(con, package, path, file_name, title, src, parts: _Parts) -> RawSheet:
    rows = 0
    epoch = dt.datetime(1904, 1, 1) if parts.epoch_1904 else dt.datetime(1899, 12, 30)
    params = {"src": src, "epoch": epoch, "epoch_1904": parts.epoch_1904, "date_styles": parts.date_styles}
    try:
        for pieces in _pieces(package, path, file_name, "<sheetData", "</row>", "</sheetData>"):
            rows += sum(piece.count("<row") for piece in pieces)
            if rows > MAX_ROWS_PER_SHEET + 1:
                raise _too_many_rows(file_name, title)
            con.register("wb_pieces", _batched(pieces))
            try:
                con.execute(_FAST_MATCH_SQL, {"plain_cell": _PLAIN_CELL,
                                              "row_tags_and_empty_cells": _ROW_TAGS_AND_EMPTY_CELLS})
            finally:
                con.unregister("wb_pieces")
            con.execute(_FAST_CELLS_SQL if parts.shared_strings else _FAST_CELLS_INLINE_SQL, params)
        if con.execute("SELECT count(*) FROM wb_cells WHERE src = $src AND plain IS NOT TRUE",
                       {"src": src}).fetchall()[0][0]:
            raise _NotPlain
    except BaseException:
        con.execute("DELETE FROM wb_cells WHERE src = $src", {"src": src})
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS wb_matched")
    return _raw_sheet(con, title, src, "fast")


def _batched(pieces: list[str], batch_rows: int = 4096) -> pa.Table:
    """The pieces as an Arrow table of several record batches: DuckDB scans batches in parallel,
    and one batch would keep the regular expressions on one core."""
    column = pa.array(pieces, pa.string())
    return pa.Table.from_batches([pa.record_batch([column.slice(start, batch_rows)], names=["piece"])
                                  for start in range(0, max(len(pieces), 1), batch_rows)])


def _too_many_rows(file_name: str, title: str) -> WorkbookError:
    return WorkbookError(f"{file_name} is refused: its sheet {title!r} has more than {MAX_ROWS_PER_SHEET:,} rows "
                         "(an inventory has far fewer; split it into several files).")


def _raw_sheet(con, title: str, src: int, reader: str) -> RawSheet:
    header_cells = con.execute("SELECT col_no, text FROM wb_cells WHERE src = $src AND row_no = 1 ORDER BY col_no",
                               {"src": src}).fetchall()
    header: list[str | None] = [None] * (max((col for col, _ in header_cells), default=-1) + 1)
    for col, text in header_cells:
        header[col] = text
    rows = con.execute("SELECT count(DISTINCT row_no) FROM wb_cells WHERE src = $src AND row_no > 1",
                       {"src": src}).fetchall()[0][0]
    return RawSheet(title, src, header, rows, reader)


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
    """A value as openpyxl reads it -> (kind, text) as the fast path writes them."""
    if value is None:
        return ("f", "") if is_formula else None
    if isinstance(value, bool):
        return "b", "TRUE" if value else "FALSE"
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
