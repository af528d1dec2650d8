"""Shared fixtures: the program, run under mocks for each stack file."""

from __future__ import annotations

from collections.abc import Callable

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
