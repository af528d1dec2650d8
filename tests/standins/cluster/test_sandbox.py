"""How a container process is started: its user, its mounts, its exact environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from standins.cluster.refs import PodSetupError
from standins.cluster.sandbox import (
    LAUNCHER,
    NOBODY,
    Identity,
    Mount,
    identity_for,
    launch_spec,
    launcher_argv,
)
from tests.standins.cluster.fakes import pod

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounts and user switches need root")


def test_no_security_context_runs_as_root_unchanged() -> None:
    assert identity_for(pod(), {"name": "c"}) is None


def test_container_settings_override_the_pods_and_fs_group_is_a_supplementary_group() -> None:
    p = pod(
        securityContext={
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 2000,
            "supplementalGroups": [3000],
        }
    )
    container = {
        "name": "c",
        "securityContext": {"runAsUser": 10001, "allowPrivilegeEscalation": False},
    }
    assert identity_for(p, container) == Identity(10001, 1000, (2000, 3000), no_new_privs=True)


def test_run_as_non_root_without_a_user_runs_as_nobody() -> None:
    identity = identity_for(pod(securityContext={"runAsNonRoot": True}), {"name": "c"})
    assert identity is not None
    assert identity.uid == NOBODY


def test_run_as_non_root_with_uid_zero_is_refused() -> None:
    with pytest.raises(PodSetupError, match="runAsNonRoot"):
        identity_for(pod(securityContext={"runAsNonRoot": True, "runAsUser": 0}), {"name": "c"})


def test_the_environment_is_in_the_spec_and_never_in_the_command_line() -> None:
    spec = launch_spec(
        ["psql", "-c", "select 1"],
        {"PGPASSWORD": "s3cret-value", "PATH": "/usr/bin:/bin"},
        [Mount("/state/pods/u/volumes/data/", "/data/", read_only=True, within="/state")],
        workdir="/work",
        identity=Identity(10001, 10001, (2000,), no_new_privs=True),
    )
    argv = launcher_argv("/usr/bin/python3", 5)
    assert argv == ["/usr/bin/python3", "-I", "-S", str(LAUNCHER), "5"]
    assert not any("s3cret-value" in arg for arg in argv)
    assert spec == {
        "argv": ["psql", "-c", "select 1"],
        "env": {"PGPASSWORD": "s3cret-value", "PATH": "/usr/bin:/bin"},
        "mounts": [
            {
                "source": "/state/pods/u/volumes/data/",
                "target": "/data",
                "read_only": True,
                "within": "/state",
            }
        ],
        "workdir": "/work",
        "identity": {"uid": 10001, "gid": 10001, "groups": (2000,), "no_new_privs": True},
    }


def launch(spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run the launcher as the agent does: the spec in an inherited memfd, no environment."""
    fd = os.memfd_create("spec", os.MFD_CLOEXEC)
    try:
        os.write(fd, json.dumps(spec).encode())
        os.lseek(fd, 0, os.SEEK_SET)
        return subprocess.run(
            launcher_argv(sys.executable, fd),
            env={},
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(fd)


def spec_for(program: list[str], **fields: Any) -> dict[str, Any]:
    spec = launch_spec(program, {"PATH": "/usr/bin:/bin"}, [], workdir="/", identity=None)
    return spec | fields


def test_the_program_gets_exactly_the_containers_environment() -> None:
    env = {"PATH": "/usr/bin:/bin", "a.b": "dotted", "with-dash": "x", "SPACE": "1 2", "E": ""}
    result = launch(spec_for(["env", "-0"], env=env))
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split("\0")[:-1]) == sorted(f"{k}={v}" for k, v in env.items())


def test_the_program_starts_with_default_signal_dispositions() -> None:
    result = launch(spec_for(["grep", "^SigIgn:", "/proc/self/status"]))
    ignored = int(result.stdout.split()[1], 16)
    sigpipe, sigxfsz = 1 << (13 - 1), 1 << (25 - 1)
    assert ignored & (sigpipe | sigxfsz) == 0, result.stdout


def test_a_missing_program_exits_127_saying_so(tmp_path: Path) -> None:
    result = launch(spec_for(["no-such-program-here"], workdir=str(tmp_path / "w")))
    assert result.returncode == 127
    assert "no-such-program-here: not found" in result.stderr
    assert (tmp_path / "w").is_dir()  # the working directory is created, as a runtime does


@pytest.fixture
def volumes(tmp_path: Path) -> Path:
    vols = tmp_path / "volumes"
    (vols / "data" / "x").mkdir(parents=True)
    (vols / "data" / "x" / "y.sql").write_text("select 1;")
    (vols / "data" / "x" / "scratch").mkdir()  # a mount point inside a read-only volume
    (vols / "conf").mkdir()
    (vols / "conf" / "app.ini").write_text("[app]")
    (vols / "empty").mkdir()
    return vols


@as_root
def test_mounts_are_bound_read_only_when_asked_and_parents_first(
    tmp_path: Path, volumes: Path
) -> None:
    root = tmp_path / "root"
    mounts = [
        Mount(str(volumes / "conf" / "app.ini"), f"{root}/etc/app.ini", False, str(volumes)),
        Mount(str(volumes / "data"), f"{root}/data", read_only=True, within=str(volumes)),
        Mount(str(volumes / "empty"), f"{root}/data/x/scratch", False, str(volumes)),
    ]
    script = (
        f"cat {root}/data/x/y.sql; echo; cat {root}/etc/app.ini; echo;"
        f" touch {root}/data/new 2>/dev/null && echo writable || echo read-only;"
        f" touch {root}/data/x/scratch/new && echo scratch-writable"
    )
    spec = launch_spec(
        ["sh", "-c", script], {"PATH": "/usr/bin:/bin"}, mounts, workdir="/", identity=None
    )
    result = launch(spec)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["select 1;", "[app]", "read-only", "scratch-writable"]
    assert not (root / "data" / "x").exists()  # the mounts were private to the container
    assert (root / "etc" / "app.ini").read_text() == ""  # the file's mount point, on the host


@as_root
def test_a_mount_over_a_parent_does_not_hide_sources_below_it(
    tmp_path: Path, volumes: Path
) -> None:
    mounts = [
        Mount(str(volumes / "empty"), str(tmp_path), read_only=False, within=str(volumes)),
        Mount(str(volumes / "data"), f"{tmp_path}/data", read_only=True, within=str(volumes)),
    ]
    spec = launch_spec(
        ["cat", f"{tmp_path}/data/x/y.sql"],
        {"PATH": "/usr/bin:/bin"},
        mounts,
        workdir="/",
        identity=None,
    )
    result = launch(spec)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "select 1;"


@as_root
def test_a_source_resolving_outside_its_volumes_is_refused(tmp_path: Path, volumes: Path) -> None:
    (volumes / "escape").symlink_to("/etc")
    mounts = [Mount(str(volumes / "escape"), f"{tmp_path}/m", False, within=str(volumes))]
    spec = launch_spec(["true"], {}, mounts, workdir="/", identity=None)
    result = launch(spec)
    assert result.returncode == 128
    assert "resolves outside" in result.stderr


@as_root
def test_the_program_runs_as_the_pods_user_with_its_groups() -> None:
    spec = spec_for(
        ["sh", "-c", "id -u; id -G; grep ^NoNewPrivs: /proc/self/status"],
        identity={"uid": 10001, "gid": 10001, "groups": [10002], "no_new_privs": True},
    )
    result = launch(spec)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["10001", "10001 10002"]
    assert lines[2].split() == ["NoNewPrivs:", "1"]
