"""Process groups are signalled only while their recorded leader is there."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from standins.cluster import procs

GONE_WITHIN = 60.0
"""A guard against hangs only: every wait below ends on the event it waits for."""


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[procs.Child]:
    """A process group of ours (leader and one more), cleaned up whatever the test did."""
    child = procs.spawn(
        ["sh", "-c", "sleep 600 & exec sleep 600"], tmp_path / "log", tmp_path / "sleeper.pid"
    )
    yield child
    child.signal_group(signal.SIGKILL)
    child.wait()


def test_a_pid_file_naming_another_process_is_never_signalled(
    tmp_path: Path, sleeper: procs.Child
) -> None:
    recorded = procs.read_pid_file(tmp_path / "sleeper.pid")
    assert recorded is not None
    assert procs.is_alive(recorded)
    # The same pid, but not the process that was recorded: as after the pid was reused.
    stale = procs.Tracked(recorded.pid, recorded.start_time + 1)
    assert procs.terminate(stale, grace=0) is True
    assert procs.is_alive(recorded)
    assert not sleeper.exited.is_set()


def test_terminate_stops_the_recorded_group(tmp_path: Path, sleeper: procs.Child) -> None:
    recorded = procs.read_pid_file(tmp_path / "sleeper.pid")
    assert recorded is not None
    assert procs.terminate(recorded, grace=GONE_WITHIN) is True
    assert not procs.is_alive(recorded)
    assert sleeper.wait() == -signal.SIGTERM


def test_a_child_s_leftovers_are_killed_before_it_is_reaped() -> None:
    """The leader's pid stays ours until it is reaped, so its group can still be signalled."""
    popen = subprocess.Popen(
        ["sh", "-c", "sleep 600 & echo $!; read line; exit 0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    child = procs.Child(popen)
    assert popen.stdin is not None
    assert popen.stdout is not None
    leftover = procs.track(int(popen.stdout.readline()))
    assert leftover is not None
    popen.stdin.close()  # the leader exits; its background sleep stays in the group
    assert child.wait() == 0
    assert child.exited.is_set()
    assert procs._wait_gone(leftover, GONE_WITHIN), "the leftover outlived its leader"
    assert child.signal_group(signal.SIGKILL) is False  # reaped: its pid is no longer ours
    popen.stdout.close()
