"""The schema the deployed migrations make: applied by Flyway's real command line to a
throwaway PostgreSQL set up with the stack's privilege model, as the rehearsal does, then read
with the same catalog query as the live database.

The files are the ones the stack deployed, byte for byte, read from its state (the migration
ConfigMaps, laid out as the Job's volume): what is compared is what the last deploy promised,
whatever the working copy holds. Flyway runs with the deployed Job's settings, logged in as the
role the Job logs in as; secret placeholder values are stood in for, as in the rehearsal.
"""

from __future__ import annotations

import base64
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from components import access, database
from components.access.privileges import to_sql
from components.contract import Purpose
from components.settings import FLYWAY_VERSION, Settings
from deploy.drift import pods
from deploy.drift.schema import Snapshot, snapshot
from deploy.rehearse import STAND_IN, first_failure
from standins.flyway_cli import FlywayNotInstalledError, FlywayTimeoutError, run_flyway
from standins.postgres import PostgresError, PostgresServer

CONFIG_MAP_TYPE: Final = "kubernetes:core/v1:ConfigMap"
FLYWAY_TIMEOUT_SECONDS: Final = 900.0
SECRET_SIG: Final = "4dabf18193072939515e22adb298388d"  # noqa: S105 (Pulumi's marker)


class ExpectedError(RuntimeError):
    """The deployed migrations could not be laid out or applied to the throwaway server."""


SETUP_ERRORS: Final = (
    ExpectedError,
    FlywayNotInstalledError,
    FlywayTimeoutError,
    PostgresError,
    psycopg.Error,
)
"""Why the expected schema could not be made: each message names the cause."""


@dataclass(frozen=True)
class Expected:
    snapshot: Snapshot
    files: int


def lay_out(job: Mapping[str, Any], resources: Iterable[Mapping[str, Any]], target: Path) -> int:
    """The deployed Job's volume of migration files, from the ConfigMaps the state records;
    returns the number of files."""
    recorded = {
        str(((r.get("outputs") or {}).get("metadata") or {}).get("name")): r.get("outputs") or {}
        for r in resources
        if r.get("type") == CONFIG_MAP_TYPE
    }
    count = 0
    for name, items in pods.migration_sources(job):
        config_map = recorded.get(name)
        if config_map is None:
            raise ExpectedError(f"the state records no ConfigMap {name}, which the Job mounts")
        data = config_map.get("data") or {}
        binary = config_map.get("binaryData") or {}
        if SECRET_SIG in data or SECRET_SIG in binary:
            raise ExpectedError(f"the state keeps ConfigMap {name} secret; it cannot be read")
        for key, path in items:
            if key in data:
                content = str(data[key]).encode("utf-8")
            elif key in binary:
                content = base64.b64decode(str(binary[key]))
            else:
                raise ExpectedError(f"ConfigMap {name} in the state has no key {key}")
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_bytes(content)
            count += 1
    return count


def _prepare(server: PostgresServer, settings: Settings, user: str) -> str:
    """The database and roles as the stack has them: the owner where the program creates
    one, the privilege model where roles are managed. Returns `user`'s password."""
    traits = database.traits(settings)
    model = access.model_for(settings, traits)
    name = settings.database.name
    passwords = {purpose: secrets.token_urlsafe(24) for purpose in Purpose}
    owner = traits.owner or (None if model is not None else user)
    owner_password = secrets.token_urlsafe(24)
    with server.connect() as conn:
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner is not None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER PASSWORD {}").format(
                    sql.Identifier(owner), sql.Literal(owner_password)
                )
            )
            create = sql.SQL("{} OWNER {}").format(create, sql.Identifier(owner))
        conn.execute(create)
    if model is not None:
        with server.connect(name) as conn:
            for statement in to_sql(model, passwords):
                conn.execute(statement.encode("utf-8"))
        if user == model.role(Purpose.MIGRATOR).name:
            return passwords[Purpose.MIGRATOR]
    if user == owner:
        return owner_password
    raise ExpectedError(
        f"the deployed Job logs in as {user}, a role the stack's settings do not make"
    )


def flyway_env(
    job: Mapping[str, Any], server: PostgresServer, database_name: str
) -> dict[str, str]:
    """The deployed Job's Flyway settings, pointed at the throwaway server and files."""
    env = {
        name: STAND_IN if value is None else value
        for name, value in pods.flyway_env(job).items()
        if name != "HOME"
    }
    env["FLYWAY_URL"] = server.jdbc_url(database_name)
    return env


def build(
    job: Mapping[str, Any], resources: Iterable[Mapping[str, Any]], settings: Settings
) -> Expected:
    """Apply the deployed migrations to a throwaway server and read its schema."""
    user = pods.flyway_env(job).get("FLYWAY_USER") or ""
    name = settings.database.name
    with tempfile.TemporaryDirectory(prefix="drift-") as scratch:
        files = lay_out(job, resources, Path(scratch))
        with PostgresServer() as server:
            password = _prepare(server, settings, user)
            env = flyway_env(job, server, name)
            env |= {"FLYWAY_PASSWORD": password, "FLYWAY_LOCATIONS": f"filesystem:{scratch}"}
            result = run_flyway(
                FLYWAY_VERSION,
                ["-skipCheckForUpdate", "migrate"],
                env,
                timeout=FLYWAY_TIMEOUT_SECONDS,
            )
            if result.returncode != 0:
                failure = first_failure(result.stdout + result.stderr)
                raise ExpectedError(
                    f"the deployed migrations do not apply to a throwaway PostgreSQL "
                    f"{server.bindir.parent.name} here: {failure}"
                )
            with server.connect(name, user=user, password=password) as conn:
                row = conn.execute(pods.CATALOG_SQL.encode("utf-8")).fetchone()
    if row is None:
        raise ExpectedError("the catalog query returned nothing on the throwaway server")
    return Expected(snapshot(row[0]), files)
