"""The `local` stack's machine: a PostgreSQL on loopback whose roles a DBA created, and a
local Kubernetes control plane whose node agent runs pods as local processes.

`make up STACK=local` starts both (each start is idempotent), then deploys into them with
the real engine; `make down STACK=local` stops both and deletes what they kept.

The database starts empty. To try adopting a database the program did not build, fill it
first, logged in as the migrator:

    python -m standins.localstack seed FILE        # a schema built by hand (or by a tool)
    python -m standins.localstack seed-flyway DIR [--placeholder NAME=VALUE ...]
                                                   # a history another Flyway runner left
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from components.access.privileges import privilege_model, to_sql
from components.contract import Purpose
from components.migrations.placeholders import env_name
from components.settings import FLYWAY_VERSION, Settings
from components.settings.stackfile import read_stack_file
from standins.cluster.layout import REPO_ROOT, cache_dir
from standins.flyway_cli import run_flyway
from standins.postgres import PostgresServer

STACK = "local"
STATE_ENV = "TRADESTREAM_LOCAL_STATE"
"""Puts the local stack's state (workspace, Pulumi state, database) elsewhere: the tests run
the README's commands with one of their own, beside a user's running local stack."""


def state_dir() -> Path:
    configured = os.environ.get(STATE_ENV)
    return Path(configured) if configured else cache_dir() / "local-stack"


def postgres_dir() -> Path:
    """The local server's data. As root, the server runs as the postgres user, who cannot
    enter root's home: the data then lives under /var/lib, which only root can write to."""
    if os.environ.get(STATE_ENV):
        return state_dir() / "postgres"
    if os.geteuid() == 0:
        return Path("/var/lib/tradestream-database/local-postgres")
    return state_dir() / "postgres"


def stack_settings() -> Settings:
    """The committed local stack's settings."""
    return read_stack_file(REPO_ROOT, STACK).settings


@dataclass(frozen=True)
class LocalDatabase:
    """The running server and the login the stack is given, as a DBA would hand it over."""

    server: PostgresServer
    database: str
    migrator_password: str


def start_database(settings: Settings | None = None) -> LocalDatabase:
    """Start (or find running) the local PostgreSQL and create the database and its roles once.
    `settings`: the local stack's, read already; else read here."""
    database_settings = (settings or stack_settings()).database
    server = PostgresServer(base_dir=postgres_dir(), port=database_settings.access_port)
    server.start()
    database = database_settings.name
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
    server = PostgresServer(base_dir=postgres_dir(), port=stack_settings().database.access_port)
    if remove:
        server.close()
    else:
        server.stop()


def _cluster(*args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "standins.cluster", *args],
        cwd=REPO_ROOT,
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
        [sys.executable, "-m", "standins.cluster", "logs", "--job", namespace, job],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    return result.stdout if result.returncode == 0 else result.stderr


def stop_database_at(state: Path) -> None:
    """Stop and delete the database of a local stack kept in `state` (see STATE_ENV)."""
    base = state / "postgres"
    if (base / "data").exists():
        PostgresServer(base_dir=base).close()


def seed(sql_text: str, settings: Settings | None = None) -> LocalDatabase:
    """Build a schema in the local database without Flyway, as a team did before adopting the
    program: `sql_text` runs in one transaction as the migrator, so it owns what it creates
    (as it would own what migrations create)."""
    local = start_database(settings)
    migrator = f"{local.database}_{Purpose.MIGRATOR.value}"
    with local.server.connect(local.database) as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(migrator)))
        conn.execute(sql_text.encode("utf-8"))
    return local


def seed_flyway(
    directory: Path, placeholders: Mapping[str, str], settings: Settings | None = None
) -> str:
    """Migrate the local database with `directory` by Flyway's own command line, as another
    runner (an old chart's Job) did before the program took over: the history it leaves is
    the one the program's Flyway carries on. Returns Flyway's output; RuntimeError if it
    failed."""
    local = start_database(settings)
    env = {
        "FLYWAY_URL": local.server.jdbc_url(local.database),
        "FLYWAY_USER": f"{local.database}_{Purpose.MIGRATOR.value}",
        "FLYWAY_PASSWORD": local.migrator_password,
        "FLYWAY_LOCATIONS": f"filesystem:{directory.resolve()}",
        "FLYWAY_POSTGRESQL_TRANSACTIONAL_LOCK": "false",
        **{env_name(name): value for name, value in placeholders.items()},
    }
    result = run_flyway(FLYWAY_VERSION, ["migrate"], env)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"Flyway failed to seed the local database:\n{output}")
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.localstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    by_hand = commands.add_parser("seed", help="run a SQL file as the migrator, no Flyway")
    by_hand.add_argument("file", type=Path)
    by_flyway = commands.add_parser("seed-flyway", help="migrate with Flyway, as another runner")
    by_flyway.add_argument("directory", type=Path)
    by_flyway.add_argument("--placeholder", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if args.command == "seed":
        local = seed(args.file.read_text(encoding="utf-8"))
        print(f"seeded {local.database} on port {local.server.port} from {args.file}")
        return 0
    values = dict(item.split("=", 1) for item in args.placeholder)
    print(seed_flyway(args.directory, values).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
