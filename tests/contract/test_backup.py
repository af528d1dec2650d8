"""The pg_dump Job the program declares before every migration, run for real.

Its exact command (`sh -c` with the program's script) and environment run against a real
PostgreSQL prepared as the stack declares it, after the real Flyway applied a migration set
of the test's own. Only what cannot exist outside a cluster is substituted: host and port,
the password the pod reads from a Secret, the volume's mount point and the pod's scratch
directory. The dump is then restored with the command the README gives, over a database a
bad migration damaged, and must bring back the same schema and the same rows.
"""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from standins.postgres import PostgresServer
from tests.contract.harness import (
    DumpJob,
    PreparedDatabase,
    declared_job,
    lay_out_volume,
    prepare_database,
    program_run,
    run_job,
)
from tests.program import ProgramRun

pytestmark = pytest.mark.contract

MIGRATIONS = {
    "V1__accounts.sql": (
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);\n"
        "CREATE TABLE orders (\n"
        "  id bigserial PRIMARY KEY,\n"
        "  account_id bigint NOT NULL REFERENCES accounts (id),\n"
        "  quantity numeric(18, 6) NOT NULL CHECK (quantity > 0),\n"
        "  placed_at timestamptz NOT NULL DEFAULT now()\n"
        ");\n"
        "CREATE INDEX orders_account_idx ON orders (account_id);\n"
    ),
    "V2__seed.sql": (
        "INSERT INTO accounts (name) VALUES ('alpha'), ('beta');\n"
        "INSERT INTO orders (account_id, quantity) SELECT id, 1.5 FROM accounts;\n"
        "CREATE VIEW order_totals AS\n"
        "  SELECT account_id, sum(quantity) AS total FROM orders GROUP BY account_id;\n"
    ),
}
_DATABASES = itertools.count()
BAD_MIGRATION = (
    "DROP VIEW order_totals;\nDROP TABLE orders;\nUPDATE accounts SET name = 'x' || id;\n"
)


def as_superuser(server: PostgresServer, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One of the server's client programs, logged in as its superuser."""
    return subprocess.run(
        [
            str(server.bindir / tool),
            "--no-password",
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-U",
            server.superuser,
            *args,
        ],
        env={"PGPASSWORD": server.password, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@dataclass
class Deployed:
    server: PostgresServer
    run: ProgramRun
    prepared: PreparedDatabase
    dump: DumpJob
    backups: Path


def write_set(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in MIGRATIONS.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(params=["dev", "external"])
def deployed(
    request: pytest.FixtureRequest, shared_postgres: PostgresServer, tmp_path: Path
) -> Deployed:
    """The test's migration set applied by the real Flyway, as the stack's Job would."""
    tag = f"bk_{request.param.replace('-', '_')}_{next(_DATABASES)}"
    config: dict[str, str | None] = {
        "migrationsDir": str(write_set(tmp_path / "migrations")),
        "databaseName": tag,
        "databaseOwner": f"{tag}_owner",
        "backupRetainCount": "2",
    }
    secrets = None
    if request.param == "external":
        config |= {
            "databaseFlavor": "external",
            "databaseRolesManagedBy": "pulumi",
            "databaseAccessHost": "db.example.internal",
            "databaseAdminUser": f"{tag}_admin",
            "databaseSslMode": "disable",
            "databaseOwner": None,
        }
        secrets = {"adminPassword": "unused-here"}
    run = program_run("dev", config, secrets)
    assert run.error is None, run.error
    job = declared_job("dev", config, secrets)
    prepared = prepare_database(shared_postgres, job)
    mount = tmp_path / "sql"
    lay_out_volume(job, mount)
    flyway = run_job(job, shared_postgres, mount, password=prepared.password)
    assert flyway.returncode == 0, flyway.stdout + flyway.stderr
    backups = tmp_path / "backups"
    backups.mkdir()
    return Deployed(shared_postgres, run, prepared, DumpJob.of(run), backups)


def snapshot(server: PostgresServer, database: str) -> tuple[str, dict[str, list[Any]]]:
    """The schema as pg_dump prints it, and every row of every table in key order."""
    dumped = as_superuser(server, "pg_dump", "--schema-only", database)
    assert dumped.returncode == 0, dumped.stderr
    schema = dumped.stdout
    # pg_dump fences its output with a random \restrict key: not part of the schema.
    schema = "\n".join(
        line for line in schema.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )
    tables = [
        row[0]
        for row in server.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            dbname=database,
        )
    ]
    rows = {
        table: server.query(
            sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table)),
            dbname=database,
        )
        for table in tables
    }
    return schema, rows


def dumps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_the_jobs_dump_restores_the_same_schema_and_rows(deployed: Deployed) -> None:
    d = deployed
    database = d.prepared.database
    assert d.dump.value("PGUSER") == d.prepared.login, "the backup logs in as Flyway does"
    before = snapshot(d.server, database)
    assert before[1]["orders"], "the migrations wrote rows to back up"

    proc = d.dump.run(d.server, d.prepared, d.backups)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [dump] = dumps(d.backups)
    assert dump.startswith(f"{database}-")
    assert dump.endswith(f"-{d.dump.value('BACKUP_LABEL')}.dump")
    assert "backup: wrote" in proc.stdout

    # A migration gone wrong, then the documented way back.
    with d.server.connect(database) as conn:
        conn.execute(BAD_MIGRATION)
    assert snapshot(d.server, database) != before
    # The README's restore, apart from the connection.
    restored = as_superuser(
        d.server,
        "pg_restore",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={database}",
        str(d.backups / dump),
    )
    assert restored.returncode == 0, restored.stderr
    assert snapshot(d.server, database) == before


def test_only_the_newest_dumps_are_kept(deployed: Deployed) -> None:
    d = deployed
    database = d.prepared.database
    older = [f"{database}-2020010{day}T000000Z-0123456789ab.dump" for day in (1, 2, 3)]
    for name in older:
        (d.backups / name).write_bytes(b"old")
    (d.backups / "unrelated.txt").write_text("not a dump of this database")
    proc = d.dump.run(d.server, d.prepared, d.backups)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = dumps(d.backups)
    # backupRetainCount is 2: the new dump and the newest older one; other files untouched.
    assert older[2] in kept
    assert older[0] not in kept
    assert older[1] not in kept
    assert "unrelated.txt" in kept
    assert len([k for k in kept if k.endswith(".dump")]) == 2


def test_a_failed_backup_fails_the_job_and_leaves_no_dump(deployed: Deployed) -> None:
    d = deployed
    proc = d.dump.run(d.server, d.prepared, d.backups, password="not-the-password")
    assert proc.returncode != 0
    assert "password authentication failed" in proc.stderr
    assert dumps(d.backups) == [], "a failed run must leave nothing that looks like a backup"
