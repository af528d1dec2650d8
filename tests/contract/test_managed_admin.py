"""The grants Job as a managed service's admin, and what a destroy does to an external database.

A managed PostgreSQL's admin has CREATEROLE and CREATEDB and owns the database it created;
it is no superuser and cannot read `pg_authid`. The Job's exact psql command runs as such an
admin against PostgreSQL 15 and 17, where CREATEROLE means two different things: up to 15 it
may alter any role that is not a superuser; from 16 on only roles it holds ADMIN OPTION on
(those it created). What cannot work fails before anything changes, naming the cause.

The last test shows why the migrator of an external database is protected: pulumi-postgresql
hands a dropped role's tables to the admin, and the next `up` can no longer back them up.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from components.contract import Purpose
from standins.postgres import PostgresServer
from tests.contract.conftest import ROLE_MAJORS, ServerOf
from tests.contract.harness import (
    DeclaredJob,
    DumpJob,
    PreparedDatabase,
    apply_roles,
    declared_job,
    initialise_database,
    lay_out_volume,
    role_passwords,
    run_grants_job,
    run_job,
)
from tests.contract.harness.provider import Provider, postgresql_resources

pytestmark = pytest.mark.contract

_NAMES = itertools.count()
ADMIN_SECRET = {"adminPassword": "contract-admin-Pa55word"}
MIGRATION = "CREATE TABLE fills (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, q numeric);\n"


def external(roles: str, tmp_path: Path, name: str | None = None) -> DeclaredJob:
    """The declared Job of an external database of the test's own (`name`, else a new one),
    its roles managed by `roles`."""
    name = name or f"managed_{next(_NAMES)}"
    migrations = tmp_path / f"migrations-{name}"
    if not migrations.exists():
        migrations.mkdir()
        (migrations / "V1__fills.sql").write_text(MIGRATION, encoding="utf-8")
    config = {
        "databaseFlavor": "external",
        "databaseRolesManagedBy": roles,
        "databaseAccessHost": "db.example",
        "databaseSslMode": "require",
        "databaseName": name,
        "databaseAdminUser": f"{name}_admin",
        "migrationsDir": str(migrations),
    }
    return declared_job("dev", config, ADMIN_SECRET)


def names(job: DeclaredJob) -> dict[Purpose, str]:
    assert job.setup.model is not None
    return {role.purpose: role.name for role in job.setup.model.roles}


def exists(server: PostgresServer, role: str) -> bool:
    return server.role_exists(role)


def migrate(job: DeclaredJob, server: PostgresServer, prepared: PreparedDatabase) -> None:
    with tempfile.TemporaryDirectory(prefix="sql-") as mount:
        lay_out_volume(job, Path(mount))
        proc = run_job(job, server, Path(mount), password=prepared.password)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def admin_memberships(server: PostgresServer, admin: str) -> list[Any]:
    options = ", inherit_option, set_option" if server.major >= 16 else ""
    return server.query(
        f"SELECT roleid::regrole::text, admin_option{options} FROM pg_auth_members"
        " WHERE member = %s::regrole ORDER BY 1",
        (admin,),
    )


@pytest.fixture(params=ROLE_MAJORS, ids=lambda major: f"pg{major}")
def server(request: pytest.FixtureRequest, postgres_of: ServerOf) -> PostgresServer:
    return postgres_of(int(request.param))


def test_the_job_leaves_the_admin_no_membership_it_did_not_have(
    server: PostgresServer, tmp_path: Path
) -> None:
    """The admin acts for the migrator inside the Job's transaction only. From 16 on it keeps
    what PostgreSQL gave it for creating the roles: ADMIN OPTION, neither INHERIT nor SET."""
    job = external("cluster", tmp_path)
    prepared = apply_roles(server, job, initialise_database(server, job))
    migrate(job, server, prepared)
    proc = run_grants_job(job, server, prepared)
    assert proc.returncode == 0, proc.stderr
    held = admin_memberships(server, job.setup.admin)
    if server.major >= 16:
        assert held == sorted((name, True, False, False) for name in names(job).values())
    else:
        assert held == []


def test_a_role_someone_else_created_is_adopted_by_15_and_refused_by_name_from_16(
    server: PostgresServer, tmp_path: Path
) -> None:
    job = external("cluster", tmp_path)
    prepared = role_passwords(job, initialise_database(server, job))
    app = names(job)[Purpose.APP]
    server.create_role(app, "set-by-a-dba")  # by the superuser, as a DBA would

    proc = run_grants_job(job, server, prepared)

    if server.major < 16:
        assert proc.returncode == 0, proc.stderr
        with server.connect(job.database, user=app, password=prepared.passwords[app]):
            pass  # the Secret's password now logs in
        return
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert (
        f"role {app} exists but {job.setup.admin} holds no ADMIN OPTION on it, and since "
        "PostgreSQL 16 CREATEROLE alters only such roles"
    ) in proc.stderr
    assert f"GRANT {app} TO {job.setup.admin} WITH ADMIN OPTION" in proc.stderr
    assert not exists(server, names(job)[Purpose.MIGRATOR]), "one transaction: nothing created"

    # The fix the message names, then the Job adopts the role.
    server.query(
        sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
            sql.Identifier(app), sql.Identifier(job.setup.admin)
        )
    )
    assert run_grants_job(job, server, prepared).returncode == 0


def test_roles_pulumi_postgresql_created_are_adopted_when_a_stack_moves_to_cluster(
    server: PostgresServer, tmp_path: Path
) -> None:
    """databaseRolesManagedBy pulumi -> cluster: pulumi-postgresql created the roles as the
    same admin, so the Job may alter them on every major; the passwords become the Secrets'."""
    before = external("pulumi", tmp_path)
    prepared = apply_roles(server, before, initialise_database(server, before))
    migrate(before, server, prepared)
    after = external("cluster", tmp_path, name=before.database)
    # The Secrets keep their passwords when the logins move (an alias); here: new ones.
    kept = {k: v for k, v in prepared.passwords.items() if k not in names(after).values()}
    renewed = role_passwords(after, PreparedDatabase(prepared.database, prepared.login, kept))
    proc = run_grants_job(after, server, renewed)
    assert proc.returncode == 0, proc.stderr
    migrator = names(after)[Purpose.MIGRATOR]
    with server.connect(after.database, user=migrator, password=renewed.passwords[migrator]):
        pass


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("ALTER ROLE {admin} NOCREATEROLE", "{admin} lacks CREATEROLE"),
        (
            "ALTER DATABASE {database} OWNER TO {other}",
            "database {database} belongs to {other}, whose privileges {admin} lacks",
        ),
        (
            "CREATE TABLE public.legacy (id int); ALTER TABLE public.legacy OWNER TO {other}",
            "cannot grant on legacy (owner {other}) in schema public",
        ),
    ],
    ids=["no-createrole", "database-of-another", "table-of-another"],
)
def test_what_the_admin_cannot_do_fails_first_naming_it_and_changes_nothing(
    server: PostgresServer, tmp_path: Path, setup: str, words: str
) -> None:
    job = external("cluster", tmp_path)
    prepared = role_passwords(job, initialise_database(server, job))
    other = f"{job.database}_other"
    server.create_role(other, "other-Pa55word")
    values = {"admin": job.setup.admin, "database": job.database, "other": other}
    for statement in setup.format(**values).split("; "):
        server.query(statement, dbname=job.database)

    proc = run_grants_job(job, server, prepared)

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert words.format(**values) in proc.stderr
    assert not any(exists(server, role) for role in names(job).values())


@pytest.mark.parametrize("major", ROLE_MAJORS, ids=lambda major: f"pg{major}")
def test_no_password_reaches_the_server_log(major: int, tmp_path: Path) -> None:
    """With every statement logged, the log holds the roles' SCRAM verifiers, never a password:
    the admin cannot turn logging off for its session, so it never sends one."""
    with PostgresServer(major=major) as server:
        server.query("ALTER SYSTEM SET log_statement = 'all'")
        server.query("SELECT pg_reload_conf()")
        job = external("cluster", tmp_path)
        prepared = role_passwords(job, initialise_database(server, job))
        proc = run_grants_job(job, server, prepared)
        assert proc.returncode == 0, proc.stderr
        log = server.log_file.read_text(encoding="utf-8", errors="replace")
    assert "ALTER ROLE" in log
    assert "SCRAM-SHA-256$4096:" in log
    for role in names(job).values():
        assert prepared.passwords[role] not in log
        assert prepared.passwords[role] not in proc.stdout + proc.stderr


def test_dropping_the_migrator_on_destroy_would_leave_data_nobody_can_back_up(
    server: PostgresServer, tmp_path: Path
) -> None:
    """What the protection of an external database's migrator prevents: without it, destroy
    runs pulumi-postgresql's Delete of every role (REASSIGN OWNED to the admin, DROP OWNED,
    DROP ROLE); the next `up` creates them again, and the backup before Flyway, logged in as
    the new migrator, is refused."""
    job = external("pulumi", tmp_path)
    prepared = apply_roles(server, job, initialise_database(server, job))
    migrate(job, server, prepared)
    assert job.run is not None
    provider = Provider.declared(job.run, server, prepared.passwords[job.setup.admin])
    owned = postgresql_resources(job.run.resources)
    for resource in reversed(owned):
        provider.delete(resource)
    assert server.query(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
        dbname=job.database,
    ) == [(job.setup.admin,)]
    for resource in owned:
        provider.create(resource, prepared.passwords)

    with tempfile.TemporaryDirectory(prefix="backups-") as backups:
        proc = DumpJob.of(job.run).run(server, prepared, Path(backups))

    assert proc.returncode != 0
    assert "permission denied for table" in proc.stderr
