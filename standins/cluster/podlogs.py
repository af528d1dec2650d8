"""Kept container logs: `<state>/logs/<namespace>/<pod>/<uid>/<container>.log`.

The agent keeps each container's output after its pod is gone (there is no kubelet to ask),
with a `pod.json` record of the pod's uid, labels and creation time, so a Job's newest pod
can be found even when the API server is down or the pod was deleted. Logs are kept per
pod uid: a pod recreated under the same name gets logs of its own, and a name means its
newest pod, by creation time. (Agents before uids kept `<pod>/<container>.log`; such a
directory still counts as one pod.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standins.cluster.api import ApiError, Client
from standins.cluster.layout import Layout
from standins.cluster.pods import POD_RECORD


class LogsNotFoundError(Exception):
    """No kept log matches; the message says what was looked for."""


@dataclass(frozen=True)
class _Run:
    """The logs of one pod (one uid) and its record."""

    name: str
    dir: Path
    record: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.record.get("uid") or self.dir.name)

    @property
    def age_key(self) -> tuple[str, float]:
        """Creation time, then when the record was written (creation has whole seconds)."""
        try:
            written = (self.dir / POD_RECORD).stat().st_mtime
        except OSError:
            written = 0.0
        return str(self.record.get("creationTimestamp") or ""), written


def _record(run_dir: Path) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads((run_dir / POD_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record


def _is_run(path: Path) -> bool:
    return (path / POD_RECORD).is_file() or any(path.glob("*.log"))


def _runs(layout: Layout, namespace: str, pod: str) -> list[_Run]:
    """Every pod of that name whose logs are kept."""
    pod_dir = layout.logs / namespace / pod
    if not pod_dir.is_dir():
        return []
    dirs = [pod_dir] if _is_run(pod_dir) else []
    dirs += [d for d in sorted(pod_dir.iterdir()) if d.is_dir() and _is_run(d)]
    return [_Run(pod, d, _record(d)) for d in dirs]


def _read(run: _Run, namespace: str, container: str | None) -> str:
    """One container's log, or all of the pod's (init containers first) with headers."""
    if container is not None:
        path = run.dir / f"{container}.log"
        if not path.is_file():
            raise LogsNotFoundError(
                f"no log kept for container {container!r} of {namespace}/{run.name}"
            )
        return path.read_text(errors="replace")
    rank = {name: i for i, name in enumerate(run.record.get("containers") or [])}
    logs = sorted(run.dir.glob("*.log"), key=lambda p: (rank.get(p.stem, len(rank)), p.name))
    if not logs:
        raise LogsNotFoundError(f"no logs kept for pod {namespace}/{run.name} in {run.dir}")
    if len(logs) == 1:
        return logs[0].read_text(errors="replace")
    return "".join(f"==> {p.stem} <==\n{p.read_text(errors='replace')}" for p in logs)


def pod_logs(
    layout: Layout,
    namespace: str,
    pod: str,
    container: str | None = None,
    *,
    uid: str | None = None,
) -> str:
    """The logs of the pod of that name with that uid, or else of its newest one."""
    runs = _runs(layout, namespace, pod)
    if uid is not None:
        runs = [r for r in runs if r.uid == uid]
    if not runs:
        which = f"pod {namespace}/{pod}" + (f" (uid {uid})" if uid else "")
        raise LogsNotFoundError(f"no logs kept for {which} in {layout.logs / namespace / pod}")
    return _read(max(runs, key=lambda r: r.age_key), namespace, container)


def _newest_from_api(layout: Layout, namespace: str, job: str) -> tuple[str, str] | None:
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
    return str(newest["metadata"]["name"]), str(newest["metadata"]["uid"])


def _newest_from_records(layout: Layout, namespace: str, job: str) -> tuple[str, str] | None:
    runs = [
        run
        for pod_dir in sorted((layout.logs / namespace).glob("*"))
        for run in _runs(layout, namespace, pod_dir.name)
        if job
        in (
            (run.record.get("labels") or {}).get("job-name"),
            (run.record.get("labels") or {}).get("batch.kubernetes.io/job-name"),
        )
    ]
    if not runs:
        return None
    newest = max(runs, key=lambda r: r.age_key)
    return newest.name, newest.uid


def job_logs(
    layout: Layout, namespace: str, job: str, container: str | None = None
) -> tuple[str, str]:
    """(pod name, logs) of the newest pod of a Job: asked of the API, else of the kept records."""
    found = _newest_from_api(layout, namespace, job) or _newest_from_records(layout, namespace, job)
    if found is None:
        raise LogsNotFoundError(f"no pod of Job {namespace}/{job} found (label job-name={job})")
    pod, uid = found
    return pod, pod_logs(layout, namespace, pod, container, uid=uid)
