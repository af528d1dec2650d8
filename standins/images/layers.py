"""Image layers built here from Debian packages and local files, cached by what decides them.

A layer is one of: the Debian base (`debootstrap --variant=minbase`), packages installed with
apt-get inside an overlay mount over the layers below (so the layer holds only what the step
changed, deletions as overlay whiteouts), or plain files. Its cache key hashes the recipe
(packages, commands, the hash of every input file), the key of the layer below and, for
Debian layers, the suite's InRelease (which changes exactly when the packages the mirror
serves do). Same inputs, same key: the layer is reused. Its tar is deterministic: sorted
entries, one mtime, numeric owners, no user names.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

RECIPE_VERSION: Final = "1"
"""Bump to rebuild every layer when the way layers are made changes."""
EPOCH: Final = 1704067200
"""2024-01-01T00:00:00Z: every file's mtime in a layer."""
MIRROR: Final = "http://deb.debian.org/debian"
SUITE: Final = "bookworm"
STANDARD_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SKIP_CONTENTS: Final = frozenset({"dev", "proc", "sys"})
"""The runtime mounts these; the layer keeps the empty directories."""

Say = Callable[[str], None]
Files = dict[str, tuple[Path | bytes, int]]
"""Destination in the image -> (a file here or the bytes, mode)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class Suite:
    """The Debian suite's fingerprint, fetched once per build."""

    def __init__(self) -> None:
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            url = f"{MIRROR}/dists/{SUITE}/InRelease"
            with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (fixed URL)
                body: bytes = response.read()
            self._fingerprint = hashlib.sha256(body).hexdigest()
        return self._fingerprint


@dataclass
class Layer:
    """One layer: the Debian base, apt packages over its parent, or files."""

    name: str
    parent: Layer | None = None
    apt: list[str] = field(default_factory=list)
    pre: str = ""
    """Shell run in the chroot before apt-get install."""
    post: str = ""
    """Shell run in the chroot after it."""
    files: Files = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    """Symbolic links: path in the image -> what it points to."""
    base: bool = False

    def chain(self) -> list[Layer]:
        """This layer and every one below it, bottom first."""
        found: list[Layer] = []
        layer: Layer | None = self
        while layer is not None:
            found.append(layer)
            layer = layer.parent
        return found[::-1]

    def recipe(self, suite: Suite) -> dict[str, Any]:
        files = {}
        for dest, (source, mode) in sorted(self.files.items()):
            content = (
                hashlib.sha256(source).hexdigest()
                if isinstance(source, bytes)
                else sha256_file(source)
            )
            files[dest] = [content, mode]
        recipe: dict[str, Any] = {
            "v": RECIPE_VERSION,
            "name": self.name,
            "parent": self.parent.key(suite) if self.parent else None,
            "apt": self.apt,
            "pre": self.pre,
            "post": self.post,
            "files": files,
            "base": self.base,
        }
        if self.links:
            recipe["links"] = dict(sorted(self.links.items()))
        if self.base or self.apt:
            recipe["suite"] = [MIRROR, SUITE, suite.fingerprint()]
        return recipe

    def key(self, suite: Suite) -> str:
        return sha256_json(self.recipe(suite))[:16]


@dataclass(frozen=True)
class Built:
    """A layer in the cache: its tar, what it cost to build, and whether this run built it."""

    directory: Path
    diff_id: str
    size: int
    build_seconds: float
    built_now: bool

    @property
    def tar(self) -> Path:
        return self.directory / "layer.tar"


class LayerCache:
    """Layers under `root`, one directory per name and key."""

    def __init__(self, root: Path, suite: Suite, say: Say) -> None:
        self.root = root
        self.suite = suite
        self.say = say

    def directory(self, layer: Layer) -> Path:
        return self.root / f"{layer.name}-{layer.key(self.suite)}"

    def ensure(self, layer: Layer) -> Built:
        """The layer from the cache, or built (with every missing layer below it)."""
        if layer.parent is not None:
            self.ensure(layer.parent)
        directory = self.directory(layer)
        try:
            meta = json.loads((directory / "meta.json").read_text())
            return Built(directory, meta["diff_id"], meta["size"], meta["build_seconds"], False)
        except (OSError, ValueError, KeyError):
            pass
        started = time.monotonic()
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        root = directory / "root"
        if layer.base:
            self._debootstrap(root, directory)
        elif layer.apt or layer.pre or layer.post:
            self._apt(layer, root, directory)
        else:
            root.mkdir()
        _write_files(root, layer.files)
        for dest, points_to in layer.links.items():
            link = root / dest.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(points_to)
        diff_id, size = write_layer_tar(root, directory / "layer.tar", whiteouts=not layer.base)
        seconds = round(time.monotonic() - started, 1)
        meta = {
            "diff_id": diff_id,
            "size": size,
            "build_seconds": seconds,
            "recipe": layer.recipe(self.suite),
        }
        (directory / "meta.json").write_text(json.dumps(meta, indent=1))
        return Built(directory, diff_id, size, seconds, True)

    def _debootstrap(self, root: Path, directory: Path) -> None:
        self.say(f"debootstrap --variant=minbase {SUITE} {MIRROR}")
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Slim and deterministic: no docs, man pages or locales now or in later apt layers, no
        # apt lists, no services started by maintainer scripts, no logs or caches.
        (root / "etc/dpkg/dpkg.cfg.d/01-nodoc").write_text(
            "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
            "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
            "path-exclude /usr/share/locale/*\npath-exclude /usr/share/lintian/*\n"
        )
        (root / "etc/apt/apt.conf.d/01-slim").write_text(
            'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
            'Acquire::Languages "none";\n'
        )
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        for folder in ("usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian"):
            shutil.rmtree(root / folder, ignore_errors=True)
            (root / folder).mkdir(parents=True, exist_ok=True)
        docs = root / "usr/share/doc"
        for package in docs.iterdir() if docs.is_dir() else ():
            if package.is_dir() and not package.is_symlink():
                for item in package.iterdir():
                    if item.name != "copyright":
                        _remove(item)
        (root / "etc/resolv.conf").write_text("")  # the runtime mounts the pod's over it
        (root / "etc/hostname").write_text("")
        _scrub(root)
        (directory / "packages.txt").write_text(_dpkg_list(root))

    def _apt(self, layer: Layer, upper: Path, directory: Path) -> None:
        """Run the layer's step in a chroot of an overlay: lower = the layers below, upper =
        this layer, so the upper directory ends up holding exactly what the step changed."""
        lowers = [self.directory(below) / "root" for below in reversed(layer.chain()[:-1])]
        upper.mkdir()
        work = Path(tempfile.mkdtemp(prefix="work-", dir=directory))
        merged = Path(tempfile.mkdtemp(prefix="merged-", dir=directory))
        mounted: list[Path] = []
        try:
            options = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"
            subprocess.run(
                ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True
            )
            mounted.append(merged)
            subprocess.run(["mount", "-t", "proc", "proc", str(merged / "proc")], check=True)
            mounted.append(merged / "proc")
            # apt needs DNS; a read-only bind leaves no copy of the host's file in the layer.
            resolv = merged / "etc/resolv.conf"
            subprocess.run(
                ["mount", "--bind", "-o", "ro", "/etc/resolv.conf", str(resolv)], check=True
            )
            mounted.append(resolv)
            script = f"set -eu\n{layer.pre}\n"
            if layer.apt:
                packages = " ".join(layer.apt)
                script += (
                    "apt-get update -qq\n"
                    f"apt-get install -y -qq --no-install-recommends {packages} >/dev/null\n"
                    "apt-get clean\nrm -rf /var/lib/apt/lists/*\n"
                )
            script += f"{layer.post}\n"
            self.say(f"apt-get install {' '.join(layer.apt)}")
            env = {"PATH": STANDARD_PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
            subprocess.run(["chroot", str(merged), "/bin/sh", "-c", script], check=True, env=env)
            (directory / "packages.txt").write_text(_dpkg_list(merged))
        finally:
            for mount in reversed(mounted):
                subprocess.run(["umount", str(mount)], check=False)
        shutil.rmtree(work, ignore_errors=True)
        merged.rmdir()
        _scrub(upper)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _write_files(root: Path, files: Files) -> None:
    for dest, (source, mode) in files.items():
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
        target.chmod(mode)


_VOLATILE_FILES: Final = (
    "var/cache/ldconfig/aux-cache",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/diversions-old",
    "var/lib/dpkg/statoverride-old",
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
    "etc/machine-id",
    "var/lib/dbus/machine-id",
    "etc/shadow-",
    "etc/passwd-",
    "etc/group-",
    "etc/gshadow-",
    "etc/subuid-",
    "etc/subgid-",
)


def _scrub(root: Path) -> None:
    """Remove what differs from build to build and nobody needs in an image."""
    for relative in ("var/log", "var/cache/apt", "var/lib/apt/lists", "tmp", "run"):
        folder = root / relative
        if not folder.is_dir() or folder.is_symlink():
            continue
        for child in folder.iterdir():
            if relative.startswith("var/lib/apt") and child.name in ("partial", "lock"):
                continue
            if child.is_char_device():  # an overlay whiteout: it hides a lower file
                continue
            _remove(child)
    for relative in _VOLATILE_FILES:
        path = root / relative
        if path.is_file() or path.is_symlink():
            path.unlink()
    shadow = root / "etc/shadow"  # its "last changed" field is the day of the build
    if shadow.is_file():
        lines = []
        for line in shadow.read_text().splitlines():
            parts = line.split(":")
            if len(parts) > 2 and parts[2]:
                parts[2] = str(EPOCH // 86400)
            lines.append(":".join(parts))
        shadow.write_text("\n".join(lines) + "\n")


def _dpkg_list(root: Path) -> str:
    listed = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${Package}=${Version}\n"],
        check=True,
        capture_output=True,
        text=True,
    )
    return "".join(sorted(listed.stdout.splitlines(keepends=True)))


def write_layer_tar(root: Path, out: Path, *, whiteouts: bool) -> tuple[str, int]:
    """`root` as an OCI layer tar, overlay whiteouts as `.wh.` entries: (diff_id, size)."""
    entries: list[tuple[str, Path]] = []
    for folder, dirnames, filenames in os.walk(root):
        relative = os.path.relpath(folder, root)
        relative = "" if relative == "." else relative
        if relative in SKIP_CONTENTS:
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            entries.append((f"{relative}/{name}" if relative else name, Path(folder) / name))
    entries.sort(key=lambda entry: entry[0].split("/"))
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, path in entries:
            info = os.lstat(path)
            if whiteouts and stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                tar.addfile(_normal(tarfile.TarInfo(_whiteout(arcname)), info, 0o644))
                continue
            entry = _normal(tar.gettarinfo(str(path), arcname), info)
            if entry.isreg():
                with path.open("rb") as handle:
                    tar.addfile(entry, handle)
            else:
                tar.addfile(entry)
            if whiteouts and stat.S_ISDIR(info.st_mode) and _opaque(path):
                tar.addfile(_normal(tarfile.TarInfo(f"{arcname}/.wh..wh..opq"), info, 0o644))
    digest = sha256_file(tmp)
    size = tmp.stat().st_size
    tmp.rename(out)
    return f"sha256:{digest}", size


def _whiteout(arcname: str) -> str:
    head, _, base = arcname.rpartition("/")
    return f"{head}/.wh.{base}" if head else f".wh.{base}"


def _opaque(path: Path) -> bool:
    for attribute in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attribute, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def _normal(
    entry: tarfile.TarInfo, info: os.stat_result, mode: int | None = None
) -> tarfile.TarInfo:
    entry.mtime = EPOCH
    entry.uname = ""
    entry.gname = ""
    entry.uid = info.st_uid
    entry.gid = info.st_gid
    entry.pax_headers = {}
    if mode is not None:
        entry.mode = mode
    return entry
