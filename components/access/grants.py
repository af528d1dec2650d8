"""Roles, grants and default privileges applied from inside the cluster by a psql Job."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.access import grants_spec
from components.access.createrole import createrole_sql
from components.access.privileges import PrivilegeModel, in_cluster_sql
from components.contract import (
    DIGEST_ANNOTATION_PREFIX,
    PASSWORD_KEY,
    TYPE_PREFIX,
    DatabaseEndpoint,
    InClusterAdmin,
    Purpose,
    ServerAddress,
    credentials_secret_name,
    digest,
    labels,
)

GRANTS_DIGEST_ANNOTATION = f"{DIGEST_ANNOTATION_PREFIX}/grants-digest"


GRANTS_TYPE: Final = f"{TYPE_PREFIX}:RoleGrants"


@dataclass(frozen=True)
class RoleGrantsArgs:
    namespace: pulumi.Input[str]
    model: PrivilegeModel
    address: ServerAddress
    """Where the database answers inside the cluster."""
    admin: InClusterAdmin
    database: Sequence[pulumi.Resource]
    """What must be ready first: the database and the roles' credentials Secrets."""
    timeout_seconds: int
    """The Job's deadline; `pulumi up` waits a minute longer."""
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra pod labels, e.g. the one the database's NetworkPolicy admits."""
    rerun_on: Sequence[pulumi.Input[str]] = ()
    """Values that rerun the Job when they change, e.g. the versions of the Secrets whose
    passwords the script sets."""


class RoleGrants(pulumi.ComponentResource):
    """Applies the privilege model with psql from a Job, before Flyway runs.

    The script is generated from the model, idempotent, and kept in an immutable ConfigMap;
    the Job is replaced (and so runs again) when the script or the Job's spec changes, and
    is awaited: Flyway's Job depends on it and never starts after a failed run.
    """

    job: k8s.batch.v1.Job
    job_name: pulumi.Output[str]
    grants_digest: pulumi.Output[str]
    migrator: DatabaseEndpoint
    """The login Flyway runs as: the migrator's credentials Secret."""

    def __init__(
        self, name: str, args: RoleGrantsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(GRANTS_TYPE, name, None, opts)
        component_labels = labels("grants")
        deadline = args.timeout_seconds
        script = (
            in_cluster_sql(
                args.model,
                password_env=(
                    grants_spec.password_env(args.model) if args.admin.creates_roles else None
                ),
                wait_seconds=grants_spec.role_wait_seconds(deadline),
            )
            if args.admin.superuser
            else createrole_sql(args.model, verifier_env=grants_spec.verifier_env(args.model))
        )
        after_database = pulumi.ResourceOptions(parent=self, depends_on=list(args.database))
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-grants-sql",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=component_labels),
            # Immutable: a new script replaces the ConfigMap, under a new name.
            immutable=True,
            data={grants_spec.SQL_FILE: script},
            opts=after_database,
        )
        env = grants_spec.grants_environment(args.model, args.address, args.admin)
        pod_labels = {**component_labels, **args.pod_labels}
        ca_secret = args.address.ca_secret

        def template(config_map_name: object, annotations: Mapping[str, str]) -> dict[str, object]:
            return grants_spec.pod_template(
                args.admin.image,
                env,
                config_map_name,
                pod_labels,
                annotations,
                ca_secret=ca_secret,
            )

        grants_digest = digest(
            {"sql": script, "job": grants_spec.job_spec(template("", {}), deadline)}
        )
        annotations = {GRANTS_DIGEST_ANNOTATION: grants_digest}
        trigger = pulumi.Output.all(*args.rerun_on).apply(
            lambda versions: digest({"grants": grants_digest, "rerunOn": list(versions)})
        )
        timeout = f"{deadline + 60}s"
        self.job = k8s.batch.v1.Job(
            f"{name}-grants",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                namespace=args.namespace,
                labels=component_labels,
                annotations={
                    # A failed run is retried by the next `pulumi up` instead of sticking.
                    "pulumi.com/replaceUnready": "true",
                    **annotations,
                },
            ),
            spec=typing.cast(
                "k8s.batch.v1.JobSpecArgsDict",
                grants_spec.job_spec(template(config_map.metadata.name, annotations), deadline),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*args.database, config_map],
                replacement_trigger=trigger,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )
        migrator = args.model.role(Purpose.MIGRATOR)
        self.migrator = DatabaseEndpoint(
            address=args.address,
            username=migrator.name,
            secret_name=credentials_secret_name(args.model.database, Purpose.MIGRATOR),
            password_key=PASSWORD_KEY,
        )
        self.job_name = self.job.metadata.apply(lambda m: m.name or "")
        self.grants_digest = pulumi.Output.from_input(grants_digest)
        self.register_outputs({"jobName": self.job_name, "grantsDigest": self.grants_digest})
