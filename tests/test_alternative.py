"""The suite tests the program, not this repository's data: it passes in a copy of the
repository whose migrations are a generated foreign history (40 versioned files and more,
placeholders, subfolders, repeatables, callbacks) and whose stack files hold other values.

The seed is new each run and printed; ALTERNATIVE_SEED=<seed> repeats a run. The copy runs
the migrations check and the unit and mock tests: not the contract, engine, stand-in and
corpus tests, which take minutes each (the corpus brings a history and a stack of its own).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.alternative import copy_repository, generate, new_seed

SUITE = [
    "tests",
    "--ignore=tests/engine",
    "--ignore=tests/contract",
    "--ignore=tests/standins",
    # A `make preview` per bad input, in a copy with a history and a stack of its own.
    "--ignore=tests/corpus",
    "--ignore=tests/test_alternative.py",
]


def _tail(text: str, lines: int = 80) -> str:
    return "\n".join(text.splitlines()[-lines:])


def test_the_suite_passes_on_another_history_and_other_stack_values(tmp_path: Path) -> None:
    seed = new_seed()
    alternative = generate(copy_repository(tmp_path / "repository"), seed)
    described = alternative.describe()
    print(described)
    python = str(alternative.root / ".venv" / "bin" / "python")
    check = subprocess.run(
        [python, "-m", "deploy.lint", "--released"],
        cwd=alternative.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, f"{described}\n{check.stdout}{check.stderr}"
    suite = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *SUITE],
        cwd=alternative.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert suite.returncode == 0, f"{described}\n{_tail(suite.stdout + suite.stderr)}"
    print(suite.stdout.splitlines()[-1], file=sys.stderr)
