"""The migration ConfigMaps and the Flyway Job, ordered like a post-install Helm hook."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.alert_rules import WatchedJob
from components.contract import DIGEST_ANNOTATION_PREFIX, TYPE_PREFIX, Step, digest, labels
from components.jobs import flyway
from components.jobs.flyway import FlywayPlan
from components.settings import FlywaySettings

MIGRATIONS_DIGEST_ANNOTATION = f"{DIGEST_ANNOTATION_PREFIX}/migrations-digest"
CONFIG_DIGEST_ANNOTATION = f"{DIGEST_ANNOTATION_PREFIX}/flyway-config-digest"


MIGRATION_JOB_TYPE: Final = f"{TYPE_PREFIX}:MigrationJob"


@dataclass(frozen=True)
class MigrationJobArgs:
    namespace: pulumi.Input[str]
    plan: FlywayPlan
    after: Sequence[Step]
    """What runs before Flyway, in order: the database, its roles, the backup. Flyway waits
    for each; a step's run input (the backup's) runs Flyway again when it changes."""


def with_secret_values(trigger: str, settings: FlywaySettings) -> pulumi.Input[str]:
    """`trigger`, changed by the secret placeholder values too, without ever showing them."""
    if not settings.secret_placeholders:
        return trigger
    return pulumi.Output.all(trigger, _secret_fingerprint(settings)).apply(digest)


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
    watched: WatchedJob
    """The Job as the alerts know it: by the names the engine gives each run's Job."""

    def __init__(
        self, name: str, args: MigrationJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(MIGRATION_JOB_TYPE, name, None, opts)
        component_labels = labels("migrations")
        plan = args.plan
        before = [step.resource for step in args.after]
        after_database = pulumi.ResourceOptions(parent=self, depends_on=before)

        config_maps: list[k8s.core.v1.ConfigMap] = []
        sources: list[tuple[object, list[tuple[str, str]]]] = []
        for shard in plan.shards:
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

        if plan.callbacks:
            callbacks = k8s.core.v1.ConfigMap(
                f"{name}-callbacks",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    namespace=args.namespace, labels=component_labels
                ),
                immutable=True,
                data=dict(plan.callbacks),
                opts=after_database,
            )
            config_maps.append(callbacks)
            sources.append(
                (
                    callbacks.metadata.name,
                    [(file, f"{flyway.CALLBACKS_FOLDER}/{file}") for file in plan.callbacks],
                )
            )

        placeholder_secret = self._placeholder_secret(name, args, after_database)
        digests = {
            MIGRATIONS_DIGEST_ANNOTATION: plan.migrations.digest,
            CONFIG_DIGEST_ANNOTATION: plan.config_digest,
        }
        run_inputs = dict(step.run_input for step in args.after if step.run_input is not None)
        trigger = with_secret_values(plan.run_trigger(run_inputs), plan.settings)
        gates = [step.gate for step in args.after if step.gate is not None]
        if gates:
            # The same trigger, but only once every step passed: a failed one stops `up` here.
            trigger = pulumi.Output.all(trigger, *gates).apply(lambda values: str(values[0]))
        spec = plan.render(
            flyway.volume_sources(sources),
            digests,
            *([placeholder_secret.metadata.name] if placeholder_secret is not None else []),
        )
        for part in (step.pod_part for step in args.after if step.pod_part):
            pod = spec["template"]["spec"]
            pod.setdefault("initContainers", []).extend(part.get("initContainers", []))
            pod["volumes"] = [*pod["volumes"], *part.get("volumes", [])]
        timeout = f"{plan.settings.job_timeout_seconds}s"
        self.watched = WatchedJob(
            alert="FlywayMigrationFailed",
            resource_name=f"{name}-job",
            what="The Flyway migration Job",
            consequence=(
                "the schema is not migrated and what waits for it is not deployed. Read "
                f"Flyway's log (`make logs STACK={pulumi.get_stack()}`), then the README's "
                "runbook (A migration failed at 2am)."
            ),
        )
        self.job = k8s.batch.v1.Job(
            self.watched.resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace,
                labels=component_labels,
                annotations={
                    # A failed run is retried by the next `pulumi up` instead of sticking.
                    "pulumi.com/replaceUnready": "true",
                    **digests,
                },
            ),
            # A plain dict from the pure builder; the provider validates it against the schema.
            spec=typing.cast("k8s.batch.v1.JobSpecArgsDict", spec),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    *before,
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
        self.migrations_digest = pulumi.Output.from_input(plan.migrations.digest)
        # One Output holding plain data: from_input on the list would wrap every value of
        # every script in an Output of its own, which dominates previews of long histories.
        scripts = flyway.packaged_scripts(plan.migrations, plan.settings, plan.endpoint)
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
        if not args.plan.settings.secret_placeholders:
            return None
        values = {key: value.reveal() for key, value in args.plan.settings.secret_placeholders}
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
