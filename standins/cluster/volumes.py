"""Pod volumes laid out on disk the way a kubelet lays them out.

ConfigMap, Secret, downward API and projected volumes use the kubelet's atomic-writer
layout: the files sit in a timestamped hidden directory (`..2026_12_03_01_02_03.123456`),
`..data` links to it and each top-level entry is a relative link through `..data/`, so
programs that resolve links (or watch `..data`) see what they would see in a cluster.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Final

from standins.cluster.api import Obj
from standins.cluster.refs import (
    MissingObjectError,
    ObjectSource,
    PodSetupError,
    field_value,
    referenced_data,
)

DEFAULT_MODE: Final = 0o644
TOKEN_EXPIRATION: Final = 3600
SUPPORTED: Final = "configMap, secret, projected, downwardAPI, emptyDir, persistentVolumeClaim"


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int


Payload = dict[str, FileProjection]


@dataclass(frozen=True)
class _Volume:
    """The volume being built: its name (for messages), its pod, and where objects come from."""

    name: str
    pod: Obj
    objects: ObjectSource

    def path(self, path: str) -> str:
        parts = PurePosixPath(path).parts
        if not path or path.startswith("/") or ".." in parts or parts[0].startswith(".."):
            raise PodSetupError(f"volume {self.name!r}: invalid item path {path!r}")
        return path

    def keyed(self, kind: str, name: str, source: Obj, default_mode: int) -> Payload:
        """A ConfigMap's or Secret's keys as files: all of them, or `items` (key -> path)."""
        optional = bool(source.get("optional"))
        namespace = self.pod["metadata"]["namespace"]
        data = referenced_data(self.objects, kind, namespace, name, optional)
        if data is None:
            return {}
        items: list[Obj] = source.get("items") or []
        if not items:
            return {self.path(k): FileProjection(v, default_mode) for k, v in data.items()}
        payload: Payload = {}
        for item in items:
            key = item["key"]
            if key not in data:
                if optional:
                    continue
                raise MissingObjectError(
                    f'volume {self.name!r}: key "{key}" not found in {kind} "{name}"'
                )
            payload[self.path(item["path"])] = FileProjection(
                data[key], item.get("mode", default_mode)
            )
        return payload

    def downward(self, items: list[Obj], default_mode: int) -> Payload:
        payload: Payload = {}
        for item in items:
            if "fieldRef" not in item:
                raise PodSetupError(
                    f"volume {self.name!r}: downwardAPI item {item.get('path')!r} needs a "
                    "fieldRef (resourceFieldRef is not supported by the local node)"
                )
            value = field_value(self.pod, item["fieldRef"]["fieldPath"]).encode()
            payload[self.path(item["path"])] = FileProjection(value, item.get("mode", default_mode))
        return payload

    def token(self, source: Obj, mode: int) -> Payload:
        expiration = int(source.get("expirationSeconds", TOKEN_EXPIRATION))
        token = self.objects.service_account_token(self.pod, source.get("audience"), expiration)
        return {self.path(source["path"]): FileProjection(token.encode(), mode)}

    def projected(self, spec: Obj) -> Payload:
        mode = spec.get("defaultMode", DEFAULT_MODE)
        payload: Payload = {}
        for source in spec.get("sources") or []:
            if "configMap" in source:
                cm = source["configMap"]
                payload |= self.keyed("ConfigMap", cm["name"], cm, mode)
            elif "secret" in source:
                payload |= self.keyed("Secret", source["secret"]["name"], source["secret"], mode)
            elif "downwardAPI" in source:
                payload |= self.downward(source["downwardAPI"].get("items") or [], mode)
            elif "serviceAccountToken" in source:
                payload |= self.token(source["serviceAccountToken"], mode)
            else:
                raise PodSetupError(
                    f"volume {self.name!r}: projected source {sorted(source)} is not supported "
                    "by the local node (supported: configMap, secret, downwardAPI, "
                    "serviceAccountToken)"
                )
        return payload


def volume_payload(volume: Obj, pod: Obj, objects: ObjectSource) -> Payload | None:
    """The files of a volume; None for an emptyDir; PodSetupError for any other type."""
    v = _Volume(volume["name"], pod, objects)
    if "emptyDir" in volume:
        return None
    if "configMap" in volume:
        spec: dict[str, Any] = volume["configMap"]
        return v.keyed("ConfigMap", spec["name"], spec, spec.get("defaultMode", DEFAULT_MODE))
    if "secret" in volume:
        spec = volume["secret"]
        return v.keyed("Secret", spec["secretName"], spec, spec.get("defaultMode", DEFAULT_MODE))
    if "projected" in volume:
        return v.projected(volume["projected"])
    if "downwardAPI" in volume:
        spec = volume["downwardAPI"]
        return v.downward(spec.get("items") or [], spec.get("defaultMode", DEFAULT_MODE))
    kinds = sorted(k for k in volume if k != "name")
    raise PodSetupError(
        f"volume {v.name!r}: type {', '.join(kinds) or '(none)'} is not supported by the local "
        f"node (supported: {SUPPORTED})"
    )


def write_atomic(target: Path, payload: Mapping[str, FileProjection]) -> Path:
    """Write `payload` into `target` in the atomic-writer layout; returns the data dir."""
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    data_dir = target / f"{stamp}{secrets.randbelow(10**9)}"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)  # noqa: S103 (pods of any user read their volumes)
    for rel, projection in sorted(payload.items()):
        path = data_dir / rel
        for parent in reversed(path.relative_to(data_dir).parents[:-1]):
            (data_dir / parent).mkdir(mode=0o755, exist_ok=True)
        path.write_bytes(projection.data)
        os.chmod(path, projection.mode)
    tmp_link = target / "..data_tmp"
    tmp_link.symlink_to(data_dir.name)
    tmp_link.replace(target / "..data")
    for top in sorted({PurePosixPath(rel).parts[0] for rel in payload}):
        (target / top).symlink_to(f"..data/{top}")
    return data_dir


def apply_fs_group(root: Path, gid: int, writable: bool) -> None:
    """What a kubelet does for fsGroup: group ownership, group access, setgid directories."""
    mask = 0o660 if writable else 0o440
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, -1, gid)
        mode = stat.S_IMODE(os.stat(dirpath).st_mode) | mask | 0o110 | stat.S_ISGID
        os.chmod(dirpath, mode)
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if path.is_symlink() or path.is_dir():
                continue
            os.chown(path, -1, gid)
            os.chmod(path, stat.S_IMODE(path.stat().st_mode) | mask)


def claimed_directory(volume: Obj, pod: Obj, objects: ObjectSource) -> Path:
    """The host directory of the volume bound to a persistentVolumeClaim volume's claim.

    Only the local node's own volumes (hostPath or local) can back a claim here; a claim that
    is not bound yet is waited for like any other missing object.
    """
    claim_name = volume["persistentVolumeClaim"]["claimName"]
    namespace = pod["metadata"]["namespace"]
    claim = objects.persistent_volume_claim(namespace, claim_name)
    if claim is None:
        raise MissingObjectError(f'persistentvolumeclaim "{claim_name}" not found')
    bound = (claim.get("spec") or {}).get("volumeName")
    if (claim.get("status") or {}).get("phase") != "Bound" or not bound:
        raise MissingObjectError(f'persistentvolumeclaim "{claim_name}" is not bound yet')
    pv = objects.persistent_volume(bound)
    if pv is None:
        raise MissingObjectError(f'persistentvolume "{bound}" not found')
    source = pv["spec"].get("hostPath") or pv["spec"].get("local")
    if not source:
        raise PodSetupError(
            f"volume {volume['name']!r}: persistentvolume {bound!r} is neither hostPath nor "
            "local, which is all the local node can mount"
        )
    path = Path(source["path"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def set_up(
    volume: Obj, pod: Obj, objects: ObjectSource, target: Path, fs_group: int | None
) -> None:
    """Create one volume at `target` (which must not exist yet).

    A claimed volume is a link to its host directory: its data outlives the pod."""
    if "persistentVolumeClaim" in volume:
        directory = claimed_directory(volume, pod, objects)
        if fs_group is not None:
            apply_fs_group(directory, fs_group, writable=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(directory.resolve(), target_is_directory=True)
        return
    payload = volume_payload(volume, pod, objects)
    target.mkdir(parents=True)
    # As a kubelet's emptyDir (which also wraps configMap and secret volumes): open to all.
    os.chmod(target, 0o777)  # noqa: S103
    if payload is not None:
        write_atomic(target, payload)
    if fs_group is not None:
        apply_fs_group(target, fs_group, writable=payload is None)
