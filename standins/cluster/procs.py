"""Background processes tracked by pid file, so a later command (or `stop`) can find them.

A pid file records the pid and the process's start time: a recycled pid never matches,
so `stop` cannot signal an unrelated process. Every process is started in a session of
its own and signalled as a process group, which takes its children along; but only while
its leader is known to exist. Once the leader is gone its pid (the group's id) may be
reused by anyone, so a group is never signalled after that. For our own children the
leader is held as a zombie (waited for without reaping) while its group gets a last
SIGKILL, and reaped only then.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
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


class Child:
    """A process we started: its group is signalled only until the leader is reaped.

    The leader's pid stays ours while it is unreaped (running or a zombie), so signalling
    its group cannot reach anyone else. `wait` is the only place that reaps it.
    """

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.exited = threading.Event()
        """Set once the leader is reaped (and what it left in its group was killed)."""
        self._lock = threading.Lock()
        self._reaped = False

    def signal_group(self, sig: signal.Signals) -> bool:
        """Signal the group unless the leader was reaped; whether it was signalled."""
        with self._lock:
            if self._reaped:
                return False
            signal_group(self.pid, sig)
            return True

    def wait(self) -> int:
        """Wait for the leader to exit, SIGKILL its group's leftovers, reap it: its status."""
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            signal_group(self.pid, signal.SIGKILL)  # still ours: the zombie holds the pid
            code = self.popen.wait()
            self._reaped = True
        self.exited.set()
        return code


def spawn(
    argv: Sequence[str],
    log: Path,
    pid_file: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: Sequence[int] = (),
) -> Child:
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
            pass_fds=tuple(pass_fds),
        )
    write_pid_file(pid_file, proc.pid)
    return Child(proc)


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _wait_gone(proc: Tracked, timeout: float) -> bool:
    """Whether the recorded process exits within `timeout` (its pidfd turns readable)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return True
    try:
        if not is_alive(proc):  # checked after opening: the pidfd is the recorded process
            return True
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0.0, timeout) * 1000))
    finally:
        os.close(pidfd)


def _signal_if_alive(proc: Tracked, sig: signal.Signals) -> None:
    if is_alive(proc):
        signal_group(proc.pid, sig)


def terminate(proc: Tracked, grace: float) -> bool:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; True once it is gone.

    Nothing is signalled unless the recorded leader still runs: a pid file left by an
    earlier run may name a pid (and group id) that now belongs to an unrelated process.
    """
    if not is_alive(proc):
        return True
    _signal_if_alive(proc, signal.SIGTERM)
    if _wait_gone(proc, grace):
        return True
    _signal_if_alive(proc, signal.SIGKILL)
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
