"""Who may do what in the application database, as data (pure).

One model feeds the pulumi-postgresql resources, the in-cluster grants Job's script
(`in_cluster_sql`), CloudNativePG's managed roles and the contract tests, which apply it
with plain SQL to a real PostgreSQL and prove the promises below:

- the migrator owns what migrations create (Flyway runs as it); in-cluster it is also a
  member of the database owner, so it can alter what existed before it (a restored or
  pre-Flyway schema) and can do, inside this database, what the owner can;
- the app role reads and writes rows, the read-only role reads them;
- default privileges cover tables and sequences the migrator creates in later migrations;
- no role but the migrator can change the schema, and none can create roles or databases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from components.contract import HISTORY_TABLE, Purpose, role_name

ObjectType = Literal["database", "schema", "table", "sequence"]
PUBLIC: Final = "public"
"""The pseudo-role every role belongs to (pulumi-postgresql spells it in lower case)."""


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


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _grantee(role: str) -> str:
    return "PUBLIC" if role == PUBLIC else ident(role)


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _target(model: PrivilegeModel, object_type: ObjectType) -> str:
    schema = ident(model.schema)
    return {
        "database": f"DATABASE {ident(model.database)}",
        "schema": f"SCHEMA {schema}",
        "table": f"ALL TABLES IN SCHEMA {schema}",
        "sequence": f"ALL SEQUENCES IN SCHEMA {schema}",
    }[object_type]


def history_protection_sql(model: PrivilegeModel) -> str:
    """The callback that keeps Flyway's history the migrator's alone.

    The migrator creates the history table on the first run, so the default privileges give
    the app role write access to it like to any other table; no grant can name the table
    before it exists. After every migrate this takes back all but SELECT, so an application
    bug cannot rewrite what Flyway believes was applied. Idempotent; Flyway records no
    callback in the history, and none of this touches a checksum.
    """
    return (
        "-- Written by the deployment program: only the migrator changes Flyway's history.\n"
        f"{history_revoke(model)};\n"
    )


def history_table(model: PrivilegeModel) -> str:
    return f"{ident(model.schema)}.{ident(HISTORY_TABLE)}"


def history_revoke(model: PrivilegeModel) -> str:
    others = [role.name for role in model.roles if role.purpose is not Purpose.MIGRATOR]
    return (
        "REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE "
        f"{history_table(model)} FROM {', '.join(ident(name) for name in others)}"
    )


ROLE_ATTRIBUTES: Final = (
    "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
)
"""Every managed role: a login with no right beyond its grants."""


def to_sql(model: PrivilegeModel, passwords: dict[Purpose, str]) -> list[str]:
    """The model as SQL statements, run by a superuser in the application database.

    The same statements pulumi-postgresql issues, in the same order: roles, grants, then
    default privileges. Used by the contract tests and by operators applying it by hand.
    """
    statements = [
        f"CREATE ROLE {ident(role.name)} {ROLE_ATTRIBUTES} "
        f"PASSWORD {literal(passwords[role.purpose])}"
        for role in model.roles
    ]
    statements.extend(membership_statements(model))
    statements.extend(grant_statements(model))
    statements.extend(default_privilege_statements(model, revoke_first=False))
    return statements


def membership_statements(model: PrivilegeModel) -> list[str]:
    return [f"GRANT {ident(m.role)} TO {ident(m.member)}" for m in model.memberships]


def grant_statements(model: PrivilegeModel) -> list[str]:
    """Each grant is exact: everything else the role had on those objects is revoked."""
    statements: list[str] = []
    for grant in model.grants:
        target = _target(model, grant.object_type)
        statements.append(f"REVOKE ALL ON {target} FROM {_grantee(grant.role)}")
        if grant.privileges:
            privileges = ", ".join(grant.privileges)
            statements.append(f"GRANT {privileges} ON {target} TO {_grantee(grant.role)}")
    return statements


def default_privilege_statements(model: PrivilegeModel, *, revoke_first: bool) -> list[str]:
    statements: list[str] = []
    for default in model.default_privileges:
        kind = "TABLES" if default.object_type == "table" else "SEQUENCES"
        prefix = (
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(default.owner)} "
            f"IN SCHEMA {ident(model.schema)}"
        )
        if revoke_first:
            statements.append(f"{prefix} REVOKE ALL ON {kind} FROM {ident(default.role)}")
        statements.append(
            f"{prefix} GRANT {', '.join(default.privileges)} ON {kind} TO {ident(default.role)}"
        )
    return statements


def password_variable(purpose: Purpose) -> str:
    """The psql variable holding a role's password in the in-cluster script."""
    return f"{purpose.value}_password"


def in_cluster_sql(
    model: PrivilegeModel,
    *,
    password_env: Mapping[Purpose, str] | None,
    wait_seconds: int = 300,
) -> str:
    """The privilege model as one idempotent psql script, run by a superuser in the database.

    With `password_env` (the environment variable holding each role's password) the script
    creates any missing role and sets every role's attributes, password and memberships, as
    for a Bitnami release. Without it the roles are someone else's (CloudNativePG's managed
    roles, created asynchronously after the Cluster is Ready): the script waits up to
    `wait_seconds` for them to exist with a password and their memberships, then fails
    naming the missing ones. Then, either way: exact grants (REVOKE then GRANT), default
    privileges (REVOKE then GRANT), and Flyway's history taken back from all but the
    migrator, as the Flyway callback does, since these grants would give it back.

    Meant for `psql -X -v ON_ERROR_STOP=1 --single-transaction -f`; passwords come from the
    environment through `\\getenv`, never from the script's text.
    """
    lines = [
        f"-- Written by the deployment program from the privilege model of {model.database}.",
        "-- Idempotent: a second run changes nothing.",
    ]
    if password_env is not None:
        lines.extend(_create_roles(model, password_env))
    else:
        lines.append(_wait_for_roles(model, wait_seconds))
    lines.extend(f"{statement};" for statement in grant_statements(model))
    lines.extend(
        f"{statement};" for statement in default_privilege_statements(model, revoke_first=True)
    )
    lines.append(
        f"SELECT {literal(history_revoke(model))} "
        f"WHERE pg_catalog.to_regclass({literal(history_table(model))}) IS NOT NULL \\gexec"
    )
    return "\n".join(lines) + "\n"


def _create_roles(model: PrivilegeModel, password_env: Mapping[Purpose, str]) -> list[str]:
    lines = [
        "-- Statements that carry a password reach neither the server's log (even on error or",
        "-- when slow) nor pg_stat_statements.",
        "SET log_statement = 'none';",
        "SET log_min_error_statement = 'panic';",
        "SET log_min_duration_statement = -1;",
        "SET pg_stat_statements.track_utility = off;",
    ]
    for role in model.roles:
        variable, env = password_variable(role.purpose), password_env[role.purpose]
        lines.extend(
            [
                f"\\getenv {variable} {env}",
                f"\\if :{{?{variable}}}",
                "\\else",
                f"DO $$BEGIN RAISE EXCEPTION 'environment variable {env} is not set'; END$$;",
                "\\endif",
                f"SELECT {literal('CREATE ROLE ' + ident(role.name))} WHERE NOT EXISTS "  # noqa: S608
                f"(SELECT FROM pg_catalog.pg_roles WHERE rolname = {literal(role.name)}) \\gexec",
                f"ALTER ROLE {ident(role.name)} WITH {ROLE_ATTRIBUTES} CONNECTION LIMIT -1 "
                f"PASSWORD :'{variable}';",
            ]
        )
    lines.extend(f"{statement};" for statement in membership_statements(model))
    return lines


def _wait_for_roles(model: PrivilegeModel, wait_seconds: int) -> str:
    names = ", ".join(f"({literal(role.name)})" for role in model.roles)
    pairs = ", ".join(f"({literal(m.member)}, {literal(m.role)})" for m in model.memberships)
    memberships = (
        f"SELECT string_agg(w.member || ' in ' || w.parent, ', ') INTO missing "  # noqa: S608
        f"FROM (VALUES {pairs}) AS w(member, parent) WHERE NOT EXISTS ("
        "SELECT FROM pg_catalog.pg_auth_members m "
        "JOIN pg_catalog.pg_roles r ON r.oid = m.roleid "
        "JOIN pg_catalog.pg_roles u ON u.oid = m.member "
        "WHERE r.rolname = w.parent AND u.rolname = w.member);"
        if pairs
        else ""
    )
    return f"""\
-- The roles are the operator's: wait until it has created them, with their passwords and
-- memberships, before granting anything to them.
DO $wait$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '{int(wait_seconds)} seconds';
    missing text;
BEGIN
    LOOP
        SELECT string_agg(w.name, ', ') INTO missing FROM (VALUES {names}) AS w(name)
        WHERE NOT EXISTS (
            SELECT FROM pg_catalog.pg_authid a
            WHERE a.rolname = w.name AND a.rolcanlogin AND a.rolpassword IS NOT NULL);
        IF missing IS NULL THEN
            {memberships or "NULL;"}
        END IF;
        EXIT WHEN missing IS NULL;
        IF clock_timestamp() >= deadline THEN
            RAISE EXCEPTION 'after {int(wait_seconds)} s the database still lacks %', missing
                USING HINT = 'The operator creates managed roles; see the Cluster''s '
                    'status.managedRolesStatus for why it did not.';
        END IF;
        PERFORM pg_catalog.pg_sleep(1);
    END LOOP;
END
$wait$;"""  # noqa: S608 (identifiers and literals quoted by _ident and _literal)
