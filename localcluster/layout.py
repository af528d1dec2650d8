"""Where the local cluster keeps its files: one state directory, plus one world-readable one.

Everything lives under the state directory so `stop` can remove it in one step. Files that
pods running as an unprivileged user must read (the Flyway jars) cannot live there when the
state directory sits under a private home (`/root` is 0700), so they go to a sibling under
/var/tmp instead. Not /tmp: pods routinely mount an emptyDir over /tmp, which would hide them.
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
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
"""The clone this package lives in: where `.cache/flyway/<version>/lib` is fetched to."""

_SHARED_PARENT: Final = Path("/var/tmp")  # noqa: S108 (see the module docstring)


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
        """Component pid files and logs."""
        return self.state / "run"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def ports_file(self) -> Path:
        return self.state / "ports.json"

    @property
    def token_file(self) -> Path:
        return self.certs / "tokens.csv"

    @property
    def pods(self) -> Path:
        """One directory per pod uid: its volumes."""
        return self.state / "pods"

    @property
    def pod_pids(self) -> Path:
        """One pid file per running container, so `stop` finds them even without the agent."""
        return self.run / "pods"

    @property
    def logs(self) -> Path:
        """Container logs, `<namespace>/<pod>/<container>.log`, kept after the pod is gone."""
        return self.state / "logs"

    @property
    def shared(self) -> Path:
        """World-readable files for pods; one per state directory, removed with it."""
        key = hashlib.sha256(str(self.state.resolve()).encode()).hexdigest()[:12]
        return _SHARED_PARENT / f"localcluster-{key}"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.run / f"{component}.log"

    def container_log(self, namespace: str, pod: str, container: str) -> Path:
        return self.logs / namespace / pod / f"{container}.log"
