"""How a container process is wrapped: its user, its mounts, its exact environment."""

from __future__ import annotations

import pytest

from localcluster.refs import PodSetupError
from localcluster.sandbox import NOBODY, Identity, Mount, identity_for, wrapper_argv
from tests.localcluster.fakes import pod


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


def test_wrapper_mounts_parents_first_then_switches_user_with_exactly_the_env() -> None:
    argv = wrapper_argv(
        ["psql", "-c", "select 'a b'"],
        {"PATH": "/usr/bin:/bin", "X": "1 2"},
        [
            Mount("inner", "/data/inner", read_only=False),
            Mount("data", "/data", read_only=True),
        ],
        workdir="/work dir",
        identity=Identity(10001, 10001),
        volumes="/state/pods/uid/volumes",
    )
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    assert argv[5:7] == ["/bin/sh", "-c"]
    script = argv[7].splitlines()
    assert script == [
        "set -e",
        # Volumes are reached through a descriptor, so a mount over their path cannot hide them.
        "exec 3< /state/pods/uid/volumes",
        "mkdir -p /data",
        "mount --bind /proc/self/fd/3/data /data",
        "mount -o remount,bind,ro /data",
        "mkdir -p /data/inner",
        "mount --bind /proc/self/fd/3/inner /data/inner",
        "exec 3<&-",
        "mkdir -p '/work dir'",
        "cd '/work dir'",
        "exec setpriv --reuid=10001 --regid=10001 --clear-groups -- env -i -- "
        "PATH=/usr/bin:/bin 'X=1 2' psql -c 'select '\"'\"'a b'\"'\"''",
    ]


def test_a_file_mount_point_is_created_as_a_file() -> None:
    mount = Mount("v/f", "/etc/app/conf.ini", read_only=False, is_file=True)
    argv = wrapper_argv(["true"], {}, [mount], workdir="/", identity=None, volumes="/vols")
    assert "[ -e /etc/app/conf.ini ] || { mkdir -p /etc/app && : > /etc/app/conf.ini; }" in argv[7]
    assert argv[7].splitlines()[-1] == "exec env -i -- true"
