"""The privilege model as a psql script for an admin that is not a superuser (pure).

A managed PostgreSQL (RDS, Cloud SQL, Azure) gives its admin CREATEROLE and CREATEDB, never
SUPERUSER nor `pg_authid`. Such an admin can still apply every promise of the model, with
what PostgreSQL lets a CREATEROLE role do, and the script is written for both meanings of
CREATEROLE:

- up to PostgreSQL 15 it may create, alter and grant any role that is not a superuser;
- from 16 on it may alter only roles it holds ADMIN OPTION on: those it created (PostgreSQL
  grants that to the creator) or was granted. A role someone else created is refused by name.

What a superuser's script does by right, this one does by membership: to grant on the
migrator's tables and to set its default privileges, the admin becomes a member of the
migrator for the script's transaction only (as pulumi-postgresql does), and gives that up at
the end. It never sets a role's SUPERUSER, REPLICATION or BYPASSRLS (only a superuser may
name them); it checks that none of the roles has them. It sends no password: each role's
password arrives as a SCRAM verifier (`components.access.scram`), so nothing it runs can put
a password into the server's log. Every check that can fail runs first and names what is
missing and how to fix it; the whole script is one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from components.access.privileges import (
    PrivilegeModel,
    default_privilege_statements,
    grant_statements,
    history_revoke,
    history_table,
    ident,
    literal,
)
from components.contract import Purpose

ADMIN_OPTION_MAJOR: Final = 16
"""From this major on, CREATEROLE alters only roles held WITH ADMIN OPTION."""
CREATED_ROLE: Final = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
"""A new role, every attribute explicit (CREATE ROLE accepts the NO forms from a non-superuser)."""
RELATION_KINDS: Final = "('r', 'p', 'v', 'm', 'f', 'S')"
"""What `ALL TABLES` and `ALL SEQUENCES IN SCHEMA` reach: tables, partitioned tables, views,
materialized views, foreign tables, sequences."""


def verifier_variable(purpose: Purpose) -> str:
    return f"{purpose.value}_verifier"


def createrole_sql(model: PrivilegeModel, *, verifier_env: Mapping[Purpose, str]) -> str:
    """The model as one idempotent psql script, run as a CREATEROLE admin in the database.

    `verifier_env` names the environment variable holding each role's SCRAM verifier. Meant
    for `psql -X -v ON_ERROR_STOP=1 --single-transaction -f`.
    """
    names = [role.name for role in model.roles]
    migrator = model.role(Purpose.MIGRATOR).name
    lines = [
        f"-- Written by the deployment program from the privilege model of {model.database},",
        "-- for an admin with CREATEROLE that is not a superuser. Idempotent: a second run",
        "-- changes nothing. Passwords arrive as SCRAM verifiers: no statement carries one.",
        "SELECT pg_catalog.current_setting('server_version_num')::int >= "
        f"{ADMIN_OPTION_MAJOR}0000 AS admin_option_rules \\gset",
        _admin_checks(model, names),
    ]
    for role in model.roles:
        lines.extend(_role(role.name, verifier_variable(role.purpose), verifier_env[role.purpose]))
    lines.extend(
        [
            "-- The admin acts for the migrator (its tables, its default privileges) as a member",
            "-- for this transaction only; pulumi-postgresql does the same.",
            f"SELECT NOT pg_catalog.pg_has_role(current_user, {literal(migrator)}, 'USAGE') "
            "AS joins_migrator \\gset",
            "\\if :joins_migrator",
            "\\if :admin_option_rules",
            f"GRANT {ident(migrator)} TO CURRENT_USER WITH INHERIT TRUE, SET TRUE;",
            "\\else",
            f"GRANT {ident(migrator)} TO CURRENT_USER;",
            "\\endif",
            "\\endif",
            _object_checks(model),
        ]
    )
    lines.extend(f"{statement};" for statement in grant_statements(model))
    lines.extend(
        f"{statement};" for statement in default_privilege_statements(model, revoke_first=True)
    )
    lines.extend(
        [
            f"SELECT {literal(history_revoke(model))} WHERE pg_catalog.to_regclass("
            f"{literal(history_table(model))}) IS NOT NULL \\gexec",
            "\\if :joins_migrator",
            f"REVOKE {ident(migrator)} FROM CURRENT_USER;",
            "\\endif",
            _final_check(names),
        ]
    )
    return "\n".join(lines) + "\n"


def _names(names: list[str]) -> str:
    return "ARRAY[" + ", ".join(literal(name) for name in names) + "]"


def _admin_checks(model: PrivilegeModel, names: list[str]) -> str:
    """What the admin needs before it touches anything, each gap named with its fix."""
    return f"""\
-- What the admin must be able to do, checked before anything changes.
DO $check$
DECLARE
    problems text[] := '{{}}';
    admin_rules boolean := pg_catalog.current_setting('server_version_num')::int
        >= {ADMIN_OPTION_MAJOR}0000;
    r record;
BEGIN
    IF NOT (SELECT rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        problems := problems || pg_catalog.format(
            '%I lacks CREATEROLE (give databaseAdminUser a role that has it)', current_user);
    END IF;
    SELECT d.datdba::regrole AS owner INTO r FROM pg_catalog.pg_database d
        WHERE d.datname = current_database();
    IF NOT pg_catalog.pg_has_role(current_user, r.owner, 'USAGE') THEN
        problems := problems || pg_catalog.format(
            'database %I belongs to %s, whose privileges %I lacks (as its owner or a '
            'superuser: ALTER DATABASE %I OWNER TO %I)',
            current_database(), r.owner, current_user, current_database(), current_user);
    END IF;
    SELECT n.nspowner::regrole AS owner INTO r FROM pg_catalog.pg_namespace n
        WHERE n.nspname = {literal(model.schema)};
    IF r.owner IS NULL THEN
        problems := problems || pg_catalog.format(
            'schema %I does not exist', {literal(model.schema)});
    ELSIF NOT pg_catalog.pg_has_role(current_user, r.owner, 'USAGE') THEN
        problems := problems || pg_catalog.format(
            'schema %I belongs to %s, whose privileges %I lacks (ALTER SCHEMA %I OWNER TO %I)',
            {literal(model.schema)}, r.owner, current_user, {literal(model.schema)}, current_user);
    END IF;
    FOR r IN SELECT a.oid, a.rolname, a.rolsuper, a.rolreplication, a.rolbypassrls
        FROM pg_catalog.pg_roles a WHERE a.rolname = ANY({_names(names)}) ORDER BY a.rolname
    LOOP
        IF r.rolsuper OR r.rolreplication OR r.rolbypassrls THEN
            problems := problems || pg_catalog.format(
                'role %I is SUPERUSER, REPLICATION or BYPASSRLS, which only a superuser can '
                'take away (ALTER ROLE %I NOSUPERUSER NOREPLICATION NOBYPASSRLS)',
                r.rolname, r.rolname);
        ELSIF admin_rules AND NOT pg_catalog.pg_has_role(
                current_user, r.oid, 'MEMBER WITH ADMIN OPTION') THEN
            problems := problems || pg_catalog.format(
                'role %I exists but %I holds no ADMIN OPTION on it, and since PostgreSQL 16 '
                'CREATEROLE alters only such roles (as its creator or a superuser: GRANT %I TO '
                '%I WITH ADMIN OPTION; or drop it and let the Job create it)',
                r.rolname, current_user, r.rolname, current_user);
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'the grants Job cannot apply the privilege model of % as %: %',
            current_database(), current_user, pg_catalog.array_to_string(problems, '; ');
    END IF;
END
$check$;"""  # noqa: S608 (identifiers and literals quoted by ident and literal)


def _role(name: str, variable: str, env: str) -> list[str]:
    """Create the role if it is missing, then set its attributes and password. NOCREATEDB is
    set only by an admin that has CREATEDB itself (PostgreSQL 16 asks for it); the final check
    refuses a role left with it."""
    return [
        f"\\getenv {variable} {env}",
        f"\\if :{{?{variable}}}",
        "\\else",
        f"DO $$BEGIN RAISE EXCEPTION 'environment variable {env} is not set'; END$$;",
        "\\endif",
        f"SELECT {literal(f'CREATE ROLE {ident(name)} WITH {CREATED_ROLE}')} WHERE NOT EXISTS "  # noqa: S608
        f"(SELECT FROM pg_catalog.pg_roles WHERE rolname = {literal(name)}) \\gexec",
        f"SELECT pg_catalog.format('ALTER ROLE %I WITH LOGIN%s NOCREATEROLE INHERIT CONNECTION "  # noqa: S608
        f"LIMIT -1 PASSWORD %L', {literal(name)}, CASE WHEN rolcreatedb THEN ' NOCREATEDB' "
        f"ELSE '' END, :'{variable}') FROM pg_catalog.pg_roles WHERE rolname = current_user "
        "\\gexec",
    ]


def _object_checks(model: PrivilegeModel) -> str:
    """GRANT ... ON ALL TABLES only warns where it may not grant: refuse that instead."""
    return f"""\
DO $objects$
DECLARE
    missing text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%I (owner %s)', c.relname,
        c.relowner::regrole), ', ' ORDER BY c.relname) INTO missing
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = {literal(model.schema)} AND c.relkind IN {RELATION_KINDS}
        AND NOT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE');
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the grants Job cannot grant on % in schema %, whose owners % may not act '
            'for', missing, {literal(model.schema)}, current_user
            USING HINT = pg_catalog.format('As their owner, hand them to the migrator: ALTER '
                'TABLE <table> OWNER TO %I (REASSIGN OWNED would also hand over databases).',
                {literal(model.role(Purpose.MIGRATOR).name)});
    END IF;
END
$objects$;"""  # noqa: S608 (identifiers and literals quoted by ident and literal)


def _final_check(names: list[str]) -> str:
    return f"""\
DO $done$
DECLARE
    wrong text;
BEGIN
    SELECT pg_catalog.string_agg(a.rolname, ', ' ORDER BY a.rolname) INTO wrong
    FROM pg_catalog.pg_roles a WHERE a.rolname = ANY({_names(names)})
        AND (a.rolsuper OR a.rolcreatedb OR a.rolcreaterole OR a.rolreplication
            OR a.rolbypassrls OR NOT a.rolcanlogin OR NOT a.rolinherit);
    IF wrong IS NOT NULL THEN
        RAISE EXCEPTION 'roles % keep an attribute beyond LOGIN INHERIT (CREATEDB can be '
            'taken away only by a role that has it)', wrong;
    END IF;
END
$done$;"""  # noqa: S608 (identifiers and literals quoted by ident and literal)
