"""One pod outside the stack: the deployed migration Job's locked-down pod with another
command, awaited, its log printed, nothing left behind. Flyway's repair runs on it; so do
restores, drift checks and adoption, so all of them run as exactly what migrations run as
(the same image, login, volumes and hardening) and none needs a network path from where
the command is typed.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from deploy.kube import Kube, KubeError, job_ended

PURPOSE_LABEL: Final = "tradestream.io/maintenance"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
_CONTROLLER_LABELS: Final = (
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
)
"""Labels the Job controller puts on its pods: a copied template must not carry them."""


@dataclass(frozen=True)
class Finished:
    """A maintenance pod's end: whether it succeeded, and what it printed."""

    job: str
    succeeded: bool
    log: str


def maintenance_job(
    deployed: Mapping[str, Any],
    purpose: str,
    command: Sequence[str],
    *,
    deadline_seconds: int,
    image: str | None = None,
    env: Sequence[Mapping[str, Any]] | None = None,
    extra_env: Mapping[str, str] | None = None,
    drop_volumes: Collection[str] = (),
) -> dict[str, Any]:
    """A Job running `command` in the deployed Job's pod (pure): its image, env (plus `env`),
    volumes and security context as they are; no retry, a deadline, no annotations that
    would tie it to the deployed Job. Another program of the program's own (the backup's
    PostgreSQL client image) runs in the same pod with `image`, its `env` instead of the
    container's, and without the volumes it does not read (`drop_volumes`); `extra_env` is
    added to (or overrides in) the container's."""
    metadata = deployed["metadata"]
    template = copy.deepcopy(deployed["spec"]["template"])
    _drop_volumes(template["spec"], drop_volumes)
    labels = {
        k: v
        for k, v in (template["metadata"].get("labels") or {}).items()
        if k not in _CONTROLLER_LABELS
    }
    labels |= {PURPOSE_LABEL: purpose, COMPONENT_LABEL: "maintenance"}
    template["metadata"] = {"labels": labels}
    # One command: not what runs before each attempt of the deployed Job (its backup).
    template["spec"].pop("initContainers", None)
    (container,) = template["spec"]["containers"]
    container["command"] = list(command)
    container.pop("args", None)
    if image is not None:
        container["image"] = image
    if env is not None:
        container["env"] = [dict(var) for var in env]
    if extra_env:
        container["env"] = [
            *(e for e in container.get("env") or [] if e.get("name") not in extra_env),
            *({"name": k, "value": v} for k, v in extra_env.items()),
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"{metadata['name'][:40]}-{purpose}-",
            "namespace": metadata["namespace"],
            "labels": {
                **(metadata.get("labels") or {}),
                PURPOSE_LABEL: purpose,
                COMPONENT_LABEL: "maintenance",
            },
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "template": template,
        },
    }


def _drop_volumes(pod: dict[str, Any], names: Collection[str]) -> None:
    if not names:
        return
    pod["volumes"] = [v for v in pod.get("volumes") or [] if v["name"] not in names]
    for container in pod["containers"]:
        mounts = container.get("volumeMounts") or []
        container["volumeMounts"] = [m for m in mounts if m["name"] not in names]


def running(job: Mapping[str, Any]) -> bool:
    status = job.get("status") or {}
    return bool(status.get("active")) and not status.get("completionTime")


def run_pod(
    kube: Kube,
    deployed: Mapping[str, Any],
    purpose: str,
    command: Sequence[str],
    *,
    deadline_seconds: int = 900,
    image: str | None = None,
    env: Sequence[Mapping[str, Any]] | None = None,
    extra_env: Mapping[str, str] | None = None,
    drop_volumes: Collection[str] = (),
) -> Finished:
    """Run `command` once in a deployed Job's pod, wait for it, read its log, delete it.
    `image`, `env`, `extra_env` and `drop_volumes`: as `maintenance_job`."""
    body = maintenance_job(
        deployed,
        purpose,
        command,
        deadline_seconds=deadline_seconds,
        image=image,
        env=env,
        extra_env=extra_env,
        drop_volumes=drop_volumes,
    )
    namespace = body["metadata"]["namespace"]
    made = kube.create_job(namespace, body)
    name = str(made["metadata"]["name"])
    try:
        job = kube.wait_for_job(namespace, name, timeout=deadline_seconds + 120)
        log = kube.job_log(namespace, name)
    finally:
        kube.delete_job(namespace, name)
    return Finished(name, job_ended(job, "Complete"), log)


def refuse_while_migrating(kube: Kube, namespace: str, selector: str) -> str | None:
    """Why maintenance must wait: a migration Job of the stack is running."""
    try:
        busy = [j["metadata"]["name"] for j in kube.jobs(namespace, selector) if running(j)]
    except KubeError as error:
        return str(error)
    if busy:
        return (
            f"a migration Job is running in {namespace} ({', '.join(busy)}); wait for it to "
            "finish (make logs shows it), then run this again"
        )
    return None
