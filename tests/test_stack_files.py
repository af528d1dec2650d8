"""Every tool that reads a committed stack file reads the form the Pulumi CLI writes: `"30"`,
`"false"`, objects set with `--path`, secure values (tests/cli_form.py; that the CLI writes
exactly this is proven by tests/engine/test_stack_files.py). They all go through the one
reader, components/settings/stackfile.py; each test here runs a tool on such a file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.settings.stackfile import ENCRYPTED, cli_value, read_stack_file
from deploy import __main__ as deploy_main
from deploy import engine, lint, rehearse, review
from standins import localstack
from tests import cli_form
from tests.program import stack_config

KEY = "tradestream-database:"
MIGRATION = "SELECT '${region}', '${shard}', '${api_key}';\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project whose stack `team` is in the CLI's form, with one migration that uses every
    placeholder the stack gives (plainly and as a secret)."""
    project = cli_form.write_project(tmp_path / "project", migrations=True)
    (project / "database" / "migrations" / "V1__uses.sql").write_text(MIGRATION, encoding="utf-8")
    return project


@pytest.mark.parametrize(
    ("value", "handed"),
    [
        ("30", "30"),
        (30, "30"),
        ("false", "false"),
        (False, "false"),
        ("", ""),
        ({"shard": "7", "region": "eu-west"}, '{"region":"eu-west","shard":"7"}'),
        ({"n": 7, "on": True}, '{"n":7,"on":true}'),
        ({"api_key": {"secure": "v1:x"}}, f'{{"api_key":"{ENCRYPTED}"}}'),
    ],
)
def test_a_value_is_read_quoted_or_not_as_the_cli_hands_it_over(value: object, handed: str) -> None:
    assert cli_value(value)[0] == handed


def test_the_reader_takes_quoted_numbers_booleans_objects_and_secrets(root: Path) -> None:
    read = read_stack_file(root, cli_form.STACK)
    assert {key: read.values[key] for key in cli_form.HANDED_OVER} == cli_form.HANDED_OVER
    assert read.secret_keys == {f"{KEY}flywaySecretPlaceholders"}
    assert read.provider("kubernetes:context") == "team-context"
    settings = read.settings
    assert settings.protect_database is False
    assert settings.database.access_port == 55433
    assert settings.flyway.connect_retries == 30
    assert settings.flyway.baseline_on_migrate is False
    assert settings.flyway.out_of_order is True
    assert settings.backup.retain_count == 3
    given = settings.flyway.given_placeholders(cli_form.STACK)
    assert given.names == ["region", "shard", "api_key"]


def test_the_mock_runs_read_stack_files_as_the_tools_do(root: Path) -> None:
    """tests/program.py hands the program what the reader hands the tools."""
    assert stack_config(cli_form.STACK, root) == dict(read_stack_file(root, cli_form.STACK).values)


def test_lint_with_stack_reads_the_cli_form(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    migrations = root / "database" / "migrations"
    assert lint.main([str(migrations), "--no-squawk", "--stack", cli_form.STACK]) == 0, (
        capsys.readouterr()
    )
    assert "OK" in capsys.readouterr().out


def test_the_rehearsal_reads_the_cli_form(root: Path) -> None:
    migrations = root / "database" / "migrations"
    settings, _ = rehearse.prepare(root, cli_form.STACK, migrations)
    assert settings.flyway.connect_retries == 30
    assert settings.flyway.out_of_order is True


def test_the_review_reads_the_cli_form(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(review, "ROOT", root)
    deployed = tmp_path / "deployed.json"
    deployed.write_text("[]\n", encoding="utf-8")
    assert review.main(["--stack", cli_form.STACK, "--deployed", str(deployed)]) == 0
    out = capsys.readouterr().out
    assert f"`{cli_form.STACK}`: migrations this change adds: `V1__uses.sql`" in out
    assert "pg_dump writes a backup" in out  # backupBeforeMigrate: "true", read as true


def test_deploy_reads_the_cli_form(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deploy_main, "ROOT", root)
    assert deploy_main.main(["namespace", cli_form.STACK]) == 0
    assert capsys.readouterr().out == "team\n"


def test_the_workspace_copy_keeps_the_cli_form(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "ROOT", root)
    workspace = engine.prepare_workspace(tmp_path / "workspace", cli_form.STACK)
    copied = yaml.safe_load((workspace / "stacks" / "Pulumi.team.yaml").read_text())["config"]
    committed = yaml.safe_load(cli_form.TEXT)["config"]
    assert copied == {k: v for k, v in committed.items() if k != f"{KEY}flywaySecretPlaceholders"}


def test_the_local_set_up_reads_the_cli_form(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stacks = root / "stacks"
    (stacks / "Pulumi.team.yaml").rename(stacks / f"Pulumi.{localstack.STACK}.yaml")
    monkeypatch.setattr(localstack, "REPO_ROOT", root)
    assert localstack.stack_settings().database.access_port == 55433
