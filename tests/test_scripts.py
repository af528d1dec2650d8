"""The shell scripts the README's commands run are checked like the rest of the code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.program import ROOT

SCRIPTS = sorted([*ROOT.glob("scripts/*.sh"), ROOT / ".ci" / "run"])


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.relative_to(ROOT).as_posix() for s in SCRIPTS])
def test_shellcheck_is_clean(script: object) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: bash scripts/install-actionlint.sh installs it"
    result = subprocess.run(
        [shellcheck, "--severity=info", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_the_main_job_says_what_is_missing_instead_of_failing_obscurely(tmp_path: Path) -> None:
    """Without a Pulumi CLI, `make up` explains how to get one instead of a stack trace."""
    bin_dir = tmp_path / "bin"  # a PATH with the basics and no pulumi, on any machine
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "cat"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    result = subprocess.run(
        [str(bin_dir / "bash"), str(ROOT / "scripts" / "pulumi.sh"), "up", "dev"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "the Pulumi CLI is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_stack_lists_the_known_ones() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pulumi.sh"), "up", "qa"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    listed = result.stderr.split("(stacks: ", 1)[1].split(")", 1)[0].split()
    assert sorted(listed) == sorted(
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in (ROOT / "stacks").glob("Pulumi.*.yaml")
    )
