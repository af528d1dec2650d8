"""The node's own network and mount namespaces, and finding everything of a node on the host.

A small holder process is started with `unshare --net --mount` (propagation private). In
those namespaces it mounts a tmpfs over /run and /var, puts files of ours over the kernel
settings the kubelet would change host-wide (/proc/sys/vm/overcommit_memory and the
like), brings up loopback and the pod bridge (whose address is the node's), then waits.
Every component joins it (`nsenter`). So whatever the node does to a network (bridges,
veths, iptables rules, routes) or to the mount table (container root filesystems,
volumes, network-namespace files, /run/containerd, /var/lib/cni, /var/log/pods) happens in
namespaces the host does not see, and the kernel discards all of it once the node's last
process is gone, however it ended. The host keeps only the processes while they run, the
cgroups the kubelet made (removed by `stop`) and the state directory's files.

Several nodes therefore coexist on one host (a user's local stack and the tests' cluster),
each with the same addresses inside, none of them visible outside. The host reaches a node
only through ports forwarded into it (forward.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from standins.cluster import procs
from standins.cluster.config import KUBELET_TUNABLES
from standins.cluster.layout import BRIDGE, NODE_IP, SERVICE_CIDR, Layout

CGROUPS: Final = Path("/sys/fs/cgroup")
PRIVATE_TREES: Final = ("/run", "/var")
"""Replaced by empty tmpfs inside the node, so no fixed path a component writes reaches the
host; the state directory may therefore not live under them."""
_CLONE_NEWNET: Final = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(RuntimeError):
    """The node's namespaces could not be made or entered; the message says why."""


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise IsolationError(f"{' '.join(argv)}: {result.stderr.strip()}")


def hold(layout: Layout) -> int:
    """The holder, inside its new namespaces: prepare them, say so, wait for a signal."""
    for tree in PRIVATE_TREES:
        _run("mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs", tree)
    os.symlink("/run", "/var/run")
    os.symlink("/run/lock", "/var/lock")
    for folder, mode in (("/var/lib", 0o755), ("/var/log", 0o755), ("/var/tmp", 0o1777)):  # noqa: S108
        os.makedirs(folder, exist_ok=True)
        os.chmod(folder, mode)
    os.makedirs("/run/lock", exist_ok=True)
    layout.sysctls.mkdir(parents=True, exist_ok=True)
    for name, value in KUBELET_TUNABLES.items():
        copy = layout.sysctls / name.replace("/", ".")
        copy.write_text(f"{value}\n")
        _run("mount", "--bind", str(copy), f"/proc/sys/{name}")
    _run("ip", "link", "set", "lo", "up")
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # Service addresses from the node itself (the API server calling a webhook, the host's
    # forwards) need a route before kube-proxy's rules translate them.
    _run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        setting = Path("/proc/sys/net/bridge") / name
        if setting.exists():
            setting.write_text("1\n")
    ready_file(layout).write_text(f"{os.getpid()}\n")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


def ready_file(layout: Layout) -> Path:
    return layout.run / "holder.ready"


def holder_argv(layout: Layout, python: str) -> list[str]:
    return [
        "unshare",
        "--mount",
        "--net",
        "--propagation",
        "private",
        "--",
        python,
        "-m",
        "standins.cluster",
        "holder",
        "--state",
        str(layout.state),
    ]


def enter(holder: int, *, mount: bool = True) -> list[str]:
    """The argv prefix that runs a command in the node's namespaces."""
    return ["nsenter", f"--target={holder}", "--net", *(["--mount"] if mount else []), "--"]


@contextlib.contextmanager
def in_network(holder: int) -> Iterator[None]:
    """Run the block's socket calls in the node's network (this thread only)."""
    with open(f"/proc/{holder}/ns/net") as target, open("/proc/thread-self/ns/net") as own:
        if _libc.setns(target.fileno(), _CLONE_NEWNET) != 0:
            raise IsolationError(f"setns: {os.strerror(ctypes.get_errno())}")
        try:
            yield
        finally:
            _libc.setns(own.fileno(), _CLONE_NEWNET)


def http_ok(holder: int, port: int, path: str) -> bool:
    """An HTTP GET inside the node's network answers 200."""
    try:
        with in_network(holder):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        with conn:
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            return conn.recv(64).startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
    except OSError:
        return False


# ---------------------------------------------------------------------------------------
# Cgroups: the kubelet's root, one per node, in every v1 hierarchy


def hierarchies() -> list[Path]:
    return sorted(
        h for h in CGROUPS.iterdir() if h.is_dir() and not h.is_symlink() and h.name != "unified"
    )


def make_cgroup_root(layout: Layout) -> None:
    """The kubelet refuses a cgroupRoot that does not exist; cpuset needs cpus and mems
    before anything can join a child."""
    for hierarchy in hierarchies():
        root = hierarchy / layout.cgroup_name
        root.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":
            for name in ("cpuset.cpus", "cpuset.mems"):
                (root / name).write_text((hierarchy / name).read_text())


def cgroup_pids(layout: Layout) -> set[int]:
    found: set[int] = set()
    for hierarchy in hierarchies():
        root = hierarchy / layout.cgroup_name
        for procs_file in root.rglob("cgroup.procs") if root.is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(line) for line in procs_file.read_text().split())
    return found


def remove_cgroups(layout: Layout, timeout: float = 10.0) -> list[str]:
    """Remove the node's cgroups, deepest first; what could not be removed."""
    left: list[str] = []
    for hierarchy in hierarchies():
        root = hierarchy / layout.cgroup_name
        if not root.is_dir():
            continue
        folders = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for folder in [*folders, root]:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:  # a process still in it
                        left.append(str(folder))
                        break
                    time.sleep(0.1)
    return left


# ---------------------------------------------------------------------------------------
# Processes


def _parents() -> dict[int, int]:
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                text = Path(f"/proc/{entry}/stat").read_text()
                found[int(entry)] = int(text[text.rindex(")") + 2 :].split()[1])
    return found


def _names_state(pid: int, state: str) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(
        arg.decode(errors="replace").rstrip("/") == state
        or f"{state}/" in arg.decode(errors="replace")
        for arg in args
    )


def node_processes(layout: Layout) -> set[int]:
    """Every process of the node: those whose command line names its state directory
    (components, shims, the holder, forwards, the provisioner), those in its cgroups (the
    pods' processes) and their descendants; never this process or its ancestors."""
    parents = _parents()
    ours: set[int] = set()
    pid = os.getpid()
    while pid > 1 and pid not in ours:
        ours.add(pid)
        pid = parents.get(pid, 1)
    state = str(layout.state.absolute()).rstrip("/")
    found = {p for p in parents if _names_state(p, state)} | cgroup_pids(layout)
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found - ours if _alive(p)}


def kill_node(layout: Layout, phases: list[list[str]], grace: float = 5.0) -> set[int]:
    """SIGTERM the components phase by phase (a phase's components together, `grace` seconds
    for them), then SIGKILL every process of the node until none is left; those that
    would not go."""
    for phase in phases:
        tracked = [p for name in phase if (p := procs.running(layout.pid_file(name)))]
        for proc in tracked:
            procs.signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(procs.is_alive(p) for p in tracked) and time.monotonic() < deadline:
            time.sleep(0.1)
    deadline = time.monotonic() + 30.0
    while (left := node_processes(layout)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return node_processes(layout)


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


def resolve(holder: int, name: str, server: str, timeout: float = 3.0) -> str | None:
    """The first A record a DNS server inside the node gives for `name`, or None."""
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.rstrip(".").split("."):
        query += bytes([len(label)]) + label.encode()
    query += b"\x00\x00\x01\x00\x01"
    try:
        with in_network(holder):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.settimeout(timeout)
            sock.sendto(query, (server, 53))
            answer = sock.recv(512)
    except OSError:
        return None
    if len(answer) < 12 or answer[3] & 0x0F or int.from_bytes(answer[6:8], "big") == 0:
        return None
    position = len(query)
    for _ in range(int.from_bytes(answer[6:8], "big")):
        position = _skip_name(answer, position)
        kind = int.from_bytes(answer[position : position + 2], "big")
        length = int.from_bytes(answer[position + 8 : position + 10], "big")
        data = answer[position + 10 : position + 10 + length]
        if kind == 1 and length == 4:
            return ".".join(str(b) for b in data)
        position += 10 + length
    return None


def _skip_name(message: bytes, position: int) -> int:
    """The position after a (possibly compressed) name in a DNS message."""
    while position < len(message):
        length = message[position]
        if length & 0xC0 == 0xC0:  # a pointer ends the name
            return position + 2
        position += 1 + length
        if length == 0:
            return position
    return position
