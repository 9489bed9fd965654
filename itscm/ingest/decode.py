"""Bytes of an uploaded file -> UTF-8 text, its delimiter and its header row.

Everything after this step reads UTF-8 only, so the encoding is settled here once: byte order
marks first (UTF-8, UTF-16 LE/BE, UTF-32), then UTF-16 without a mark (NULs on alternate bytes),
then UTF-8, then Windows-1252 (what Excel on Windows writes as "CSV"). Pure ASCII and valid UTF-8
files are passed on without copying, because the common case is a large UTF-8 export.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

from itscm.ingest.errors import IngestError

T = TypeVar("T")

DEFAULT_MAX_BYTES = 200 * 2**20
MAX_COLUMNS = 512
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

_HEAD_CHARS = 64 * 1024
_SNIFF_RECORDS = 50

# Files people upload by mistake instead of a CSV export; named so the message can say what to do.
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or ZIP archive (save it as CSV first)"),
    (b"\xd0\xcf\x11\xe0", "an old-style Excel workbook (save it as CSV first)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (b"SQLite format 3", "an SQLite database"),
    (b"DUCK", "a DuckDB database"),
)
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-32-le": "UTF-32 LE",
    "utf-32-be": "UTF-32 BE",
    "cp1252": "Windows-1252",
}
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def beside_the_read(work: Callable[[], T]) -> Future[T]:
    """`work` on a thread of its own, started now: work on the upload's bytes that the read does
    not wait for (its sha256; the newline and quote counts, itscm/ingest/reader.py) runs beside
    DuckDB's read of the file, which releases the GIL, so that on an idle two-core machine it
    takes the part of a core DuckDB leaves free. A thread per call, not a pool: nothing is left
    to a process forked later."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as error:  # handed to whoever asks for the result
            future.set_exception(error)

    threading.Thread(target=run, name="itscm-upload", daemon=True).start()
    return future


@dataclass(frozen=True)
class DecodedUpload:
    """The upload as UTF-8 bytes (no byte order mark), with what was learnt reading it."""

    text: bytes
    encoding: str  # as shown to the analyst: "UTF-8", "UTF-16 LE", "Windows-1252", ...
    delimiter: str
    header: list[str]
    digest: Future  # of sha256: hashed beside the read (hashlib releases the GIL)
    size_bytes: int

    @property
    def sha256(self) -> str:
        return self.digest.result()


def decode_upload(data: bytes, file_name: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> DecodedUpload:
    if not isinstance(data, (bytes, bytearray)):
        raise IngestError(f"{file_name}: expected the file's bytes, got {type(data).__name__}.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise IngestError(
            f"{file_name} is {_megabytes(len(data))}, above the upload limit of {_megabytes(max_bytes)}; "
            "export a shorter period or raise the limit."
        )
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise IngestError(f"{file_name} is not a CSV file: it looks like {what}.")
    text, encoding = _to_utf8(data, file_name)
    head, whole = _head(text)
    if not head.strip():
        raise IngestError(
            f"{file_name} is empty." if whole else f"{file_name} starts with 64 KB of blank space."
        )
    _refuse_binary(head, file_name)
    delimiter, header = sniff_delimiter(head, whole=whole)
    header = [_clean_header(name) for name in header]
    if not any(header):
        raise IngestError(f"{file_name} has no header row: the first line is empty.")
    if len(header) > MAX_COLUMNS:
        # Only the first 64 KB are sniffed: a header longer than that is counted only that far.
        header_cut = not whole and "\n" not in head and "\r" not in head
        raise IngestError(
            f"{file_name} has {'at least ' if header_cut else ''}{len(header):,} columns in its header; "
            "an incident export has far fewer "
            f"(at most {MAX_COLUMNS} are read). Is this the right file?"
        )
    digest = beside_the_read(lambda: hashlib.sha256(data).hexdigest())
    return DecodedUpload(text, encoding, delimiter, header, digest, len(data))


def _to_utf8(data: bytes, file_name: str) -> tuple[bytes, str]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            if codec == "utf-8-sig":
                body = data[len(bom) :]
                if data.find(b"\x00", len(bom)) >= 0:
                    raise _nul_error(file_name)
                try:
                    if not data.isascii():
                        body.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise IngestError(
                        f"{file_name} starts with a UTF-8 byte order mark but is not valid UTF-8 "
                        f"(byte {error.start + len(bom)}); re-export it as UTF-8."
                    ) from None
                return body, ENCODING_LABELS[codec]
            return _transcode(data[len(bom) :], codec, file_name), ENCODING_LABELS[codec]
    codec = _utf16_without_bom(data)
    if codec:
        return _transcode(data, codec, file_name), ENCODING_LABELS[codec] + " (no BOM)"
    if data.find(b"\x00") >= 0:
        raise _nul_error(file_name)
    if data.isascii():
        return data, ENCODING_LABELS["utf-8"]
    try:
        data.decode("utf-8")
        return data, ENCODING_LABELS["utf-8"]
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252").encode("utf-8"), ENCODING_LABELS["cp1252"]
    except UnicodeDecodeError:
        raise IngestError(
            f"{file_name} is not text in a supported encoding (UTF-8, UTF-16 or Windows-1252); "
            "is it a binary file?"
        ) from None


def _transcode(data: bytes, codec: str, file_name: str) -> bytes:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as error:
        raise IngestError(f"{file_name} is not valid {codec.upper()} (byte {error.start}).") from None
    if "\x00" in text:
        raise _nul_error(file_name)
    return text.encode("utf-8")


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a byte order mark has a NUL in every other byte (for Latin text)."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None


def _nul_error(file_name: str) -> IngestError:
    return IngestError(f"{file_name} contains NUL bytes: it is a binary file, not a CSV export.")


def _head(text: bytes) -> tuple[str, bool]:
    """The first 64 K characters, and whether they are the whole file."""
    head = text[: _HEAD_CHARS * 4].decode("utf-8", "ignore")
    whole = len(text) <= _HEAD_CHARS * 4 and len(head) <= _HEAD_CHARS
    return head[:_HEAD_CHARS], whole


def _refuse_binary(head: str, file_name: str) -> None:
    # Control characters are rare in real exports (a stray form feed in a description at most).
    controls = sum(1 for char in head if char < " " and char not in "\t\n\r")
    if controls > max(3, len(head) // 200):
        raise IngestError(f"{file_name} is not a CSV file: it is full of control characters (binary data).")


def sniff_delimiter(head: str, *, whole: bool = False) -> tuple[str, list[str]]:
    """The delimiter that splits the first records of `head` most consistently, and the header.

    A record cut off at the end of the head is left out unless the head is the whole file."""
    best: tuple[tuple, str, list[str]] | None = None
    for delimiter in DELIMITERS:
        records = _first_records(head, delimiter, whole)
        if not records:
            continue
        width = len(records[0])
        body = records[1:]
        consistent = sum(len(record) == width for record in body) / len(body) if body else 1.0
        score = (width > 1, consistent, width)
        if best is None or score > best[0]:
            best = (score, delimiter, records[0])
    if best is None:
        return ",", []
    return best[1], best[2]


def _first_records(head: str, delimiter: str, whole: bool) -> list[list[str]]:
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    records: list[list[str]] = []
    try:
        for record in reader:
            if record:
                records.append(record)
            if len(records) > _SNIFF_RECORDS:
                break
    except csv.Error:
        pass
    if not whole and len(records) > 1 and len(records) <= _SNIFF_RECORDS:
        records.pop()
    return records


def _clean_header(name: str) -> str:
    return name.replace("\ufeff", "").strip().strip('"').strip()


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
