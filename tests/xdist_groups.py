"""pytest-xdist's `--dist loadgroup` on pytest 9.2: the tests marked `xdist_group` (the browser
tests, tests/browser/conftest.py) kept together on one worker again.

pytest-xdist 3.8 tells its scheduler a test's group by appending "@group" to the test's id on the
worker, written to `item._nodeid`; pytest 9.2 keeps the id in `item._id` instead, so no group
reached the scheduler (pytest-dev/pytest-xdist#1386, fix not released) and the browser tests were
spread over both workers: two Chromiums and their servers at once, and in the DuckLake pass the
browser tests last, on both workers, after everything else. Its hook also ran before the browser
conftest had marked its tests. This one runs last and gives each grouped test the id pytest-xdist
meant; where pytest-xdist already did, it changes nothing.
"""

from __future__ import annotations

import pytest
from _pytest.nodeid import NodeId


@pytest.hookimpl(trylast=True)   # after every conftest has marked its tests
def pytest_collection_modifyitems(config, items) -> None:
    if not getattr(config.option, "loadgroup", False):   # set on pytest-xdist's workers under --dist loadgroup
        return
    for item in items:
        groups = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                  for mark in item.iter_markers("xdist_group")}
        suffix = "@" + "_".join(sorted(groups))
        if groups and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)
