"""The PostgreSQL release (Bitnami chart) and the credentials Secret it reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

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
from components.database import bitnami_spec
from components.passwords import password
from components.settings import PasswordSource, RolesManager


class BitnamiPostgres(pulumi.ComponentResource):
    """A Helm release that rolls back on failure, with credentials the program owns.

    Passwords never enter chart values: the chart reads them from a Secret created here
    (`auth.existingSecret`), so `pulumi preview --diff` of the release shows no secret.
    """

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None
    in_cluster_admin: InClusterAdmin | None
    """`postgres`'s login and the PostgreSQL image, for the in-cluster grants Job, which
    creates the roles here."""
    client_labels: dict[str, str]
    password_versions: Sequence[pulumi.Output[str]]
    host: pulumi.Output[str]
    read_only_host: str
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    secret_keys: pulumi.Output[list[str]]
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:BitnamiPostgres", name, None, opts)
        settings = args.settings
        pg, db = settings.postgres, settings.database
        namespace_name = settings.namespace
        passwords = {key: self._password(name, key, args) for key in bitnami_spec.secret_keys(pg)}
        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=bitnami_spec.secret_name(pg.release_name),
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
                values=bitnami_spec.chart_values(pg, db),
                atomic=True,
                cleanup_on_fail=True,
                timeout=pg.release_timeout_seconds,
                max_history=10,
            ),
            # Deleting the release deletes the volumes: if it ever is deleted, leave it be.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[secret], retain_on_delete=settings.protect_database
            ),
        )
        self.client_labels = bitnami_spec.client_label(pg)
        self.address = bitnami_spec.address(pg, db, namespace_name)
        self.endpoint = bitnami_spec.endpoint(pg, db, namespace_name)
        self.read_only_host = bitnami_spec.read_only_host(pg, namespace_name)
        self.admin = (
            AdminAccess(
                host=db.access_host,
                port=db.access_port,
                username=SUPERUSER,
                password=passwords[bitnami_spec.ADMIN_PASSWORD_KEY],
                database=db.name,
                ssl_mode=db.ssl_mode.value,
            )
            if db.roles_managed_by is RolesManager.PULUMI
            else None
        )
        self.in_cluster_admin = InClusterAdmin(
            image=f"{pg.image_registry}/{pg.image_repository}:{pg.image_tag}",
            username=SUPERUSER,
            secret_name=bitnami_spec.secret_name(pg.release_name),
            password_key=bitnami_spec.ADMIN_PASSWORD_KEY,
            creates_roles=True,
        )
        # The grants Job sets these passwords: a new one runs it again.
        self.password_versions = (
            args.roles.make_logins(self, self.address, operator_reloads=False).versions
            if args.roles is not None
            else ()
        )
        # Derived from the release so that whoever reads them waits for it.
        self.host = self.release.status.apply(lambda _: self.address.host)
        self.secret_name = secret.metadata.apply(
            lambda _: bitnami_spec.secret_name(pg.release_name)
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

    def backup_target(self, login: DatabaseEndpoint) -> DumpTarget | ClusterTarget:
        return DumpTarget(login, self.client_labels)

    def _password(self, name: str, key: str, args: DatabaseArgs) -> pulumi.Output[str]:
        credentials = args.settings.credentials
        role, configured = {
            bitnami_spec.ADMIN_PASSWORD_KEY: ("admin", credentials.admin_password),
            bitnami_spec.OWNER_PASSWORD_KEY: ("owner", credentials.owner_password),
            bitnami_spec.REPLICATION_PASSWORD_KEY: (
                "replication",
                credentials.replication_password,
            ),
        }[key]
        use_config = args.settings.password_source is PasswordSource.CONFIG
        return password(f"{name}-{role}-password", self, configured if use_config else None)


SUPERUSER: Final = "postgres"


FLAVOR: Final = FlavorKind(traits=bitnami_spec.traits, deploy=BitnamiPostgres)
