"""Database roles and grants, managed with pulumi-postgresql, and their Kubernetes Secrets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_postgresql as postgresql

from components.access.credentials import PULUMI_ROLES_TYPE, role_logins
from components.access.privileges import PrivilegeModel
from components.contract import (
    PASSWORD_KEY,
    AdminAccess,
    DatabaseEndpoint,
    Purpose,
    ServerAddress,
    credentials_secret_name,
)


@dataclass(frozen=True)
class DatabaseRolesArgs:
    model: PrivilegeModel
    admin: AdminAccess
    address: ServerAddress
    """Where the Job and applications reach the database (not necessarily where Pulumi does)."""
    namespace: pulumi.Input[str]
    database: pulumi.Resource
    """The database these roles live in; nothing here is attempted before it is ready."""
    keep_migrator: bool = False
    """Protect the migrator's role whatever the stack's protection: the database outlives
    any destroy (an external one), and the migrator owns everything Flyway created there."""


class DatabaseRoles(pulumi.ComponentResource):
    """The migrator, app and read-only roles, their grants and default privileges.

    Passwords are generated and delivered only as Kubernetes Secrets: the migrator's to the
    Flyway Job, the others to application workloads.
    """

    migrator: DatabaseEndpoint
    secret_names: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: DatabaseRolesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(PULUMI_ROLES_TYPE, name, None, opts)
        model, admin = args.model, args.admin
        provider = postgresql.Provider(
            f"{name}-provider",
            host=admin.host,
            port=admin.port,
            username=admin.username,
            password=admin.password,
            database=admin.database,
            sslmode=admin.ssl_mode,
            superuser=False,  # works with managed services' admin roles too
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.database]),
        )
        on_db = pulumi.ResourceOptions(parent=self, provider=provider)

        logins = role_logins(name, self, model, args.address, args.namespace)
        roles: dict[Purpose, postgresql.Role] = {}
        for spec in model.roles:
            # Dropping the migrator would hand its tables to the admin (REASSIGN OWNED), and
            # the migrator created by the next `up` could neither migrate nor back them up.
            # Protected, `destroy --exclude-protected` (make destroy) keeps it with its
            # password, its provider and this component; what depends on it goes and comes back.
            keep = args.keep_migrator and spec.purpose is Purpose.MIGRATOR
            roles[spec.purpose] = postgresql.Role(
                f"{name}-{spec.purpose.value}",
                name=spec.name,
                login=True,
                password=logins[spec.purpose].password,
                superuser=False,
                create_database=False,
                create_role=False,
                replication=False,
                bypass_row_level_security=False,
                inherit=True,
                # Should the role ever leave the model, what it owns (the migrator owns every
                # table) is first reassigned to the admin role, and DROP OWNED then only
                # revokes its privileges: removing a role never drops application tables.
                skip_reassign_owned=False,
                opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=True)
                if keep
                else on_db,
            )

        by_name = {spec.name: roles[spec.purpose] for spec in model.roles}
        for membership in model.memberships:
            postgresql.GrantRole(
                f"{name}-{membership.member}-in-{membership.role}",
                role=membership.member,
                grant_role=membership.role,
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider, depends_on=[by_name[membership.member]]
                ),
            )
        # One at a time, in the model's order: PostgreSQL fails concurrent GRANT/REVOKE on the
        # same objects with "tuple concurrently updated", and destroy runs the chain backwards.
        previous: list[pulumi.Resource] = []
        for grant in model.grants:
            depends = [by_name[grant.role]] if grant.role in by_name else list(roles.values())
            previous = [
                postgresql.Grant(
                    f"{name}-grant-{grant.role}-{grant.object_type}",
                    database=model.database,
                    schema=None if grant.object_type == "database" else model.schema,
                    role=grant.role,
                    object_type=grant.object_type,
                    objects=[],
                    privileges=list(grant.privileges),
                    opts=pulumi.ResourceOptions(
                        parent=self, provider=provider, depends_on=[*depends, *previous]
                    ),
                )
            ]
        for d in model.default_privileges:
            # Owned by the migrator: covers every table and sequence later migrations create.
            previous = [
                postgresql.DefaultPrivileges(
                    f"{name}-default-{d.role}-{d.object_type}",
                    database=model.database,
                    schema=model.schema,
                    owner=d.owner,
                    role=d.role,
                    object_type=d.object_type,
                    privileges=list(d.privileges),
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        provider=provider,
                        depends_on=[by_name[d.owner], by_name[d.role], *previous],
                    ),
                )
            ]

        migrator = model.role(Purpose.MIGRATOR)
        self.migrator = DatabaseEndpoint(
            address=args.address,
            username=migrator.name,
            secret_name=credentials_secret_name(model.database, Purpose.MIGRATOR),
            password_key=PASSWORD_KEY,
        )
        self.secret_names = pulumi.Output.from_input(
            {
                spec.purpose.value: credentials_secret_name(model.database, spec.purpose)
                for spec in model.roles
            }
        )
        self.register_outputs({"secretNames": self.secret_names})
