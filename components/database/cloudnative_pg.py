"""A CloudNativePG cluster, and the operator that runs it when the stack installs one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.contract import (
    TYPE_PREFIX,
    AdminAccess,
    ClusterTarget,
    DatabaseArgs,
    DatabaseEndpoint,
    DumpTarget,
    FlavorKind,
    InClusterAdmin,
    ServerAddress,
    labels,
)
from components.database import cloudnative_pg_spec as spec
from components.passwords import password
from components.settings import PasswordSource, RolesManager, Secret, Settings


class CloudNativePostgres(pulumi.ComponentResource):
    """An operator-managed cluster with failover; Flyway reads the Secret the operator makes.

    The Cluster carries `pulumi.com/waitFor: condition=Ready`, so nothing that depends on
    this component starts before the primary accepts connections.
    """

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None
    in_cluster_admin: InClusterAdmin | None
    """The superuser's login and the operand image, for the in-cluster grants Job; the operator
    creates the roles itself."""
    client_labels: dict[str, str]
    password_versions: Sequence[pulumi.Output[str]] = ()
    """The operator applies a changed password itself."""
    host: pulumi.Output[str]
    read_only_host: str
    secret_name: pulumi.Output[str]
    cluster: k8s.apiextensions.CustomResource
    _settings: Settings

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:CloudNativePostgres", name, None, opts)
        settings = self._settings = args.settings
        cnpg, db = settings.cnpg, settings.database
        before_cluster: list[pulumi.Resource] = []
        if cnpg.install_operator:
            before_cluster.append(self._operator(name, args))
        superuser_password = superuser_secret = None
        if db.manages_roles:
            superuser_password, superuser_secret, secret = self._superuser(name, args)
            before_cluster.append(secret)
        archive = spec.cluster_backup(settings.backup, cnpg.cluster_name)
        if archive is not None and archive.object_store is not None:
            store_after = (
                [self._backup_credentials(name, args, archive.credentials_secret)]
                if archive.credentials_secret is not None
                else []
            )
            before_cluster.append(self._object_store(name, args, archive.object_store, store_after))
        self.address = spec.address(cnpg, db, settings.namespace)
        if args.roles is not None:
            # Before the Cluster: a role created while its Secret is missing gets no password.
            logins = args.roles.make_logins(self, self.address, operator_reloads=True)
            before_cluster.extend(logins.secrets)
        self.cluster = self._cluster(name, args, archive, superuser_secret, before_cluster)
        scheduled = spec.scheduled_backup(settings.backup, cnpg.cluster_name)
        if archive is not None and scheduled is not None:
            self._scheduled_backup(name, args, scheduled)
        self._neighbours(name, args)
        self.client_labels = spec.client_label(cnpg)
        self.endpoint = spec.endpoint(cnpg, db, settings.namespace)
        self.read_only_host = spec.read_only_host(cnpg, settings.namespace)
        self.admin = (
            spec.admin_access(db, superuser_password)
            if superuser_password is not None and db.roles_managed_by is RolesManager.PULUMI
            else None
        )
        self.in_cluster_admin = (
            spec.in_cluster_admin(cnpg, superuser_secret) if superuser_secret is not None else None
        )
        self.host = self.cluster.id.apply(lambda _: self.address.host)
        self.secret_name = pulumi.Output.from_input(spec.app_secret_name(cnpg))
        self.register_outputs({"host": self.host, "secretName": self.secret_name})

    def _superuser(
        self, name: str, args: DatabaseArgs
    ) -> tuple[pulumi.Output[str], str, pulumi.Resource]:
        """The superuser's password and the Secret the Cluster reads it from (its name too)."""
        settings = args.settings
        configured = settings.credentials.admin_password
        use_config = settings.password_source is PasswordSource.CONFIG
        superuser_password = password(
            f"{name}-superuser-password", self, configured if use_config else None
        )
        superuser_secret = spec.superuser_secret_name(settings.cnpg)
        secret = k8s.core.v1.Secret(
            f"{name}-superuser-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=superuser_secret, namespace=args.namespace, labels=labels("database")
            ),
            type="kubernetes.io/basic-auth",
            string_data={
                "username": spec.SUPERUSER,
                spec.SUPERUSER_PASSWORD_KEY: superuser_password,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        return superuser_password, superuser_secret, secret

    def _backup_credentials(
        self, name: str, args: DatabaseArgs, secret_name: str
    ) -> pulumi.Resource:
        """The object store's access keys, from the stack's secret config, in the namespace
        the program itself may create: a Secret made beforehand could not be there."""
        settings = args.settings
        backup = settings.backup
        data = {
            spec.ACCESS_KEY_ID: _revealed(backup.cnpg_access_key_id, "cnpgBackupAccessKeyId"),
            spec.ACCESS_SECRET_KEY: _revealed(
                backup.cnpg_secret_access_key, "cnpgBackupSecretAccessKey"
            ),
        }
        return k8s.core.v1.Secret(
            f"{name}-backup-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=args.namespace, labels=labels("backup")
            ),
            type="Opaque",
            string_data=data,
            # A retained Cluster keeps archiving with it after the stack is gone.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=settings.protect_database),
        )

    def _object_store(
        self,
        name: str,
        args: DatabaseArgs,
        object_store: dict[str, Any],
        depends_on: list[pulumi.Resource],
    ) -> pulumi.Resource:
        settings = args.settings
        return k8s.apiextensions.CustomResource(
            f"{name}-object-store",
            api_version=spec.OBJECT_STORE_API,
            kind="ObjectStore",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=spec.object_store_name(settings.cnpg.cluster_name),
                namespace=args.namespace,
                labels=labels("backup"),
            ),
            spec=object_store,
            # Its retention policy is what keeps old backups and WAL; keep it with the data
            # it describes.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=depends_on, retain_on_delete=settings.protect_database
            ),
        )

    def _cluster(
        self,
        name: str,
        args: DatabaseArgs,
        archive: spec.ClusterBackup | None,
        superuser_secret: str | None,
        depends_on: list[pulumi.Resource],
    ) -> k8s.apiextensions.CustomResource:
        settings = args.settings
        cnpg = settings.cnpg
        timeout = f"{settings.postgres.release_timeout_seconds}s"
        return k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=spec.API_VERSION,
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=cnpg.cluster_name,
                namespace=args.namespace,
                labels=labels("database"),
                annotations={"pulumi.com/waitFor": spec.cluster_ready(archive, cnpg.instances)},
            ),
            spec={
                **spec.cluster_spec(
                    cnpg,
                    settings.postgres,
                    settings.database,
                    superuser_secret=superuser_secret,
                    managed_roles=(
                        spec.managed_roles(args.roles.roles) if args.roles is not None else None
                    ),
                    backup=settings.backup,
                ),
                **(archive.cluster if archive is not None else {}),
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                retain_on_delete=settings.protect_database,
            ),
        )

    def _scheduled_backup(self, name: str, args: DatabaseArgs, scheduled: dict[str, Any]) -> None:
        """Base backups between migrations too, so recovery never replays unbounded WAL."""
        k8s.apiextensions.CustomResource(
            f"{name}-scheduled-backup",
            api_version=spec.API_VERSION,
            kind="ScheduledBackup",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.settings.cnpg.cluster_name,
                namespace=args.namespace,
                labels=labels("backup"),
            ),
            spec=scheduled,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )

    def backup_target(self, login: DatabaseEndpoint) -> DumpTarget | ClusterTarget:
        """The operator's own backup, by the method the Cluster archives with."""
        settings = self._settings
        return spec.backup_target(settings.backup, settings.cnpg.cluster_name)

    def _operator(self, name: str, args: DatabaseArgs) -> pulumi.Resource:
        cnpg = args.settings.cnpg
        return k8s.helm.v3.Release(
            f"{name}-operator",
            k8s.helm.v3.ReleaseArgs(
                name="cnpg",
                chart=spec.OPERATOR_CHART,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=spec.OPERATOR_REPOSITORY),
                version=cnpg.operator_chart_version,
                namespace=cnpg.operator_namespace,
                create_namespace=True,
                atomic=True,
                cleanup_on_fail=True,
                timeout=args.settings.postgres.release_timeout_seconds,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _neighbours(self, name: str, args: DatabaseArgs) -> None:
        """The PodMonitor and the NetworkPolicy, where the stack asks for them."""
        settings = args.settings
        cnpg, namespace = settings.cnpg, settings.namespace
        if settings.postgres.metrics_enabled:
            monitor = spec.pod_monitor(cnpg, namespace)
            k8s.apiextensions.CustomResource(
                f"{name}-pod-monitor",
                api_version=monitor["apiVersion"],
                kind=monitor["kind"],
                metadata=monitor["metadata"],
                spec=monitor["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
            )
        if settings.postgres.network_policy_enabled:
            policy = spec.network_policy(cnpg, namespace, metrics=settings.postgres.metrics_enabled)
            k8s.networking.v1.NetworkPolicy(
                f"{name}-network-policy",
                metadata=policy["metadata"],
                spec=policy["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )


def _revealed(value: Secret | None, key: str) -> pulumi.Output[str]:
    """A secret config value as a secret output (the settings refuse a stack without it)."""
    if value is None:
        raise ValueError(f"{key} is required by cnpgBackupCredentials access-keys")
    return pulumi.Output.secret(value.reveal())


FLAVOR: Final = FlavorKind(traits=spec.traits, deploy=CloudNativePostgres)
