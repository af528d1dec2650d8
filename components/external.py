"""A PostgreSQL outside the cluster (a managed service): nothing to deploy, only to reach."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.common import TYPE_PREFIX
from components.flyway import DatabaseEndpoint, ServerAddress
from components.roles import AdminAccess
from components.settings import Credentials, DatabaseSettings


@dataclass(frozen=True)
class ExternalPostgresArgs:
    database: DatabaseSettings
    credentials: Credentials


class ExternalPostgres(pulumi.ComponentResource):
    """Stands for the managed database in the resource tree, so dependents can wait on it.

    It has no owner login in the cluster: the migrator role that the roles component
    creates is the only way in, so `endpoint` is None.
    """

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None
    client_labels: dict[str, str]
    """Pod labels a client needs to pass the database's NetworkPolicy."""
    host: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExternalPostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:ExternalPostgres", name, None, opts)
        db = args.database
        if args.credentials.admin_password is None:  # settings validation requires it
            raise ValueError("an external database needs adminPassword")
        self.address = ServerAddress(
            host=db.access_host,
            port=db.access_port,
            database=db.name,
            ssl_mode=db.ssl_mode.value,
        )
        self.endpoint = None
        self.client_labels = {}
        self.admin = AdminAccess(
            host=db.access_host,
            port=db.access_port,
            username=db.admin_user,
            password=pulumi.Output.secret(args.credentials.admin_password.reveal()),
            database=db.name,
            ssl_mode=db.ssl_mode.value,
        )
        self.host = pulumi.Output.from_input(db.access_host)
        self.register_outputs({"host": self.host})
