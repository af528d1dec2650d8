"""destroy -> up on the real engine, for the roles an external database keeps.

An external database's data outlives every destroy, so the roles that own it must too, and
the next `up` must find a privilege model it can work with. Two roles modes run on the
engine here: `cluster` (the grants Job, as an admin with CREATEROLE and CREATEDB only, runs
psql in a container on the local node; the role passwords come from a stand-in for
pulumi-random, which cannot be had here) and `dba` (roles created beforehand, as the local
stack's). `pulumi` cannot: the pulumi-postgresql provider cannot be built on this machine,
so its destroy and create are proven by the contract tests with the provider's own
statements instead.

After the first `up`, and again after destroy, a migration and the second `up`, the promises
are checked with logins of each role: the app writes rows but not Flyway's history, the
read-only role writes nothing, the migrator is neither superuser nor CREATEROLE and owns
every table.
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pulumi import automation as auto

from components.contract import Purpose, credentials_secret_name, role_name
from deploy.engine import Backend, Engine, open_stack
from deploy.engine import prepare_workspace as prepare
from deploy.target import Target
from standins import localstack as local
from standins import random_provider
from standins.cluster.api import Client
from standins.clusterdb import ClusterPostgres
from tests.engine.conftest import Deployment

pytestmark = pytest.mark.engine

_INDEX = itertools.count()
V1 = "CREATE TABLE e2e_roles_orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);\n"
V2 = "ALTER TABLE e2e_roles_orders ADD COLUMN quantity numeric;\n"


@dataclass
class Stack:
    deployment: Deployment
    roles: str
    kube: Client

    @property
    def database(self) -> str:
        return self.deployment.database

    def name(self, purpose: Purpose) -> str:
        return role_name(self.database, purpose)

    def password(self, purpose: Purpose) -> str:
        """The role's password as applications get it: its Secret (a DBA's hand-out for dba)."""
        if self.roles == "dba":
            return DBA_PASSWORDS[purpose]
        name = credentials_secret_name(self.database, purpose)
        secret = self.kube.get(f"/api/v1/namespaces/{self.deployment.namespace}/secrets/{name}")
        return base64.b64decode(secret["data"]["password"]).decode()

    def connect(self, purpose: Purpose) -> psycopg.Connection[tuple[object, ...]]:
        server = self.deployment.server
        return server.connect(
            self.database, user=self.name(purpose), password=self.password(purpose)
        )


DBA_PASSWORDS = {purpose: secrets.token_urlsafe(18) for purpose in Purpose}


@dataclass(frozen=True)
class Machine:
    """What every stack of a test shares: the engine, the control plane and the server."""

    engine: Engine
    kubeconfig: Path
    server: ClusterPostgres
    kube: Client
    tmp_path: Path


def build(roles: str, machine: Machine) -> Stack:
    """A local stack of the test's own: its database, migrations, workspace and state."""
    server, tmp_path = machine.server, machine.tmp_path
    index = next(_INDEX)
    database = f"e2e_roles_{index}"
    namespace = f"e2e-roles-{index}-{roles}"
    migrations = tmp_path / f"migrations-{index}"
    migrations.mkdir()
    (migrations / "V1__orders.sql").write_text(V1, encoding="utf-8")
    config = {
        "namespace": namespace,
        "databaseAccessHost": server.location.host,
        "databaseAccessPort": str(server.location.port),
        "databaseName": database,
        "migrationsDir": str(migrations),
        "databaseRolesManagedBy": roles,
    }
    if roles == "cluster":
        # A managed service's admin: CREATEROLE and CREATEDB, owner of the database it made.
        admin, admin_password = f"{database}_admin", secrets.token_urlsafe(18)
        server.query(
            sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
                sql.Identifier(admin), sql.Literal(admin_password)
            )
        )
        server.query(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(admin)
            )
        )
        config["databaseAdminUser"] = admin
    else:
        local.provision(server, database, tmp_path / f"dba-{index}")
        for purpose in Purpose:  # the DBA hands the logins out
            server.query(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role_name(database, purpose)),
                    sql.Literal(DBA_PASSWORDS[purpose]),
                )
            )
    workspace = prepare(tmp_path / f"workspace-{index}", local.STACK, config)
    backend = Backend.local_folder(tmp_path / f"state-{index}", local.STACK)
    stack = open_stack(
        local.STACK, workspace, backend, machine.engine, kubeconfig=machine.kubeconfig
    )
    if roles == "cluster":
        stack.set_config("adminPassword", auto.ConfigValue(admin_password, secret=True))
    else:
        password = DBA_PASSWORDS[Purpose.MIGRATOR]
        stack.set_config("migratorPassword", auto.ConfigValue(password, secret=True))
    deployment = Deployment(
        Target(local.STACK, stack, is_local=True), migrations, namespace, server, database, ""
    )
    return Stack(deployment, roles, machine.kube)


def check_the_promises(stack: Stack) -> None:
    migrator = stack.name(Purpose.MIGRATOR)
    names = sorted(stack.name(p) for p in Purpose)
    assert stack.deployment.server.query(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
        " WHERE rolname = ANY(%s) ORDER BY 1",
        (names,),
    ) == [(name, False, False, False) for name in names]
    assert stack.deployment.query(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    ) == [(migrator,)]
    with stack.connect(Purpose.APP) as app:
        app.execute("INSERT INTO e2e_roles_orders DEFAULT VALUES")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("DELETE FROM flyway_schema_history")
    with stack.connect(Purpose.READONLY) as readonly:
        assert readonly.execute("SELECT count(*) FROM e2e_roles_orders").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            readonly.execute("INSERT INTO e2e_roles_orders DEFAULT VALUES")
    with (
        stack.connect(Purpose.MIGRATOR) as owner,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        owner.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(f"{migrator}_x")))


@pytest.fixture
def machine(
    *,
    engine: Engine,
    kubeconfig: Path,
    server: ClusterPostgres,
    tmp_path: Path,
    kube: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> Machine:
    # pulumi-random cannot be had here: the stand-in generates the role passwords.
    plugins = random_provider.launcher(tmp_path / "plugins").parent
    monkeypatch.setenv("PATH", f"{plugins}{os.pathsep}{os.environ.get('PATH', '')}")
    return Machine(engine, kubeconfig, server, kube, tmp_path)


@pytest.mark.parametrize("roles", ["cluster", "dba"])
def test_destroy_then_up_leaves_the_privilege_model_whole(roles: str, machine: Machine) -> None:
    stack = build(roles, machine)
    deployment = stack.deployment
    try:
        output, result = deployment.up()
        assert result is not None, output
        # cluster: the grants Job ran on the node, as the admin; dba: nothing touched roles.
        assert ("tradestream-grants" in output) is (roles == "cluster")
        check_the_promises(stack)

        deployment.destroy()
        # The data and every role that owns it stay; the namespace and its Secrets go.
        assert machine.kube.get_or_none(f"/api/v1/namespaces/{deployment.namespace}") is None
        assert "e2e_roles_orders" in deployment.tables()

        (deployment.migrations / "V2__quantity.sql").write_text(V2, encoding="utf-8")
        output, result = deployment.up()
        assert result is not None, output
        assert [row[0] for row in deployment.history()] == ["1", "2"]
        check_the_promises(stack)
        # The Job set the new Secrets' passwords as verifiers: none reached what was printed.
        transcript = "\n".join(deployment.transcript)
        for purpose in Purpose:
            assert stack.password(purpose) not in transcript
    finally:
        deployment.stack.destroy(color="never")
