"""An image as an OCI image-layout archive that `ctr images import` reads: no registry.

The archive holds `oci-layout`, `index.json` (one manifest, annotated with the name containerd
stores it under), the manifest, the config and the uncompressed layer tars. Everything in it
is a function of the layers and the config, so its manifest digest names the image's content;
the archive's file name carries it, and an archive already there is reused.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from standins.images.layers import EPOCH, Built

CREATED: Final = "2024-01-01T00:00:00Z"
MANIFEST_TYPE: Final = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Archive:
    name: str
    path: Path
    manifest: str
    """The manifest digest: what containerd lists the imported image under."""
    written_now: bool


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def write_archive(
    name: str, layers: list[Built], config: dict[str, Any], history: list[str], folder: Path
) -> Archive:
    """The archive of `name` with these layers and config, written unless already there."""
    image_config = {
        "created": CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": line} for line in history],
    }
    config_bytes = _canonical(image_config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer.diff_id,
                "size": layer.size,
            }
            for layer in layers
        ],
    }
    manifest_bytes = _canonical(manifest)
    manifest_digest = _digest(manifest_bytes)
    path = folder / f"{slug(name)}-{manifest_digest[7:23]}.oci.tar"
    if path.is_file():
        return Archive(name, path, manifest_digest, written_now=False)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{slug(name)}-*.oci.tar"):
        old.unlink()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MANIFEST_TYPE,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                },
            }
        ],
    }
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:

        def add(member: str, data: bytes) -> None:
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", _canonical(index))
        add(f"blobs/sha256/{manifest_digest[7:]}", manifest_bytes)
        add(f"blobs/sha256/{_digest(config_bytes)[7:]}", config_bytes)
        seen: set[str] = set()
        for layer in layers:
            if layer.diff_id in seen:
                continue
            seen.add(layer.diff_id)
            info = tarfile.TarInfo(f"blobs/sha256/{layer.diff_id[7:]}")
            info.size, info.mtime, info.mode = layer.size, EPOCH, 0o644
            with layer.tar.open("rb") as handle:
                tar.addfile(info, handle)
    tmp.rename(path)
    return Archive(name, path, manifest_digest, written_now=True)
