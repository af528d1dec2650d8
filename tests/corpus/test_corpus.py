"""Every case of the bad-input corpus, through the README's `make preview` in a copy of the
repository: refused, with its key or file, value and fix shown, and no traceback. (The same
cases through the program alone on the engine: `make corpus`.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus.__main__ import FLAVORS, Copy, check, judge, load

CASES = load()


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Copy:
    return Copy(tmp_path_factory.mktemp("corpus") / "repo")


def test_the_corpus_is_large_and_each_case_says_what_must_be_seen() -> None:
    assert len(CASES) >= 100
    assert len({case["name"] for case in CASES}) == len(CASES)
    for case in CASES:
        assert case["expect"], case["name"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_make_preview_refuses_it_naming_what_to_fix(copy: Copy, case: dict[str, Any]) -> None:
    copy.apply(case)
    code, output = copy.make_preview()
    assert judge(case, code, output) == "", output


def test_the_judge_can_fail() -> None:
    case = {"expect": ["key"]}
    assert judge(case, 0, "") == "accepted"
    assert judge(case, 1, "Traceback (most recent call last)") == "a traceback was shown"
    assert judge(case, 1, "nothing") == 'missing ["key"]'


def test_each_baseline_flavor_is_accepted(copy: Copy) -> None:
    """Else every case would pass for the wrong reason."""
    for flavor in FLAVORS:
        copy.apply({"flavor": flavor})
        code, output = check(copy)
        assert code == 0, output
