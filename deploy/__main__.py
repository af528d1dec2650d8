"""Run the program with the real Pulumi engine for one stack.

    python -m deploy {preview|up|refresh|destroy|outputs|logs|repair|restore|drift} STACK [--yes]
    python -m deploy {check|timeout|namespace|check-secrets|down} STACK

Every stack runs from a workspace copy of its committed stack file, so nothing is written
into the committed file. `local` brings up its own database and cluster first and keeps its
workspace, state and passphrase outside the clone; other stacks keep their workspace in
`.pulumi-state/workspaces/<stack>/`, their state there too unless PULUMI_BACKEND_URL is set, and
deploy to the current Kubernetes context. Whose passphrase and which salt: deploy/passphrase.py.
After `up`, and whenever it fails, the backup's and Flyway's logs are printed and kept in
`.pulumi-state/logs/<stack>-flyway.log`, so the error text survives the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pulumi import automation as auto

from components.inputs import check_inputs
from components.jobs import backup_spec
from components.jobs.flyway import flyway_command
from components.migrations import MigrationError
from components.migrations.report import summary
from components.settings import Settings, SettingsError
from components.settings.stackfile import read_stack_file
from deploy import drift, restore, review
from deploy.diagnostics import Diagnostics, ProgressFilter, explain
from deploy.engine import (
    ROOT,
    STACK_DIR,
    EngineError,
)
from deploy.joblogs import flyway_log, newest_job, show_flyway_log
from deploy.kube import KubeError, job_ended
from deploy.maintenance import refuse_while_migrating, run_pod
from deploy.passphrase import SecretsError, decide, passphrase_hint
from deploy.protection import (
    deployed_value,
    edited_migrations,
    protected_changes,
    recovery_into_a_deployed_cluster,
)
from deploy.target import LOCAL_STACKS, STATE, Target, local_setup, open_target
from deploy.waits import too_long, waits


def show_outputs(stack: auto.Stack) -> None:
    print("--- outputs ---")
    for key, output in sorted(stack.outputs().items()):
        value: Any = "[secret]" if output.secret else output.value
        print(f"{key}: {json.dumps(value) if not isinstance(value, str) else value}")


@dataclass
class Operation:
    """One engine operation's output: progress lines as the CLI prints them, and its events,
    whose diagnostics are printed once if it fails."""

    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    refresh: bool = False
    """Read the cluster first (`--refresh`): what was changed there by hand is put back."""
    events: list[auto.EngineEvent] = field(default_factory=list)
    output: ProgressFilter = field(default_factory=lambda: ProgressFilter(print))

    def on_event(self, event: auto.EngineEvent) -> None:
        self.diagnostics(event)
        self.events.append(event)


def failed_backups(target: Target) -> list[str]:
    """The backups to take again before this deploy's Flyway run, said once, naming each:
    those a deploy left failed in state (the engine would otherwise keep the failed one, and
    `up` would stop on it again), and the operator's Backup a failed migration attempt ran
    after (a retry migrates after a backup of what was written since, and the older backup
    stays in the store)."""
    deployment = target.stack.export_stack().deployment or {}
    resources = deployment.get("resources", [])
    urns = backup_spec.failed_backups(resources)
    for urn in urns:
        print(f"the backup {urn.rsplit('::', 1)[-1]} failed in the last deploy: taking a new one")
    completed = backup_spec.backups_before_a_failed_attempt(resources)
    if completed and last_attempt_failed(target):  # the cluster is asked only where it matters
        for urn in completed:
            print(
                f"the last migration attempt failed after the backup {urn.rsplit('::', 1)[-1]}:"
                " taking a new one before the retry"
            )
            urns.append(urn)
    return urns


def last_attempt_failed(target: Target) -> bool:
    """The newest migration Job in the state failed, as the cluster reports it now."""
    job = newest_job(target.stack)
    if job is None:
        return False
    try:
        found = target.kube().job(*job)
    except KubeError:
        return False  # gone from the cluster: nothing to say about it
    return job_ended(found, "Failed")


def preview(target: Target, operation: Operation, replace: list[str] | None = None) -> None:
    """`pulumi preview --diff`, then the review lines: whether Flyway runs, why, and what.
    `replace`: the backups to take again, when the caller found them already."""
    deployed = review.script_names(getattr(target.stack.outputs().get("migrations"), "value", None))
    target.stack.preview(
        on_output=operation.output,
        diff=True,
        on_event=operation.on_event,
        refresh=operation.refresh,
        replace=(failed_backups(target) if replace is None else replace) or None,
    )
    job, planned = review.collect(operation.events)
    lines = review.review(target.name, job, deployed, planned)
    print("--- review ---", *lines, sep="\n")
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{target.name}-review.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def refuse_protected_changes(
    target: Target, settings: Settings, last: Mapping[str, object]
) -> str | None:
    """Why this change must not run, when it would delete or replace the protected database
    while it is still protected; checked before the engine starts, so nothing at all is
    changed. Once the protection is released on purpose, the change goes on: the engine
    then only forgets what is retained on delete. `last`: the last deploy's outputs."""
    keys = protected_changes(last, settings)
    if not keys:
        return None
    protected = protected_urns(target)
    if not protected:
        return None
    changes = ", ".join(f"{key} (deployed: {deployed_value(key, last)})" for key in keys)
    urns = " ".join(f"'{urn}'" for urn in protected)
    return (
        f"this change would delete or replace the database of record of {target.name}: "
        f"{changes} changed since the last deploy, and protectDatabase is on. Nothing was "
        "changed.\n  If that was not intended, set the key back in "
        f"stacks/Pulumi.{target.name}.yaml.\n  If it is deliberate, back the database up (see "
        "the README), then release the protection of what is deployed and deploy again; the "
        "old release, Cluster or namespace is then only forgotten (retained on delete) and "
        "stays in the cluster with its data until you delete it yourself:\n"
        f"    make unprotect STACK={target.name}\n"
        f"  or with the Pulumi CLI:\n    pulumi state unprotect --stack {target.name} --yes {urns}"
    )


def protected_urns(target: Target) -> list[str]:
    deployment = target.stack.export_stack().deployment or {}
    return [r["urn"] for r in deployment.get("resources", []) if r.get("protect")]


def confirm(question: str) -> bool:
    if os.environ.get("PULUMI_YES") or not sys.stdin.isatty():
        return bool(os.environ.get("PULUMI_YES"))
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


def run_preview(target: Target, _yes: bool, operation: Operation) -> int:
    preview(target, operation)
    return 0


def run_up(target: Target, yes: bool, operation: Operation) -> int:
    retake = failed_backups(target)
    if not (yes or target.is_local):
        preview(target, operation, retake)
        if not confirm(f"Deploy these changes to {target.name}?"):
            print("Nothing deployed.")
            return 1
        operation = Operation(refresh=operation.refresh)
    before = newest_job(target.stack)
    if operation.refresh:
        # The stack's declared fields win over another field manager's (server-side apply):
        # what was changed by hand is put back instead of failing with a conflict.
        workspace = target.stack.workspace
        workspace.env_vars = {**workspace.env_vars, PATCH_FORCE: "true"}
    try:
        target.stack.up(
            on_output=operation.output,
            on_event=operation.on_event,
            refresh=operation.refresh,
            replace=retake or None,
        )
    finally:
        show_flyway_log(target, before)
    show_outputs(target.stack)
    return 0


PATCH_FORCE: Final = "PULUMI_K8S_ENABLE_PATCH_FORCE"


def run_refresh(target: Target, _yes: bool, operation: Operation) -> int:
    target.stack.refresh(on_output=operation.output, on_event=operation.on_event)
    return 0


def run_destroy(target: Target, yes: bool, operation: Operation) -> int:
    if not (yes or target.is_local or confirm(f"Destroy what {target.name} deployed?")):
        return 1
    # The protected database of record stays, with its namespace and roles.
    target.stack.destroy(
        on_output=operation.output, on_event=operation.on_event, exclude_protected=True
    )
    return 0


def run_outputs(target: Target, _yes: bool, _operation: Operation) -> int:
    show_outputs(target.stack)
    return 0


def run_logs(target: Target, _yes: bool, _operation: Operation) -> int:
    text = flyway_log(target)
    print(text or f"no migration Job in the state of {target.name}", end="\n" * (text is None))
    return 0


def run_repair(target: Target, yes: bool, _operation: Operation) -> int:
    """`flyway repair` in the migration Job's pod: after a failed migration that left a
    failed row in Flyway's history (a script run outside a transaction), so that the fixed
    script can run. Refused while a migration runs; asks first on a protected stack."""
    job = newest_job(target.stack)
    if job is None:
        print(f"error: {target.name} has no migration Job yet; nothing to repair", file=sys.stderr)
        return 1
    namespace, name = job
    kube = target.kube()
    busy = refuse_while_migrating(kube, namespace, "app.kubernetes.io/component=migrations")
    if busy is not None:
        print(f"error: {busy}", file=sys.stderr)
        return 1
    protected = read_stack_file(ROOT, target.name).settings.protect_database
    question = f"Run flyway repair on the database of record of {target.name}?"
    if protected and not (yes or confirm(question)):
        print("Nothing repaired.")
        return 1
    finished = run_pod(
        kube,
        kube.job(namespace, name),
        "repair",
        flyway_command("repair"),
    )
    print(f"--- flyway repair: job {namespace}/{finished.job} (deleted) ---")
    print(finished.log.rstrip())
    if not finished.succeeded:
        print(f"error: flyway repair failed for {target.name}", file=sys.stderr)
        return 1
    print(f"{target.name}: repaired; fix the failed migration, then make up STACK={target.name}")
    return 0


def run_restore(target: Target, yes: bool, _operation: Operation) -> int:
    """Put back a dump the backup before a migration took (deploy/restore.py); the dump is
    named by RESTORE_BACKUP (`make restore BACKUP=`), else the newest."""
    job = newest_job(target.stack, "Backup")
    if job is None:
        print(
            f"error: {target.name} has no pg_dump backup Job: nothing to restore from (a "
            "CloudNativePG stack recovers a Cluster instead; see the README)",
            file=sys.stderr,
        )
        return 1
    kube = target.kube()
    protected = read_stack_file(ROOT, target.name).settings.protect_database
    return restore.restore(
        target.name,
        kube,
        kube.job(*job),
        wanted=os.environ.get("RESTORE_BACKUP") or None,
        confirm=confirm if protected and not yes else None,
    )


def run_drift(target: Target, _yes: bool, _operation: Operation) -> int:
    """Whether the cluster or the live database moved away from the last deploy
    (deploy/drift): 0 no drift, 1 drift, 2 the check itself failed."""
    stack = drift.Stack(target.name, target.stack, target.kube)
    return drift.check(stack, read_stack_file(ROOT, target.name).settings, STATE / "logs")


def run_unprotect(target: Target, yes: bool, _operation: Operation) -> int:
    """Release the protection of what the stack deployed, for a deliberate replacement of the
    database of record (a new Cluster, a recovery into one): the next `up` forgets what is
    retained on delete and protects again what the program declares protected. Asks first."""
    protected = protected_urns(target)
    if not protected:
        print(f"nothing in the state of {target.name} is protected")
        return 0
    print(f"protected in {target.name}:", *(f"  {urn}" for urn in protected), sep="\n")
    question = f"Release the protection of these {len(protected)} resources of {target.name}?"
    if not (yes or confirm(question)):
        print("Nothing changed.")
        return 1
    workspace = target.stack.workspace
    assert isinstance(workspace, auto.LocalWorkspace)  # noqa: S101 (open_stack makes one)
    env = {"PULUMI_HOME": workspace.pulumi_home} if workspace.pulumi_home else {}
    workspace.pulumi_command.run(
        ["state", "unprotect", "--all", "--yes", "--stack", target.name],
        workspace.work_dir,
        {**env, **workspace.env_vars},
    )
    print(
        f"released the protection of {len(protected)} resources of {target.name}; the next "
        "`make up` protects again what it deploys"
    )
    return 0


COMMANDS: dict[str, Callable[[Target, bool, Operation], int]] = {
    "preview": run_preview,
    "up": run_up,
    "refresh": run_refresh,
    "destroy": run_destroy,
    "outputs": run_outputs,
    "logs": run_logs,
    "repair": run_repair,
    "restore": run_restore,
    "drift": run_drift,
    "unprotect": run_unprotect,
}
CHECKS: Final = frozenset({"drift"})
"""Commands whose exit code 1 means what they found: failing to run at all is 2."""


def check(name: str) -> int:
    """The stack's inputs checked as the program checks them at preview, without the engine:
    its committed stack file, the migrations it would deploy, and waits a runner can hold."""
    try:
        settings = read_stack_file(ROOT, name).settings
        inputs = check_inputs(settings, ROOT, name)
    except (SettingsError, MigrationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    problem = too_long(name, waits(settings))
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"{name}: inputs OK ({summary(inputs.migrations)})")
    return 0


def timeout(name: str) -> int:
    """The CI deploy job's timeout in minutes, from the stack's own waits (for workflows)."""
    try:
        found = waits(read_stack_file(ROOT, name).settings)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    problem = too_long(name, found)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    print(found.job_minutes)
    return 0


def namespace(name: str) -> int:
    """The stack's namespace, from its committed stack file (for scripts and workflows)."""
    print(read_stack_file(ROOT, name).settings.namespace)
    return 0


def check_secrets(name: str) -> int:
    """Refuse, as `make` does against a shared backend, a stack whose committed salt or
    passphrase is missing: CI runs it before the Pulumi CLI."""
    stack_file = read_stack_file(ROOT, name)
    decide(
        name,
        salt=stack_file.salt,
        encrypted=stack_file.secret_keys,
        environ=os.environ,
        machine_local=name in LOCAL_STACKS,
        shared_backend=True,
    )
    print(f"{name}: the salt is committed in {STACK_DIR}/Pulumi.{name}.yaml; a passphrase is given")
    return 0


def run(command: str, name: str, *, yes: bool, refresh: bool = False) -> int:
    """One command for one stack; bad input is refused before anything starts."""
    if command in OFFLINE:
        return OFFLINE[command](name)
    failed = 2 if command in CHECKS else 1
    try:
        # Read as every tool reads it, before anything starts: the program refuses the same
        # things, but the CLI chokes on bad YAML with a trace of its own, and the local
        # stack's set-up needs the settings first.
        stack_file = read_stack_file(ROOT, name)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return failed
    operation = Operation(refresh=refresh)
    try:
        target = open_target(
            name,
            start=command in {"preview", "up", "refresh", "destroy", "repair", "restore", "drift"},
            stack_file=stack_file,
        )
        return _run(command, target, stack_file.settings, yes=yes, operation=operation)
    except auto.errors.CommandError as error:
        for message in explain(error, operation.diagnostics):
            print(f"error: {message}", file=sys.stderr)
        if (hint := passphrase_hint(name, str(error))) is not None:
            print(f"hint: {hint}", file=sys.stderr)
        print(f"error: `pulumi {command}` failed for {name}", file=sys.stderr)
        return failed


def _run(
    command: str, target: Target, settings: Settings, *, yes: bool, operation: Operation
) -> int:
    """A command on an opened stack, after the refusals that need its last deploy."""
    name = target.name
    if command in {"preview", "up"}:
        last = {key: output.value for key, output in target.stack.outputs().items()}
        refusals = [
            refuse_protected_changes(target, settings, last),
            recovery_into_a_deployed_cluster(last, settings),
        ]
        try:
            inputs = check_inputs(settings, ROOT, name)
        except MigrationError as error:
            refusals.append(str(error))
        else:
            refusals.extend(edited_migrations(last.get("migrations"), inputs.migrations, name))
        shown = [refusal for refusal in refusals if refusal]
        for refusal in shown:
            print(f"error: {refusal}", file=sys.stderr)
        if shown:
            return 1
    return COMMANDS[command](target, yes, operation)


def down(name: str) -> int:
    """Tear the local stacks' machine down: cluster, database and kept state."""
    if name not in LOCAL_STACKS:
        print(f"error: down is for the local stacks; use destroy for {name}", file=sys.stderr)
        return 2
    local_setup().down()
    print("local stacks removed: cluster stopped, databases and state deleted")
    return 0


OFFLINE: dict[str, Callable[[str], int]] = {
    "check": check,
    "timeout": timeout,
    "namespace": namespace,
    "check-secrets": check_secrets,
    "down": down,
}
"""Commands that run no stack."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=[*COMMANDS, *OFFLINE])
    parser.add_argument("stack")
    parser.add_argument("--yes", action="store_true", help="do not ask before changing anything")
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="preview, up: read the cluster first and put back what was changed there by hand",
    )
    args = parser.parse_args(argv)
    if not (ROOT / STACK_DIR / f"Pulumi.{args.stack}.yaml").is_file():
        known = " ".join(
            sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / STACK_DIR).glob("*"))
        )
        print(
            f"error: no stack file {STACK_DIR}/Pulumi.{args.stack}.yaml (stacks: {known})",
            file=sys.stderr,
        )
        return 2
    try:
        return run(args.command, args.stack, yes=args.yes, refresh=args.refresh)
    except (EngineError, SecretsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KubeError as error:
        print(f"error: the cluster refused or is out of reach: {error}", file=sys.stderr)
        return 2 if args.command in CHECKS else 1
    except Exception as error:
        if not _local_set_up_failed(error):
            raise
        # What failed has printed its own account above; this names the step.
        print(f"error: setting up the local stack failed: {error}", file=sys.stderr)
        return 2 if args.command in CHECKS else 1


def _local_set_up_failed(error: Exception) -> bool:
    """A step of the local set-up failed (a command, or the local PostgreSQL, whose modules are
    loaded only by that set-up)."""
    if isinstance(error, subprocess.CalledProcessError):
        return True
    postgres, clusterdb = (
        sys.modules.get("standins.postgres"),
        sys.modules.get("standins.clusterdb"),
    )
    return (postgres is not None and isinstance(error, postgres.PostgresError)) or (
        clusterdb is not None and isinstance(error, clusterdb.ClusterDatabaseError)
    )


if __name__ == "__main__":
    sys.exit(main())
