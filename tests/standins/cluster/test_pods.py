"""Which containers run again after they exit, under the pod's restartPolicy."""

from __future__ import annotations

import pytest

from standins.cluster.pods import effective_policy, restarts


@pytest.mark.parametrize(
    ("pod_policy", "init", "expected"),
    [
        ("Always", False, "Always"),
        ("Always", True, "OnFailure"),  # an init container that succeeded is done
        ("OnFailure", True, "OnFailure"),
        ("Never", True, "Never"),
        ("Never", False, "Never"),
    ],
)
def test_init_containers_never_run_under_always(pod_policy: str, init: bool, expected: str) -> None:
    assert effective_policy(pod_policy, init=init) == expected


@pytest.mark.parametrize(
    ("policy", "code", "expected"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 3, True),
        ("Never", 3, False),
    ],
)
def test_restarts(policy: str, code: int, expected: bool) -> None:
    assert restarts(policy, code) is expected
