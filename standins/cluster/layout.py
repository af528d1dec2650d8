"""Where one local cluster keeps its files, and the addresses it uses inside its network.

Everything lives under one private state directory (0700: it holds the CA key and the
admin token), so `stop` removes it in one step. The node runs in network and mount
namespaces of its own (see isolation.py): its addresses and ports below exist only there,
so every local cluster uses the same ones, and the host sees none of them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

NODE_NAME: Final = "local-node"
STATE_ENV: Final = "LOCALCLUSTER_STATE"
CACHE_ENV: Final = "TRADESTREAM_CACHE"
REPO_ROOT: Final = Path(__file__).resolve().parents[2]

NODE_IP: Final = "10.244.0.1"
"""The pod bridge's gateway: the node's address, which the API server advertises."""
POD_CIDR: Final = "10.244.0.0/24"
CLUSTER_CIDR: Final = "10.244.0.0/16"
SERVICE_CIDR: Final = "10.96.0.0/16"
KUBERNETES_SERVICE_IP: Final = "10.96.0.1"
DNS_SERVICE_IP: Final = "10.96.0.10"
CLUSTER_DOMAIN: Final = "cluster.local"
BRIDGE: Final = "cni0"
API_PORT: Final = 6443
ETCD_CLIENT_PORT: Final = 2379
ETCD_PEER_PORT: Final = 2380
KUBE_PROXY_HEALTH_PORT: Final = 10256
STORAGE_CLASS: Final = "local-path"
MARKER: Final = ".localcluster"
"""Marks a state directory as ours, so `stop` never removes a directory it did not make."""


def cache_dir() -> Path:
    """The project's cache outside the clone, shared with scripts/install-engine.sh."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "tradestream-database"


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    return cache_dir() / "local-cluster"


@dataclass(frozen=True)
class Layout:
    """The paths of one local cluster, derived from its state directory."""

    state: Path

    @property
    def certs(self) -> Path:
        return self.state / "certs"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def run(self) -> Path:
        """Pid files, logs, and what a start records for the next command."""
        return self.state / "run"

    @property
    def config(self) -> Path:
        """The components' configuration files and kubeconfigs."""
        return self.state / "config"

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig for the host: the API server through its forwarded port."""
        return self.state / "kubeconfig"

    @property
    def ports_file(self) -> Path:
        return self.run / "ports.json"

    @property
    def containerd_root(self) -> Path:
        """containerd's images and snapshots: kept across restarts, so images import once."""
        return self.state / "containerd"

    @property
    def containerd_socket(self) -> Path:
        """A file, so a client on the host (ctr) reaches it whatever the network namespace."""
        return self.state / "containerd.sock"

    @property
    def pod_logs(self) -> Path:
        """What the containers printed, which the kubelet serves to `kubectl logs`."""
        return self.state / "pod-logs"

    @property
    def volumes(self) -> Path:
        """The persistent volumes' directories (the provisioner's), kept until `stop`."""
        return self.state / "volumes"

    @property
    def sysctls(self) -> Path:
        """The kernel settings the kubelet reads, as files the node sees in their place."""
        return self.state / "sysctl"

    @property
    def cgroup_name(self) -> str:
        """The kubelet's cgroup root: one per state directory, so two clusters never share."""
        digest = hashlib.sha256(str(self.state.absolute()).encode()).hexdigest()[:10]
        return f"localcluster-{digest}"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.run / f"{component}.log"


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) so that only its owner can enter it, from the start."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # an existing directory, or one a umask left narrower


def replace_file(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` atomically by a file created with `mode`: never readable more widely."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)  # exactly `mode` before any content, whatever the umask
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)
