"""The `local` stack's machine: a PostgreSQL on loopback whose roles a DBA created, and a
local Kubernetes control plane whose node agent runs pods as local processes.

`make up STACK=local` starts both (each start is idempotent), then deploys into them with
the real engine; `make down STACK=local` stops both and deletes what they kept.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from components.privileges import Purpose, privilege_model, to_sql
from deploy.engine import ROOT, stack_file_config
from deploy.postgres import PostgresServer
from localcluster.layout import cache_dir

STACK = "local"
PROJECT_PREFIX = "tradestream-database:"


def state_dir() -> Path:
    return cache_dir() / "local-stack"


def postgres_dir() -> Path:
    """The local server's data. As root, the server runs as the postgres user, who cannot
    enter root's home: the data then lives under /var/lib, which only root can write to."""
    if os.geteuid() == 0:
        return Path("/var/lib/tradestream-database/local-postgres")
    return state_dir() / "postgres"


def stack_config() -> dict[str, str]:
    """The committed local stack's settings, without the project prefix."""
    return {
        key.removeprefix(PROJECT_PREFIX): value for key, value in stack_file_config(STACK).items()
    }


@dataclass(frozen=True)
class LocalDatabase:
    """The running server and the login the stack is given, as a DBA would hand it over."""

    server: PostgresServer
    database: str
    migrator_password: str


def start_database(config: dict[str, str] | None = None) -> LocalDatabase:
    """Start (or find running) the local PostgreSQL and create the database and its roles once."""
    config = config or stack_config()
    server = PostgresServer(base_dir=postgres_dir(), port=int(config["databaseAccessPort"]))
    server.start()
    database = config.get("databaseName", "tradestream")
    return LocalDatabase(server, database, provision(server, database, state_dir()))


def provision(server: PostgresServer, database: str, keep: Path) -> str:
    """What the DBA does for a managed database: the database, and the privilege model's roles
    with the migrator's password kept for the stack. Returns that password."""
    password_file = keep / "migrator-password"
    with server.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        migrator = f"{database}_{Purpose.MIGRATOR.value}"
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (migrator,)).fetchone()
    if role is not None and password_file.is_file():
        return password_file.read_text(encoding="utf-8").strip()
    passwords = {purpose: secrets.token_urlsafe(24) for purpose in Purpose}
    with server.connect(database) as conn:
        if role is None:
            for statement in to_sql(privilege_model(database), passwords):
                conn.execute(statement.encode("utf-8"))
        else:  # the roles exist but the kept password is gone: issue a new one
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(migrator), sql.Literal(passwords[Purpose.MIGRATOR])
                )
            )
    keep.mkdir(parents=True, exist_ok=True)
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(passwords[Purpose.MIGRATOR] + "\n")
    return passwords[Purpose.MIGRATOR]


def stop_database(*, remove: bool) -> None:
    """Stop the local server; with `remove`, delete its data too."""
    if not (postgres_dir() / "data").exists():
        return
    server = PostgresServer(base_dir=postgres_dir(), port=int(stack_config()["databaseAccessPort"]))
    if remove:
        server.close()
    else:
        server.stop()


def _cluster(*args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "localcluster", *args],
        cwd=ROOT,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout.strip() if capture else ""


def start_cluster() -> Path:
    """Start (or find running) the local control plane and node agent; its kubeconfig."""
    _cluster("start")
    return Path(_cluster("kubeconfig", capture=True))


def stop_cluster() -> None:
    _cluster("stop")


def job_log(namespace: str, job: str) -> str:
    """What the newest pod of a Job printed, as the node agent kept it."""
    result = subprocess.run(
        [sys.executable, "-m", "localcluster", "logs", "--job", namespace, job],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    return result.stdout if result.returncode == 0 else result.stderr
