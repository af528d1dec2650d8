"""A CloudNativePG cluster, and the operator that runs it when the stack installs one."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import backup_spec, cnpg_spec
from components.common import TYPE_PREFIX, labels
from components.credentials import PULUMI_ROLES_TYPE, role_logins
from components.flyway import DatabaseEndpoint, ServerAddress
from components.grants_spec import InClusterAdmin
from components.passwords import password
from components.privileges import PrivilegeModel
from components.roles import AdminAccess
from components.settings import (
    BackupSettings,
    CnpgSettings,
    Credentials,
    DatabaseSettings,
    PasswordSource,
    PostgresSettings,
    RolesManager,
)


@dataclass(frozen=True)
class CloudNativePostgresArgs:
    cnpg: CnpgSettings
    postgres: PostgresSettings
    """Storage, resources and metrics, shared with the Bitnami flavor."""
    database: DatabaseSettings
    namespace: pulumi.Input[str]
    namespace_name: str
    password_source: PasswordSource
    credentials: Credentials
    wait_timeout_seconds: int
    retain: bool
    """Leave the Cluster in Kubernetes if Pulumi ever deletes it (its volumes go with it)."""
    backup: BackupSettings
    """Continuous archiving or snapshots, which the backup before each migration uses."""
    managed_roles: PrivilegeModel | None = None
    """Roles the operator creates (databaseRolesManagedBy cluster), with their logins."""


class CloudNativePostgres(pulumi.ComponentResource):
    """An operator-managed cluster with failover; Flyway reads the Secret the operator makes.

    The Cluster carries `pulumi.com/waitFor: condition=Ready`, so nothing that depends on
    this component starts before the primary accepts connections.
    """

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None
    in_cluster_admin: InClusterAdmin | None
    """The superuser's login and the operand image, for the in-cluster grants Job."""
    client_labels: dict[str, str]
    """Pod labels a client needs to pass the database's NetworkPolicy."""
    host: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    cluster: k8s.apiextensions.CustomResource

    def __init__(
        self, name: str, args: CloudNativePostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:CloudNativePostgres", name, None, opts)
        cnpg, db = args.cnpg, args.database
        before_cluster: list[pulumi.Resource] = []
        if cnpg.install_operator:
            before_cluster.append(
                k8s.helm.v3.Release(
                    f"{name}-operator",
                    k8s.helm.v3.ReleaseArgs(
                        name="cnpg",
                        chart=cnpg_spec.OPERATOR_CHART,
                        repository_opts=k8s.helm.v3.RepositoryOptsArgs(
                            repo=cnpg_spec.OPERATOR_REPOSITORY
                        ),
                        version=cnpg.operator_chart_version,
                        namespace=cnpg.operator_namespace,
                        create_namespace=True,
                        atomic=True,
                        cleanup_on_fail=True,
                        timeout=args.wait_timeout_seconds,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        superuser_password: pulumi.Output[str] | None = None
        superuser_secret: str | None = None
        if db.manages_roles:
            configured = args.credentials.admin_password
            use_config = args.password_source is PasswordSource.CONFIG
            superuser_password = password(
                f"{name}-superuser-password", self, configured if use_config else None
            )
            superuser_secret = cnpg_spec.superuser_secret_name(cnpg)
            before_cluster.append(
                k8s.core.v1.Secret(
                    f"{name}-superuser-credentials",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=superuser_secret, namespace=args.namespace, labels=labels("database")
                    ),
                    type="kubernetes.io/basic-auth",
                    string_data={
                        "username": cnpg_spec.SUPERUSER,
                        cnpg_spec.SUPERUSER_PASSWORD_KEY: superuser_password,
                    },
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        archive = backup_spec.cluster_backup(args.backup, cnpg.cluster_name)
        if archive is not None and archive.object_store is not None:
            before_cluster.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-object-store",
                    api_version=backup_spec.OBJECT_STORE_API,
                    kind="ObjectStore",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=backup_spec.object_store_name(cnpg.cluster_name),
                        namespace=args.namespace,
                        labels=labels("backup"),
                    ),
                    spec=archive.object_store,
                    # Its retention policy is what keeps old backups and WAL; keep it with
                    # the data it describes.
                    opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain),
                )
            )
        self.address = cnpg_spec.address(cnpg, db, args.namespace_name)
        if args.managed_roles is not None:
            # Before the Cluster: a role created while its Secret is missing gets no password.
            logins = role_logins(
                name,
                self,
                args.managed_roles,
                self.address,
                args.namespace,
                operator_reloads=True,
                moved_from=PULUMI_ROLES_TYPE,
            )
            before_cluster.extend(login.secret for login in logins.values())
        timeout = f"{args.wait_timeout_seconds}s"
        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=cnpg_spec.API_VERSION,
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=cnpg.cluster_name,
                namespace=args.namespace,
                labels=labels("database"),
                annotations={"pulumi.com/waitFor": "condition=Ready"},
            ),
            spec={
                **cnpg_spec.cluster_spec(
                    cnpg,
                    args.postgres,
                    db,
                    superuser_secret=superuser_secret,
                    managed_roles=(
                        cnpg_spec.managed_roles(args.managed_roles) if args.managed_roles else None
                    ),
                ),
                **(archive.cluster if archive is not None else {}),
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=before_cluster,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                retain_on_delete=args.retain,
            ),
        )
        if args.postgres.metrics_enabled:
            monitor = cnpg_spec.pod_monitor(cnpg, args.namespace_name)
            k8s.apiextensions.CustomResource(
                f"{name}-pod-monitor",
                api_version=monitor["apiVersion"],
                kind=monitor["kind"],
                metadata=monitor["metadata"],
                spec=monitor["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
            )
        if args.postgres.network_policy_enabled:
            policy = cnpg_spec.network_policy(cnpg, args.namespace_name)
            k8s.networking.v1.NetworkPolicy(
                f"{name}-network-policy",
                metadata=policy["metadata"],
                spec=policy["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.client_labels = cnpg_spec.client_label(cnpg)
        self.endpoint = cnpg_spec.endpoint(cnpg, db, args.namespace_name)
        self.admin = (
            AdminAccess(
                host=db.access_host,
                port=db.access_port,
                username=cnpg_spec.SUPERUSER,
                password=superuser_password,
                database=db.name,
                ssl_mode=db.ssl_mode.value,
            )
            if superuser_password is not None and db.roles_managed_by is RolesManager.PULUMI
            else None
        )
        self.in_cluster_admin = (
            InClusterAdmin(
                image=cnpg.image,
                username=cnpg_spec.SUPERUSER,
                secret_name=superuser_secret,
                password_key=cnpg_spec.SUPERUSER_PASSWORD_KEY,
            )
            if superuser_secret is not None
            else None
        )
        self.host = self.cluster.id.apply(lambda _: self.address.host)
        self.secret_name = pulumi.Output.from_input(cnpg_spec.app_secret_name(cnpg))
        self.register_outputs({"host": self.host, "secretName": self.secret_name})
