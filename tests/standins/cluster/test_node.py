"""The tests' cluster end to end: pods run in real containers of the images built here, on a
pod network with Services and DNS, with volumes, and nothing of the node shows on the host."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from standins import localstack
from standins.cluster import procs
from standins.cluster.api import ApiError, Client
from standins.cluster.layout import BRIDGE, NODE_NAME, REPO_ROOT, Layout
from standins.cluster.lifecycle import COMPONENTS

pytestmark = pytest.mark.engine

T = TypeVar("T")
Obj = dict[str, Any]
WAIT = 600.0
"""A guard against hangs only: every wait ends on the event it waits for."""
NAMESPACE = "node-test"
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "standins.cluster", *args, "--state", str(state)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def wait_for(what: str, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + WAIT
    pause = threading.Event()
    while True:
        try:
            value = probe()
        except ApiError:
            value = None
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {WAIT:.0f} s")
        pause.wait(0.5)


@pytest.fixture(scope="module")
def api(local_cluster: Path) -> Client:
    client = Client.from_kubeconfig(Layout(local_cluster).kubeconfig)
    client.create_if_missing("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    wait_for(
        "the namespace's ServiceAccount",
        lambda: client.get_or_none(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"),
    )
    return client


def image() -> str:
    """The PostgreSQL image the local stack names: Debian with a shell, perl and psql."""
    return localstack.stack_settings().backup.image


def run_job(api: Client, name: str, script: str, **pod: Any) -> tuple[str, str]:
    """A Job running `script` with sh in the PostgreSQL image: its outcome and its log."""
    container = {"name": "main", "image": image(), "command": ["sh", "-c", script]}
    container.update(pod.pop("container", {}))
    spec = {"restartPolicy": "Never", "containers": [container], **pod}
    job = {
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": spec}},
    }
    api.post(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", job)

    def finished() -> str | None:
        found = api.get(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}")
        for condition in found.get("status", {}).get("conditions") or []:
            if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
                return str(condition["type"])
        return None

    outcome = wait_for(f"Job {name} to finish", finished)
    logs = cli_logs(api, name)
    return outcome, logs


def cli_logs(api: Client, job: str) -> str:
    pods = api.get(f"/api/v1/namespaces/{NAMESPACE}/pods", {"labelSelector": f"job-name={job}"})
    return "".join(api.log(NAMESPACE, p["metadata"]["name"]) for p in pods["items"])


def test_start_again_is_a_no_op_and_status_reports_every_component(local_cluster: Path) -> None:
    again = cli(local_cluster, "start")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout
    status = cli(local_cluster, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for component in COMPONENTS:
        assert f"{component}: running" in status.stdout
    assert (local_cluster.stat().st_mode & 0o777) == 0o700  # the CA key and the token


def test_a_job_runs_in_a_container_of_its_image_and_its_log_comes_from_the_api(
    api: Client, local_cluster: Path
) -> None:
    outcome, log = run_job(
        api,
        "in-a-container",
        "psql --version; echo host-files: $(ls /work 2>&1 | head -1); echo hostname: $(hostname)",
    )
    assert outcome == "Complete", log
    assert "psql (PostgreSQL) 15" in log
    assert "No such file or directory" in log  # the host's files are not the container's
    assert "hostname: in-a-container-" in log
    printed = cli(local_cluster, "logs", "--job", NAMESPACE, "in-a-container")
    assert printed.returncode == 0, printed.stderr
    assert "psql (PostgreSQL) 15" in printed.stdout


def test_the_security_context_is_in_effect_inside_the_container(api: Client) -> None:
    outcome, log = run_job(
        api,
        "restricted",
        "id -u; touch /probe 2>&1 || true; grep -E '^(CapEff|NoNewPrivs|Seccomp):' "
        "/proc/self/status; touch /tmp/ok && echo tmp-writable",
        automountServiceAccountToken=False,
        securityContext=RESTRICTED_POD,
        volumes=[{"name": "tmp", "emptyDir": {}}],
        container={
            "securityContext": RESTRICTED_CONTAINER,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
    )
    assert outcome == "Complete", log
    lines = log.splitlines()
    assert lines[0] == "10001"
    assert "Read-only file system" in log
    assert "CapEff:\t0000000000000000" in lines
    assert "NoNewPrivs:\t1" in lines
    assert "Seccomp:\t2" in lines  # filtering, RuntimeDefault
    assert "tmp-writable" in lines


def test_a_pod_reaches_a_service_by_its_dns_name(api: Client) -> None:
    script = (
        "getent hosts kubernetes.default.svc.cluster.local; "
        "perl -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => "
        '"kubernetes.default.svc.cluster.local:443", Timeout => 10) '
        'and print "connected\\n" or die "no connection: $!\\n"\''
    )
    outcome, log = run_job(api, "dns", script)
    assert outcome == "Complete", log
    assert "10.96.0.1" in log
    assert "connected" in log


def test_an_image_that_was_not_imported_is_never_pulled(api: Client) -> None:
    pod = {
        "metadata": {"name": "not-imported"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "docker.io/library/busybox:1.36",
                    "imagePullPolicy": "Never",
                }
            ]
        },
    }
    api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", pod)

    def waiting() -> str | None:
        found = api.get(f"/api/v1/namespaces/{NAMESPACE}/pods/not-imported")
        for status in found.get("status", {}).get("containerStatuses") or []:
            reason = (status.get("state", {}).get("waiting") or {}).get("reason")
            if reason and reason != "ContainerCreating":
                return str(reason)
        return None

    assert wait_for("the pod's waiting reason", waiting) == "ErrImageNeverPull"
    api.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/not-imported")


def test_a_claim_gets_a_volume_that_outlives_its_pod(api: Client, local_cluster: Path) -> None:
    claim = {
        "metadata": {"name": "kept"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    api.post(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims", claim)
    volume = {
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "kept"}}],
        "securityContext": RESTRICTED_POD,
        "container": {"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
    }
    outcome, log = run_job(api, "writes", "echo kept > /data/file && ls -ln /data", **volume)
    assert outcome == "Complete", log
    outcome, log = run_job(api, "reads", "cat /data/file", **volume)
    assert outcome == "Complete", log
    assert log.strip() == "kept"
    bound = api.get(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/kept")
    pv = api.get(f"/api/v1/persistentvolumes/{bound['spec']['volumeName']}")
    path = Path(pv["spec"]["local"]["path"])
    assert path.parent == Layout(local_cluster).volumes
    assert (path / "file").read_text() == "kept\n"
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0][
        "values"
    ] == [NODE_NAME]


def test_the_host_sees_none_of_the_nodes_network_or_mounts(local_cluster: Path) -> None:
    """The bridge, the pods' interfaces, kube-proxy's rules and every mount of the node are
    in its own namespaces: present there, absent from the host's view."""
    holder = procs.running(Layout(local_cluster).pid_file("holder"))
    assert holder is not None
    inside = ["nsenter", f"--target={holder.pid}", "--net", "--mount", "--"]

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    assert f" {BRIDGE}:" in run(*inside, "ip", "-o", "link")
    assert "KUBE-SERVICES" in run(*inside, "iptables-save", "-t", "nat")
    assert str(local_cluster) in run(*inside, "cat", "/proc/self/mountinfo")
    assert f" {BRIDGE}:" not in run("ip", "-o", "link")
    assert str(local_cluster) not in Path("/proc/self/mountinfo").read_text()
    assert "/run/containerd" not in Path("/proc/self/mountinfo").read_text()
