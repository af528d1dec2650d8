"""`make migrations-rehearse`: the set applied by Flyway's real command line to a throwaway
PostgreSQL, with a stack's Flyway settings, before any real database sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.rehearse import main

pytestmark = pytest.mark.contract

TABLE = "CREATE TABLE orders (id bigint PRIMARY KEY, placed_at timestamptz NOT NULL);\n"


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def project(tmp_path: Path, config: str, files: dict[str, str]) -> Path:
    """A project of its own: Pulumi.yaml, stack `team` with `config`, and its migrations."""
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text("name: tradestream-database\n", encoding="utf-8")
    namespace = "  tradestream-database:namespace: team\n"
    (root / "stacks" / "Pulumi.team.yaml").write_text(
        f"config:\n{namespace}{config}", encoding="utf-8"
    )
    return write(root / "migrations", files)


STRICT = '  tradestream-database:flywayOutOfOrder: "false"\n'
"""A stack as prod keeps Flyway: in order, no baseline, replacement on, no values."""


def test_a_clean_set_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(
        tmp_path,
        STRICT,
        {
            "V1__orders.sql": TABLE,
            "sub/V2__index.sql": ("CREATE INDEX idx_orders_placed_at ON orders (placed_at);\n"),
        },
    )
    assert main(["--stack", "team", "--dir", str(directory)]) == 0
    assert "Successfully applied 2 migrations" in capsys.readouterr().out


def test_a_foreign_key_to_a_missing_column_fails_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = "CREATE TABLE fills (order_id bigint REFERENCES orders (no_such_column));\n"
    directory = project(tmp_path, STRICT, {"V1__orders.sql": TABLE, "V2__fills.sql": broken})
    assert main(["--stack", "team", "--dir", str(directory)]) == 1
    assert (
        'rehearsal FAILED: V2__fills.sql: ERROR: column "no_such_column" referenced in foreign '
        "key constraint does not exist"
    ) in capsys.readouterr().err


def test_a_set_the_preview_would_refuse_is_refused_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, STRICT, {"V1__orders.sql": TABLE, "V01__again.sql": TABLE})
    assert main(["--stack", "team", "--dir", str(directory)]) == 1
    assert "rehearsal refused the set" in capsys.readouterr().err


def test_a_placeholder_without_a_value_is_refused_before_flyway_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, STRICT, {"V1__orders.sql": TABLE + "-- ${region}\n"})
    assert main(["--stack", "team", "--dir", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "V1__orders.sql:2: uses the placeholder ${region}, which has no value in stack team" in (
        err
    )


def test_secret_placeholders_are_stood_in_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = (
        "  tradestream-database:flywaySecretPlaceholders:\n"
        "    api_key:\n"
        "      secure: v1:unreadable\n"
    )
    directory = project(tmp_path, config, {"V1__orders.sql": TABLE + "-- key: '${api_key}'\n"})
    assert main(["--stack", "team", "--dir", str(directory)]) == 0
    assert "Successfully applied 1 migration" in capsys.readouterr().out


def test_a_value_of_the_wrong_type_is_refused_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "  tradestream-database:flywayPlaceholders:\n    smaPeriod: 20\n"
    directory = project(tmp_path, config, {"V1__orders.sql": TABLE + "-- ${smaPeriod}\n"})
    assert main(["--stack", "team", "--dir", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "rehearsal refused the stack" in err
    assert "flywayPlaceholders.smaPeriod = 20: must be a string" in err
    assert "pulumi config set --type string --path 'flywayPlaceholders.smaPeriod' 20" in err


def test_a_baselining_stack_is_rehearsed_against_the_schema_it_adopts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = (
        '  tradestream-database:flywayBaselineOnMigrate: "true"\n'
        '  tradestream-database:flywayBaselineVersion: "2"\n'
    )
    files = {
        "V1__orders.sql": TABLE,
        "V2__notes.sql": "ALTER TABLE orders ADD COLUMN note text;\n",
        "V3__fills.sql": "CREATE TABLE fills (order_id bigint REFERENCES orders (id));\n",
        "R__open.sql": "CREATE OR REPLACE VIEW open_orders AS SELECT id, note FROM orders;\n",
    }
    directory = project(tmp_path, config, files)
    assert main(["--stack", "team", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "the migrations up to 2 applied, then flyway_schema_history dropped" in out
    assert "Successfully baselined schema with version: 2" in out
    assert 'Migrating schema "public" to version "3 - fills"' in out
    assert 'Migrating schema "public" with repeatable migration "open"' in out
    assert 'to version "1 - orders"' not in out.partition("baselined")[2]
    assert "rehearsal passed: team baselines at 2 and applies what is above it" in out
