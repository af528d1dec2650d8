"""What a pod's containers printed, read from the API server (pods/log) as `kubectl logs`
does: the API server asks the kubelet, which keeps each container's output while its pod
exists. For a Job: its newest pod; every container (init containers first) with a header
when there is more than one.
"""

from __future__ import annotations

from standins.cluster.api import Client, Obj


def _containers(pod: Obj) -> list[str]:
    spec = pod.get("spec", {})
    return [c["name"] for c in [*spec.get("initContainers", []), *spec.get("containers", [])]]


def pod_logs(api: Client, namespace: str, pod: str, container: str | None = None) -> str:
    """One container's output, or every container's with a `==> container <==` header."""
    if container:
        return api.log(namespace, pod, container)
    found = api.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
    names = _containers(found)
    if len(names) == 1:
        return api.log(namespace, pod, names[0])
    return "".join(f"==> {name} <==\n{api.log(namespace, pod, name)}" for name in names)


def newest_pod(api: Client, namespace: str, job: str) -> Obj:
    """The Job's newest pod; LookupError when it has none (any more)."""
    pods: list[Obj] = api.get(
        f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"job-name={job}"}
    )["items"]
    if not pods:
        raise LookupError(f"Job {namespace}/{job} has no pod (any more) to read a log from")
    return max(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))


def job_logs(
    api: Client, namespace: str, job: str, container: str | None = None
) -> tuple[str, str]:
    """(pod name, what it printed) of the Job's newest pod."""
    name = str(newest_pod(api, namespace, job)["metadata"]["name"])
    return name, pod_logs(api, namespace, name, container)
