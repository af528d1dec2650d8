"""The few lines a reviewer needs from a preview: whether Flyway runs, why, and which
migrations are new to the stack. A replaced Job's full diff runs to hundreds of lines of
server-set fields; this says what matters in three.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from components import database
from components.access.grants import GRANTS_TYPE
from components.jobs.backup import BACKUP_TYPE
from components.jobs.migration import (
    CONFIG_DIGEST_ANNOTATION,
    MIGRATION_JOB_TYPE,
    MIGRATIONS_DIGEST_ANNOTATION,
)
from components.migrations import MigrationError, load_released_set
from components.settings import Settings, SettingsError
from components.settings.stackfile import read_stack_file
from deploy.engine import ROOT

JOB_TYPE = "kubernetes:batch/v1:Job"
MIGRATION_JOB_URN = f"{MIGRATION_JOB_TYPE}${JOB_TYPE}::"
"""In the migration Job's URN: the grants and backup Jobs are Jobs too, of other components."""
BACKUP_JOB_URN = f"{BACKUP_TYPE}${JOB_TYPE}::"
GRANTS_JOB_URN = f"{GRANTS_TYPE}${JOB_TYPE}::"
_DECIDING = {"create", "update", "replace", "create-replacement", "same"}
STACK_TYPE = "pulumi:pulumi:Stack"
MIGRATIONS_DIGEST = MIGRATIONS_DIGEST_ANNOTATION
CONFIG_DIGEST = CONFIG_DIGEST_ANNOTATION


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
        new = added(deployed, planned)
        lines.append(
            f"{stack}: migrations new to this stack: {', '.join(new)}"
            if new
            else f"{stack}: no migration is new to this stack (Flyway finds nothing to apply)"
        )
    return lines


def added(deployed: Sequence[str], planned: Sequence[str]) -> list[str]:
    """The planned scripts the stack has not deployed, in Flyway's order."""
    known = set(deployed)
    return [script for script in planned if script not in known]


def change_lines(
    stack: str, deployed: Sequence[str] | None, planned: Sequence[str], backup: str | None
) -> list[str]:
    """For a pull request, without running a preview: the migrations the change adds to what
    `stack` last deployed (its `migrations` output), and the backup taken before they run."""
    if deployed is None:
        lines = [
            f"`{stack}`: not deployed yet; the first deploy applies all {len(planned)} migrations"
        ]
        new = list(planned)
    else:
        new = added(deployed, planned)
        lines = [
            f"`{stack}`: migrations this change adds: " + ", ".join(f"`{n}`" for n in new)
            if new
            else f"`{stack}`: no migration is new to this stack"
        ]
    if new and backup:
        lines.append(f"`{stack}`: before Flyway runs, {backup}")
    return lines


def _backup_description(settings: Settings) -> str | None:
    if not settings.backup.before_migrate:
        return None
    return database.traits(settings).backup


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m deploy.review --stack S --deployed FILE`: FILE holds the stack's `migrations`
    output as `pulumi stack output migrations --json` prints it (`null` before a deploy)."""
    parser = argparse.ArgumentParser(prog="python -m deploy.review")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--deployed", type=Path, required=True)
    args = parser.parse_args(argv)
    text = args.deployed.read_text(encoding="utf-8").strip() if args.deployed.exists() else ""
    listed = json.loads(text) if text else None
    try:
        settings = read_stack_file(ROOT, args.stack).settings
        planned = load_released_set(
            ROOT / settings.migrations_dir, out_of_order=settings.flyway.out_of_order
        )
    except (SettingsError, MigrationError) as error:
        print(f"`{args.stack}`: {error}", file=sys.stderr)
        return 1
    deployed = script_names(listed) if listed is not None else None
    scripts = [f.path for f in planned.files if f.checksum is not None]
    for line in change_lines(args.stack, deployed, scripts, _backup_description(settings)):
        print(f"- {line}")
    return 0


def _verb(op: str) -> str:
    return {"create": "created", "replace": "replaced", "create-replacement": "replaced"}.get(
        op, op
    )


if __name__ == "__main__":
    sys.exit(main())
