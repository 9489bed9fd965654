"""Hostile workbooks, each made here: refused with one line (or, for formulas and macros, read
without running anything), and the store untouched."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from itscm.store import Store
from itscm.workbook import WorkbookError, export_bytes, preview_inventory
from itscm.workbook import xlsx as xlsx_reader
from tests.inventory_workbooks import imported, with_shared_strings, workbook
from tests.store_contents import table_contents

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"services": [["id", "owner"], ["svc1", "Changed Owner"]]}


@pytest.fixture
def store(store_path):
    with Store(store_path) as opened:
        yield opened


def refused(store: Store, name: str, data: bytes, match: str) -> str:
    before = table_contents(store)
    with pytest.raises(WorkbookError, match=match) as raised:
        preview_inventory(store, [(name, data)])
    message = str(raised.value)
    assert "\n" not in message and len(message) < 300, message
    assert table_contents(store) == before
    return message


def rezipped(data: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for member in source.infolist():
            book.writestr(member.filename, (replace or {}).get(member.filename, source.read(member.filename)))
        for name, content in (add or {}).items():
            book.writestr(name, content)
    return out.getvalue()


def test_a_zip_bomb_is_refused_from_the_zip_directory_before_anything_is_inflated(store, monkeypatch):
    zeros = b"\0" * (200 * 2**20)
    bomb = rezipped(workbook(SERVICES), add={"xl/media/padding.bin": zeros})
    assert len(bomb) < 2**20                                  # 200 MB in under 1 MB

    def no_inflating(*args, **kwargs):
        raise AssertionError("a member was inflated")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", no_inflating)
    monkeypatch.setattr(zipfile.ZipExtFile, "read1", no_inflating)
    message = refused(store, "bomb.xlsx", bomb, "only a zip bomb does")
    assert "xl/media/padding.bin" in message


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml", "xl/sharedStrings.xml"])
def test_xml_entity_expansion_is_refused(store, part):
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                        for i in range(1, 10)) + "]>")
    data = workbook(SERVICES)
    original = zipfile.ZipFile(io.BytesIO(data))
    if part == "xl/sharedStrings.xml":
        hostile = rezipped(data, add={part: (laughs + '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                                             '2006/main"><si><t>&lol9;</t></si></sst>').encode()})
        hostile = rezipped(hostile, replace={"xl/_rels/workbook.xml.rels": original.read(
            "xl/_rels/workbook.xml.rels").replace(b"</Relationships>", b'<Relationship Id="rIdS" Type="http://schemas.'
                                                  b'openxmlformats.org/officeDocument/2006/relationships/sharedStrings"'
                                                  b' Target="sharedStrings.xml"/></Relationships>')})
    else:
        body = original.read(part).decode()
        body = body[body.index("<", 1) if body.startswith("<?xml") else 0:]
        hostile = rezipped(data, replace={part: (laughs + body.replace("Changed Owner", "&lol9;")).encode()})
    refused(store, "laughs.xlsx", hostile, "declares XML entities")


@pytest.mark.parametrize("where", ["behind a comment", "in UTF-16", "in a part of any name"])
def test_a_dtd_is_refused_wherever_it_hides(store, where):
    dtd = '<!DOCTYPE x [<!ENTITY e "boom">]>'
    data = workbook(SERVICES)
    if where == "in a part of any name":
        hostile = rezipped(data, add={"xl/custom/anything.bin": f'<?xml version="1.0"?>{dtd}<x>&e;</x>'.encode()})
    else:
        part = "xl/worksheets/sheet1.xml"
        body = zipfile.ZipFile(io.BytesIO(data)).read(part).decode()
        body = body[body.index("<", 1) if body.startswith("<?xml") else 0:]
        if where == "behind a comment":
            hostile = rezipped(data, replace={part: f'<?xml version="1.0"?><!-- <a> -->{dtd}{body}'.encode()})
        else:
            hostile = rezipped(data, replace={part: ('\ufeff<?xml version="1.0" encoding="UTF-16"?>' + dtd + body)
                                              .encode("utf-16-le")})
    refused(store, "dtd.xlsx", hostile, "declares XML entities")


def test_a_prolog_padded_past_a_megabyte_is_refused(store):
    data = workbook(SERVICES)
    part = "xl/worksheets/sheet1.xml"
    body = zipfile.ZipFile(io.BytesIO(data)).read(part)
    padded = b"<!--" + os.urandom(2**20).hex().encode() + b"-->" + body[body.index(b"<", 1):]   # no zip bomb
    refused(store, "padded.xlsx", rezipped(data, replace={part: padded}), "more than 1 MB before its first element")


def test_the_sheet_scan_sees_past_a_text_longer_than_its_block():
    # A text of 9 MB without a '<' spans the scan's 8 MB blocks; the far cell after it still counts.
    sheet = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             b'<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c></row>'
             b'<row r="2"><c r="A2" t="inlineStr"><is><t>' + b"a" * (9 * 2**20) + b'</t></is></c></row>'
             b'<row r="400"><c r="XFD400" t="inlineStr"><is><t>far</t></is></c></row></sheetData></worksheet>')
    package = zipfile.ZipFile(io.BytesIO(rezipped(workbook({"services": [["id"]]}),
                                                  replace={"xl/worksheets/sheet1.xml": sheet})))
    assert xlsx_reader._reader_for(package, "xl/worksheets/sheet1.xml", "x.xlsx", "services") == "openpyxl"
    near = sheet.replace(b'r="400"><c r="XFD400"', b'r="3"><c r="B3"')
    package = zipfile.ZipFile(io.BytesIO(rezipped(workbook({"services": [["id"]]}),
                                                  replace={"xl/worksheets/sheet1.xml": near})))
    assert xlsx_reader._reader_for(package, "xl/worksheets/sheet1.xml", "x.xlsx", "services") == "fastexcel"


def run_cli_on(tmp_path: Path, store_path: Path, data: bytes) -> subprocess.CompletedProcess:
    """The import run in a child process: a reader that allocated what the file asks for would
    abort that process, not the tests."""
    path = tmp_path / "hostile.xlsx"
    path.write_bytes(data)
    return subprocess.run([sys.executable, "-m", "itscm", "inventory", "import", str(path), "--store", str(store_path),
                           "--dry-run"], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_a_cell_at_the_last_row_and_column_is_refused_without_allocating_the_grid(store, store_path, tmp_path):
    # calamine would hold A1:XFD1048576 as a dense grid of 32 bytes a cell: 550 GB, and abort.
    sheet = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             b'<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c></row>'
             b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData></worksheet>')
    hostile = rezipped(workbook({"services": [["id"]]}), replace={"xl/worksheets/sheet1.xml": sheet})
    store.close()
    cli = run_cli_on(tmp_path, store_path, hostile)          # first: were it not refused, it would abort
    assert cli.returncode == 1 and "more than 200,000 rows" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    with Store(store_path) as reopened:
        refused(reopened, "far.xlsx", hostile, "more than 200,000 rows")


def test_a_wide_sheet_is_read_by_openpyxl_rather_than_as_a_dense_grid(store):
    book = load_workbook(io.BytesIO(workbook(SERVICES)))
    book["services"]["XFD400"] = "far away"                  # 400 rows x 16,384 columns: 6.5 million cells
    out = io.BytesIO()
    book.save(out)
    preview = preview_inventory(store, [("wide.xlsx", out.getvalue())])
    assert [source.reader for source in preview.read.sources] == ["openpyxl"]
    assert preview.plan.changes[["row_key", "field", "new"]].to_dict("records") == [
        {"row_key": "svc1", "field": "owner", "new": "Changed Owner"}]


def test_a_shared_string_count_the_part_cannot_hold_is_refused(store, store_path, tmp_path):
    # calamine reserves memory for the declared count before reading a string.
    hostile = with_shared_strings(workbook(SERVICES))
    strings = zipfile.ZipFile(io.BytesIO(hostile)).read("xl/sharedStrings.xml")
    hostile = rezipped(hostile, replace={"xl/sharedStrings.xml": strings.replace(
        b'uniqueCount="4"', b'uniqueCount="10000000000"')})
    store.close()
    cli = run_cli_on(tmp_path, store_path, hostile)          # first: were it not refused, it would abort
    assert cli.returncode == 1 and "damaged workbook" in cli.stderr
    with Store(store_path) as reopened:
        refused(reopened, "strings.xlsx", hostile, "declares 10,000,000,000 strings")


def test_a_sheet_of_a_million_rows_is_refused_past_the_row_cap(store):
    rows = "".join(f'<row r="{n}"><c r="A{n}"><v>{n}</v></c></row>' for n in range(1, 1_000_001))
    sheet = ('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             + rows + "</sheetData></worksheet>").encode()
    huge = rezipped(workbook({"services": [["id"]]}), replace={"xl/worksheets/sheet1.xml": sheet})
    assert len(huge) < xlsx_reader.MAX_FILE_BYTES
    refused(store, "million.xlsx", huge, "more than 200,000 rows")


def test_formulas_are_never_evaluated_and_one_without_a_saved_value_is_rejected(store):
    data = workbook({"services": [["id", "owner", "RTO (minutes)"], ["svc1", "=A1&\"x\"", 30],
                                  ["svc5", "Plain", "=10*3"]]})
    # openpyxl saved formulas without values (it never calculates), as a generator would.
    before = table_contents(store)
    preview, _ = imported(store, [("formulas.xlsx", data)])
    errors = preview.problems[preview.problems.severity == "error"]
    assert sorted(zip(errors.row, errors.column, strict=True)) == [(2, "owner"), (3, "RTO (minutes)")]
    assert all("formula whose value was never saved" in reason for reason in errors.reason)
    assert table_contents(store) == before

    # A formula with its saved value (as Excel writes it) is read as that value.
    saved = data.replace(b"<f>10*3</f><v />", b"<f>10*3</f><v>45</v>").replace(b"<f>10*3</f><v></v>",
                                                                             b"<f>10*3</f><v>45</v>")
    saved = rezipped(saved, replace={"xl/worksheets/sheet1.xml": zipfile.ZipFile(io.BytesIO(data)).read(
        "xl/worksheets/sheet1.xml").replace(b"<f>10*3</f><v />", b"<f>10*3</f><v>45</v>")})
    preview, _ = imported(store, [("saved.xlsx", saved)])
    assert store.scalar("SELECT rto_minutes FROM services WHERE service_id = 'svc5'") == 45


def test_a_macro_enabled_workbook_is_read_without_its_macros(store):
    data = rezipped(workbook(SERVICES), add={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 Sub AutoOpen() Shell(...)"})
    preview, result = imported(store, [("macros.xlsm", data)])
    assert any("macro-enabled" in note and "macros were not" in note for note in preview.read.notes)
    assert result.import_id and store.scalar("SELECT owner FROM services WHERE service_id = 'svc1'") == "Changed Owner"


def test_a_password_protected_workbook_is_refused(store):
    ole = (xlsx_reader.OLE_SIGNATURE + b"\0" * 504 + "EncryptionInfo".encode("utf-16-le") + b"\0" * 64
           + "EncryptedPackage".encode("utf-16-le") + b"\0" * 4096)
    refused(store, "locked.xlsx", ole, "password-protected")
    refused(store, "old.xlsx", xlsx_reader.OLE_SIGNATURE + b"\0" * 4096, "old-style Excel")


def test_a_csv_renamed_xlsx_is_refused(store):
    refused(store, "services.xlsx", b"id,owner\nsvc1,Changed Owner\n", "a CSV renamed .xlsx")


def test_a_workbook_renamed_csv_is_refused(store):
    refused(store, "services.csv", workbook(SERVICES), "give it the .xlsx extension")


def test_a_file_over_50_mb_is_refused_before_it_is_read(store, store_path, tmp_path, monkeypatch):
    refused(store, "big.xlsx", b"PK\x03\x04" + b"\0" * (50 * 2**20), "above the limit of 50 MB")
    big = tmp_path / "services.csv"
    with open(big, "wb") as sparse:                         # 51 MB that the command must not read
        sparse.truncate(51 * 2**20)
    store.close()
    cli = subprocess.run([sys.executable, "-m", "itscm", "inventory", "import", str(big), "--store", str(store_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert cli.returncode == 1 and "above the limit of 50 MB" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1 and "Traceback" not in cli.stderr


def test_a_damaged_workbook_is_one_line(store):
    data, _ = export_bytes(store)
    refused(store, "cut.xlsx", data[: len(data) // 2], "damaged workbook")
    refused(store, "ods.xlsx", rezipped(workbook(SERVICES), add={"mimetype": b"application/vnd.oasis.opendocument"
                                                                             b".spreadsheet"}), "OpenDocument")
