"""The README's main job as a person runs it, in a copy of the repository with a cluster and
a local stack of its own, beside the tests' cluster and any user's: `make up STACK=local`
deploys into real containers, a second `make up` changes nothing, a cluster killed without
`make down` is brought back by the next `make up`, `make logs` reads Flyway's log from the
API server, and `make down` leaves the host's interfaces, firewall rules, mounts and
processes exactly as they were before the first `make up`."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from standins.cluster import isolation
from standins.cluster.layout import STATE_ENV, Layout
from standins.localstack import STATE_ENV as LOCAL_STATE_ENV
from tests.engine.checkout import copy_repository

pytestmark = pytest.mark.engine


def _lines(*argv: str) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()


def host_state(*ours: Path) -> dict[str, list[str]]:
    """What a node could leave behind on the host, without what changes by itself (interface
    indexes, packet counters, mount ids, dates)."""
    links = sorted(re.sub(r"^\d+: ", "", line) for line in _lines("ip", "-o", "link"))
    rules = [
        re.sub(r"\[\d+:\d+\]", "[-]", line)
        for program in ("iptables-save", "ip6tables-save")
        for line in _lines(program)
        if not line.startswith("#")
    ]
    mounts = sorted(" ".join(line.split()[2:]) for line in _lines("cat", "/proc/self/mountinfo"))
    names = tuple(str(path) for path in ours)
    processes = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and any(name in command for name in names):
            processes.append(command)
    return {"links": links, "rules": rules, "mounts": mounts, "processes": sorted(processes)}


def changes(output: str) -> dict[str, int]:
    """The counts under the engine's `Resources:` summary: {"unchanged": 12} and the like."""
    summary = output.split("\nResources:\n", 1)[1].split("\n\n", 1)[0]
    found = {}
    for line in summary.splitlines():
        match = re.fullmatch(r"\s+[+~-]*\s*(\d+) (.+)", line)
        if match:
            found[match.group(2)] = int(match.group(1))
    return found


def test_up_twice_recover_from_a_kill_and_down_leave_the_host_as_it_was(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("checkout")
    copy_repository(root)
    cluster = tmp_path_factory.mktemp("cluster") / "state"
    local = tmp_path_factory.mktemp("local-state")
    env = {
        **os.environ,
        STATE_ENV: str(cluster),
        LOCAL_STATE_ENV: str(local),
        "PULUMI_YES": "1",
        "NO_COLOR": "1",
    }

    def make(*args: str) -> str:
        proc = subprocess.run(
            ["make", "--no-print-directory", *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=1800,
        )
        assert proc.returncode == 0, proc.stdout
        return proc.stdout

    before = host_state(root, cluster, local)
    assert before["processes"] == []
    try:
        first = make("up", "STACK=local")
        assert "Successfully applied" in first
        assert set(changes(first)) == {"created"}, first
        again = make("up", "STACK=local")
        assert "already running" in again
        assert set(changes(again)) == {"unchanged"}, again

        # Killed without `make down`: everything of the node goes, on the host nothing is left.
        for pid in isolation.node_processes(Layout(cluster)):
            # The processes this test's `make up` started; one may have gone with another.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 600  # a guard against a hang, never what is tested
        while left := isolation.node_processes(Layout(cluster)):
            assert time.monotonic() < deadline, f"killed processes still running: {left}"
            time.sleep(0.2)
        killed = host_state(root, cluster, local)
        assert killed == before
        recovered = make("up", "STACK=local")
        assert "starting (state in" in recovered
        assert set(changes(recovered)) == {"unchanged"}, recovered
        logs = make("logs", "STACK=local")
        assert "--- Flyway: job tradestream-local/tradestream-job-" in logs
        assert "Successfully applied" in logs
    finally:
        down = make("down")
    assert "local stacks removed" in down
    assert not cluster.exists()
    assert not local.exists()
    assert host_state(root, cluster, local) == before
