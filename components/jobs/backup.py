"""The backup before every migration, ordered like a pre-upgrade Helm hook: backup, then migrate."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.alert_rules import WatchedJob
from components.contract import (
    TYPE_PREFIX,
    BackupTarget,
    ClusterTarget,
    DumpTarget,
    Step,
    digest,
    labels,
)
from components.jobs import backup_spec
from components.jobs.flyway import FlywayPlan
from components.jobs.migration import with_secret_values
from components.settings import BackupSettings

BACKUP_TYPE: Final = f"{TYPE_PREFIX}:MigrationBackup"


@dataclass(frozen=True)
class MigrationBackupArgs:
    settings: BackupSettings
    plan: FlywayPlan
    """The Flyway run this backup precedes: it runs exactly when Flyway does."""
    target: BackupTarget
    namespace: pulumi.Input[str]
    after: Sequence[Step]
    """What must be ready first: the database and its roles."""
    protect_volume: bool
    """Protect the backup volume like the database of record."""


class MigrationBackup(pulumi.ComponentResource):
    """A backup that must succeed before Flyway starts.

    The Flyway Job depends on this component and its trigger includes `spec_digest` (through
    `step`), so the backup and the migration run together or not at all; a backup that fails
    (or outlasts backupTimeoutSeconds) fails `pulumi up` before the Job is created.
    """

    spec_digest: str
    """Changes whenever the backup itself would change; part of Flyway's trigger."""
    step: Step
    """This backup as a step before Flyway."""
    backup_name: pulumi.Output[str]
    volume_claim: pulumi.Output[str]
    """The claim holding the dumps; empty where the database's operator takes the backups."""
    watched: WatchedJob | None
    """The dump Job as the alerts know it; None where the database's operator takes the
    backups (its exporter reports them)."""

    def __init__(
        self, name: str, args: MigrationBackupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(BACKUP_TYPE, name, None, opts)
        self.pod_part: dict[str, Any] | None = None
        self.gate: pulumi.Output[str] | None = None
        self.watched = None
        if isinstance(args.target, ClusterTarget):
            self._operator_backup(name, args, args.target)
        else:
            self._dump(name, args, args.target)
        self.step = Step(self, ("backup", self.spec_digest), gate=self.gate, pod_part=self.pod_part)
        self.register_outputs({"backupName": self.backup_name, "volumeClaim": self.volume_claim})

    def _timeouts(self, args: MigrationBackupArgs) -> pulumi.CustomTimeouts:
        timeout = f"{args.settings.timeout_seconds + 120}s"
        return pulumi.CustomTimeouts(create=timeout, update=timeout)

    def _operator_backup(self, name: str, args: MigrationBackupArgs, target: ClusterTarget) -> None:
        self.spec_digest = digest(dict(target.spec))
        run = digest({"run": args.plan.trigger, "backup": self.spec_digest})
        backup = _Observed(
            f"{name}-backup",
            api_version=target.api_version,
            kind=target.kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace,
                labels=labels("backup"),
                annotations={
                    "pulumi.com/waitFor": target.done_when,
                    backup_spec.RUN_ANNOTATION: run,
                },
            ),
            spec=dict(target.spec),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[step.resource for step in args.after],
                # Secret placeholder values run Flyway again, and so the backup.
                replacement_trigger=with_secret_values(run, args.plan.settings),
                # A new Backup object each run; removing the old object keeps its data,
                # which the object store's retention (or the snapshots' owner) governs.
                delete_before_replace=False,
                custom_timeouts=self._timeouts(args),
            ),
        )
        self.backup_name = backup.id.apply(lambda id_: id_.rsplit("/", 1)[-1])
        self.volume_claim = pulumi.Output.from_input("")

        def passed(values: list[Any]) -> str:
            why = backup_spec.operator_backup_failure(
                target.kind, values[0], values[1], target.failed_phase, values[2]
            )
            if why is not None:
                raise pulumi.RunError(why)
            return str(values[0])

        self.gate = pulumi.Output.all(backup.id, backup.status, backup.urn).apply(passed)

    def _dump(self, name: str, args: MigrationBackupArgs, target: DumpTarget) -> None:
        claim_name = backup_spec.claim_name(target.endpoint.address.database)
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-volume",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=claim_name, namespace=args.namespace, labels=labels("backup")
            ),
            spec=typing.cast(
                "k8s.core.v1.PersistentVolumeClaimSpecArgsDict",
                backup_spec.claim_spec(args.settings),
            ),
            # The dumps are the way back: never deleted with the stack.
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect_volume, retain_on_delete=args.protect_volume
            ),
        )
        env = backup_spec.dump_environment(
            target.endpoint,
            args.settings,
            args.plan.settings,
            backup_spec.dump_label(args.plan.migrations.digest),
        )
        job_spec = backup_spec.dump_job_spec(
            args.settings,
            env,
            claim=claim_name,
            labels={**labels("backup"), **target.pod_labels},
            ca_secret=target.endpoint.address.ca_secret,
        )
        self.pod_part = backup_spec.attempt_pod_part(
            args.settings, env, claim=claim_name, ca_secret=target.endpoint.address.ca_secret
        )
        self.spec_digest = digest({"job": job_spec, "attempts": self.pod_part})
        run = digest({"run": args.plan.trigger, "backup": self.spec_digest})
        self.watched = WatchedJob(
            alert="MigrationBackupFailed",
            resource_name=f"{name}-dump",
            what="The pg_dump backup before a migration",
            consequence=(
                "Flyway did not run, since it starts only after a backup. Read the Job's "
                "log (`kubectl logs job/{{ $labels.job_name }}` in the namespace); the next "
                "`pulumi up` runs it again."
            ),
        )
        job = k8s.batch.v1.Job(
            self.watched.resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace,
                labels=labels("backup"),
                annotations={
                    # A failed backup is retried by the next `pulumi up`.
                    "pulumi.com/replaceUnready": "true",
                    backup_spec.RUN_ANNOTATION: run,
                },
            ),
            spec=typing.cast("k8s.batch.v1.JobSpecArgsDict", job_spec),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*(step.resource for step in args.after), claim],
                # Secret placeholder values run Flyway again, and so the backup.
                replacement_trigger=with_secret_values(run, args.plan.settings),
                custom_timeouts=self._timeouts(args),
            ),
        )
        self.backup_name = job.metadata.apply(lambda m: m.name or "")
        self.volume_claim = claim.metadata.apply(lambda _: claim_name)


class _Observed(k8s.apiextensions.CustomResource):
    """A custom resource whose `status` is an output too: the SDK's exposes its inputs only."""

    status: pulumi.Output[Any]

    def _internal_init(  # noqa: PLR0917 (the SDK's signature)
        self,
        resource_name: str,
        api_version: str,
        kind: str,
        opts: pulumi.ResourceOptions | None = None,
        metadata: Any = None,  # noqa: ANN401 (the SDK's own input type)
        spec: Any = None,  # noqa: ANN401
        __props__: Any = None,  # noqa: ANN401
    ) -> None:
        props = k8s.apiextensions.CustomResourceArgs.__new__(k8s.apiextensions.CustomResourceArgs)
        props.__dict__.update(
            api_version=api_version, kind=kind, metadata=metadata, spec=spec, status=None
        )
        pulumi.CustomResource.__init__(
            self,
            f"kubernetes:{api_version}:{kind}",
            resource_name,
            typing.cast("Mapping[str, Any]", props),
            opts,
        )
