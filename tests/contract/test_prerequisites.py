"""The contract-test harness itself: a real PostgreSQL with password auth, a real Flyway."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from standins.flyway_cli import FlywayRunner
from standins.postgres import PostgresServer

pytestmark = pytest.mark.contract


@pytest.fixture
def read_only_dir() -> Iterator[Path]:
    """A directory under /tmp (reachable by the postgres OS user) that gets mode 0555."""
    path = Path(tempfile.mkdtemp(prefix="contract-ro-", dir="/tmp"))
    try:
        yield path
    finally:
        path.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


def test_server_answers_with_password_auth(postgres: PostgresServer) -> None:
    [(version,)] = postgres.query("select version()")
    assert version.startswith("PostgreSQL ")

    host_rules = postgres.query(
        "select distinct auth_method from pg_hba_file_rules where type = 'host'"
    )
    assert host_rules == [("scram-sha-256",)]

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        postgres.connect(password=postgres.password + "-wrong")


def test_server_stops_and_starts_again(postgres: PostgresServer) -> None:
    postgres.create_database("app")
    postgres.query("create table kept (id int)", dbname="app")

    postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        postgres.connect(connect_timeout=2)
    postgres.start()

    assert postgres.query("select count(*) from kept", dbname="app") == [(0,)]


def test_flyway_migrate_applies_a_migration_and_info_reports_it(
    postgres: PostgresServer, flyway: FlywayRunner, tmp_path: Path
) -> None:
    postgres.create_database("app")
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "V1__create_greeting.sql").write_text(
        "create table greeting (id int primary key, text text not null);\n"
        "insert into greeting values (1, 'héllo');\n",
        encoding="utf-8",
    )
    env = {**postgres.flyway_env("app"), "FLYWAY_LOCATIONS": f"filesystem:{sql_dir}"}

    migrate = flyway(["migrate"], env)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "Successfully applied 1 migration" in migrate.stdout

    history = postgres.query(
        "select version, description, script, success from flyway_schema_history"
        " where version is not null",
        dbname="app",
    )
    assert history == [("1", "create greeting", "V1__create_greeting.sql", True)]
    assert postgres.query("select text from greeting", dbname="app") == [("héllo",)]

    info = flyway(["info"], env)
    assert info.returncode == 0, info.stdout + info.stderr
    [row] = [line for line in info.stdout.splitlines() if "create greeting" in line]
    assert "| 1 " in row
    assert "Success" in row


def test_flyway_needs_no_writable_working_directory(
    postgres: PostgresServer, flyway: FlywayRunner, read_only_dir: Path
) -> None:
    # The pod's root filesystem is read-only. As root, run Flyway as the `postgres` OS user,
    # who cannot write the root-owned 0555 directory (root could write anywhere).
    sql_dir = read_only_dir / "sql"
    sql_dir.mkdir()
    (sql_dir / "V1__create_t.sql").write_text("create table t (id int);\n", encoding="utf-8")
    sql_dir.chmod(0o555)
    read_only_dir.chmod(0o555)
    env = {**postgres.flyway_env(), "FLYWAY_LOCATIONS": "filesystem:sql"}
    os_user = "postgres" if os.geteuid() == 0 else None

    migrate = flyway(["migrate"], env, cwd=read_only_dir, os_user=os_user)

    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert postgres.query("select count(*) from t") == [(0,)]
    assert sorted(p.name for p in read_only_dir.rglob("*")) == ["V1__create_t.sql", "sql"]
