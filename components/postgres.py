"""The PostgreSQL release (Bitnami chart) and the credentials Secret it reads."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import postgres_chart
from components.common import TYPE_PREFIX, labels
from components.credentials import PULUMI_ROLES_TYPE, role_logins
from components.flyway import DatabaseEndpoint, ServerAddress
from components.grants_spec import InClusterAdmin
from components.passwords import password
from components.privileges import PrivilegeModel
from components.roles import AdminAccess
from components.settings import (
    Credentials,
    DatabaseSettings,
    PasswordSource,
    PostgresSettings,
    RolesManager,
)


@dataclass(frozen=True)
class BitnamiPostgresArgs:
    postgres: PostgresSettings
    database: DatabaseSettings
    namespace: pulumi.Input[str]
    namespace_name: str
    """The namespace as a plain string, for names known before deploy."""
    password_source: PasswordSource
    credentials: Credentials
    retain: bool
    """Leave the release in the cluster if Pulumi ever deletes it (the volumes go with it)."""
    role_logins: PrivilegeModel | None = None
    """Roles the in-cluster grants Job creates (databaseRolesManagedBy cluster): their
    passwords and credentials Secrets live here, with the database they belong to."""


class BitnamiPostgres(pulumi.ComponentResource):
    """A Helm release that rolls back on failure, with credentials the program owns.

    Passwords never enter chart values: the chart reads them from a Secret created here
    (`auth.existingSecret`), so `pulumi preview --diff` of the release shows no secret.
    """

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None
    in_cluster_admin: InClusterAdmin | None
    """`postgres`'s login and the PostgreSQL image, for the in-cluster grants Job."""
    login_secrets: list[k8s.core.v1.Secret]
    """The role logins' Secrets, when the grants Job creates the roles."""
    client_labels: dict[str, str]
    """Pod labels a client needs to pass the database's NetworkPolicy."""
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    secret_keys: pulumi.Output[list[str]]
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: BitnamiPostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:BitnamiPostgres", name, None, opts)
        pg, db = args.postgres, args.database
        passwords = {key: self._password(name, key, args) for key in postgres_chart.secret_keys(pg)}
        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=postgres_chart.secret_name(pg.release_name),
                namespace=args.namespace,
                labels=labels("database"),
            ),
            type="Opaque",
            string_data=passwords,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            k8s.helm.v3.ReleaseArgs(
                name=pg.release_name,
                namespace=args.namespace,
                chart=pg.chart_repository,
                version=pg.chart_version,
                values=postgres_chart.chart_values(pg, db),
                atomic=True,
                cleanup_on_fail=True,
                timeout=pg.release_timeout_seconds,
                max_history=10,
            ),
            # Deleting the release deletes the volumes: if it ever is deleted, leave it be.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[secret], retain_on_delete=args.retain
            ),
        )
        self.client_labels = postgres_chart.client_label(pg)
        self.address = postgres_chart.address(pg, db, args.namespace_name)
        self.endpoint = postgres_chart.endpoint(pg, db, args.namespace_name)
        self.admin = (
            AdminAccess(
                host=db.access_host,
                port=db.access_port,
                username="postgres",
                password=passwords[postgres_chart.ADMIN_PASSWORD_KEY],
                database=db.name,
                ssl_mode=db.ssl_mode.value,
            )
            if db.roles_managed_by is RolesManager.PULUMI
            else None
        )
        self.in_cluster_admin = InClusterAdmin(
            image=f"{pg.image_registry}/{pg.image_repository}:{pg.image_tag}",
            username="postgres",
            secret_name=postgres_chart.secret_name(pg.release_name),
            password_key=postgres_chart.ADMIN_PASSWORD_KEY,
        )
        self.login_secrets = []
        if args.role_logins is not None:
            logins = role_logins(
                name,
                self,
                args.role_logins,
                self.address,
                args.namespace,
                moved_from=PULUMI_ROLES_TYPE,
            )
            self.login_secrets = [login.secret for login in logins.values()]
        # Derived from the release so that whoever reads them waits for it.
        self.host = self.release.status.apply(lambda _: self.address.host)
        self.secret_name = secret.metadata.apply(
            lambda _: postgres_chart.secret_name(pg.release_name)
        )
        self.port = pulumi.Output.from_input(self.address.port)
        self.database = pulumi.Output.from_input(self.address.database)
        self.secret_keys = pulumi.Output.from_input(list(passwords))
        self.register_outputs(
            {
                "host": self.host,
                "port": self.port,
                "database": self.database,
                "secretName": self.secret_name,
                "secretKeys": self.secret_keys,
            }
        )

    def _password(self, name: str, key: str, args: BitnamiPostgresArgs) -> pulumi.Output[str]:
        role, configured = {
            postgres_chart.ADMIN_PASSWORD_KEY: ("admin", args.credentials.admin_password),
            postgres_chart.OWNER_PASSWORD_KEY: ("owner", args.credentials.owner_password),
            postgres_chart.REPLICATION_PASSWORD_KEY: (
                "replication",
                args.credentials.replication_password,
            ),
        }[key]
        use_config = args.password_source is PasswordSource.CONFIG
        return password(f"{name}-{role}-password", self, configured if use_config else None)
