"""Drift: whether the cluster or the live database has moved away from what the stack deployed.

    make drift STACK=<stack>        (python -m deploy drift <stack>)

Three parts, each against the last deploy, never against the working copy (`make preview`
shows what the code would change):

- infrastructure: what `pulumi refresh` would change in the state, read from a refresh
  preview's events (nothing is written): resource, field, recorded value, live value;
- history: Flyway's `info` and `validate` in the migration Job's own pod, with the files it
  deployed: pending, failed, missing and changed migrations;
- schema: the live schema, read inside the cluster by the backup's PostgreSQL client in that
  pod, against the schema the deployed migrations make on a throwaway PostgreSQL with the
  privilege model, as objects (table, column, index, constraint, grant, ...).

Pods run on the one mechanism for a pod outside the stack (`deploy.maintenance.run_pod`), so
no network path from where the check runs to the database is needed. Exit code: 0 no drift,
1 drift, 2 the check itself failed (`report.py`).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pulumi import automation as auto

from components.settings import Settings
from deploy import review
from deploy.diagnostics import Diagnostics, explain
from deploy.drift import history, infra, pods, schema
from deploy.drift.report import Outcome, Section, exit_code, render, summary
from deploy.kube import Kube, KubeError
from deploy.maintenance import refuse_while_migrating, run_pod

MIGRATION_SELECTOR: Final = "app.kubernetes.io/component=migrations"
INFRASTRUCTURE: Final = "the stack's state (recorded) against the cluster (live)"
HISTORY: Final = "Flyway's history in the live database against the deployed migrations"
MINIMUM_DEADLINE_SECONDS: Final = 300


@dataclass(frozen=True)
class Stack:
    """What the check needs of an opened stack: its name, engine handle and cluster."""

    name: str
    stack: auto.Stack
    kube: Callable[[], Kube]


def _resources(stack: auto.Stack) -> list[dict[str, Any]]:
    deployment = stack.export_stack().deployment or {}
    return list(deployment.get("resources") or [])


def migration_job(resources: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest migration Job the state records, as deployed (its outputs)."""
    jobs = [
        dict(r.get("outputs") or {})
        for r in resources
        if review.MIGRATION_JOB_URN in str(r.get("urn"))
    ]
    jobs = [job for job in jobs if (job.get("metadata") or {}).get("name") and "spec" in job]
    if not jobs:
        return None
    return max(jobs, key=lambda job: str(job["metadata"].get("creationTimestamp", "")))


def check_infrastructure(target: Stack) -> tuple[Section, list[infra.ResourceDrift]]:
    """A refresh preview: what a refresh would change, nothing written."""
    events: list[auto.EngineEvent] = []
    diagnostics = Diagnostics()

    def on_event(event: auto.EngineEvent) -> None:
        diagnostics(event)
        events.append(event)

    output: list[str] = []
    try:
        target.stack.refresh(preview_only=True, on_event=on_event, on_output=output.append)
    except auto.errors.CommandError as error:
        reasons = explain(error, diagnostics) or [str(error).strip().splitlines()[-1]]
        return Section("infrastructure", INFRASTRUCTURE, Outcome.FAILED, reasons), []
    drifts = infra.collect(events)
    if not drifts:
        count = sum(1 for e in events if e.res_outputs_event is not None)
        return Section(
            "infrastructure",
            INFRASTRUCTURE,
            Outcome.CLEAN,
            [f"all {count} resources of the state are as recorded"],
        ), []
    findings = [line for drift in drifts for line in drift.lines()]
    return (
        Section(
            "infrastructure",
            INFRASTRUCTURE,
            Outcome.DRIFT,
            findings,
            infra.clears(drifts, target.name),
        ),
        drifts,
    )


def deadline(settings: Settings) -> int:
    """How long a check's pod may take: Flyway's own connection retries, and room to start."""
    retries = settings.flyway.connect_retries * settings.flyway.connect_retries_interval
    return max(MINIMUM_DEADLINE_SECONDS, retries + 180)


def check_history(target: Stack, kube: Kube, job: Mapping[str, Any], settings: Settings) -> Section:
    finished = run_pod(
        kube,
        job,
        pods.HISTORY_PURPOSE,
        pods.HISTORY_COMMAND,
        deadline_seconds=deadline(settings),
    )
    compared = f"{HISTORY} (`{pods.command_line(pods.HISTORY_COMMAND)}`)"
    try:
        found = history.read(finished.log)
    except history.HistoryError as error:
        return Section("history", compared, Outcome.FAILED, [str(error)])
    if not found.findings:
        line = (
            f"{found.applied} migrations applied, at version {found.schema_version or '-'}: "
            "none pending, failed, missing or changed"
        )
        return Section("history", compared, Outcome.CLEAN, [line])
    return Section(
        "history",
        compared,
        Outcome.DRIFT,
        [finding.line() for finding in found.findings],
        history.clears(found.findings, target.name),
    )


def check_schema(
    target: Stack,
    kube: Kube,
    job: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]],
    settings: Settings,
) -> Section:
    from deploy.drift import expected  # noqa: PLC0415 (the throwaway server: dev requirements)

    finished = run_pod(
        kube,
        job,
        pods.SCHEMA_PURPOSE,
        pods.SCHEMA_COMMAND,
        deadline_seconds=deadline(settings),
        image=settings.backup.image,
        env=pods.libpq_env(job),
        drop_volumes={pods.MIGRATIONS_VOLUME},
    )
    compared = "the live schema against the deployed migrations on a throwaway PostgreSQL"
    try:
        live = schema.parse(finished.log)
        made = expected.build(job, resources, settings)
    except (schema.CatalogError, *expected.SETUP_ERRORS) as error:
        return Section("schema", compared, Outcome.FAILED, [str(error)])
    compared = (
        f"the live schema (PostgreSQL {live.server_version.split()[0]}) against the "
        f"{made.files} deployed migration files applied to a throwaway PostgreSQL "
        f"{made.snapshot.server_version.split()[0]} with the privilege model"
    )
    differences = schema.compare(made.snapshot, live)
    if not differences:
        count = len(live.objects)
        return Section(
            "schema", compared, Outcome.CLEAN, [f"all {count} objects as the migrations make them"]
        )
    findings = ["+ only in the live database, - only made by the migrations, ~ differs"]
    findings += [difference.line() for difference in differences]
    clears = [
        "undo it by hand (the hint above, run as the migrator), or keep it: a new migration "
        f"that makes it (`make migrations-new DESC=...`), then `make up STACK={target.name}`",
    ]
    hints = schema.hint_statements(differences, made.snapshot)
    return Section("schema", compared, Outcome.DRIFT, findings, clears, hints)


def _skipped(name: str, compared: str, why: str) -> Section:
    return Section(name, compared, Outcome.SKIPPED, [why])


def _failed(name: str, compared: str, why: str) -> Section:
    return Section(name, compared, Outcome.FAILED, [why])


def check(target: Stack, settings: Settings, logs: Path) -> int:
    """The whole check, printed part by part and kept in `logs/<stack>-drift.txt` (and
    `.json` for workflows); returns the exit code."""
    print(f"=== drift check of {target.name} ===", flush=True)
    sections: list[Section] = []

    def done(section: Section) -> None:
        sections.append(section)
        print("\n".join(section.lines()), flush=True)

    resources = _resources(target.stack)
    if not resources:
        done(_failed("infrastructure", INFRASTRUCTURE, f"{target.name} has deployed nothing yet"))
        return _finish(target.name, sections, logs)
    section, drifts = check_infrastructure(target)
    done(section)
    for part in _pod_parts(target, settings, resources, drifts):
        done(part())
    return _finish(target.name, sections, logs)


def _pod_parts(
    target: Stack,
    settings: Settings,
    resources: Sequence[Mapping[str, Any]],
    drifts: Sequence[infra.ResourceDrift],
) -> list[Callable[[], Section]]:
    """The history and schema parts, or why they cannot run now."""
    schema_compared = "the live schema against the deployed migrations"
    job = migration_job(resources)
    why: str | None = None
    outcome = _failed
    if job is None:
        why = f"{target.name} has no migration Job in its state; make up STACK={target.name}"
    else:
        touched = infra.touches(drifts, pods.needs(job))
        if touched:
            why = (
                f"not checked: its pod reads {', '.join(touched)}, which differ from what was "
                "deployed (above); clear that first"
            )
            outcome = _skipped
    if why is not None or job is None:
        reason = why or ""
        return [
            lambda: outcome("history", HISTORY, reason),
            lambda: outcome("schema", schema_compared, reason),
        ]
    try:
        kube = target.kube()
        busy = refuse_while_migrating(kube, str(job["metadata"]["namespace"]), MIGRATION_SELECTOR)
    except KubeError as error:
        busy = f"the cluster refused or is out of reach: {error}"
    if busy is not None:
        return [lambda: _failed("history", HISTORY, busy), lambda: _failed("schema", "", busy)]

    def guarded(name: str, compared: str, run: Callable[[], Section]) -> Callable[[], Section]:
        def part() -> Section:
            try:
                return run()
            except KubeError as error:
                return _failed(name, compared, f"the cluster refused or is out of reach: {error}")
            except pods.PodError as error:
                return _failed(name, compared, str(error))
            except Exception as error:  # a failed check exits 2, with its trace
                traceback.print_exc()
                return _failed(name, compared, f"the check failed: {error!r}")

        return part

    return [
        guarded("history", HISTORY, lambda: check_history(target, kube, job, settings)),
        guarded(
            "schema",
            schema_compared,
            lambda: check_schema(target, kube, job, resources, settings),
        ),
    ]


def _finish(stack: str, sections: Sequence[Section], logs: Path) -> int:
    text = render(stack, sections)
    print(text.splitlines()[-1], flush=True)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{stack}-drift.txt").write_text(text, encoding="utf-8")
    (logs / f"{stack}-drift.json").write_text(summary(stack, sections) + "\n", encoding="utf-8")
    return exit_code(sections)


__all__ = ["Stack", "check"]
