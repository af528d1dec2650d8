"""Where the local cluster keeps its files: one private state directory.

Everything lives under the state directory so `stop` can remove it in one step. It holds
the CA key, the admin token and pods' secrets, so it is created 0700 and private files are
created 0600. Pods running as another user still reach what they need (volumes, the Flyway
jars): their processes get it bind-mounted, never through the state directory's path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

NODE_NAME: Final = "local-node"
STATE_ENV: Final = "LOCALCLUSTER_STATE"
CACHE_ENV: Final = "TRADESTREAM_CACHE"
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
"""The clone this package lives in: where `.cache/flyway/<version>/lib` is fetched to."""


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
    def volumes(self) -> Path:
        """The node's persistent volumes, one directory each; kept until the state goes."""
        return self.state / "volumes"

    @property
    def pod_pids(self) -> Path:
        """One pid file per running container, so `stop` finds them even without the agent."""
        return self.run / "pods"

    @property
    def logs(self) -> Path:
        """Container logs, `<namespace>/<pod>/<uid>/<container>.log`, kept after the pod is gone.

        Keyed by uid too, so a pod recreated under the same name starts a log of its own.
        """
        return self.state / "logs"

    @property
    def flyway_launcher(self) -> Path:
        """The `flyway` script Flyway images get at /flyway/flyway, as the image has it."""
        return self.state / "images" / "flyway"

    def pid_file(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.run / f"{component}.log"

    def pod_logs(self, namespace: str, pod: str, uid: str) -> Path:
        return self.logs / namespace / pod / uid

    def container_log(self, namespace: str, pod: str, uid: str, container: str) -> Path:
        return self.pod_logs(namespace, pod, uid) / f"{container}.log"


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
