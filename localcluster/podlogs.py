"""Kept container logs: `<state>/logs/<namespace>/<pod>/<container>.log`.

The agent keeps each container's output after its pod is gone (there is no kubelet to ask),
with a `pod.json` record of the pod's labels, so a Job's newest pod can be found even when
the API server is down or the pod was deleted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localcluster.api import ApiError, Client
from localcluster.layout import Layout
from localcluster.pods import POD_RECORD


class LogsNotFoundError(Exception):
    """No kept log matches; the message says what was looked for."""


def _record(pod_dir: Path) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads((pod_dir / POD_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record


def pod_logs(layout: Layout, namespace: str, pod: str, container: str | None = None) -> str:
    """One container's log, or all of the pod's (init containers first) with headers."""
    pod_dir = layout.logs / namespace / pod
    if container is not None:
        path = pod_dir / f"{container}.log"
        if not path.is_file():
            raise LogsNotFoundError(f"no log kept for container {container!r} of {namespace}/{pod}")
        return path.read_text(errors="replace")
    rank = {name: i for i, name in enumerate(_record(pod_dir).get("containers") or [])}
    logs = sorted(pod_dir.glob("*.log"), key=lambda p: (rank.get(p.stem, len(rank)), p.name))
    if not logs:
        raise LogsNotFoundError(f"no logs kept for pod {namespace}/{pod} in {pod_dir}")
    if len(logs) == 1:
        return logs[0].read_text(errors="replace")
    return "".join(f"==> {p.stem} <==\n{p.read_text(errors='replace')}" for p in logs)


def _newest_from_api(layout: Layout, namespace: str, job: str) -> str | None:
    if not layout.kubeconfig.is_file():
        return None
    try:
        pods = Client.from_kubeconfig(layout.kubeconfig, timeout=15).get(
            f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"job-name={job}"}
        )["items"]
    except ApiError:
        return None
    if not pods:
        return None
    newest = max(
        pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"])
    )
    return str(newest["metadata"]["name"])


def _newest_from_records(layout: Layout, namespace: str, job: str) -> str | None:
    candidates = []
    for pod_dir in (layout.logs / namespace).glob("*"):
        labels = _record(pod_dir).get("labels") or {}
        if job in (labels.get("job-name"), labels.get("batch.kubernetes.io/job-name")):
            created = _record(pod_dir).get("creationTimestamp") or ""
            candidates.append((created, pod_dir.stat().st_mtime, pod_dir.name))
    return max(candidates)[2] if candidates else None


def job_logs(
    layout: Layout, namespace: str, job: str, container: str | None = None
) -> tuple[str, str]:
    """(pod name, logs) of the newest pod of a Job: asked of the API, else of the kept records."""
    pod = _newest_from_api(layout, namespace, job) or _newest_from_records(layout, namespace, job)
    if pod is None:
        raise LogsNotFoundError(f"no pod of Job {namespace}/{job} found (label job-name={job})")
    return pod, pod_logs(layout, namespace, pod, container)
