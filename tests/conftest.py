"""Shared fixtures: the program, run under mocks for each stack file; the tests' cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.program import STACKS, ProgramRun, run_program

_cache: dict[str, ProgramRun] = {}


@pytest.fixture
def run_stack() -> Callable[..., ProgramRun]:
    """Run the program for a stack with config overrides; fails the test on a program error."""

    def run(stack: str, **kwargs: object) -> ProgramRun:
        result = run_program(stack, **kwargs)  # type: ignore[arg-type]
        if result.error is not None:
            raise result.error
        return result

    return run


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """The program as each committed stack file declares it (computed once per stack)."""
    stack: str = request.param
    if stack not in _cache:
        result = run_program(stack)
        if result.error is not None:
            raise result.error
        _cache[stack] = result
    return _cache[stack]


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own local cluster (a control plane and a real node), started once per
    session beside any other on this machine (a user's running local stack): a state
    directory, namespaces and cgroups of its own. Its state directory; `make` commands run
    by the tests find it through LOCALCLUSTER_STATE. A cluster a killed session left behind
    is stopped first."""
    from standins.cluster.layout import STATE_ENV  # noqa: PLC0415 (only where a test needs it)

    stop_orphaned_clusters(tmp_path_factory.getbasetemp().parent)
    state = tmp_path_factory.mktemp("local-cluster")
    (state / OWNER).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(STATE_ENV, str(state))
        started = _cluster("start", state)
        try:
            if started.returncode != 0:
                pytest.fail(f"the tests' cluster did not start:\n{started.stdout}{started.stderr}")
            yield state
        finally:
            stopped = _cluster("stop", state)
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr


OWNER = "tests-owner"
"""The pid and start time of the pytest session whose cluster a state directory holds."""


def _start_time(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text[text.rindex(")") + 2 :].split()[19]


def _cluster(command: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "standins.cluster", command, "--state", str(state)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def stop_orphaned_clusters(runs: Path) -> None:
    """Stop the clusters of earlier sessions that ended without stopping them (killed):
    only those whose recorded session is gone, so a concurrent session keeps its own."""
    for owner in runs.glob(f"pytest-*/local-cluster*/{OWNER}"):
        if owner.parent.is_symlink():  # pytest's `local-clustercurrent`: the same directory
            continue
        pid, _, started = owner.read_text().strip().partition(" ")
        if pid.isdigit() and _start_time(int(pid)) == started:
            continue
        _cluster("stop", owner.parent)
