"""The backup before every migration, ordered like a pre-upgrade Helm hook: backup, then migrate."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import backup_spec
from components.common import DIGEST_ANNOTATION_PREFIX, TYPE_PREFIX, digest, labels
from components.flyway import DatabaseEndpoint
from components.migration_job import with_secret_values
from components.settings import BackupSettings, FlywaySettings

RUN_ANNOTATION = f"{DIGEST_ANNOTATION_PREFIX}/migration-run"


@dataclass(frozen=True)
class DumpTarget:
    """Bitnami and external databases: pg_dump with Flyway's own login."""

    endpoint: DatabaseEndpoint
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """The label the database's NetworkPolicy admits."""


@dataclass(frozen=True)
class ClusterTarget:
    """CloudNativePG: the operator backs the cluster up by its configured method."""

    cluster_name: str


@dataclass(frozen=True)
class MigrationBackupArgs:
    settings: BackupSettings
    flyway: FlywaySettings
    target: DumpTarget | ClusterTarget
    namespace: pulumi.Input[str]
    run_trigger: str
    """The Flyway run's trigger (without this step): the backup runs exactly when Flyway does."""
    label: str
    """Names the migration set about to be applied, in the dump's file name."""
    database: Sequence[pulumi.Resource]
    """What must be ready first: the database and its roles."""
    protect_volume: bool
    """Protect the backup volume like the database of record."""


class MigrationBackup(pulumi.ComponentResource):
    """A backup that must succeed before Flyway starts.

    The Flyway Job depends on this component and its trigger includes `spec_digest`, so the
    backup and the migration run together or not at all; a backup that fails (or outlasts
    backupTimeoutSeconds) fails `pulumi up` before the Job is created.
    """

    spec_digest: str
    """Changes whenever the backup itself would change; part of Flyway's trigger."""
    backup_name: pulumi.Output[str]
    volume_claim: pulumi.Output[str]
    """The claim holding the dumps; empty for CloudNativePG, whose backups are the operator's."""

    def __init__(
        self, name: str, args: MigrationBackupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:MigrationBackup", name, None, opts)
        timeout = f"{args.settings.timeout_seconds + 120}s"
        target = args.target
        if isinstance(target, ClusterTarget):
            spec = backup_spec.backup_spec(args.settings, target.cluster_name)
            self.spec_digest = digest(spec)
            run = digest({"run": args.run_trigger, "backup": self.spec_digest})
            backup = k8s.apiextensions.CustomResource(
                f"{name}-backup",
                api_version="postgresql.cnpg.io/v1",
                kind="Backup",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    namespace=args.namespace,
                    labels=labels("backup"),
                    annotations={
                        "pulumi.com/waitFor": backup_spec.BACKUP_DONE,
                        RUN_ANNOTATION: run,
                    },
                ),
                spec=spec,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=list(args.database),
                    # Secret placeholder values run Flyway again, and so the backup.
                    replacement_trigger=with_secret_values(run, args.flyway),
                    # A new Backup object each run; removing the old object keeps its data,
                    # which the object store's retention (or the snapshots' owner) governs.
                    delete_before_replace=False,
                    custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                ),
            )
            self.backup_name = backup.id.apply(lambda id_: id_.rsplit("/", 1)[-1])
            self.volume_claim = pulumi.Output.from_input("")
        else:
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
                    parent=self,
                    protect=args.protect_volume,
                    retain_on_delete=args.protect_volume,
                ),
            )
            pod_labels = {**labels("backup"), **target.pod_labels}
            env = backup_spec.dump_environment(
                target.endpoint, args.settings, args.flyway, args.label
            )
            job_spec = backup_spec.dump_job_spec(
                args.settings,
                env,
                claim=claim_name,
                labels=pod_labels,
                ca_secret=target.endpoint.address.ca_secret,
            )
            self.spec_digest = digest(job_spec)
            run = digest({"run": args.run_trigger, "backup": self.spec_digest})
            job = k8s.batch.v1.Job(
                f"{name}-dump",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    namespace=args.namespace,
                    labels=labels("backup"),
                    annotations={
                        # A failed backup is retried by the next `pulumi up`.
                        "pulumi.com/replaceUnready": "true",
                        RUN_ANNOTATION: run,
                    },
                ),
                spec=typing.cast("k8s.batch.v1.JobSpecArgsDict", job_spec),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*args.database, claim],
                    # Secret placeholder values run Flyway again, and so the backup.
                    replacement_trigger=with_secret_values(run, args.flyway),
                    custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                ),
            )
            self.backup_name = job.metadata.apply(lambda m: m.name or "")
            self.volume_claim = claim.metadata.apply(lambda _: claim_name)
        self.register_outputs({"backupName": self.backup_name, "volumeClaim": self.volume_claim})
