"""The one locked-down pod every Job of the program runs (pure): Flyway, the backup before
it and the in-cluster grants. Hardening lives here once, so no Job can drift from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

RUN_AS: Final = 10001
"""Fixed non-root uid/gid; the Flyway and PostgreSQL images run with any uid."""
TMP_PATH: Final = "/tmp"  # noqa: S108 (an emptyDir inside the pod, not the host's /tmp)
CA_KEY: Final = "ca.crt"
"""The key of a CA Secret that holds the certificate the server's was signed with."""


@dataclass(frozen=True)
class EnvVar:
    """A container env var: a literal value, or a reference to a Secret key."""

    name: str
    value: str | None = None
    secret_name: object = None
    """The Secret's name: a string, or its Output once the engine has named it."""
    secret_key: str | None = None

    def to_k8s(self) -> dict[str, Any]:
        if self.value is not None:
            return {"name": self.name, "value": self.value}
        return {
            "name": self.name,
            "valueFrom": {"secretKeyRef": {"name": self.secret_name, "key": self.secret_key}},
        }


@dataclass(frozen=True)
class Container:
    """What differs between the Jobs' containers; everything else is `locked_down_pod`'s."""

    name: str
    image: str
    command: Sequence[str]
    env: Sequence[EnvVar]
    resources: Mapping[str, Any]


def locked_down_pod(
    container: Container,
    mounts: Sequence[Mapping[str, Any]],
    volumes: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    *,
    ca_secret: str | None = None,
    tls_path: str = "",
) -> dict[str, Any]:
    """A pod template that runs one command once: non-root with a fixed uid and fsGroup, a
    read-only root filesystem, no service account token, no privilege escalation, every
    capability dropped, RuntimeDefault seccomp. With `ca_secret`, its `ca.crt` is mounted
    read-only at `tls_path`, for clients that verify the server."""
    all_mounts = [dict(m) for m in mounts]
    all_volumes = [dict(v) for v in volumes]
    if ca_secret:
        all_mounts.append({"name": "tls", "mountPath": tls_path, "readOnly": True})
        all_volumes.append(
            {
                "name": "tls",
                "secret": {
                    "secretName": ca_secret,
                    "items": [{"key": CA_KEY, "path": CA_KEY}],
                    "defaultMode": 0o444,
                },
            }
        )
    metadata: dict[str, Any] = {"labels": dict(labels)}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {
        "metadata": metadata,
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "runAsGroup": RUN_AS,
                "fsGroup": RUN_AS,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": container.name,
                    "image": container.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": list(container.command),
                    "env": [e.to_k8s() for e in container.env],
                    "resources": dict(container.resources),
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "privileged": False,
                        "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": all_mounts,
                }
            ],
            "volumes": all_volumes,
        },
    }
