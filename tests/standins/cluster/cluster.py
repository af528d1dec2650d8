"""Helpers for tests against a running local cluster: the CLI, objects, and waiting."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from standins.cluster import podlogs
from standins.cluster.api import ApiError, Client
from standins.cluster.layout import REPO_ROOT, Layout

T = TypeVar("T")
Obj = dict[str, Any]
WAIT = 600.0
"""How long any cluster event may take: generous, since the machine may be loaded."""


def cli(state: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "standins.cluster", *args, "--state", str(state)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Cluster:
    layout: Layout
    api: Client
    namespace: str

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float = WAIT) -> T:
        """Poll `probe` until it returns a value; fail with the agent's log tail if never."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            try:
                value = probe()
            except ApiError:
                value = None
            if value is not None:
                return value
            if time.monotonic() > deadline:
                log = self.layout.log_file("agent")
                tail = "\n".join(log.read_text().splitlines()[-30:]) if log.is_file() else ""
                raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s\n{tail}")
            pause.wait(0.5)

    def create_job(self, name: str, pod_spec: Obj, *, backoff_limit: int = 0) -> None:
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {"backoffLimit": backoff_limit, "template": {"spec": pod_spec}},
        }
        self.api.post(f"/apis/batch/v1/namespaces/{self.namespace}/jobs", job)

    def job_outcome(self, name: str) -> str:
        """Complete or Failed, once the Job has one of those conditions."""

        def probe() -> str | None:
            job = self.api.get(f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}")
            for condition in job.get("status", {}).get("conditions") or []:
                if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
                    return str(condition["type"])
            return None

        return self.wait(f"Job {name} to finish", probe)

    def explain_pod(self, pod: Obj) -> str:
        """A pod as the reader of a failed assertion needs it: its status and log tails."""
        name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
        status = pod.get("status", {})
        lines = [f"pod {name}: {status.get('phase')} {status.get('message', '')}"]
        for c in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
            lines.append(f"  {c['name']}: {c.get('state')}")
            path = self.layout.container_log(self.namespace, name, uid, c["name"])
            if path.is_file():
                lines += ["    " + line for line in path.read_text().splitlines()[-15:]]
        return "\n".join(lines)

    def explain(self, job: str) -> str:
        return "\n".join(self.explain_pod(pod) for pod in self.job_pods(job))

    def job_pods(self, name: str) -> list[Obj]:
        found: list[Obj] = self.api.get(
            f"/api/v1/namespaces/{self.namespace}/pods", {"labelSelector": f"job-name={name}"}
        )["items"]
        return found

    def create_pod(self, name: str, spec: Obj) -> None:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        self.api.post(f"/api/v1/namespaces/{self.namespace}/pods", pod)

    def pod(self, name: str) -> Obj | None:
        return self.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/pods/{name}")

    def delete_pod(self, name: str) -> None:
        """Delete a pod and wait until it is gone (its processes killed, its deletion done)."""
        self.api.delete(f"/api/v1/namespaces/{self.namespace}/pods/{name}")
        self.wait(f"pod {name} to be gone", lambda: True if self.pod(name) is None else None)

    def pod_phase(self, name: str, *phases: str) -> Obj:
        def probe() -> Obj | None:
            pod = self.pod(name)
            return pod if pod and pod.get("status", {}).get("phase") in phases else None

        return self.wait(f"pod {name} to be {' or '.join(phases)}", probe)

    def log(self, pod: str, container: str) -> str:
        """The kept log of the newest pod of that name, as `localcluster logs` reads it."""
        return podlogs.pod_logs(self.layout, self.namespace, pod, container)

    def wait_for_log(self, pod: str, container: str, text: str) -> str:
        """The container's log once it contains `text`."""

        def probe() -> str | None:
            try:
                log = self.log(pod, container)
            except podlogs.LogsNotFoundError:
                return None
            return log if text in log else None

        return self.wait(f"{text!r} in the log of {pod}/{container}", probe)
