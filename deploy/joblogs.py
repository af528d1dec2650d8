"""The logs of the Jobs a deploy ran (grants, backup, Flyway), read from the API server and
kept beside the state, with the hints that name a way on."""

from __future__ import annotations

from typing import Final

from pulumi import automation as auto

from deploy import review
from deploy.engine import ROOT
from deploy.hints import hints, stack_scripts
from deploy.kube import KubeError
from deploy.target import STATE, Target

JOB_ROLES: Final = {
    "Grants": review.GRANTS_JOB_URN,
    "Backup": review.BACKUP_JOB_URN,
    "Flyway": review.MIGRATION_JOB_URN,
}
"""The Jobs whose logs a deployer reads, in the order they run, by what their URNs hold."""


def newest_job(stack: auto.Stack, role: str = "Flyway") -> tuple[str, str] | None:
    """(namespace, name) of the newest Job of `role` the state records, failed ones included."""
    deployment = stack.export_stack().deployment or {}
    resources = deployment.get("resources", [])
    jobs = [
        r.get("outputs", {}).get("metadata", {})
        for r in resources
        if JOB_ROLES[role] in str(r.get("urn", ""))
    ]
    jobs = [m for m in jobs if m.get("name")]
    if not jobs:
        return None
    newest = max(jobs, key=lambda m: str(m.get("creationTimestamp", "")))
    return str(newest.get("namespace", "default")), str(newest["name"])


def job_log(target: Target, role: str = "Flyway") -> str | None:
    """The output of the newest Job of `role`, or None when there is none to read."""
    job = newest_job(target.stack, role)
    if job is None:
        return None
    namespace, name = job
    try:
        # From the API server (pods/log), as `kubectl logs` reads it, on every cluster.
        text = target.kube().job_log(namespace, name)
    except KubeError as error:
        text = f"(the Job's log cannot be read: {error})"
    return f"--- {role}: job {namespace}/{name} ---\n{text.rstrip()}\n"


def flyway_log(target: Target) -> str | None:
    """The logs of the Jobs that ran before Flyway (grants, backup) where the stack has them,
    then Flyway's."""
    parts = [text for role in JOB_ROLES if (text := job_log(target, role)) is not None]
    return "".join(parts) or None


def show_flyway_log(target: Target, before: tuple[str, str] | None) -> None:
    """The backup's and Flyway's logs after `up`; `before` is the Flyway Job the state held
    before it, so a run that created no new Job says that the log is of an earlier run."""
    text = flyway_log(target)
    if text is None:
        return
    if newest_job(target.stack) == before:
        text = f"(this deploy ran no migration Job; the last run's log follows)\n{text}"
    text += "".join(
        f"hint: {line}\n" for line in hints(text, stack_scripts(ROOT, target.name), target.name)
    )
    print(text, end="")
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{target.name}-flyway.log").write_text(text, encoding="utf-8")
