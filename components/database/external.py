"""A PostgreSQL outside the cluster (a managed service): nothing to deploy, only to reach."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from components.contract import (
    PASSWORD_KEY,
    TYPE_PREFIX,
    AdminAccess,
    ClusterTarget,
    DatabaseArgs,
    DatabaseEndpoint,
    DumpTarget,
    FlavorKind,
    InClusterAdmin,
    Purpose,
    ServerAddress,
    Traits,
    credentials_secret_name,
    labels,
    login_secret_data,
    role_name,
)
from components.settings import Secret, Settings


def traits(settings: Settings) -> Traits:
    return Traits(
        holds_data=False,
        owner=None,
        record_key=None,
        record_name="",
        backup="pg_dump writes a backup to the stack's backup volume",
    )


def address(settings: Settings) -> ServerAddress:
    db = settings.database
    return ServerAddress(
        host=db.access_host,
        port=db.access_port,
        database=db.name,
        ssl_mode=db.ssl_mode.value,
        ca_secret=db.ca_secret or None,
    )


class ExternalPostgres(pulumi.ComponentResource):
    """Stands for the managed database in the resource tree, so dependents can wait on it.

    When the program manages the roles, the migrator role it creates is the only way in, so
    `endpoint` is None: Pulumi creates them from where `pulumi up` runs (`admin`), or the
    grants Job from inside the cluster (`in_cluster_admin`: the admin's login as a Secret,
    and the roles' logins, made here). When a DBA manages them, the stack is given the
    migrator's login and `endpoint` is that login's Secret.
    """

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None
    in_cluster_admin: InClusterAdmin | None
    """The admin is the managed service's: CREATEROLE and CREATEDB, no superuser. The Job
    runs psql from backupImage, the stack's PostgreSQL client image."""
    client_labels: dict[str, str]
    password_versions: Sequence[pulumi.Output[str]]
    """The role Secrets' versions: the grants Job sets those passwords, and reruns."""
    host: pulumi.Output[str]
    read_only_host: str

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:ExternalPostgres", name, None, opts)
        settings = args.settings
        db = settings.database
        self.address = address(settings)
        self.read_only_host = db.access_host
        self.client_labels = {}
        self.admin, self.endpoint, self.in_cluster_admin = None, None, None
        self.password_versions = ()
        if db.manages_roles:
            admin_password = pulumi.Output.secret(
                _required(settings.credentials.admin_password, "adminPassword").reveal()
            )
            if args.roles is None:
                self.admin = AdminAccess(
                    host=db.access_host,
                    port=db.access_port,
                    username=db.admin_user,
                    password=admin_password,
                    database=db.name,
                    ssl_mode=db.ssl_mode.value,
                )
            else:
                self.in_cluster_admin = self._admin_login(name, args, admin_password)
                # Verifiers: this admin cannot keep a password out of the server's log.
                self.password_versions = args.roles.make_logins(
                    self,
                    self.address,
                    operator_reloads=False,
                    verifiers=True,
                    protect=settings.protect_database,
                ).versions
        else:
            password = _required(settings.credentials.migrator_password, "migratorPassword")
            self.endpoint = self._migrator_login(name, args, password)
        self.host = pulumi.Output.from_input(db.access_host)
        self.register_outputs({"host": self.host})

    def backup_target(self, login: DatabaseEndpoint) -> DumpTarget | ClusterTarget:
        return DumpTarget(login, self.client_labels)

    def _admin_login(
        self, name: str, args: DatabaseArgs, password: pulumi.Output[str]
    ) -> InClusterAdmin:
        """The Secret the grants Job logs in with, as databaseAdminUser."""
        settings = args.settings
        secret_name = admin_secret_name(settings.database.name)
        k8s.core.v1.Secret(
            f"{name}-admin-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=args.namespace, labels=labels("database")
            ),
            type="Opaque",
            string_data=login_secret_data(settings.database.admin_user, password, self.address),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return InClusterAdmin(
            image=settings.backup.image,
            username=settings.database.admin_user,
            secret_name=secret_name,
            password_key=PASSWORD_KEY,
            creates_roles=True,
            superuser=False,
        )

    def _migrator_login(self, name: str, args: DatabaseArgs, password: Secret) -> DatabaseEndpoint:
        """The Secret Flyway reads the DBA-created migrator's login from."""
        database = args.settings.database.name
        username = role_name(database, Purpose.MIGRATOR)
        secret_name = credentials_secret_name(database, Purpose.MIGRATOR)
        k8s.core.v1.Secret(
            f"{name}-migrator-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=args.namespace, labels=labels("database")
            ),
            type="Opaque",
            string_data=login_secret_data(
                username, pulumi.Output.secret(password.reveal()), self.address
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return DatabaseEndpoint(self.address, username, secret_name, PASSWORD_KEY)


def admin_secret_name(database: str) -> str:
    """The Secret of databaseAdminUser's login, for the grants Job only."""
    return f"{database.replace('_', '-')}-admin-credentials"


def _required(secret: Secret | None, key: str) -> Secret:
    if secret is None:  # settings validation requires it
        raise ValueError(f"an external database needs {key}")
    return secret


FLAVOR: Final = FlavorKind(traits=traits, deploy=ExternalPostgres)
