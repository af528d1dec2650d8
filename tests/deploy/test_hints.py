"""Advice under a failed deploy's Flyway log, for failures that name no setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.hints import hints, scripts_by_version


@pytest.mark.parametrize(
    ("log", "words"),
    [
        ('FATAL: database "tradestream" does not exist', "CREATE DATABASE tradestream"),
        (
            'FATAL: password authentication failed for user "tradestream_migrator"',
            "migratorPassword",
        ),
        ("Connection to 10.0.0.5:5432 refused. Check that", "databaseAccessHost"),
        ("No value provided for placeholder: ${api_key}", "flywayPlaceholders.api_key"),
        ("Failed to populate value for default placeholder: ${flyway:nope}", "flyway:table"),
    ],
)
def test_known_failures_get_advice_naming_the_setting(log: str, words: str) -> None:
    [advice] = hints(f"ERROR: Unable to obtain connection\n{log}\n")
    assert words in advice


def test_other_failures_get_none() -> None:
    assert hints('ERROR: relation "fills" already exists') == []


# What Flyway 11.20.3 prints when its validate refuses a history (taken from its output).
CHECKSUM = """ERROR: Validate failed: Migrations have failed validation
Migration checksum mismatch for migration version 2
-> Applied to database : 1128195672
-> Resolved locally    : 1269935343
Either revert the changes to the migration, or run repair to update the schema history.
"""
DESCRIPTION = """ERROR: Validate failed: Migrations have failed validation
Migration description mismatch for migration version 2.1
-> Applied to database : b
-> Resolved locally    : bee
"""
MISSING = """ERROR: Validate failed: Migrations have failed validation
Detected applied migration not resolved locally: 2.
If you removed this migration intentionally, run repair to mark the migration as deleted.
"""
NO_HISTORY = (
    'ERROR: Found non-empty schema(s) "public" but no schema history table. Use baseline() '
    "or set baselineOnMigrate to true to initialize the schema history table.\n"
)


def test_a_history_that_differs_from_the_files_is_named_by_file_with_the_ways_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "V2__b.sql").write_text("SELECT 2;\n")
    (tmp_path / "V2_1__bee.sql").write_text("SELECT 2;\n")
    scripts = scripts_by_version(tmp_path)
    [advice] = hints(CHECKSUM, scripts, "prod")
    assert f"{tmp_path.as_posix()}/sub/V2__b.sql is not what the database applied" in advice
    assert "checksum 1128195672 there, 1269935343 here" in advice
    assert "refused before applying anything" in advice
    assert f"make migrations-relock FILE={tmp_path.as_posix()}/sub/V2__b.sql" in advice
    assert "make migrations-repair STACK=prod" in advice
    [advice] = hints(DESCRIPTION, scripts)
    assert "V2_1__bee.sql describes version 2.1 as 'bee', the database applied it as 'b'" in (
        advice
    )
    [advice] = hints(MISSING, scripts)
    assert "the database applied version 2, and no file has it" in advice
    [advice] = hints(NO_HISTORY, {}, "prod")
    assert "make migrations-adopt STACK=prod" in advice
