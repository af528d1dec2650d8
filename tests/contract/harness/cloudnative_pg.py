"""A CloudNativePG Cluster as declared: initdb, and the managed roles the operator makes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from components.settings import Flavor
from standins.postgres import PostgresServer
from tests.contract.harness.model import (
    CNPG_APP_PASSWORD_KEY,
    SUPERUSER,
    DatabaseSetup,
    DeclaredJob,
    HarnessError,
    PreparedDatabase,
    role_passwords,
)


def _cloudnative_pg_setup(cluster: Mapping[str, Any]) -> DatabaseSetup:
    bootstrap = cluster["spec"].get("bootstrap") or {}
    if set(bootstrap) != {"initdb"}:
        raise HarnessError(f"the harness reproduces bootstrap.initdb only: {sorted(bootstrap)}")
    initdb = bootstrap["initdb"]
    if set(initdb) != {"database", "owner"}:
        raise HarnessError(f"the harness reproduces initdb.database/owner only: {initdb}")
    return DatabaseSetup(
        flavor=Flavor.CLOUDNATIVE_PG,
        database=initdb["database"],
        owner=initdb["owner"],
        admin=SUPERUSER,
        owner_secret=(f"{cluster['metadata']['name']}-app", CNPG_APP_PASSWORD_KEY),
    )


def create_managed_roles(
    server: PostgresServer, job: DeclaredJob, prepared: PreparedDatabase
) -> PreparedDatabase:
    """Create the Cluster's managed roles as CloudNativePG's instance manager does: one
    CREATE ROLE with every attribute, the memberships (IN ROLE) and the password read from
    the role's passwordSecret. Nothing when no operator manages roles (Bitnami)."""
    prepared = role_passwords(job, prepared)
    flags = (
        ("bypassrls", "BYPASSRLS"),
        ("createdb", "CREATEDB"),
        ("createrole", "CREATEROLE"),
        ("inherit", "INHERIT"),
        ("login", "LOGIN"),
        ("replication", "REPLICATION"),
        ("superuser", "SUPERUSER"),
    )
    for role in job.setup.managed_roles:
        if role.get("ensure", "present") != "present" or "passwordSecret" not in role:
            raise HarnessError(f"the harness creates present roles with a password only: {role}")
        options = " ".join(
            word if role.get(key, key == "inherit") else f"NO{word}" for key, word in flags
        )
        statement = sql.SQL(
            "CREATE ROLE {} " + options + " CONNECTION LIMIT {}{} PASSWORD {}"
        ).format(
            sql.Identifier(role["name"]),
            sql.Literal(int(role.get("connectionLimit", -1))),
            sql.SQL(" IN ROLE {}").format(sql.SQL(",").join(map(sql.Identifier, role["inRoles"])))
            if role.get("inRoles")
            else sql.SQL(""),
            sql.Literal(prepared.passwords[role["name"]]),
        )
        server.query(statement)
    return prepared
