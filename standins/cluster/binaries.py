"""Where scripts/install-engine.sh keeps the cluster's binaries (built from the Go module proxy)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from standins.cluster.layout import REPO_ROOT

INSTALL_SCRIPT: Final = REPO_ROOT / "scripts" / "install-engine.sh"
KUBERNETES: Final = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
)
CONTAINERD: Final = ("containerd", "containerd-shim-runc-v2", "ctr")
CNI_PLUGINS: Final = ("bridge", "host-local", "loopback", "portmap")


def installed(part: str) -> Path:
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "path", part], capture_output=True, text=True, check=True
    )
    return Path(result.stdout.strip())


@dataclass(frozen=True)
class Binaries:
    kubernetes: Path
    containerd: Path
    runc: Path
    cni: Path

    @classmethod
    def find(cls) -> Binaries:
        return cls(
            installed("kubernetes"), installed("containerd"), installed("runc"), installed("cni")
        )

    def __getitem__(self, name: str) -> str:
        """The path of one binary by name (`kubelet`, `ctr`, `runc`...)."""
        folder = self.containerd if name in CONTAINERD else self.kubernetes
        if name == "runc":
            folder = self.runc
        return str(folder / name)

    def missing(self) -> list[str]:
        wanted = [self.kubernetes / n for n in KUBERNETES]
        wanted += [self.containerd / n for n in CONTAINERD]
        wanted += [self.runc / "runc", *(self.cni / n for n in CNI_PLUGINS)]
        return [str(path) for path in wanted if not os.access(path, os.X_OK)]
