"""Start one container process: mounts, working directory, user, then exec with its env.

Run by the node agent as `python -I -S launcher.py FD`, as root and in a session of its
own; FD is an inherited descriptor holding the launch spec as JSON (see
`standins.cluster.sandbox.launch_spec`). The container's environment, Secrets included, thus
travels in that descriptor and then in the exec'd program's environment (readable only by
its user and root), never in any command line. This file uses the standard library only
and is run by path, so it does not import the package.

With mounts, it enters a private mount namespace and bind-mounts each source at its
target, read-only when asked. Every source is opened before the first mount, so a mount
over, say, /tmp cannot hide a source that lives under /tmp, and a source that resolves
outside the directory it must stay within (a symlink swapped in by a container) is refused.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import stat
import sys
from typing import Any, Final

CLONE_NEWNS: Final = 0x00020000
MS_RDONLY: Final = 0x1
MS_NOSUID: Final = 0x2
MS_NODEV: Final = 0x4
MS_NOEXEC: Final = 0x8
MS_REMOUNT: Final = 0x20
MS_NOATIME: Final = 0x400
MS_NODIRATIME: Final = 0x800
MS_BIND: Final = 0x1000
MS_REC: Final = 0x4000
MS_PRIVATE: Final = 0x40000
MS_RELATIME: Final = 0x200000
PR_SET_NO_NEW_PRIVS: Final = 38
_KEPT_FLAGS: Final = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)
"""Flags a read-only remount must repeat, or the kernel would clear them on the bind."""


class LaunchError(Exception):
    """The container cannot start; the message goes to its log."""


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise LaunchError(f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(
        _libc.mount(
            None if source is None else os.fsencode(source), os.fsencode(target), None, flags, None
        ),
        f"mount {source or ''} on {target}",
    )


def _open_source(mount: dict[str, Any]) -> int:
    fd = os.open(mount["source"], os.O_PATH | os.O_CLOEXEC)
    within = mount.get("within")
    if within is not None:
        real = os.readlink(f"/proc/self/fd/{fd}")
        root = os.path.realpath(within)
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            os.close(fd)
            raise LaunchError(f"mount source {mount['source']} resolves outside {root}")
    return fd


def _mount_point(target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    elif not os.path.lexists(target):
        os.makedirs(os.path.dirname(target) or "/", exist_ok=True)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _depth(target: str) -> int:
    return len([part for part in os.path.normpath(target).split("/") if part])


def mount_all(mounts: list[dict[str, Any]]) -> None:
    """Bind every source at its target in a new private mount namespace, parents first."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare the mount namespace")
    _mount(None, "/", MS_REC | MS_PRIVATE)
    fds = [_open_source(m) for m in mounts]
    try:
        order = sorted(range(len(mounts)), key=lambda i: _depth(mounts[i]["target"]))
        for i in order:
            target, fd = mounts[i]["target"], fds[i]
            _mount_point(target, stat.S_ISDIR(os.stat(fd).st_mode))
            _mount(f"/proc/self/fd/{fd}", target, MS_BIND)
            if mounts[i].get("read_only"):
                kept = os.statvfs(target).f_flag
                extra = sum(ms for st, ms in _KEPT_FLAGS if kept & st)
                _mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY | extra)
    finally:
        for fd in fds:
            os.close(fd)


def become(identity: dict[str, Any]) -> None:
    """Switch to the pod's user: groups first, then gid, then uid (which drops root)."""
    os.setgroups([int(g) for g in identity.get("groups") or []])
    gid, uid = int(identity["gid"]), int(identity["uid"])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if identity.get("no_new_privs"):
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")


def set_up(spec: dict[str, Any]) -> None:
    """Everything before the exec: mounts, working directory, user."""
    try:
        if spec.get("mounts"):
            mount_all(spec["mounts"])
        workdir = spec.get("workdir") or "/"
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
        if spec.get("identity") is not None:
            become(spec["identity"])
    except OSError as exc:
        raise LaunchError(str(exc)) from exc
    # Python ignores these; an ignored signal would stay ignored across the exec.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


def main(args: list[str]) -> int:
    with os.fdopen(int(args[0]), "rb") as source:
        spec = json.loads(source.read())
    argv: list[str] = spec["argv"]
    try:
        set_up(spec)
    except LaunchError as exc:
        print(f"localcluster: cannot set the container up: {exc}", file=sys.stderr)
        return 128
    try:
        os.execvpe(argv[0], argv, spec["env"])  # noqa: S606 (the container program)
    except FileNotFoundError:
        print(f"localcluster: {argv[0]}: not found", file=sys.stderr)
        return 127
    except OSError as exc:
        print(f"localcluster: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 126


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
