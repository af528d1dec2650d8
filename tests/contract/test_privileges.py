"""The roles the program manages, proven with real connections as each of them.

For staging (CloudNativePG with managed roles, as committed) and for the external flavor (a
managed database owned by its admin role), the harness sets the database up as declared,
applies the privilege model the program's pulumi-postgresql resources declare (checked to be
`privilege_model`) with its SQL, and runs the declared Flyway Job as the migrator. The migration
set is the project's plus one migration that creates a table with an identity column, so that a
table and a sequence exist that only default privileges can cover.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from components.access.privileges import privilege_model
from components.contract import Purpose
from components.migrations import load_migration_set
from components.settings import Flavor
from standins.postgres import PostgresServer
from tests.contract.harness import (
    DeclaredJob,
    PreparedDatabase,
    declared_job,
    job_environment,
    lay_out_volume,
    prepare_database,
    run_grants_job,
    run_job,
    schema_history,
)

pytestmark = pytest.mark.contract

MIGRATIONS = Path(__file__).parent / "history"
"""A history of these tests' own, whatever database/migrations holds."""
PROJECT = load_migration_set(MIGRATIONS)
NEXT = str(PROJECT.highest_version.parts[0] + 1 if PROJECT.highest_version else 1)
IDENTITY_MIGRATION = """\
-- Trade fills, numbered by an identity column: a table and a sequence that exist only after
-- the roles were set up, so only default privileges can give the other roles access to them.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE trade_fills (
    id       bigint  GENERATED ALWAYS AS IDENTITY,
    quantity numeric NOT NULL,
    CONSTRAINT trade_fills_pkey PRIMARY KEY (id)
);

COMMENT ON TABLE trade_fills IS 'Executed quantities, numbered in execution order.';
"""
SEQUENCE = "trade_fills_id_seq"


@dataclass(frozen=True)
class Case:
    stack: str
    config: dict[str, str]
    secrets: dict[str, str] | None = None


CASES = {
    # As committed: the roles are named after the stack's database, managed from inside the
    # cluster (CloudNativePG's managed roles and the grants Job).
    "staging": Case("staging", {}),
    # The same flavor where Pulumi reaches the database: pulumi-postgresql's way.
    "staging-pulumi": Case(
        "staging",
        {
            "databaseRolesManagedBy": "pulumi",
            "databaseAccessHost": "pg.example",
            "databaseName": "tradestream_pulumi",
            "databaseOwner": "tradestream_pulumi_owner",
        },
    ),
    # Bitnami with roles managed in-cluster: the grants Job creates the roles too.
    "bitnami-cluster": Case(
        "dev",
        {
            "databaseRolesManagedBy": "cluster",
            "databaseName": "tradestream_bitnami",
            "databaseOwner": "tradestream_bitnami_owner",
        },
    ),
    "external": Case(
        "dev",
        {
            "databaseFlavor": "external",
            "databaseRolesManagedBy": "pulumi",
            "databaseAccessHost": "db.example",
            "databaseSslMode": "require",
            # Its own database (and so role names) on the shared server, and an admin role
            # that is not the local superuser, as on a managed service.
            "databaseName": "tradestream_external",
            "databaseAdminUser": "tradestream_admin",
        },
        {"adminPassword": "contract-admin-Pa55word"},
    ),
}


@dataclass(frozen=True)
class Deployed:
    """A database set up as declared, migrated by the declared Job as the migrator."""

    case: str
    server: PostgresServer
    job: DeclaredJob
    prepared: PreparedDatabase

    def role(self, purpose: Purpose) -> str:
        assert self.job.setup.model is not None
        return self.job.setup.model.role(purpose).name

    def connect(self, role: str) -> psycopg.Connection[Any]:
        password = self.prepared.passwords[role]
        return self.server.connect(self.job.database, user=role, password=password)

    def query(self, statement: str, params: tuple[Any, ...] | None = None) -> list[Any]:
        return self.server.query(statement, params, dbname=self.job.database)


@pytest.fixture(scope="module", params=sorted(CASES))
def deployed(
    request: pytest.FixtureRequest,
    shared_postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Deployed:
    case = CASES[request.param]
    directory = tmp_path_factory.mktemp(f"migrations-{request.param}") / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    (directory / f"V{NEXT}__add_trade_fills.sql").write_text(IDENTITY_MIGRATION, encoding="utf-8")
    job = declared_job(case.stack, {**case.config, "migrationsDir": str(directory)}, case.secrets)
    prepared = prepare_database(shared_postgres, job)
    mount = Path(tempfile.mkdtemp(prefix="sql-", dir=tmp_path_factory.getbasetemp()))
    lay_out_volume(job, mount)

    proc = run_job(job, shared_postgres, mount, password=prepared.password)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Deployed(request.param, shared_postgres, job, prepared)


def test_the_program_declares_the_privilege_model_and_flyway_logs_in_as_its_migrator(
    deployed: Deployed,
) -> None:
    setup, job = deployed.job.setup, deployed.job
    migrator = deployed.role(Purpose.MIGRATOR)
    if deployed.case == "external":
        assert setup.flavor is Flavor.EXTERNAL
        assert setup.owner is None
        assert setup.model == privilege_model(setup.database, owner=None)
        assert setup.model.memberships == ()
        database_owner = setup.admin
        assert job.env_value("FLYWAY_URL").endswith("?sslmode=require")
    else:
        bitnami = deployed.case == "bitnami-cluster"
        assert setup.flavor is (Flavor.BITNAMI if bitnami else Flavor.CLOUDNATIVE_PG)
        assert (setup.grants is not None) is (deployed.case != "staging-pulumi")
        assert setup.owner is not None
        assert setup.model == privilege_model(setup.database, owner=setup.owner)
        assert [(m.member, m.role) for m in setup.model.memberships] == [(migrator, setup.owner)]
        database_owner = setup.owner
        # CloudNativePG serves TLS with its own CA; Flyway verifies the server against it.
        assert job.env_value("FLYWAY_URL").endswith(
            "/tradestream_bitnami"
            if bitnami
            else "?sslmode=verify-full&sslrootcert=/flyway/tls/ca.crt"
        )
    assert job.env_value("FLYWAY_USER") == migrator

    env = job_environment(
        job, deployed.server, Path("/sql"), deployed.prepared.password, Path("/scratch")
    )
    local_url = f"jdbc:postgresql://{deployed.server.host}:{deployed.server.port}/{job.database}"
    # The local server serves no TLS: every declared sslmode becomes `disable` here.
    assert env["FLYWAY_URL"] == (
        local_url if deployed.case == "bitnami-cluster" else f"{local_url}?sslmode=disable"
    )

    assert deployed.query(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    ) == [(database_owner,)]
    assert deployed.query(
        "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (database_owner,)
    ) == [(False,)]
    memberships = deployed.query(
        "SELECT m.rolname, r.rolname FROM pg_auth_members a"
        " JOIN pg_roles m ON m.oid = a.member JOIN pg_roles r ON r.oid = a.roleid"
        " WHERE m.rolname = ANY(%s)",
        ([role.name for role in setup.model.roles] if setup.model else [],),
    )
    assert memberships == ([] if setup.owner is None else [(migrator, setup.owner)])


def test_flyway_ran_as_the_migrator_which_owns_everything_migrations_create(
    deployed: Deployed,
) -> None:
    migrator = deployed.role(Purpose.MIGRATOR)
    history = schema_history(deployed.server, deployed.job.database)
    assert history is not None
    assert [r["version"] for r in history] == [*(str(f.version) for f in PROJECT.versioned), NEXT]
    assert {(r["installed_by"], r["success"]) for r in history} == {(migrator, True)}
    owners = deployed.query(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'i', 'p')"
    )
    assert owners == [(migrator,)]
    assert deployed.query("SELECT relkind FROM pg_class WHERE relname = %s", (SEQUENCE,)) == [
        ("S",)
    ]


def insert_spec(conn: psycopg.Connection[Any], name: str) -> Any:
    [(spec_id,)] = conn.execute(
        "INSERT INTO strategy_specs (name, indicators, entry_conditions, exit_conditions,"
        " parameters, source) VALUES (%s, '[]', '{}', '{}', '{}', 'USER_CREATED') RETURNING id",
        (name,),
    ).fetchall()
    return spec_id


def test_the_app_role_reads_and_writes_rows_and_uses_sequences(deployed: Deployed) -> None:
    with deployed.connect(deployed.role(Purpose.APP)) as conn:
        spec_id = insert_spec(conn, "app-writes")
        [(implementation_id,)] = conn.execute(
            "INSERT INTO strategy_implementations (spec_id, parameters, discovered_by)"
            " VALUES (%s, '{\"fast\": 12}', 'MANUAL') RETURNING id",
            (spec_id,),
        ).fetchall()
        conn.execute(
            "UPDATE strategy_implementations SET status = 'VALIDATED' WHERE id = %s",
            (implementation_id,),
        )
        assert conn.execute(
            "SELECT s.name, i.status FROM strategy_implementations i"
            " JOIN strategy_specs s ON s.id = i.spec_id WHERE i.id = %s",
            (implementation_id,),
        ).fetchall() == [("app-writes", "VALIDATED")]
        conn.execute("DELETE FROM strategy_implementations WHERE id = %s", (implementation_id,))
        conn.execute("DELETE FROM strategy_specs WHERE id = %s", (spec_id,))
        assert conn.execute(
            "SELECT count(*) FROM strategy_specs WHERE id = %s", (spec_id,)
        ).fetchall() == [(0,)]

        # The table and sequence of the migration applied after the roles were set up. An
        # identity column draws its value without a privilege check, so nextval() proves the
        # sequence's default privileges.
        [(fill_id,)] = conn.execute(
            "INSERT INTO trade_fills (quantity) VALUES (1.5) RETURNING id"
        ).fetchall()
        [(next_id,)] = conn.execute(
            sql.SQL("SELECT nextval({})").format(sql.Literal(SEQUENCE))
        ).fetchall()
        assert next_id > fill_id


def test_the_readonly_role_reads_rows_but_cannot_write_them(deployed: Deployed) -> None:
    with deployed.connect(deployed.role(Purpose.APP)) as conn:
        insert_spec(conn, "readonly-reads")
        conn.execute("INSERT INTO trade_fills (quantity) VALUES (2)")

    with deployed.connect(deployed.role(Purpose.READONLY)) as conn:
        assert conn.execute(
            "SELECT count(*) FROM strategy_specs WHERE name = 'readonly-reads'"
        ).fetchall() == [(1,)]
        assert conn.execute("SELECT count(*) > 0 FROM trade_fills").fetchall() == [(True,)]
        conn.execute(sql.SQL("SELECT last_value FROM {}").format(sql.Identifier(SEQUENCE)))
        writes = [
            "INSERT INTO strategy_specs (name, indicators, entry_conditions, exit_conditions,"
            " parameters, source) VALUES ('intruder', '[]', '{}', '{}', '{}', 'USER_CREATED')",
            "UPDATE strategy_specs SET description = 'changed' WHERE name = 'readonly-reads'",
            "DELETE FROM strategy_specs WHERE name = 'readonly-reads'",
            "INSERT INTO trade_fills (quantity) VALUES (3)",
            f"SELECT nextval('{SEQUENCE}')",
        ]
        for statement in writes:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement.encode())
    assert deployed.query("SELECT count(*) FROM strategy_specs WHERE name = 'readonly-reads'") == [
        (1,)
    ]


SCHEMA_CHANGES = {
    "create table": "CREATE TABLE intruder (id bigint)",
    "alter table": "ALTER TABLE strategy_specs ADD COLUMN intruder text",
    "drop table": "DROP TABLE trade_fills",
    "create index": "CREATE INDEX idx_strategy_specs_intruder ON strategy_specs (description)",
    "truncate": "TRUNCATE strategy_implementations",
}


@pytest.mark.parametrize("purpose", [Purpose.APP, Purpose.READONLY], ids=lambda p: p.value)
@pytest.mark.parametrize("change", sorted(SCHEMA_CHANGES))
def test_app_and_readonly_roles_cannot_change_the_schema(
    deployed: Deployed, purpose: Purpose, change: str
) -> None:
    with (
        deployed.connect(deployed.role(purpose)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        conn.transaction(force_rollback=True),
    ):
        conn.execute(SCHEMA_CHANGES[change].encode())
    assert deployed.query("SELECT to_regclass('trade_fills') IS NOT NULL") == [(True,)]


@pytest.mark.parametrize("purpose", list(Purpose), ids=lambda p: p.value)
def test_no_managed_role_can_create_roles_or_databases(
    deployed: Deployed, purpose: Purpose
) -> None:
    role = deployed.role(purpose)
    assert deployed.query(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
        " FROM pg_roles WHERE rolname = %s",
        (role,),
    ) == [(False,) * 5]
    with deployed.connect(role) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="create role"):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(f"{role}_intruder")))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="create database"):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"{role}_copy")))


def test_public_has_no_create_on_the_schema_and_only_the_migrator_creates(
    deployed: Deployed,
) -> None:
    assert deployed.query(
        "SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a"
        " WHERE n.nspname = 'public' AND a.grantee = 0"
    ) == [(0,)]
    creators = {
        purpose
        for purpose in Purpose
        if deployed.query(
            "SELECT has_schema_privilege(%s, 'public', 'CREATE')", (deployed.role(purpose),)
        )
        == [(True,)]
    }
    assert creators == {Purpose.MIGRATOR}

    # A login nobody granted anything: all it has is what PUBLIC has. In-cluster PUBLIC
    # cannot even connect; on a managed database it may, but cannot create anything.
    bystander = f"{deployed.job.database}_bystander"
    deployed.server.create_role(bystander, "bystander-Pa55word")
    if deployed.job.setup.owner is not None:
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            deployed.server.connect(
                deployed.job.database, user=bystander, password="bystander-Pa55word"
            )
        return
    with (
        deployed.server.connect(
            deployed.job.database, user=bystander, password="bystander-Pa55word"
        ) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema public"),
    ):
        conn.execute("CREATE TABLE public.intruder (id bigint)")


HISTORY_WRITES = {
    "insert": "INSERT INTO flyway_schema_history (installed_rank, version, description, type,"
    " script, installed_by, execution_time, success)"
    " VALUES (999, '999', 'forged', 'SQL', 'V999__forged.sql', 'app', 0, true)",
    "update": "UPDATE flyway_schema_history SET checksum = 0",
    "delete": "DELETE FROM flyway_schema_history",
    "truncate": "TRUNCATE flyway_schema_history",
}


@pytest.mark.parametrize("purpose", [Purpose.APP, Purpose.READONLY], ids=lambda p: p.value)
@pytest.mark.parametrize("write", sorted(HISTORY_WRITES))
def test_only_the_migrator_can_change_flyways_history(
    deployed: Deployed, purpose: Purpose, write: str
) -> None:
    """Default privileges cover every table the migrator creates, Flyway's own history table
    included; an application bug must not be able to rewrite what Flyway believes ran."""
    before = schema_history(deployed.server, deployed.job.database)
    with deployed.connect(deployed.role(purpose)) as conn:
        assert conn.execute("SELECT count(*) FROM flyway_schema_history").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(HISTORY_WRITES[write].encode())
    assert schema_history(deployed.server, deployed.job.database) == before


def privilege_state(deployed: Deployed) -> list[Any]:
    """Every role attribute, membership, ACL and default ACL the model touches."""
    setup = deployed.job.setup
    assert setup.model is not None
    names = [role.name for role in setup.model.roles]
    return [
        deployed.query(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
            " rolbypassrls, rolinherit, rolcanlogin, rolconnlimit"
            " FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
            (names,),
        ),
        deployed.query(
            "SELECT pg_get_userbyid(member), pg_get_userbyid(roleid) FROM pg_auth_members"
            " WHERE pg_get_userbyid(member) = ANY(%s) ORDER BY 1, 2",
            (names,),
        ),
        deployed.query("SELECT datacl::text FROM pg_database WHERE datname = current_database()"),
        deployed.query("SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'"),
        deployed.query(
            "SELECT c.relname, c.relacl::text FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'p') ORDER BY 1"
        ),
        deployed.query(
            "SELECT pg_get_userbyid(defaclrole), defaclobjtype, defaclacl::text"
            " FROM pg_default_acl ORDER BY 1, 2"
        ),
    ]


@pytest.mark.parametrize("deployed", ["bitnami-cluster", "staging"], indirect=True)
def test_the_grants_job_run_again_after_flyway_changes_nothing(deployed: Deployed) -> None:
    """The Job reruns whenever its script or spec changes, now on a migrated schema: grants,
    default privileges, role attributes and memberships come out exactly as they were, and
    Flyway's history stays the migrator's though the exact grants reach every table."""
    before = privilege_state(deployed)
    assert before[4], "no table: the rerun would prove nothing about existing tables"
    proc = run_grants_job(deployed.job, deployed.server, deployed.prepared)
    assert proc.returncode == 0, proc.stderr
    assert privilege_state(deployed) == before
    # The pod's log, what `kubectl logs` shows, carries no password.
    for password in deployed.prepared.passwords.values():
        assert password not in proc.stdout + proc.stderr
    app = deployed.role(Purpose.APP)
    assert deployed.query(
        "SELECT has_table_privilege(%s, 'flyway_schema_history', 'INSERT'),"
        " has_table_privilege(%s, 'flyway_schema_history', 'SELECT')",
        (app, app),
    ) == [(False, True)]
