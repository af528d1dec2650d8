"""What the preview refuses because Flyway would refuse it at deploy, checked against the
real Flyway: for each script the program's verdict (components.migrations.statements and the
duplicate check) must equal what Flyway 11.20.3 does with it against a real PostgreSQL."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from components.migrations import MigrationError, load_migration_set
from components.migrations.statements import flyway_refusals
from standins.postgres import PostgresServer
from tests.components.migrations import write_tree
from tests.contract.harness import declared_job, prepare_database, run_job

pytestmark = pytest.mark.contract

_DATABASES = itertools.count()

CASES: dict[str, tuple[dict[str, str], bool]] = {
    # name: (files, Flyway refuses them)
    "mixed": ({"V1__mixed.sql": "CREATE TABLE t (a int);\nVACUUM t;\n"}, True),
    "mixed index": (
        {"V1__mixed.sql": "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY i ON t (a);\n"},
        True,
    ),
    "alone": ({"V1__t.sql": "CREATE TABLE t (a int);", "V2__i.sql": "VACUUM t;\n"}, False),
    "concurrently alone": (
        {
            "V1__t.sql": "CREATE TABLE t (a int);",
            "V2__i.sql": "CREATE INDEX CONCURRENTLY i ON t (a);\n",
        },
        False,
    ),
    "conf says outside": (
        {
            "V1__mixed.sql": "CREATE TABLE t (a int);\nVACUUM t;\n",
            "V1__mixed.sql.conf": "executeInTransaction=false\n",
        },
        False,
    ),
    "meta-command": ({"V1__meta.sql": "\\set x 1\nCREATE TABLE t (a int);\n"}, True),
    "quoted keywords": (
        {"V1__q.sql": "CREATE TABLE t (a text);\nINSERT INTO t VALUES ('VACUUM');\n"},
        False,
    ),
    "two callbacks": (
        {
            "V1__t.sql": "CREATE TABLE t (a int);",
            "one/afterMigrate.sql": "SELECT 1;",
            "two/afterMigrate.sql": "SELECT 2;",
        },
        True,
    ),
}


def verdict(directory: Path) -> bool:
    """Whether the program refuses the files."""
    try:
        migrations = load_migration_set(directory)
    except MigrationError:
        return True
    return any(True for f in migrations.files for _ in flyway_refusals(f))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_preview_refuses_exactly_what_flyway_refuses(
    case: str, shared_postgres: PostgresServer, tmp_path: Path
) -> None:
    files, refused = CASES[case]
    scripts = write_tree(tmp_path / "scripts", dict(files))
    assert verdict(scripts) is refused, case
    # The Job as declared for a valid set, run on these files instead, as Flyway would.
    valid = write_tree(tmp_path / "valid", {"V1__ok.sql": "SELECT 1;"})
    n = next(_DATABASES)
    job = declared_job(
        "dev",
        {
            "migrationsDir": str(valid),
            "databaseName": f"refusal_{n}",
            "databaseOwner": f"refusal_owner_{n}",
        },
    )
    prepared = prepare_database(shared_postgres, job)
    proc = run_job(job, shared_postgres, scripts, password=prepared.password)
    output = proc.stdout + proc.stderr
    assert (proc.returncode != 0) is refused, f"{case}: Flyway said\n{output}"
