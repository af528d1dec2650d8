"""How a container process is started: mounts, user, environment, working directory (pure).

The agent runs `launcher.py` (see there) with a launch spec handed over through an inherited
descriptor: the container's program, its exact environment, its volumeMounts and the user
to run as. The environment is never part of any command line, where every user of the
machine could read it in /proc. Each volumeMount is bind-mounted at its mountPath in a
private mount namespace, read-only when asked, so nothing is mounted on the host. The
host's root filesystem is otherwise shared: readOnlyRootFilesystem is not enforced, only
the mounts are.
"""

from __future__ import annotations

import posixpath
import pwd
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from standins.cluster.api import Obj
from standins.cluster.refs import PodSetupError

NOBODY: Final = 65534
"""The uid a runAsNonRoot container without runAsUser runs as."""
LAUNCHER: Final = Path(__file__).resolve().with_name("launcher.py")


@dataclass(frozen=True)
class Mount:
    source: str
    """An absolute host path: a directory or a file."""
    target: str
    read_only: bool
    within: str | None = None
    """The source must resolve inside this directory when mounted (a pod's volumes)."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    no_new_privs: bool = False


def _primary_gid(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return 0  # what a container runtime gives a uid its image does not know


def identity_for(pod: Obj, container: Obj) -> Identity | None:
    """The user to run as; None to run as root with root's groups, unchanged."""
    pod_sc: dict[str, Any] = pod["spec"].get("securityContext") or {}
    sc: dict[str, Any] = container.get("securityContext") or {}

    def pick(key: str) -> Any:  # noqa: ANN401 (a securityContext value)
        return sc[key] if sc.get(key) is not None else pod_sc.get(key)

    uid, gid, non_root = pick("runAsUser"), pick("runAsGroup"), pick("runAsNonRoot")
    groups = tuple(
        int(g)
        for g in [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]
        if g is not None
    )
    no_new_privs = sc.get("allowPrivilegeEscalation") is False
    if uid is None and gid is None and not non_root and not groups and not no_new_privs:
        return None
    if uid is None:
        uid = NOBODY if non_root else 0
    if non_root and int(uid) == 0:
        raise PodSetupError(
            f"container {container['name']!r} has runAsNonRoot and would run as root (uid 0)"
        )
    gid = int(gid) if gid is not None else _primary_gid(int(uid))
    return Identity(int(uid), gid, groups, no_new_privs)


def launch_spec(
    program: Sequence[str],
    env: Mapping[str, str],
    mounts: Sequence[Mount],
    *,
    workdir: str,
    identity: Identity | None,
) -> dict[str, Any]:
    """What `launcher.py` needs to run `program` as the container would run it (JSON)."""
    return {
        "argv": list(program),
        "env": dict(env),
        "mounts": [asdict(m) | {"target": posixpath.normpath(m.target)} for m in mounts],
        "workdir": workdir,
        "identity": None if identity is None else asdict(identity),
    }


def launcher_argv(python: str, spec_fd: int) -> list[str]:
    """The host argv of a container: isolated Python (no env, no site) runs the launcher."""
    return [python, "-I", "-S", str(LAUNCHER), str(spec_fd)]
