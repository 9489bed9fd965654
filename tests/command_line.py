"""The command line run through its entry point in this process, for tests of what a command
does rather than of the process: a new interpreter per command costs seconds of start-up (more on
DuckLake, which loads its extensions again) and proves nothing more."""

from __future__ import annotations

import subprocess

from itscm.cli import main


def run_cli(capsys, *arguments: str) -> subprocess.CompletedProcess:
    """`python -m itscm *arguments`, its exit code, output and errors as `subprocess.run` gives
    them (`capsys`: the test's own, whose captured output this reads and clears)."""
    code = main([str(argument) for argument in arguments])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(arguments), code, out, err)
