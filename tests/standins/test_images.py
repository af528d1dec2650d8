"""The node's images: layers keyed by what decides them, deterministic tars, archives that
containerd imports under the names the local stack file uses."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from standins.images.catalog import normalized
from standins.images.layers import Built, Layer, Suite, write_layer_tar
from standins.images.oci import write_archive


class FixedSuite(Suite):
    def __init__(self, fingerprint: str) -> None:
        super().__init__()
        self._fingerprint = fingerprint


def tree(root: Path, mtime: int) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "a").write_text("a\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "dev").mkdir()
    (root / "dev" / "ignored").write_text("the runtime mounts /dev")
    for path in [root, *root.rglob("*")]:
        os.utime(path, (mtime, mtime))
    return root


def test_a_layer_tar_depends_on_content_only(tmp_path: Path) -> None:
    first = write_layer_tar(tree(tmp_path / "one", 1), tmp_path / "one.tar", whiteouts=False)
    second = write_layer_tar(
        tree(tmp_path / "two", 2_000_000), tmp_path / "two.tar", whiteouts=False
    )
    assert first == second
    with tarfile.open(tmp_path / "one.tar") as tar:
        names = tar.getnames()
        assert names == ["bin", "bin/tool", "dev", "etc", "etc/a"]
        assert {m.mtime for m in tar.getmembers()} == {1704067200}
        assert {m.uname for m in tar.getmembers()} == {""}


def test_a_layer_key_changes_with_its_inputs_and_the_layers_below(tmp_path: Path) -> None:
    suite = FixedSuite("one")
    jar = tmp_path / "x.jar"
    jar.write_bytes(b"1")
    base = Layer("base", base=True)
    files = Layer("files", parent=base, files={"/x.jar": (jar, 0o644)})
    key = files.key(suite)
    assert key == files.key(suite)
    jar.write_bytes(b"2")
    assert files.key(suite) != key
    assert files.key(FixedSuite("a new point release")) != files.key(suite)


def test_images_are_named_as_containerd_stores_what_pods_name() -> None:
    assert normalized("postgres:17.6") == "docker.io/library/postgres:17.6"
    assert normalized("flyway/flyway:11.20.3-alpine") == "docker.io/flyway/flyway:11.20.3-alpine"
    assert normalized("localhost/flyway:11.20.3-alpine") == "localhost/flyway:11.20.3-alpine"
    assert normalized("ghcr.io/x/y:1") == "ghcr.io/x/y:1"


def test_an_archive_is_named_by_its_manifest_and_reused(tmp_path: Path) -> None:
    root = tree(tmp_path / "root", 1)
    diff_id, size = write_layer_tar(root, tmp_path / "layer.tar", whiteouts=False)
    (tmp_path / "layer").mkdir()
    (tmp_path / "layer.tar").rename(tmp_path / "layer" / "layer.tar")
    built = Built(tmp_path / "layer", diff_id, size, 0.0, built_now=True)
    config = {"Entrypoint": ["/bin/tool"]}
    first = write_archive("localhost/tool:1", [built], config, ["layer"], tmp_path / "out")
    again = write_archive("localhost/tool:1", [built], config, ["layer"], tmp_path / "out")
    assert first.written_now
    assert not again.written_now
    assert first.path == again.path
    assert first.manifest[7:23] in first.path.name
    with tarfile.open(first.path) as tar:
        index_file = tar.extractfile("index.json")
        assert index_file is not None
        index = json.load(index_file)
    annotations = index["manifests"][0]["annotations"]
    assert annotations["io.containerd.image.name"] == "localhost/tool:1"
    assert index["manifests"][0]["digest"] == first.manifest
