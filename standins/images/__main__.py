"""python -m standins.images build|list: the local node's images, built here and cached.

`build` makes (or finds in the cache) every layer and archive of the catalog and prints, per
step, what it cost when it was built cold and what it cost now (0 s when cached); it writes
the index the node imports from. `list` prints that index. The cache lives in
${TRADESTREAM_CACHE:-~/.cache/tradestream-database}/images (layers/, archives/, index.json).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from components.settings import SettingsError
from standins.images.catalog import catalog, installed
from standins.images.layers import LayerCache, Suite
from standins.images.oci import write_archive

INDEX: Final = "index.json"


def _say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    return installed("images")


def read_index(root: Path | None = None) -> list[dict[str, str]]:
    """The images the last build made: name, archive, manifest digest, what it stands for."""
    path = (root or cache_root()) / INDEX
    entries: list[dict[str, str]] = json.loads(path.read_text())
    return entries


def build(root: Path) -> int:
    started = time.monotonic()
    cache = LayerCache(root / "layers", Suite(), _say)
    rows: list[tuple[str, float, float]] = []
    index: list[dict[str, str]] = []
    seen: set[str] = set()
    for image in catalog():
        for layer in image.top.chain():
            if layer.name in seen:
                continue
            seen.add(layer.name)
            step = time.monotonic()
            built = cache.ensure(layer)
            now = time.monotonic() - step
            state = "built" if built.built_now else "cached"
            _say(
                f"layer {layer.name}: {state} ({built.size / 1e6:.0f} MB; cold build "
                f"{built.build_seconds:.0f} s, this run {now:.1f} s)"
            )
            rows.append((f"layer {layer.name}", built.build_seconds, now))
        step = time.monotonic()
        layers = [cache.ensure(layer) for layer in image.top.chain()]
        history = [f"standins.images layer {layer.name}" for layer in image.top.chain()]
        archive = write_archive(image.name, layers, image.config, history, root / "archives")
        state = "written" if archive.written_now else "cached"
        _say(f"{image.name} (stands for {image.stands_for}): {state} {archive.path.name}")
        rows.append((f"archive {image.name}", time.monotonic() - step, time.monotonic() - step))
        index.append(
            {
                "name": image.name,
                "archive": str(archive.path),
                "manifest": archive.manifest,
                "stands_for": image.stands_for,
            }
        )
    tmp = root / f".{INDEX}.tmp"
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(root / INDEX)
    kept = {entry["archive"] for entry in index}
    for old in (root / "archives").glob("*.oci.tar"):
        if str(old) not in kept:  # an image the catalog no longer names
            old.unlink()
    _say("step                                             built (s)   this run (s)")
    for name, cold, now in rows:
        _say(f"{name:<50} {cold:8.0f}   {now:12.1f}")
    _say(f"ready in {time.monotonic() - started:.1f} s (cache: {root})")
    return 0


def main(argv: Sequence[str]) -> int:
    command = argv[0] if argv else "build"
    root = cache_root()
    if command == "list":
        for entry in read_index(root):
            print(entry["name"], entry["archive"], entry["manifest"])
        return 0
    if command != "build":
        print(__doc__, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        _say("ERROR: building images needs root (debootstrap, mount, chroot)")
        return 1
    try:
        return build(root)
    except SettingsError:
        # The preview names what is wrong in the stack file, once; the images wait for it.
        _say("skipped: the local stack file does not read as settings; the preview says why")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
