"""A PostgreSQL outside the cluster (a managed service): nothing to deploy, only to reach."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.common import TYPE_PREFIX, labels
from components.credentials import PASSWORD_KEY, credentials_secret_name, login_secret_data
from components.flyway import DatabaseEndpoint, ServerAddress
from components.privileges import Purpose, role_name
from components.roles import AdminAccess
from components.settings import Credentials, DatabaseSettings, Secret


@dataclass(frozen=True)
class ExternalPostgresArgs:
    database: DatabaseSettings
    credentials: Credentials
    namespace: pulumi.Input[str]


class ExternalPostgres(pulumi.ComponentResource):
    """Stands for the managed database in the resource tree, so dependents can wait on it.

    When Pulumi manages the roles (`admin` is set), the migrator role that the roles
    component creates is the only way in, so `endpoint` is None. When a DBA manages them,
    the stack is given the migrator's login and `endpoint` is that login's Secret.
    """

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None
    in_cluster_admin: None = None
    """No in-cluster step: Pulumi or a DBA manages an external database's roles."""
    client_labels: dict[str, str]
    """Pod labels a client needs to pass the database's NetworkPolicy."""
    host: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExternalPostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:ExternalPostgres", name, None, opts)
        db = args.database
        self.address = ServerAddress(
            host=db.access_host,
            port=db.access_port,
            database=db.name,
            ssl_mode=db.ssl_mode.value,
            ca_secret=db.ca_secret or None,
        )
        self.client_labels = {}
        self.admin, self.endpoint = None, None
        if db.manages_roles:
            admin_password = _required(args.credentials.admin_password, "adminPassword")
            self.admin = AdminAccess(
                host=db.access_host,
                port=db.access_port,
                username=db.admin_user,
                password=pulumi.Output.secret(admin_password.reveal()),
                database=db.name,
                ssl_mode=db.ssl_mode.value,
            )
        else:
            password = _required(args.credentials.migrator_password, "migratorPassword")
            self.endpoint = self._migrator_login(name, args, password)
        self.host = pulumi.Output.from_input(db.access_host)
        self.register_outputs({"host": self.host})

    def _migrator_login(
        self, name: str, args: ExternalPostgresArgs, password: Secret
    ) -> DatabaseEndpoint:
        """The Secret Flyway reads the DBA-created migrator's login from."""
        username = role_name(args.database.name, Purpose.MIGRATOR)
        secret_name = credentials_secret_name(args.database.name, Purpose.MIGRATOR)
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


def _required(secret: Secret | None, key: str) -> Secret:
    if secret is None:  # settings validation requires it
        raise ValueError(f"an external database needs {key}")
    return secret
