"""Volumes on disk: the kubelet's atomic-writer layout, modes, and clear refusals."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from standins.cluster.refs import MissingObjectError, PodSetupError
from standins.cluster.volumes import set_up, volume_payload
from tests.standins.cluster.fakes import FakeObjects, Obj, config_map, pod, secret

TIMESTAMPED = re.compile(r"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$")


def objects() -> FakeObjects:
    return FakeObjects(
        config_maps={
            "ns/sql": config_map(
                "sql", {"V1__a.sql": "select 1;", "V2__b.sql": "select 2;"}, {"blob": b"\x00\x01"}
            )
        },
        secrets={"ns/creds": secret("creds", {"password": "s3cret", "user": "app"})},
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_config_map_items_use_the_atomic_writer_layout(tmp_path: Path) -> None:
    volume = {
        "name": "m",
        "configMap": {
            "name": "sql",
            "defaultMode": 0o440,
            "items": [
                {"key": "V1__a.sql", "path": "x/y.sql"},
                {"key": "V2__b.sql", "path": "top.sql", "mode": 0o400},
            ],
        },
    }
    target = tmp_path / "m"
    set_up(volume, pod(), objects(), target, fs_group=None)

    data_link = target / "..data"
    assert data_link.is_symlink()
    data_dir_name = os.readlink(data_link)
    assert TIMESTAMPED.match(data_dir_name), data_dir_name
    assert (target / data_dir_name).is_dir()
    # One relative link per first path element, through ..data.
    entries = sorted(p.name for p in target.iterdir())
    assert entries == sorted([data_dir_name, "..data", "top.sql", "x"])
    assert os.readlink(target / "x") == "..data/x"
    assert os.readlink(target / "top.sql") == "..data/top.sql"
    assert (target / "x" / "y.sql").read_text() == "select 1;"
    assert (target / "top.sql").read_text() == "select 2;"
    assert mode(target / data_dir_name / "x" / "y.sql") == 0o440
    assert mode(target / data_dir_name / "top.sql") == 0o400
    assert mode(target) == 0o777


def test_config_map_without_items_projects_every_key_including_binary(tmp_path: Path) -> None:
    volume = {"name": "m", "configMap": {"name": "sql"}}
    set_up(volume, pod(), objects(), tmp_path / "m", fs_group=None)
    names = sorted(p.name for p in (tmp_path / "m").iterdir() if not p.name.startswith(".."))
    assert names == ["V1__a.sql", "V2__b.sql", "blob"]
    assert (tmp_path / "m" / "blob").read_bytes() == b"\x00\x01"
    assert mode(tmp_path / "m" / "V1__a.sql") == 0o644  # the default mode


def test_projected_volume_merges_config_map_secret_and_downward_sources(tmp_path: Path) -> None:
    volume = {
        "name": "p",
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"configMap": {"name": "sql", "items": [{"key": "V1__a.sql", "path": "a/1.sql"}]}},
                {"secret": {"name": "creds", "items": [{"key": "password", "path": "pw"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                    }
                },
                {
                    "serviceAccountToken": {
                        "path": "token",
                        "audience": "x",
                        "expirationSeconds": 600,
                    }
                },
            ],
        },
    }
    source = objects()
    set_up(volume, pod(), source, tmp_path / "p", fs_group=None)
    target = tmp_path / "p"
    assert (target / "a" / "1.sql").read_text() == "select 1;"
    assert (target / "pw").read_text() == "s3cret"
    assert (target / "ns").read_text() == "ns"
    assert (target / "token").read_text() == "token-for-p"
    assert source.tokens == [("x", 600)]
    assert mode(target / "pw") == 0o444


def test_fs_group_owns_the_files_and_sets_setgid_on_directories(tmp_path: Path) -> None:
    volume = {"name": "m", "configMap": {"name": "sql", "defaultMode": 0o400}}
    set_up(volume, pod(), objects(), tmp_path / "m", fs_group=4321)
    data_dir = tmp_path / "m" / os.readlink(tmp_path / "m" / "..data")
    assert (data_dir / "V1__a.sql").stat().st_gid == 4321
    assert mode(data_dir / "V1__a.sql") == 0o440
    assert data_dir.stat().st_mode & stat.S_ISGID


def test_empty_dir_is_a_plain_directory_anyone_can_write(tmp_path: Path) -> None:
    set_up({"name": "tmp", "emptyDir": {}}, pod(), objects(), tmp_path / "tmp", fs_group=None)
    assert (tmp_path / "tmp").is_dir()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert mode(tmp_path / "tmp") == 0o777


def test_missing_config_map_is_reported_unless_optional() -> None:
    volume: Obj = {"name": "m", "configMap": {"name": "nope"}}
    with pytest.raises(MissingObjectError, match='ConfigMap "nope" not found in namespace "ns"'):
        volume_payload(volume, pod(), objects())
    volume["configMap"]["optional"] = True
    assert volume_payload(volume, pod(), objects()) == {}


def test_missing_key_is_reported_unless_optional() -> None:
    items = [{"key": "absent", "path": "a"}, {"key": "user", "path": "u"}]
    volume: Obj = {"name": "s", "secret": {"secretName": "creds", "items": items}}
    with pytest.raises(MissingObjectError, match='key "absent" not found in Secret "creds"'):
        volume_payload(volume, pod(), objects())
    volume["secret"]["optional"] = True
    payload = volume_payload(volume, pod(), objects())
    assert payload is not None
    assert sorted(payload) == ["u"]


def test_unsupported_volume_types_fail_with_what_is_supported() -> None:
    volume = {"name": "h", "hostPath": {"path": "/etc"}}
    with pytest.raises(
        PodSetupError, match=r"volume 'h': type hostPath is not supported.*emptyDir"
    ):
        volume_payload(volume, pod(), objects())


@pytest.mark.parametrize("path", ["../escape", "/abs", "..hidden", "a/../../b"])
def test_item_paths_cannot_escape_the_volume(path: str) -> None:
    volume = {
        "name": "m",
        "configMap": {"name": "sql", "items": [{"key": "V1__a.sql", "path": path}]},
    }
    with pytest.raises(PodSetupError, match="invalid item path"):
        volume_payload(volume, pod(), objects())


def claim_objects(phase: str, source: Obj) -> FakeObjects:
    return FakeObjects(
        claims={"ns/data": {"spec": {"volumeName": "pv-1"}, "status": {"phase": phase}}},
        volumes={"pv-1": {"spec": source}},
    )


def test_a_claimed_volume_links_to_the_bound_volumes_directory(tmp_path: Path) -> None:
    host = tmp_path / "pv-1"
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    set_up(
        volume,
        pod(),
        claim_objects("Bound", {"hostPath": {"path": str(host)}}),
        tmp_path / "v",
        None,
    )
    assert (tmp_path / "v").resolve() == host.resolve()
    assert host.is_dir()


def test_a_claim_not_bound_yet_is_waited_for_and_a_foreign_volume_refused(tmp_path: Path) -> None:
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    with pytest.raises(MissingObjectError, match="not bound yet"):
        set_up(volume, pod(), claim_objects("Pending", {}), tmp_path / "a", None)
    with pytest.raises(MissingObjectError, match="not found"):
        set_up(volume, pod(), FakeObjects(), tmp_path / "b", None)
    nfs = claim_objects("Bound", {"nfs": {"server": "x", "path": "/"}})
    with pytest.raises(PodSetupError, match="neither hostPath nor local"):
        set_up(volume, pod(), nfs, tmp_path / "c", None)
