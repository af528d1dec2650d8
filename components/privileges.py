"""Who may do what in the application database, as data (pure).

One model feeds both the pulumi-postgresql resources and the contract tests, which apply
it with plain SQL to a real PostgreSQL and prove the promises below:

- the migrator owns what migrations create (Flyway runs as it); in-cluster it is also a
  member of the database owner, so it can alter what existed before it (a restored or
  pre-Flyway schema) and can do, inside this database, what the owner can;
- the app role reads and writes rows, the read-only role reads them;
- default privileges cover tables and sequences the migrator creates in later migrations;
- no role but the migrator can change the schema, and none can create roles or databases.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

ObjectType = Literal["database", "schema", "table", "sequence"]
PUBLIC: Final = "public"
"""The pseudo-role every role belongs to (pulumi-postgresql spells it in lower case)."""


class Purpose(enum.Enum):
    MIGRATOR = "migrator"
    APP = "app"
    READONLY = "readonly"


@dataclass(frozen=True)
class RoleSpec:
    """A login role with no superuser, role-creation, database-creation or replication right."""

    name: str
    purpose: Purpose


@dataclass(frozen=True)
class Grant:
    """The exact privileges of a role on one kind of object (others are revoked).

    Tables and sequences mean all that exist in the schema when it is applied.
    """

    role: str
    object_type: ObjectType
    privileges: tuple[str, ...]


@dataclass(frozen=True)
class DefaultPrivilege:
    """Privileges `role` gets on objects `owner` creates later in the schema."""

    owner: str
    role: str
    object_type: Literal["table", "sequence"]
    privileges: tuple[str, ...]


@dataclass(frozen=True)
class Membership:
    """`member` may act as `role`: alter and drop what `role` owns (attributes such as
    CREATEDB are never inherited)."""

    member: str
    role: str


@dataclass(frozen=True)
class PrivilegeModel:
    database: str
    schema: str
    roles: tuple[RoleSpec, ...]
    grants: tuple[Grant, ...]
    default_privileges: tuple[DefaultPrivilege, ...]
    memberships: tuple[Membership, ...] = ()

    def role(self, purpose: Purpose) -> RoleSpec:
        return next(r for r in self.roles if r.purpose is purpose)


READ_WRITE: Final = ("DELETE", "INSERT", "SELECT", "UPDATE")
SEQUENCE_USE: Final = ("SELECT", "USAGE")


def role_name(database: str, purpose: Purpose) -> str:
    return f"{database}_{purpose.value}"


def privilege_model(
    database: str, schema: str = "public", owner: str | None = None
) -> PrivilegeModel:
    """The three-role model for one database and schema.

    `owner` is the role that owns the database and what existed before the migrator (a
    restored or pre-Flyway schema); the migrator becomes a member so later migrations can
    still alter those tables.
    """
    migrator, app, readonly = (role_name(database, p) for p in Purpose)
    # Nobody gets rights by merely existing; the roles below get exactly theirs. On a
    # managed database (no owner given) PUBLIC keeps CONNECT, which the admin may rely on.
    public = (Grant(PUBLIC, "database", ()),) if owner else ()
    grants = (
        *public,
        Grant(PUBLIC, "schema", ()),
        Grant(migrator, "database", ("CONNECT", "TEMPORARY")),
        Grant(app, "database", ("CONNECT",)),
        Grant(readonly, "database", ("CONNECT",)),
        Grant(migrator, "schema", ("CREATE", "USAGE")),
        Grant(app, "schema", ("USAGE",)),
        Grant(readonly, "schema", ("USAGE",)),
        # Tables that exist already (e.g. a database that predates Flyway).
        Grant(app, "table", READ_WRITE),
        Grant(app, "sequence", SEQUENCE_USE),
        Grant(readonly, "table", ("SELECT",)),
        Grant(readonly, "sequence", ("SELECT",)),
    )
    defaults = (
        DefaultPrivilege(migrator, app, "table", READ_WRITE),
        DefaultPrivilege(migrator, app, "sequence", SEQUENCE_USE),
        DefaultPrivilege(migrator, readonly, "table", ("SELECT",)),
        DefaultPrivilege(migrator, readonly, "sequence", ("SELECT",)),
    )
    return PrivilegeModel(
        database=database,
        schema=schema,
        roles=tuple(RoleSpec(role_name(database, p), p) for p in Purpose),
        grants=grants,
        default_privileges=defaults,
        memberships=(Membership(member=migrator, role=owner),) if owner else (),
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _grantee(role: str) -> str:
    return "PUBLIC" if role == PUBLIC else _ident(role)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _target(model: PrivilegeModel, object_type: ObjectType) -> str:
    schema = _ident(model.schema)
    return {
        "database": f"DATABASE {_ident(model.database)}",
        "schema": f"SCHEMA {schema}",
        "table": f"ALL TABLES IN SCHEMA {schema}",
        "sequence": f"ALL SEQUENCES IN SCHEMA {schema}",
    }[object_type]


HISTORY_TABLE: Final = "flyway_schema_history"
HISTORY_CALLBACK: Final = "afterMigrate__protect_schema_history.sql"
"""A Flyway callback: Flyway runs it after every migrate, as the migrator."""


def history_protection_sql(model: PrivilegeModel) -> str:
    """The callback that keeps Flyway's history the migrator's alone.

    The migrator creates the history table on the first run, so the default privileges give
    the app role write access to it like to any other table; no grant can name the table
    before it exists. After every migrate this takes back all but SELECT, so an application
    bug cannot rewrite what Flyway believes was applied. Idempotent; Flyway records no
    callback in the history, and none of this touches a checksum.
    """
    others = [role.name for role in model.roles if role.purpose is not Purpose.MIGRATOR]
    table = f"{_ident(model.schema)}.{_ident(HISTORY_TABLE)}"
    return (
        "-- Written by the deployment program: only the migrator changes Flyway's history.\n"
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE {table} FROM "
        f"{', '.join(_ident(name) for name in others)};\n"
    )


def to_sql(model: PrivilegeModel, passwords: dict[Purpose, str]) -> list[str]:
    """The model as SQL statements, run by a superuser in the application database.

    The same statements pulumi-postgresql issues, in the same order: roles, grants, then
    default privileges. Used by the contract tests and by operators applying it by hand.
    """
    statements = [
        f"CREATE ROLE {_ident(role.name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
        f"NOREPLICATION NOBYPASSRLS INHERIT PASSWORD {_literal(passwords[role.purpose])}"
        for role in model.roles
    ]
    statements.extend(f"GRANT {_ident(m.role)} TO {_ident(m.member)}" for m in model.memberships)
    for grant in model.grants:
        target = _target(model, grant.object_type)
        statements.append(f"REVOKE ALL ON {target} FROM {_grantee(grant.role)}")
        if grant.privileges:
            privileges = ", ".join(grant.privileges)
            statements.append(f"GRANT {privileges} ON {target} TO {_grantee(grant.role)}")
    for default in model.default_privileges:
        kind = "TABLES" if default.object_type == "table" else "SEQUENCES"
        statements.append(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {_ident(default.owner)} "
            f"IN SCHEMA {_ident(model.schema)} "
            f"GRANT {', '.join(default.privileges)} ON {kind} TO {_ident(default.role)}"
        )
    return statements
