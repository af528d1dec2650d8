"""The machine-local stacks: a local Kubernetes cluster with a real node, and in it

- for `local`, a PostgreSQL whose database and roles a DBA created;
- for `local-cnpg`, the CloudNativePG operator and its Barman Cloud plugin (standins/cnpg.py),
  the stack's namespace and its object store's credentials Secret, as a platform team
  provides them before a stack that runs its own Cluster.

`make up STACK=local` starts the cluster (idempotent; a cluster killed without `make down`
is restarted from its state), deploys the server where the stack file's
`databaseAccessHost` says it is, provisions it, then deploys the program into the cluster
with the real engine; `make down` stops the cluster and deletes everything it and the
stack kept.

The database starts empty. To try adopting a database the program did not build, fill it
first (with the cluster running), logged in as the migrator:

    python -m standins.localstack seed FILE        # a schema built by hand (or by a tool)
    python -m standins.localstack seed-flyway DIR [--placeholder NAME=VALUE ...]
                                                   # a history another Flyway runner left
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import psycopg
from psycopg import sql

from components.access.privileges import privilege_model, to_sql
from components.contract import Purpose
from components.migrations.placeholders import env_name
from components.settings import FLYWAY_VERSION, Settings
from components.settings.stackfile import read_stack_file
from standins.cluster.api import Client
from standins.cluster.layout import REPO_ROOT, Layout, cache_dir, default_state_dir
from standins.clusterdb import ClusterPostgres, Location
from standins.flyway_cli import run_flyway

STACK = "local"
CNPG_STACK = "local-cnpg"
STACKS = (STACK, CNPG_STACK)
STATE_ENV = "TRADESTREAM_LOCAL_STATE"
"""Puts the local stack's state (workspace, Pulumi state, kept password) elsewhere: the tests
run the README's commands with one of their own, beside a user's running local stack."""


class Server(Protocol):
    """What provisioning needs of a server: a superuser's autocommit connection."""

    def connect(self, dbname: str = ...) -> psycopg.Connection[tuple[Any, ...]]: ...


def state_dir(stack: str = STACK) -> Path:
    """Where `stack` keeps its workspace and state: the other local stacks' inside `local`'s,
    so that `make down` deletes them all."""
    configured = os.environ.get(STATE_ENV)
    base = Path(configured) if configured else cache_dir() / "local-stack"
    return base if stack == STACK else base / stack


def cluster_layout() -> Layout:
    return Layout(default_state_dir().absolute())


def stack_settings() -> Settings:
    """The committed local stack's settings."""
    return read_stack_file(REPO_ROOT, STACK).settings


@dataclass(frozen=True)
class LocalDatabase:
    """The running server and the login the stack is given, as a DBA would hand it over."""

    server: ClusterPostgres
    database: str
    migrator_password: str


def start_database(settings: Settings | None = None) -> LocalDatabase:
    """Deploy (or find) the server in the running cluster, where the stack file says it is,
    and create the database and its roles once. `settings`: the local stack's, read already."""
    settings = settings or stack_settings()
    database = settings.database
    layout = cluster_layout()
    server = ClusterPostgres(
        layout,
        Client.from_kubeconfig(layout.kubeconfig),
        Location.from_host(database.access_host, database.access_port),
        settings.backup.image,
    )
    server.start()
    return LocalDatabase(server, database.name, provision(server, database.name, state_dir()))


def plugins(state: Path) -> Path:
    """The resource providers the engine cannot fetch here, in `state`: pulumi-random's
    stand-in (standins/random_provider.py), for the passwords a stack generates."""
    from standins import random_provider  # noqa: PLC0415 (grpc, only for the engine)

    return random_provider.launcher(state / "plugins").parent


def prepare(stack: str, settings: Settings) -> str | None:
    """What `stack` needs in the running cluster before its deploy; the migrator's password
    when the stack is given one (a DBA's database), else None."""
    if stack == CNPG_STACK:
        start_operator(settings)
        return None
    return start_database(settings).migrator_password


OBJECT_STORE_KEYS: Final = {"ACCESS_KEY_ID": "local", "ACCESS_SECRET_KEY": "local-object-store"}
"""The node's object store accepts any key; the Secret holds these."""


def start_operator(settings: Settings) -> None:
    """Install the operator and the plugin, then make the stack's namespace (labelled as the
    program labels the ones it makes) and the credentials Secret its backups name."""
    from standins import cnpg  # noqa: PLC0415 (only for this stack)

    api = Client.from_kubeconfig(cluster_layout().kubeconfig)
    cnpg.install(api)
    namespace = settings.namespace
    api.create_if_missing(
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
    )
    secret = settings.backup.cnpg_credentials_secret
    if secret:
        api.create_if_missing(
            f"/api/v1/namespaces/{namespace}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret, "namespace": namespace},
                "stringData": OBJECT_STORE_KEYS,
            },
        )


def provision(server: Server, database: str, keep: Path) -> str:
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


def _cluster(*args: str, capture: bool = False) -> str:
    """The cluster's command line, in a process of its own: its components are not ours."""
    result = subprocess.run(
        [sys.executable, "-m", "standins.cluster", *args],
        cwd=REPO_ROOT,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout.strip() if capture else ""


def start_cluster() -> Path:
    """Start (or find running, or restart) the local cluster; its kubeconfig."""
    _cluster("start")
    return Path(_cluster("kubeconfig", capture=True))


def stop_cluster() -> None:
    """Stop the cluster and delete its state, the database's data with it."""
    _cluster("stop")


def down() -> None:
    """Stop the cluster and delete its state and the stack's."""
    stop_cluster()
    shutil.rmtree(state_dir(), ignore_errors=True)


def kubeconfig() -> Path:
    """Where the running (or next) cluster's kubeconfig is."""
    return cluster_layout().kubeconfig


def seed(sql_text: str, settings: Settings | None = None) -> LocalDatabase:
    """Build a schema in the local database without Flyway, as a team did before adopting the
    program: `sql_text` runs in one transaction as the migrator, so it owns what it creates
    (as it would own what migrations create)."""
    start_cluster()
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
    start_cluster()
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
