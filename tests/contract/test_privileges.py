"""The roles the program manages, proven with real connections as each of them.

For every flavor and roles mode that manages roles (CloudNativePG with managed roles, as
staging is committed, or with pulumi-postgresql; Bitnami with the grants Job; an external
database owned by a managed service's admin, with pulumi-postgresql or the grants Job) the
harness sets the database up as declared, applies the roles as declared (pulumi-postgresql's
own statements as its provider's user, checked to be `privilege_model`; or the operator's
managed roles and the grants Job's exact command) and runs the declared Flyway Job as the
migrator, on PostgreSQL 15 and 17. The `-after-destroy` cases then run `make destroy` and
`make up` as the database sees them (`harness/lifecycle.py`), the backup before Flyway and
one more migration, and every promise below is checked again. The migration set is the
project's plus one migration that creates a table with an identity column, so that a table
and a sequence exist that only default privileges can cover.
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
from tests.contract.conftest import ROLE_MAJORS, ServerOf
from tests.contract.harness import (
    DeclaredJob,
    DumpJob,
    PreparedDatabase,
    declared_job,
    job_environment,
    lay_out_volume,
    prepare_database,
    run_grants_job,
    run_job,
    schema_history,
)
from tests.contract.harness.lifecycle import Destroyed, destroy, up_again
from tests.contract.harness.model import ROLE_TYPE

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


AFTER_DESTROY_MIGRATION = """\
-- A migration after destroy -> up: the migrator must still be able to change what it
-- created before, and what it creates now must be covered like the rest.
ALTER TABLE trade_fills ADD COLUMN venue text;
CREATE TABLE trade_venues (code text PRIMARY KEY, name text NOT NULL);
"""


@dataclass(frozen=True)
class Case:
    stack: str
    config: dict[str, str]
    secrets: dict[str, str] | None = None
    after_destroy: bool = False
    """Deployed, then `make destroy`, then `make up` again (with one more migration) before
    the promises are checked."""


def _external(name: str, roles: str, **extra: str) -> dict[str, str]:
    """An external database of its own (and so role names) on the shared server, with an
    admin role that is not the local superuser, as on a managed service."""
    return {
        "databaseFlavor": "external",
        "databaseRolesManagedBy": roles,
        "databaseAccessHost": "db.example",
        "databaseSslMode": "require",
        "databaseName": name,
        "databaseAdminUser": f"{name}_admin",
        **extra,
    }


def _own(name: str) -> dict[str, str]:
    return {"databaseName": name, "databaseOwner": f"{name}_owner"}


ADMIN_SECRET = {"adminPassword": "contract-admin-Pa55word"}
PROTECTED = {"protectDatabase": "true"}
BITNAMI_CLUSTER = {"databaseRolesManagedBy": "cluster", "databaseSslMode": "disable"}
STAGING_PULUMI = {"databaseRolesManagedBy": "pulumi", "databaseAccessHost": "pg.example"}
CASES = {
    # As committed: the roles are named after the stack's database, managed from inside the
    # cluster (CloudNativePG's managed roles and the grants Job).
    "staging": Case("staging", {}),
    # The same flavor where Pulumi reaches the database: pulumi-postgresql's way.
    "staging-pulumi": Case("staging", {**STAGING_PULUMI, **_own("tradestream_pulumi")}),
    # Bitnami with roles managed in-cluster: the grants Job creates the roles too.
    "bitnami-cluster": Case("dev", {**BITNAMI_CLUSTER, **_own("tradestream_bitnami")}),
    # A managed database, roles by pulumi-postgresql as its admin (no superuser).
    "external": Case("dev", _external("tradestream_external", "pulumi"), ADMIN_SECRET),
    # A managed database, roles by the grants Job as its admin (no superuser).
    "external-cluster": Case("dev", _external("tradestream_excluster", "cluster"), ADMIN_SECRET),
    # destroy -> up. Unprotected (dev): what an external database's destroy leaves.
    "external-after-destroy": Case(
        "dev",
        _external("tradestream_exdestroy", "pulumi", protectDatabase="false"),
        ADMIN_SECRET,
        after_destroy=True,
    ),
    "external-cluster-after-destroy": Case(
        "dev",
        _external("tradestream_exclu_destroy", "cluster", protectDatabase="false"),
        ADMIN_SECRET,
        after_destroy=True,
    ),
    # In-cluster data survives a destroy only where it is protected.
    "staging-after-destroy": Case(
        "staging", {**_own("tradestream_stdestroy"), **PROTECTED}, after_destroy=True
    ),
    "staging-pulumi-after-destroy": Case(
        "staging",
        {**STAGING_PULUMI, **_own("tradestream_stpudestroy"), **PROTECTED},
        after_destroy=True,
    ),
    "bitnami-cluster-after-destroy": Case(
        "dev",
        {**BITNAMI_CLUSTER, **_own("tradestream_bidestroy"), **PROTECTED},
        after_destroy=True,
    ),
}
PARAMS = [f"{name}-pg{major}" for name in sorted(CASES) for major in ROLE_MAJORS]
IN_CLUSTER_GRANTS = [
    p for p in PARAMS if p.startswith(("bitnami-cluster", "staging-pg", "external-cluster"))
]


@dataclass(frozen=True)
class Deployed:
    """A database set up as declared, migrated by the declared Job as the migrator (and, after
    destroy, migrated again)."""

    case: str
    server: PostgresServer
    job: DeclaredJob
    prepared: PreparedDatabase
    before_destroy: list[Any] | None = None
    """The privilege state before `make destroy`, where the case destroys."""
    gone: Destroyed | None = None

    def role(self, purpose: Purpose) -> str:
        assert self.job.setup.model is not None
        return self.job.setup.model.role(purpose).name

    def connect(self, role: str) -> psycopg.Connection[Any]:
        password = self.prepared.passwords[role]
        return self.server.connect(self.job.database, user=role, password=password)

    def query(self, statement: str, params: tuple[Any, ...] | None = None) -> list[Any]:
        return self.server.query(statement, params, dbname=self.job.database)


def split(param: str) -> tuple[Case, int]:
    name, _, major = param.rpartition("-pg")
    return CASES[name], int(major)


def migrate(
    job: DeclaredJob, server: PostgresServer, prepared: PreparedDatabase, root: Path
) -> None:
    mount = Path(tempfile.mkdtemp(prefix="sql-", dir=root))
    lay_out_volume(job, mount)
    proc = run_job(job, server, mount, password=prepared.password)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module", params=PARAMS)
def deployed(
    request: pytest.FixtureRequest,
    postgres_of: ServerOf,
    tmp_path_factory: pytest.TempPathFactory,
) -> Deployed:
    case, major = split(request.param)
    server = postgres_of(major)
    root = tmp_path_factory.mktemp(f"deployed-{request.param}")
    directory = root / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    (directory / f"V{NEXT}__add_trade_fills.sql").write_text(IDENTITY_MIGRATION, encoding="utf-8")
    job = declared_job(case.stack, {**case.config, "migrationsDir": str(directory)}, case.secrets)
    prepared = prepare_database(server, job)
    migrate(job, server, prepared, root)
    if not case.after_destroy:
        return Deployed(request.param, server, job, prepared)

    deployed = Deployed(request.param, server, job, prepared)
    before = privilege_state(deployed)
    gone = destroy(server, job, prepared)
    prepared = up_again(server, job, prepared, gone)
    later = root / "migrations-later"
    shutil.copytree(directory, later)
    (later / f"V{int(NEXT) + 1}__add_trade_venues.sql").write_text(
        AFTER_DESTROY_MIGRATION, encoding="utf-8"
    )
    job = declared_job(case.stack, {**case.config, "migrationsDir": str(later)}, case.secrets)
    assert job.run is not None
    if job.run.of_type("kubernetes:batch/v1:Job") and any(
        r.name == "tradestream-dump" for r in job.run.resources
    ):
        # The backup runs before Flyway, as Flyway's login: it must read every table.
        backups = root / "backups"
        backups.mkdir()
        dump = DumpJob.of(job.run).run(server, prepared, backups)
        assert dump.returncode == 0, dump.stdout + dump.stderr
    migrate(job, server, prepared, root)
    return Deployed(request.param, server, job, prepared, before, gone)


def test_the_program_declares_the_privilege_model_and_flyway_logs_in_as_its_migrator(
    deployed: Deployed,
) -> None:
    setup, job = deployed.job.setup, deployed.job
    migrator = deployed.role(Purpose.MIGRATOR)
    if setup.flavor is Flavor.EXTERNAL:
        assert setup.owner is None
        assert setup.model == privilege_model(setup.database, owner=None)
        assert setup.model.memberships == ()
        assert (setup.grants is not None) is ("external-cluster" in deployed.case)
        database_owner = setup.admin
        assert job.env_value("FLYWAY_URL").endswith("?sslmode=require")
    else:
        bitnami = deployed.case.startswith("bitnami-cluster")
        assert setup.flavor is (Flavor.BITNAMI if bitnami else Flavor.CLOUDNATIVE_PG)
        assert (setup.grants is not None) is ("pulumi" not in deployed.case)
        assert setup.owner is not None
        assert setup.model == privilege_model(setup.database, owner=setup.owner)
        assert [(m.member, m.role) for m in setup.model.memberships] == [(migrator, setup.owner)]
        database_owner = setup.owner
        # CloudNativePG serves TLS with its own CA; Flyway verifies the server against it.
        assert job.env_value("FLYWAY_URL").endswith(
            f"/{setup.database}"
            if bitnami
            else "?sslmode=verify-full&sslrootcert=/flyway/tls/ca.crt"
        )
    assert job.env_value("FLYWAY_USER") == migrator

    env = job_environment(
        job, deployed.server, Path("/sql"), deployed.prepared.password, Path("/scratch")
    )
    local_url = f"jdbc:postgresql://{deployed.server.host}:{deployed.server.port}/{job.database}"
    # The local server serves no TLS: every declared sslmode becomes `disable` here.
    plain = deployed.case.startswith("bitnami-cluster")
    assert env["FLYWAY_URL"] == (local_url if plain else f"{local_url}?sslmode=disable")

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
    assert deployed.server.major == split(deployed.case)[1]


def test_flyway_ran_as_the_migrator_which_owns_everything_migrations_create(
    deployed: Deployed,
) -> None:
    migrator = deployed.role(Purpose.MIGRATOR)
    history = schema_history(deployed.server, deployed.job.database)
    assert history is not None
    later = [str(int(NEXT) + 1)] if split(deployed.case)[0].after_destroy else []
    assert [r["version"] for r in history] == [
        *(str(f.version) for f in PROJECT.versioned),
        NEXT,
        *later,
    ]
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


@pytest.mark.parametrize("deployed", IN_CLUSTER_GRANTS, indirect=True)
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


DESTROYED = [p for p in PARAMS if split(p)[0].after_destroy]


@pytest.mark.parametrize("deployed", DESTROYED, indirect=True)
def test_destroy_then_up_restores_the_privilege_model_exactly(deployed: Deployed) -> None:
    """Every role attribute, membership, grant and default privilege is as it was before the
    destroy, on every table and sequence, including those of the migration applied after.
    (An ACL is a set: the order of its items follows the order of the grants, not meaning.)"""
    assert deployed.before_destroy is not None
    before, after = acls(deployed.before_destroy), acls(privilege_state(deployed))
    for index in (0, 1, 2, 3, 5):  # roles, memberships, database, schema, default ACLs
        assert after[index] == before[index]
    tables = dict(after[4])
    for name, acl in before[4]:
        assert tables[name] == acl, name
    assert {"trade_venues"} <= set(tables) - {n for n, _ in before[4]}


def acls(state: list[Any]) -> list[Any]:
    """`privilege_state` with each ACL's items as a set."""

    def items(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("{") and "=" in value:
            return frozenset(value.strip("{}").split(","))
        if isinstance(value, tuple):
            return tuple(items(v) for v in value)
        return value

    return [[items(row) for row in rows] for rows in state]


@pytest.mark.parametrize(
    "deployed", [p for p in DESTROYED if p.startswith("external-after")], indirect=True
)
def test_an_external_databases_destroy_keeps_the_migrator_that_owns_the_data(
    deployed: Deployed,
) -> None:
    """pulumi-postgresql drops what `make destroy` deletes: the app and read-only roles (their
    grants and default privileges first), never the migrator, which stays protected with its
    password. Nothing was handed to the admin."""
    assert deployed.gone is not None
    migrator, app, readonly = (deployed.role(p) for p in Purpose)
    dropped = {r.inputs["name"] for r in deployed.gone.deleted(ROLE_TYPE)}
    assert dropped == {app, readonly}
    statements = "\n".join(deployed.gone.statements)
    assert f'REASSIGN OWNED BY "{app}" TO "{deployed.job.setup.admin}"' in statements
    assert f'DROP ROLE "{readonly}"' in statements
    assert f'DROP ROLE "{migrator}"' not in statements
    assert f'REASSIGN OWNED BY "{migrator}"' not in statements
    assert deployed.query(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> %s",
        (migrator,),
    ) == [(0,)]
