"""A TCP port on the host's loopback forwarded into the node's network.

The node's network is invisible from the host (isolation.py), so the host reaches the API
server, and the local stack's set-up reaches its database, through a forward: a small
process that runs in the node's network with a listening socket the starter opened on the
host's 127.0.0.1 and handed over, and relays each connection to its target there. Targets
are addresses inside the node: the API server on its loopback, a Service's cluster IP.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from standins.cluster import procs
from standins.cluster.isolation import enter
from standins.cluster.layout import REPO_ROOT, Layout

BUFFER = 1 << 16


@dataclass(frozen=True)
class Forward:
    name: str
    port: int
    """On the host's 127.0.0.1."""
    target: str
    """host:port inside the node."""


def record(layout: Layout, name: str) -> Path:
    return layout.run / f"forward-{name}.json"


def running(layout: Layout, name: str) -> Forward | None:
    """The forward of that name, while its process runs."""
    if procs.running(layout.pid_file(f"forward-{name}")) is None:
        return None
    try:
        return Forward(**json.loads(record(layout, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def start(layout: Layout, holder: int, name: str, target: str, port: int = 0) -> Forward:
    """Forward 127.0.0.1:`port` (0: a free one) on the host to `target` in the node; an
    existing forward of that name and target is kept."""
    found = running(layout, name)
    if found is not None and found.target == target and port in (0, found.port):
        return found
    stop(layout, name)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    try:
        forward = Forward(name, int(listener.getsockname()[1]), target)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
        argv = [sys.executable, "-m", "standins.cluster", "forward"]
        argv += ["--state", str(layout.state), "--fd", str(listener.fileno()), "--to", target]
        procs.spawn(
            enter(holder, mount=False) + argv,
            layout.log_file(f"forward-{name}"),
            layout.pid_file(f"forward-{name}"),
            env=env,
            pass_fds=(listener.fileno(),),
        )
    finally:
        listener.close()
    record(layout, name).write_text(json.dumps(asdict(forward)))
    return forward


def stop(layout: Layout, name: str) -> None:
    proc = procs.running(layout.pid_file(f"forward-{name}"))
    if proc is not None:
        procs.terminate(proc, 5.0)
    record(layout, name).unlink(missing_ok=True)


def serve(fd: int, target: str) -> int:
    """The forward's process: accept on the inherited socket, relay to `target`."""
    host, _, port = target.rpartition(":")
    listener = socket.socket(fileno=fd)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, host, int(port)), daemon=True).start()


def _relay(client: socket.socket, host: str, port: int) -> None:
    with (
        client,
        contextlib.suppress(OSError),
        socket.create_connection((host, port), timeout=30) as upstream,
    ):
        upstream.settimeout(None)
        pair = {client: upstream, upstream: client}
        while True:
            readable, _, _ = select.select(list(pair), [], [])
            for source in readable:
                data = source.recv(BUFFER)
                if not data:
                    with contextlib.suppress(OSError):
                        pair[source].shutdown(socket.SHUT_WR)
                    del pair[source]
                    if not pair or source is upstream:
                        return
                    continue
                pair[source].sendall(data)
