"""Background processes tracked by pid file, so a later command (or `stop`) can find them.

A pid file records the pid and the process's start time: a recycled pid never matches,
so `stop` cannot signal an unrelated process. Every process is started in a session of
its own and signalled as a process group, which takes its children along.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

KILL_WAIT: Final = 10.0
"""How long a SIGKILLed process may take to disappear before we give up on it."""


@dataclass(frozen=True)
class Tracked:
    pid: int
    start_time: int


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def track(pid: int) -> Tracked | None:
    stat = _stat(pid)
    return None if stat is None else Tracked(pid, stat[1])


def is_alive(proc: Tracked) -> bool:
    """True while the very process recorded runs (a zombie counts as gone)."""
    stat = _stat(proc.pid)
    return stat is not None and stat[0] != "Z" and stat[1] == proc.start_time


def write_pid_file(path: Path, pid: int) -> None:
    tracked = track(pid)
    if tracked is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{tracked.pid} {tracked.start_time}\n")
    tmp.replace(path)


def read_pid_file(path: Path) -> Tracked | None:
    try:
        pid, start = path.read_text().split()
        return Tracked(int(pid), int(start))
    except (OSError, ValueError):
        return None


def running(path: Path) -> Tracked | None:
    """The process a pid file names, when it still runs."""
    proc = read_pid_file(path)
    return proc if proc is not None and is_alive(proc) else None


def spawn(
    argv: Sequence[str],
    log: Path,
    pid_file: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-lived process in its own session, output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    write_pid_file(pid_file, proc.pid)
    return proc


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _wait_gone(proc: Tracked, timeout: float) -> bool:
    done = threading.Event()
    deadline = time.monotonic() + timeout
    while is_alive(proc):
        if time.monotonic() >= deadline:
            return False
        done.wait(0.1)
    return True


def terminate(proc: Tracked, grace: float) -> bool:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; True once it is gone."""
    if not is_alive(proc):
        signal_group(proc.pid, signal.SIGKILL)  # leftover children of a dead leader
        return True
    signal_group(proc.pid, signal.SIGTERM)
    if _wait_gone(proc, grace):
        signal_group(proc.pid, signal.SIGKILL)
        return True
    signal_group(proc.pid, signal.SIGKILL)
    return _wait_gone(proc, KILL_WAIT)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers bind: a port in TIME_WAIT is free to them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
