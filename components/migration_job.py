"""The migration ConfigMaps and the Flyway Job, ordered like a post-install Helm hook."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import flyway
from components.common import DIGEST_ANNOTATION_PREFIX, TYPE_PREFIX, digest, labels
from components.flyway import DatabaseEndpoint
from components.migrations import Kind, MigrationSet, pack
from components.migrations.placeholders import recorded_checksum
from components.settings import FlywaySettings

MIGRATIONS_DIGEST_ANNOTATION = f"{DIGEST_ANNOTATION_PREFIX}/migrations-digest"
CONFIG_DIGEST_ANNOTATION = f"{DIGEST_ANNOTATION_PREFIX}/flyway-config-digest"


@dataclass(frozen=True)
class MigrationJobArgs:
    namespace: pulumi.Input[str]
    migrations: MigrationSet
    flyway: FlywaySettings
    endpoint: DatabaseEndpoint
    database: Sequence[pulumi.Resource]
    """What must be ready before Flyway runs: the database of any flavor, and its roles."""
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra pod labels, e.g. the one the database's NetworkPolicy admits."""
    callbacks: Mapping[str, str] = field(default_factory=dict)
    """Flyway callbacks of the program's own (file name -> SQL), beside the migrations."""
    run_inputs: Mapping[str, str] = field(default_factory=dict)
    """Digests of steps that run with Flyway (the backup before it): a change to one of them
    runs both again, so the backup and the migration never drift apart."""


def _pod_labels(args: MigrationJobArgs) -> dict[str, str]:
    return {**labels("migrations"), **args.pod_labels}


def config_digest(args: MigrationJobArgs) -> str:
    """Everything the Job runs with apart from the migrations (see flyway.config_digest_input)."""
    env = flyway.flyway_environment(args.flyway, args.endpoint)
    return digest(
        {
            "job": flyway.config_digest_input(
                args.flyway, env, _pod_labels(args), args.endpoint.address.ca_secret
            ),
            "callbacks": dict(args.callbacks),
        }
    )


def run_trigger(args: MigrationJobArgs) -> str:
    """When Flyway runs again: the migrations, its configuration or a step run with it changed."""
    return digest(
        {"migrations": args.migrations.digest, "flyway": config_digest(args), **args.run_inputs}
    )


def with_secret_values(trigger: str, settings: FlywaySettings) -> pulumi.Input[str]:
    """`trigger`, changed by the secret placeholder values too, without ever showing them."""
    if not settings.secret_placeholders:
        return trigger
    return pulumi.Output.all(trigger, _secret_fingerprint(settings)).apply(digest)


HISTORY_TABLE = "flyway_schema_history"
"""Flyway's default table (the Job sets no FLYWAY_TABLE): the value of ${flyway:table}."""
ENVIRONMENT = "default"
"""Flyway's environment when none is chosen: the value of ${flyway:environment}."""


def packaged_scripts(
    migrations: MigrationSet,
    settings: FlywaySettings | None = None,
    endpoint: DatabaseEndpoint | None = None,
) -> list[dict[str, object]]:
    """What a reviewer reads in the preview: every script Flyway will see, in its order, with
    the checksum Flyway will record for it (for a repeatable, after placeholder replacement).

    A repeatable whose recorded checksum depends on a secret placeholder shows none, and says
    why: a CRC32 of the replaced text would let anyone test guesses of the secret against it.
    """
    flyway_settings = settings or FlywaySettings()
    built_ins = {"flyway:table": HISTORY_TABLE, "flyway:environment": ENVIRONMENT}
    if endpoint is not None:
        built_ins |= {
            "flyway:user": endpoint.username,
            "flyway:database": endpoint.address.database,
        }
    scripts: list[dict[str, object]] = []
    for f in migrations.files:
        if f.kind is Kind.CONFIG:
            continue
        checksum = recorded_checksum(
            f,
            replacement=flyway_settings.placeholder_replacement,
            values=dict(flyway_settings.placeholders),
            secret_names=[name for name, _ in flyway_settings.secret_placeholders],
            known_built_ins=built_ins,
        )
        script: dict[str, object] = {
            "script": f.path,
            "type": f.kind.value,
            "version": str(f.version) if f.version is not None else None,
            "description": f.description,
            "checksum": checksum.value,
        }
        if checksum.withheld is not None:
            script["checksumWithheld"] = checksum.withheld
        scripts.append(script)
    return scripts


class MigrationJob(pulumi.ComponentResource):
    """Runs `flyway migrate` once per distinct (migration files, Flyway settings) pair.

    The Job carries an explicit replacement trigger and digest annotations, so a preview
    shows exactly why Flyway will run again; an unchanged program shows no diff. Names are
    the engine's (the resource name plus a random suffix), never derived from content: a
    revert after a failed run brings back earlier content, and a derived name would then
    collide with an object the engine still means to delete.
    Workloads that need the schema depend on `job` (or read `schema_ready`): the Job is
    awaited, so they are created only after it completed, and never when it failed.
    """

    job: k8s.batch.v1.Job
    job_name: pulumi.Output[str]
    config_map_names: pulumi.Output[list[str]]
    migrations_digest: pulumi.Output[str]
    schema_ready: pulumi.Output[str]
    packaged: pulumi.Output[list[dict[str, object]]]

    def __init__(
        self, name: str, args: MigrationJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:MigrationJob", name, None, opts)
        component_labels = labels("migrations")
        after_database = pulumi.ResourceOptions(parent=self, depends_on=list(args.database))

        config_maps: list[k8s.core.v1.ConfigMap] = []
        sources: list[tuple[object, list[tuple[str, str]]]] = []
        for shard in pack(args.migrations):
            config_map = k8s.core.v1.ConfigMap(
                f"{name}-sql-{shard.index}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    namespace=args.namespace, labels=component_labels
                ),
                # Immutable: new content replaces the ConfigMap, under a new name.
                immutable=True,
                data=dict(shard.data) or None,
                binary_data=dict(shard.binary_data) or None,
                opts=after_database,
            )
            config_maps.append(config_map)
            sources.append((config_map.metadata.name, [(key, path) for key, path in shard.items]))

        if args.callbacks:
            callbacks = k8s.core.v1.ConfigMap(
                f"{name}-callbacks",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    namespace=args.namespace, labels=component_labels
                ),
                immutable=True,
                data=dict(args.callbacks),
                opts=after_database,
            )
            config_maps.append(callbacks)
            sources.append(
                (
                    callbacks.metadata.name,
                    [(file, f"{flyway.CALLBACKS_FOLDER}/{file}") for file in args.callbacks],
                )
            )

        placeholder_secret = self._placeholder_secret(name, args, after_database)
        pod_labels = _pod_labels(args)
        job_config_digest = config_digest(args)
        trigger = with_secret_values(run_trigger(args), args.flyway)
        env = (
            flyway.flyway_environment(args.flyway, args.endpoint, placeholder_secret.metadata.name)
            if placeholder_secret is not None
            else flyway.flyway_environment(args.flyway, args.endpoint)
        )
        template = flyway.pod_template(
            args.flyway,
            env,
            flyway.volume_sources(sources),
            labels=pod_labels,
            annotations={
                MIGRATIONS_DIGEST_ANNOTATION: args.migrations.digest,
                CONFIG_DIGEST_ANNOTATION: job_config_digest,
            },
            ca_secret=args.endpoint.address.ca_secret,
        )
        timeout = f"{args.flyway.job_timeout_seconds}s"
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace,
                labels=component_labels,
                annotations={
                    # A failed run is retried by the next `pulumi up` instead of sticking.
                    "pulumi.com/replaceUnready": "true",
                    MIGRATIONS_DIGEST_ANNOTATION: args.migrations.digest,
                    CONFIG_DIGEST_ANNOTATION: job_config_digest,
                },
            ),
            # A plain dict from the pure builder; the provider validates it against the schema.
            spec=typing.cast(
                "k8s.batch.v1.JobSpecArgsDict", flyway.job_spec(args.flyway, template)
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    *args.database,
                    *config_maps,
                    *([placeholder_secret] if placeholder_secret is not None else []),
                ],
                replacement_trigger=trigger,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )
        self.job_name = self.job.metadata.apply(lambda m: m.name or "")
        self.config_map_names = pulumi.Output.all(
            *[cm.metadata.apply(lambda m: m.name or "") for cm in config_maps]
        ).apply(list)
        self.migrations_digest = pulumi.Output.from_input(args.migrations.digest)
        # One Output holding plain data: from_input on the list would wrap every value of
        # every script in an Output of its own, which dominates previews of long histories.
        scripts = packaged_scripts(args.migrations, args.flyway, args.endpoint)
        self.packaged = self.migrations_digest.apply(lambda _: scripts)
        # Resolves only once the awaited Job has completed.
        self.schema_ready = pulumi.Output.all(self.job.metadata, trigger).apply(lambda v: v[1])
        self.register_outputs(
            {
                "jobName": self.job_name,
                "configMapNames": self.config_map_names,
                "migrationsDigest": self.migrations_digest,
                "schemaReady": self.schema_ready,
                "packaged": self.packaged,
            }
        )

    def _placeholder_secret(
        self, name: str, args: MigrationJobArgs, opts: pulumi.ResourceOptions
    ) -> k8s.core.v1.Secret | None:
        """The secret placeholder values, for the Job's secretKeyRefs (None when there are none).

        Named by the engine and immutable, like the ConfigMaps: new values replace the Secret
        under a new name, so a finished Job never points at values it did not run with, and a
        revert cannot collide with a Secret the engine still means to delete.
        """
        if not args.flyway.secret_placeholders:
            return None
        values = {key: value.reveal() for key, value in args.flyway.secret_placeholders}
        return k8s.core.v1.Secret(
            f"{name}-placeholders",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace, labels=labels("migrations")
            ),
            immutable=True,
            type="Opaque",
            string_data=pulumi.Output.secret(values),
            opts=opts,
        )


def _secret_fingerprint(settings: FlywaySettings) -> pulumi.Output[str]:
    """What makes the Job's trigger change with the secret placeholder values, never shown.

    A digest of a guessable secret is as good as the secret to anyone who can try guesses, so
    it exists only inside an Output marked secret: the engine keeps it encrypted in the state
    and a preview shows the trigger as [secret]. The config digest annotation, which is plain,
    covers only the names (through the environment).
    """
    values = {key: value.reveal() for key, value in settings.secret_placeholders}
    return pulumi.Output.secret(digest({"secretPlaceholders": values}))
