"""Flyway placeholders, run for real: the Job the program declares, with plain and secret
placeholder values, applied by Flyway's command line to a throwaway PostgreSQL.

Proves what the program assumes about Flyway 11.20.3: values given as
FLYWAY_PLACEHOLDERS_<NAME> (a secret one through its Secret) are applied, in string literals
and comments alike; `$${x}` stays as written; a versioned script's recorded checksum is the
file's own, a repeatable's is that of the replaced text, and both equal what the program
shows; with replacement off, `${x}` reaches the database literally.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from components.migrations import flyway_checksum, load_migration_set
from components.migrations.placeholders import StackPlaceholders, unresolved_placeholders
from standins.flyway_cli import FlywayRunner
from standins.postgres import PostgresServer
from tests.contract.harness import (
    DeclaredJob,
    declared_job,
    lay_out_volume,
    prepare_database,
    run_job,
    schema_history,
)

pytestmark = pytest.mark.contract

API_KEY = "k3y-Value-7b2"
V1 = (
    "CREATE TABLE settings (k text PRIMARY KEY, v text);\n"
    "-- the region: ${region}\n"
    "INSERT INTO settings VALUES ('region', '${region}'), ('key', '${api_key}'),\n"
    "    ('dollars', '$${region}');\n"
)
R_VIEW = (
    "CREATE OR REPLACE VIEW where_am_i AS\n"
    "SELECT '${region}'::text AS region, '${flyway:filename}'::text AS script,\n"
    "    '${flyway:user}'::text AS login, '${flyway:database}'::text AS db;\n"
)
R_KEY = "CREATE OR REPLACE VIEW key_view AS SELECT '${api_key}'::text AS k;\n"
FILES = {"V1__create_settings.sql": V1, "R__where_am_i.sql": R_VIEW, "R__key_view.sql": R_KEY}


def write(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name, text in FILES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def migrate(server: PostgresServer, job: DeclaredJob, workdir: Path) -> tuple[str, int]:
    prepared = prepare_database(server, job)
    mount = Path(tempfile.mkdtemp(prefix="sql-", dir=workdir))
    lay_out_volume(job, mount)
    proc = run_job(job, server, mount, password=prepared.password)
    return proc.stdout + proc.stderr, proc.returncode


def recorded(server: PostgresServer, job: DeclaredJob) -> dict[str, Any]:
    history = schema_history(server, job.database)
    assert history is not None
    return {row["script"]: row["checksum"] for row in history}


def shown(job: DeclaredJob) -> dict[str, Any]:
    return {m["script"]: m["checksum"] for m in job.packaged}


def test_values_are_applied_and_recorded_checksums_equal_the_programs(
    shared_postgres: PostgresServer, tmp_path: Path
) -> None:
    directory = write(tmp_path / "migrations")
    job = declared_job(
        "dev",
        {
            "databaseName": "ts_ph_on",
            "databaseOwner": "ts_ph_on_owner",
            "migrationsDir": str(directory),
            "flywayPlaceholderReplacement": "true",
            "flywayPlaceholders": json.dumps({"region": "eu-west"}),
        },
        secrets={"flywaySecretPlaceholders": json.dumps({"api_key": API_KEY})},
    )
    assert job.env_entry("FLYWAY_PLACEHOLDERS_API_KEY")["valueFrom"]["secretKeyRef"]

    output, code = migrate(shared_postgres, job, tmp_path)

    assert code == 0, output
    rows = shared_postgres.query("SELECT k, v FROM settings ORDER BY k", dbname=job.database)
    assert rows == [("dollars", "$${region}"), ("key", API_KEY), ("region", "eu-west")]
    [view] = shared_postgres.query("SELECT * FROM where_am_i", dbname=job.database)
    assert view == ("eu-west", "R__where_am_i.sql", "ts_ph_on_owner", "ts_ph_on")

    files = {f.path: f.checksum for f in load_migration_set(directory)}
    history = recorded(shared_postgres, job)
    # Versioned: the file as written, before replacement.
    assert history["V1__create_settings.sql"] == files["V1__create_settings.sql"]
    assert shown(job)["V1__create_settings.sql"] == history["V1__create_settings.sql"]
    # Repeatable: the replaced text; the program computes it from the stack's values.
    assert history["R__where_am_i.sql"] != files["R__where_am_i.sql"]
    assert shown(job)["R__where_am_i.sql"] == history["R__where_am_i.sql"]
    # A secret value decides it: Flyway records the replaced text's checksum; the program
    # withholds it.
    assert history["R__key_view.sql"] == flyway_checksum(R_KEY.replace("${api_key}", API_KEY))
    assert shown(job)["R__key_view.sql"] is None


def test_replacement_off_applies_placeholders_as_written(
    shared_postgres: PostgresServer, tmp_path: Path
) -> None:
    directory = write(tmp_path / "migrations")
    job = declared_job(
        "dev",
        {
            "databaseName": "ts_ph_off",
            "databaseOwner": "ts_ph_off_owner",
            "migrationsDir": str(directory),
            "flywayPlaceholderReplacement": "false",
        },
    )

    output, code = migrate(shared_postgres, job, tmp_path)

    assert code == 0, output
    rows = shared_postgres.query("SELECT k, v FROM settings ORDER BY k", dbname=job.database)
    assert rows == [("dollars", "$${region}"), ("key", "${api_key}"), ("region", "${region}")]
    files = {f.path: f.checksum for f in load_migration_set(directory)}
    history = recorded(shared_postgres, job)
    assert history == {name: files[name] for name in FILES}
    assert shown(job) == history


# The check's verdict against Flyway's own: each script alone, no placeholder values but X.
VERDICTS = {
    "in_a_comment": ("SELECT 1;\n-- ${region}\n", False),
    "doubled_dollar": ("SELECT '$${region}';\n", True),
    "tripled_dollar": ("SELECT '$$${region}';\n", False),
    "dollar_quoted": ("SELECT $q$${region}$q$;\n", True),
    "built_in": ("SELECT '${flyway:user}', '${FLYWAY:TABLE}';\n", True),
    "unknown_built_in": ("SELECT '${flyway:nope}';\n", False),
    "given_other_case": ("SELECT '${x}';\n", True),
    "spaces_in_name": ("SELECT '${ x }';\n", False),
    "unclosed_rest_given": ("SELECT 1;\n-- ${x\n", True),
    "unclosed_rest_unknown": ("SELECT 1;\n-- ${y\n", False),
    "unclosed_nothing_after": ("SELECT 1;\n-- ${", False),
}


@pytest.mark.parametrize("case", sorted(VERDICTS))
def test_the_check_agrees_with_flyway_on_what_fails(
    case: str, shared_postgres: PostgresServer, flyway: FlywayRunner, tmp_path: Path
) -> None:
    script, passes = VERDICTS[case]
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "V1__case.sql").write_text(script, encoding="utf-8")
    check = unresolved_placeholders(load_migration_set(directory), [StackPlaceholders(True, ["X"])])
    database = shared_postgres.create_database(f"ph_{case}")
    env = {
        **shared_postgres.flyway_env(database),
        "FLYWAY_LOCATIONS": f"filesystem:{directory}",
        "FLYWAY_PLACEHOLDERS_X": "value",
        "REDGATE_DISABLE_TELEMETRY": "true",
    }
    proc = flyway(["-skipCheckForUpdate", "migrate"], env)

    assert (proc.returncode == 0) is passes, proc.stdout + proc.stderr
    assert (check == []) is passes, check
