"""The contract-test harness itself: a real PostgreSQL with password auth, a real Flyway."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from standins import postgres as postgres_module
from standins.flyway_cli import FlywayRunner
from standins.postgres import (
    OS_USER_WHEN_ROOT,
    TOOLS,
    PostgresServer,
    find_bindir,
    runnable_by,
    system_bindirs,
)
from tests.contract.conftest import ROLE_MAJORS

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


@pytest.mark.parametrize("major", ROLE_MAJORS, ids=lambda major: f"pg{major}")
def test_a_server_of_each_major_the_role_tests_run_on_starts(major: int) -> None:
    """Debian's 15 and the bundled 17: asked for by major, each answers as that major."""
    with PostgresServer(major=major) as server:
        assert server.major == major
        [(number,)] = server.query("SHOW server_version_num")
        assert int(number) // 10000 == major
        # Its client programs are the same major's: psql runs the grants Job's script.
        assert (
            f"(PostgreSQL) {major}."
            in subprocess.run(
                [str(server.bindir / "psql"), "--version"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )


def test_without_a_major_the_systems_server_is_the_default() -> None:
    system = system_bindirs()
    assert system, "Debian's PostgreSQL is installed"
    assert find_bindir() == system[max(system)]
    assert find_bindir(major=12) is None


def test_as_root_bundled_binaries_the_server_user_cannot_reach_are_copied_where_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "home"  # pytest's directories are root's and 0700
    private.mkdir(mode=0o700)
    (private / "pginstall" / "bin").mkdir(parents=True)
    for tool in TOOLS:
        script = private / "pginstall" / "bin" / tool
        script.write_text("#!/bin/sh\n", encoding="utf-8")
        script.chmod(0o755)
    copies = Path(tempfile.mkdtemp(prefix="copies-", dir="/tmp")) / "postgresql"
    monkeypatch.setattr(postgres_module, "RUNNABLE_COPIES", copies)
    try:
        user = pwd.getpwnam(OS_USER_WHEN_ROOT)
        found = runnable_by(private / "pginstall" / "bin", user)
        assert found.parent.parent == copies
        assert sorted(p.name for p in found.iterdir()) == sorted(TOOLS)
        assert runnable_by(private / "pginstall" / "bin", user) == found  # copied once
        if os.geteuid() == 0:  # only root can run it as the server's user
            reached = subprocess.run(
                ["runuser", "-u", user.pw_name, "--", str(found / "psql")], check=False
            )
            assert reached.returncode == 0
        assert runnable_by(private / "pginstall" / "bin", None) == private / "pginstall" / "bin"
    finally:
        shutil.rmtree(copies.parent, ignore_errors=True)
