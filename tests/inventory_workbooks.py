"""Workbooks for the inventory tests, made here (no tests in this module)."""

from __future__ import annotations

import io
import re
import zipfile
from html import escape

from openpyxl import Workbook, load_workbook

from itscm.access import Actor
from itscm.store import Store
from itscm.workbook import commit_inventory, preview_inventory
from tests.store_contents import table_contents

MANAGER = Actor("cm@example.com", "continuity manager")
INVENTORY_TABLES = ("business_units", "services", "service_aliases", "dependencies", "suppliers", "service_suppliers",
                    "plans", "plan_reviews", "drills", "drill_findings", "assets", "service_assets")


def workbook(sheets: dict[str, list[list]]) -> bytes:
    """An .xlsx whose sheets hold these rows (the first is the header), as openpyxl writes it."""
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def edited(data: bytes, cells: dict[tuple[str, str], object]) -> bytes:
    """The workbook with some cells set, as a person editing it in a spreadsheet would leave it."""
    book = load_workbook(io.BytesIO(data))
    for (sheet, cell), value in cells.items():
        book[sheet][cell] = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def without_columns(data: bytes, sheet: str, headers: set[str]) -> bytes:
    """The workbook with whole columns deleted from a sheet."""
    book = load_workbook(io.BytesIO(data))
    target = book[sheet]
    for index in sorted((cell.column for cell in target[1] if cell.value in headers), reverse=True):
        target.delete_cols(index)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_shared_strings(data: bytes) -> bytes:
    """The workbook with its inline strings moved to a shared-string table, as Excel saves text."""
    source = zipfile.ZipFile(io.BytesIO(data))
    strings: list[str] = []
    index: dict[str, int] = {}

    def shared(match: re.Match) -> str:
        text = match.group("text")
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return f'<c r="{match.group("ref")}"{match.group("style") or ""} t="s"><v>{index[text]}</v></c>'

    inline = re.compile(r'<c r="(?P<ref>[A-Z]+\d+)"(?P<style> s="\d+")? t="inlineStr"><is><t(?: xml:space="preserve")?>'
                        r'(?P<text>[^<]*)</t></is></c>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for member in source.infolist():
            content = source.read(member.filename)
            if member.filename.startswith("xl/worksheets/sheet"):
                content = inline.sub(shared, content.decode()).encode()
            elif member.filename == "[Content_Types].xml":
                content = content.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="'
                                          b'application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings'
                                          b'+xml"/></Types>')
            elif member.filename == "xl/_rels/workbook.xml.rels":
                content = content.replace(b"</Relationships>", b'<Relationship Id="rIdShared" Type="http://schemas.'
                                          b'openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
                                          b'Target="sharedStrings.xml"/></Relationships>')
            book.writestr(member.filename, content)
        items = "".join(f'<si><t xml:space="preserve">{text}</t></si>' for text in strings)
        book.writestr("xl/sharedStrings.xml", '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
                                              f' count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>')
    return out.getvalue()


def escaped(text: str) -> str:
    return escape(text, quote=False)


def inventory(store: Store) -> dict[str, list]:
    """The inventory tables' rows (the measures' derived and record tables left out)."""
    contents = table_contents(store)
    return {table: contents[table] for table in INVENTORY_TABLES}


def imported(store: Store, files: list[tuple[str, bytes]], *, retire_missing: bool | set[str] = False,
             actor: Actor = MANAGER):
    preview = preview_inventory(store, files, retire_missing=retire_missing)
    return preview, commit_inventory(actor, store, preview)
