"""The few lines a reviewer needs from a preview: whether Flyway runs, why, and which
migrations are new to the stack. A replaced Job's full diff runs to hundreds of lines of
server-set fields; this says what matters in three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi import automation as auto

JOB_TYPE = "kubernetes:batch/v1:Job"
MIGRATION_JOB_URN = f"tradestream:database:MigrationJob${JOB_TYPE}::"
"""In the migration Job's URN: the grants Job is a Job too, of another component."""
_DECIDING = {"create", "update", "replace", "create-replacement", "same"}
STACK_TYPE = "pulumi:pulumi:Stack"
MIGRATIONS_DIGEST = "tradestream.io/migrations-digest"
CONFIG_DIGEST = "tradestream.io/flyway-config-digest"


@dataclass(frozen=True)
class JobStep:
    """What the engine plans for the migration Job, with its digest annotations."""

    op: str
    old: Mapping[str, str]
    new: Mapping[str, str]


def _annotations(state: auto.events.StepEventStateMetadata | None) -> dict[str, str]:
    if state is None:
        return {}
    metadata = (state.inputs or {}).get("metadata") or {}
    return {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}


def collect(events: Iterable[auto.EngineEvent]) -> tuple[JobStep | None, list[str] | None]:
    """The Job's step and the scripts the previewed program packages, from engine events."""
    job: JobStep | None = None
    scripts: list[str] | None = None
    for event in events:
        pre = event.resource_pre_event
        if pre is not None and MIGRATION_JOB_URN in pre.metadata.urn:
            step = pre.metadata
            op = str(step.op.value)
            # A replacement shows as several steps; the one that compares old and new counts.
            if job is None or op in _DECIDING:
                job = JobStep(op, _annotations(step.old), _annotations(step.new))
        done = event.res_outputs_event
        if done is not None and done.metadata.type == STACK_TYPE and done.metadata.new:
            scripts = script_names((done.metadata.new.outputs or {}).get("migrations"))
    return job, scripts


def script_names(listed: Any) -> list[str]:  # noqa: ANN401 (a stack output, untyped JSON)
    """The `script` of each entry of the `migrations` stack output."""
    if not isinstance(listed, list):
        return []
    return [str(entry["script"]) for entry in listed if isinstance(entry, dict)]


def review(
    stack: str, job: JobStep | None, deployed: Sequence[str], planned: Sequence[str] | None
) -> list[str]:
    """Lines for the log or a pull-request comment."""
    if job is None:
        return [f"{stack}: no migration Job in this program"]
    if job.op == "same":
        return [f"{stack}: the migration Job is unchanged; Flyway does not run"]
    reasons = ["the stack has no migration Job yet"] if job.op == "create" else []
    for key, label in ((MIGRATIONS_DIGEST, "migration files"), (CONFIG_DIGEST, "Job settings")):
        before, after = job.old.get(key), job.new.get(key)
        if job.op != "create" and before != after:
            reasons.append(
                f"{label} changed ({(before or 'none')[:12]} -> {(after or 'none')[:12]})"
            )
    why = "; ".join(reasons) or "the last run did not complete"
    lines = [f"{stack}: the migration Job will be {_verb(job.op)}: Flyway runs because {why}"]
    if planned is not None:
        new = [script for script in planned if script not in set(deployed)]
        lines.append(
            f"{stack}: migrations new to this stack: {', '.join(new)}"
            if new
            else f"{stack}: no migration is new to this stack (Flyway finds nothing to apply)"
        )
    return lines


def _verb(op: str) -> str:
    return {"create": "created", "replace": "replaced", "create-replacement": "replaced"}.get(
        op, op
    )
