"""The Makefile's DUCKLAKE_TESTS, the files the suite's DuckLake pass runs: a test file written for
the lake alone (marked ducklake_only) is skipped on the file, so left out of the list it would run
nowhere, and pass unseen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_store
ROOT = Path(__file__).resolve().parent.parent


def ducklake_tests() -> set[str]:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    listed = re.search(r"^DUCKLAKE_TESTS\s*:=(.*)$", makefile, re.MULTILINE)
    assert listed, "the Makefile has no DUCKLAKE_TESTS"
    return set(listed.group(1).split())


def test_every_file_with_lake_only_tests_is_on_the_ducklake_pass():
    listed = ducklake_tests()
    lake_only = {f"tests/{path.name}" for path in (ROOT / "tests").glob("test_*.py")
                 if path.name != Path(__file__).name and "ducklake_only" in path.read_text()}
    assert lake_only, "no lake-only test found: the marker's name changed?"
    assert sorted(lake_only - listed) == []
    assert all((ROOT / name).exists() for name in listed)      # no file listed that is gone
