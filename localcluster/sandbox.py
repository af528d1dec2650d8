"""How a container process is started: mounts, user, environment, working directory (pure).

Each container runs in a private mount namespace (`unshare --mount --propagation private`)
where every volumeMount is bind-mounted at its mountPath, read-only when asked, so nothing
is mounted on the host. Sources are reached through a descriptor of the pod's volumes
directory opened before the first mount: a mount over /tmp must not hide volumes whose
directory happens to live under /tmp. It then runs as the pod's user (`setpriv`) with exactly the
container's environment (`env -i`). The host's root filesystem is otherwise shared:
readOnlyRootFilesystem is not enforced, only the mounts are.
"""

from __future__ import annotations

import pwd
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from localcluster.api import Obj
from localcluster.refs import PodSetupError

NOBODY: Final = 65534
"""The uid a runAsNonRoot container without runAsUser runs as."""
_VOLUMES_FD: Final = "/proc/self/fd/3"


@dataclass(frozen=True)
class Mount:
    source: str
    """Relative to the pod's volumes directory."""
    target: str
    read_only: bool
    is_file: bool = False


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


def _mount_lines(mount: Mount) -> list[str]:
    target = shlex.quote(mount.target)
    if mount.is_file:
        parent = shlex.quote(str(PurePosixPath(mount.target).parent))
        lines = [f"[ -e {target} ] || {{ mkdir -p {parent} && : > {target}; }}"]
    else:
        lines = [f"mkdir -p {target}"]
    lines.append(f"mount --bind {shlex.quote(f'{_VOLUMES_FD}/{mount.source}')} {target}")
    if mount.read_only:
        lines.append(f"mount -o remount,bind,ro {target}")
    return lines


def _setpriv(identity: Identity) -> list[str]:
    argv = ["setpriv", f"--reuid={identity.uid}", f"--regid={identity.gid}"]
    if identity.groups:
        argv.append("--groups=" + ",".join(str(g) for g in identity.groups))
    else:
        argv.append("--clear-groups")
    if identity.no_new_privs:
        argv.append("--no-new-privs")
    return [*argv, "--"]


def wrapper_argv(
    program: Sequence[str],
    env: Mapping[str, str],
    mounts: Sequence[Mount],
    *,
    workdir: str,
    identity: Identity | None,
    volumes: str,
) -> list[str]:
    """The host argv that runs `program` as the container would run it."""
    lines = ["set -e"]
    if mounts:
        lines.append(f"exec 3< {shlex.quote(volumes)}")
        # Parents before children, so a mount inside another volume lands inside it.
        for mount in sorted(mounts, key=lambda m: len(PurePosixPath(m.target).parts)):
            lines += _mount_lines(mount)
        lines.append("exec 3<&-")
    lines.append(f"mkdir -p {shlex.quote(workdir)}")
    lines.append(f"cd {shlex.quote(workdir)}")
    final = _setpriv(identity) if identity is not None else []
    final += ["env", "-i", "--", *(f"{k}={v}" for k, v in env.items()), *program]
    lines.append("exec " + shlex.join(final))
    script = "\n".join(lines)
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script]
