"""The Kubernetes API, for the few things the tools do outside the engine: read what the stack
deployed, run one pod, read its log. The official client (it speaks every kubeconfig,
exec plugins of managed clusters included), behind one typed door that deals in plain dicts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException


class KubeError(RuntimeError):
    """The API refused or the object is not there; the message says which."""


@dataclass
class Kube:
    api: Any

    @classmethod
    def connect(cls, kubeconfig: Path | None = None, context: str | None = None) -> Kube:
        """The cluster of `kubeconfig` (else KUBECONFIG or ~/.kube/config) and `context`."""
        try:
            api = config.new_client_from_config(
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
        except (config.ConfigException, OSError) as error:
            raise KubeError(f"no usable kubeconfig: {error}") from None
        return cls(api)

    def _plain(self, obj: object) -> dict[str, Any]:
        result: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return result

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        try:
            return fn(*args, **kwargs)
        except ApiException as error:
            raise KubeError(f"{what}: {error.status} {error.reason}: {error.body}") from None

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        batch = client.BatchV1Api(self.api)
        found = self._call(f"job {namespace}/{name}", batch.read_namespaced_job, name, namespace)
        return self._plain(found)

    def jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        batch = client.BatchV1Api(self.api)
        found = self._call(
            f"jobs in {namespace}",
            batch.list_namespaced_job,
            namespace,
            label_selector=selector,
        )
        return [self._plain(item) for item in found.items]

    def create_job(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        batch = client.BatchV1Api(self.api)
        made = self._call(
            f"creating a job in {namespace}", batch.create_namespaced_job, namespace, dict(body)
        )
        return self._plain(made)

    def delete_job(self, namespace: str, name: str) -> None:
        batch = client.BatchV1Api(self.api)
        try:
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise KubeError(f"deleting job {namespace}/{name}: {error.reason}") from None

    def wait_for_job(self, namespace: str, name: str, timeout: float) -> dict[str, Any]:
        """The Job once it completed or failed (its conditions say which); KubeError after
        `timeout` seconds, which only guards against a hang."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(namespace, name)
            if job_ended(job, "Complete") or job_ended(job, "Failed"):
                return job
            if time.monotonic() > deadline:
                raise KubeError(f"job {namespace}/{name} did not finish in {timeout:g} s")
            time.sleep(1)

    def job_log(self, namespace: str, name: str) -> str:
        """What the newest pod of a Job printed."""
        core = client.CoreV1Api(self.api)
        pods = self._call(
            f"pods of job {namespace}/{name}",
            core.list_namespaced_pod,
            namespace,
            label_selector=f"job-name={name}",
        ).items
        if not pods:
            return ""
        newest = max(pods, key=lambda p: p.metadata.creation_timestamp)
        # Every container, in the order they ran (as `kubectl logs --all-containers`): the
        # backup a Flyway attempt takes first runs in an init container of its pod.
        containers = [*(newest.spec.init_containers or []), *newest.spec.containers]
        texts: list[str] = []
        failed: KubeError | None = None
        for container in containers:
            try:
                texts.append(self._pod_log(namespace, newest.metadata.name, container.name))
            except KubeError as error:  # one that never started has no log yet
                failed = error
        if failed is not None and not texts:
            raise failed
        return "".join(texts)

    def _pod_log(self, namespace: str, pod: str, container: str) -> str:
        # The raw bytes: the client would otherwise parse a log that is one JSON document
        # (Flyway's -outputType=json) and hand back its Python repr.
        response = self._call(
            f"log of {container} in pod {namespace}/{pod}",
            client.CoreV1Api(self.api).read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            _preload_content=False,
        )
        return bytes(response.data).decode("utf-8", errors="replace")


def job_ended(job: Mapping[str, Any], how: str) -> bool:
    """The Job's `Complete` or `Failed` condition is true."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == how and c.get("status") == "True" for c in conditions)
