"""The Jobs' locked-down pod, seen from inside: each Job's container as the program declares
it (pod and container securityContext, volumes, image), with only the command swapped for
a probe, runs under the kubelet with a read-only root filesystem, no effective capability,
no privilege escalation, seccomp filtering and the declared user."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest

from components.jobs.pod import RUN_AS
from standins import localstack
from standins.cluster.api import Client
from tests.engine.conftest import NewDeployment
from tests.engine.test_cloudnative_pg_crd import integral
from tests.program import run_program

pytestmark = pytest.mark.engine

PROBE = (
    "echo uid=$(id -u) gid=$(id -g); "
    "touch /probe-root-write 2>&1 || true; "
    "grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status"
)
WAIT = 600.0


def probe(kube: Client, namespace: str, name: str, template: dict[str, Any]) -> str:
    """Run `template` with the probe as its command; what it printed."""
    spec = copy.deepcopy(template["spec"])
    container = spec["containers"][0]
    container["command"] = ["sh", "-c", PROBE]
    container.pop("args", None)
    job = {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": {"spec": spec}}}
    kube.post(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)
    deadline, pause = time.monotonic() + WAIT, threading.Event()
    while True:
        found = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        if found.get("status", {}).get("succeeded") or found.get("status", {}).get("failed"):
            break
        assert time.monotonic() < deadline, f"the probe {name} did not finish"
        pause.wait(0.5)
    pods = kube.get(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"job-name={name}"})
    log = "".join(kube.log(namespace, pod["metadata"]["name"]) for pod in pods["items"])
    # With its pods: a finished pod still holds the claims it mounted (the backup's).
    kube.delete(
        f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", {"propagationPolicy": "Foreground"}
    )
    return log


def assert_locked_down(log: str) -> None:
    lines = log.splitlines()
    assert f"uid={RUN_AS} gid={RUN_AS}" in lines, log
    assert "Read-only file system" in log, log
    assert "CapPrm:\t0000000000000000" in lines, log
    assert "CapEff:\t0000000000000000" in lines, log
    assert "CapBnd:\t0000000000000000" in lines, log
    assert "NoNewPrivs:\t1" in lines, log
    assert "Seccomp:\t2" in lines, log


def test_flyway_and_the_backup_run_locked_down(new_deployment: NewDeployment, kube: Client) -> None:
    deployment = new_deployment()
    output, result = deployment.up()
    assert result is not None, output
    # Flyway reached the database by its Service's name, through the cluster's DNS.
    assert f"jdbc:postgresql://{deployment.server.location.host}:5432/" in output
    for role in ("migrationJobName", "backupName"):
        name = result.outputs[role].value
        job = kube.get(f"/apis/batch/v1/namespaces/{deployment.namespace}/jobs/{name}")
        template = job["spec"]["template"]
        template["metadata"] = {}  # the Job controller's labels belong to that Job
        assert_locked_down(probe(kube, deployment.namespace, f"probe-{name}", template))


def test_the_grants_job_runs_locked_down(kube: Client) -> None:
    """The in-cluster grants Job (staging's), in the local PostgreSQL image: the operator's
    is not here. The ConfigMap and Secrets it mounts or reads are made for it."""
    run = run_program("staging")
    template = integral(copy.deepcopy(run.grants_job().inputs["spec"]["template"]))
    namespace = "grants-probe"
    kube.create_if_missing("/api/v1/namespaces", {"metadata": {"name": namespace}})
    spec = template["spec"]
    spec["containers"][0]["image"] = localstack.stack_settings().backup.image
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            name = volume["configMap"]["name"] = "grants-sql"
            data = {item["key"]: "" for item in volume["configMap"].get("items", [])}
            kube.create_if_missing(
                f"/api/v1/namespaces/{namespace}/configmaps",
                {"metadata": {"name": name}, "data": data},
            )
        if "secret" in volume:
            name = volume["secret"]["secretName"]
            data = {item["key"]: "" for item in volume["secret"].get("items", [])}
            kube.create_if_missing(
                f"/api/v1/namespaces/{namespace}/secrets",
                {"metadata": {"name": name}, "stringData": data},
            )
    for env in spec["containers"][0].get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            kube.create_if_missing(
                f"/api/v1/namespaces/{namespace}/secrets",
                {"metadata": {"name": ref["name"]}, "stringData": {ref["key"]: "unused"}},
            )
            secret = kube.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
            if ref["key"] not in (secret.get("data") or {}):
                secret.setdefault("data", {})[ref["key"]] = "dW51c2Vk"
                kube.put(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}", secret)
    template["metadata"] = {}
    assert_locked_down(probe(kube, namespace, "probe-grants", template))
