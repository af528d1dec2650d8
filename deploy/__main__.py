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
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pulumi import automation as auto

from components.inputs import check_inputs
from components.jobs.flyway import flyway_command
from components.migrations import MigrationError
from components.migrations.report import summary
from components.settings import Settings, SettingsError
from components.settings.stackfile import StackFile, read_stack_file
from deploy import drift, restore, review
from deploy.diagnostics import Diagnostics, ProgressFilter, explain
from deploy.engine import (
    ROOT,
    STACK_DIR,
    Backend,
    Engine,
    EngineError,
    find_engine,
    open_stack,
    prepare_workspace,
)
from deploy.hints import hints, stack_scripts
from deploy.kube import Kube, KubeError
from deploy.maintenance import refuse_while_migrating, run_pod
from deploy.passphrase import BACKEND_VARIABLE, SecretsError, decide, passphrase_hint
from deploy.protection import deployed_value, edited_migrations, protected_changes
from deploy.waits import too_long, waits

if TYPE_CHECKING:
    from types import ModuleType

STATE = ROOT / ".pulumi-state"
LOCAL: Final = "local"
"""The machine-local stack (standins.localstack.STACK). Its set-up is imported only to run it,
so the commands CI runs for the other stacks need nothing beyond requirements.txt."""


def _local() -> ModuleType:
    """standins.localstack, which needs the stand-ins' own dependencies (psycopg)."""
    from standins import localstack  # noqa: PLC0415

    return localstack


@dataclass(frozen=True)
class Target:
    """A stack ready to run, and how to read its Flyway log."""

    name: str
    stack: auto.Stack
    is_local: bool
    kubeconfig: Path | None = None
    """The local stack's cluster; other stacks use KUBECONFIG and their kubernetes:context."""
    context: str | None = None

    def kube(self) -> Kube:
        return Kube.connect(self.kubeconfig, self.context)


def open_target(
    name: str, *, start: bool, stack_file: StackFile, environ: Mapping[str, str] | None = None
) -> Target:
    """Select the stack in a workspace copy outside the committed files, with the passphrase
    and salt `passphrase.decide` chooses (refused before anything is written or started); for
    `local`, start (or find) its database and cluster when `start`."""
    environ = os.environ if environ is None else environ
    is_local = name == LOCAL
    engine = find_engine(local_provider=is_local)
    shared_backend = bool(environ.get(BACKEND_VARIABLE)) and not is_local
    secrets = decide(
        name,
        salt=stack_file.salt,
        encrypted=stack_file.secret_keys,
        environ=environ,
        machine_local=is_local,
        shared_backend=shared_backend,
        pulumi=_pulumi_command(engine),
    )
    if is_local:
        local = _local()
        state = local.state_dir()
        workspace = prepare_workspace(state / "workspace", name)
        kubeconfig = local.start_cluster() if start else local.kubeconfig()
        database = local.start_database(stack_file.settings) if start else None
        stack = open_stack(
            name,
            workspace,
            Backend.local_folder(state / "state", name),
            engine,
            kubeconfig=kubeconfig,
        )
        if database is not None:
            stack.set_config(
                "migratorPassword", auto.ConfigValue(database.migrator_password, secret=True)
            )
        if engine.provider_note:
            print(f"note: {engine.provider_note}")
        return Target(name, stack, is_local=True, kubeconfig=kubeconfig)
    if shared_backend:
        backend = Backend(environ[BACKEND_VARIABLE])
    else:
        backend = Backend.local_folder(STATE, name, own_passphrase=secrets.own_passphrase)
    # One workspace per passphrase: the salt each keeps belongs to it.
    kind = "own-passphrase" if secrets.own_passphrase else "stack-passphrase"
    workspace = prepare_workspace(
        STATE / "workspaces" / name / kind, name, committed_salt=secrets.committed_salt
    )
    context = stack_file.provider("kubernetes:context")
    return Target(
        name, open_stack(name, workspace, backend, engine), is_local=False, context=context
    )


def _pulumi_command(engine: Engine) -> str:
    """How to call the CLI in a command shown to the user: `pulumi` when it is on PATH."""
    return "pulumi" if shutil.which("pulumi") else str(engine.pulumi)


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


def preview(target: Target, operation: Operation) -> None:
    """`pulumi preview --diff`, then the review lines: whether Flyway runs, why, and what."""
    deployed = review.script_names(getattr(target.stack.outputs().get("migrations"), "value", None))
    target.stack.preview(
        on_output=operation.output,
        diff=True,
        on_event=operation.on_event,
        refresh=operation.refresh,
    )
    job, planned = review.collect(operation.events)
    lines = review.review(target.name, job, deployed, planned)
    print("--- review ---", *lines, sep="\n")
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{target.name}-review.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def refuse_protected_changes(target: Target, settings: Settings) -> str | None:
    """Why this change must not run, when it would delete or replace the protected database;
    checked before the engine starts, so nothing at all is changed."""
    last = {key: output.value for key, output in target.stack.outputs().items()}
    keys = protected_changes(last, settings)
    if not keys:
        return None
    deployment = target.stack.export_stack().deployment or {}
    protected = [r["urn"] for r in deployment.get("resources", []) if r.get("protect")]
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
        f"    pulumi state unprotect --stack {target.name} --yes {urns}"
    )


def confirm(question: str) -> bool:
    if os.environ.get("PULUMI_YES") or not sys.stdin.isatty():
        return bool(os.environ.get("PULUMI_YES"))
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


def run_preview(target: Target, _yes: bool, operation: Operation) -> int:
    preview(target, operation)
    return 0


def run_up(target: Target, yes: bool, operation: Operation) -> int:
    if not (yes or target.is_local):
        preview(target, operation)
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
            on_output=operation.output, on_event=operation.on_event, refresh=operation.refresh
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
        machine_local=name == LOCAL,
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
        refusals = [refuse_protected_changes(target, settings)]
        try:
            inputs = check_inputs(settings, ROOT, name)
        except MigrationError as error:
            refusals.append(str(error))
        else:
            deployed = getattr(target.stack.outputs().get("migrations"), "value", None)
            refusals.extend(edited_migrations(deployed, inputs.migrations, name))
        shown = [refusal for refusal in refusals if refusal]
        for refusal in shown:
            print(f"error: {refusal}", file=sys.stderr)
        if shown:
            return 1
    return COMMANDS[command](target, yes, operation)


def down(name: str) -> int:
    """Tear the local stack's machine down: cluster, database and kept state."""
    if name != LOCAL:
        print(f"error: down is for the local stack; use destroy for {name}", file=sys.stderr)
        return 2
    _local().down()
    print("local stack removed: cluster stopped, database and state deleted")
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
