"""`make migrations-adopt`: an existing history locked as released, the one-time baseline set
in the stack file by the Pulumi CLI, and what the next deploy does; nothing changed when the
set would be refused. (On the local stack with the real engine: tests/engine/test_adoption.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.migrations import LOCK_FILE_NAME, read_lock
from components.settings.stackfile import read_stack_file
from deploy import adopt
from deploy.adopt import main
from deploy.engine import ROOT, EngineError

STACK_FILE = """\
# team: adopted from another tool.
config:
  # Kept as the team wrote it.
  tradestream-database:namespace: team
"""
FILES = {
    "V1__orders.sql": "CREATE INDEX idx ON t (c);\n",
    "core/V2__noop.sql": "-- reverted long ago\n",
    "V3__fills.sql": "CREATE TABLE fills (region text DEFAULT '${region}');\n",
    "R__open.sql": "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n",
}


def project(tmp_path: Path, stack_file: str = STACK_FILE) -> Path:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    shutil.copyfile(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "stacks" / "Pulumi.team.yaml").write_text(stack_file, encoding="utf-8")
    directory = root / "database" / "migrations"
    for name, text in FILES.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


WITH_VALUE = STACK_FILE + '  tradestream-database:flywayPlaceholders:\n    region: "20"\n'


def test_what_a_preview_would_refuse_is_refused_and_nothing_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path)
    before = (directory.parent.parent / "stacks" / "Pulumi.team.yaml").read_text()
    assert main(["team", "--dir", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "nothing was adopted; a preview would refuse the set" in err
    assert "V3__fills.sql:1: uses the placeholder ${region}" in err
    assert "--type string --path 'flywayPlaceholders.region' <value> --stack team" in err
    assert not (directory / LOCK_FILE_NAME).exists()
    assert (directory.parent.parent / "stacks" / "Pulumi.team.yaml").read_text() == before


def test_a_history_of_another_runner_is_locked_and_no_baseline_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, WITH_VALUE)
    assert main(["team", "--dir", str(directory), "--history"]) == 0
    out = capsys.readouterr().out
    assert "locked 3 migration(s) as released" in out
    assert "no baseline is set" in out
    assert "Flyway's validate compares the database's history with these files" in out
    lock = read_lock(directory)
    assert lock is not None
    assert [entry.script for entry in lock.entries] == [
        "V1__orders.sql",
        "core/V2__noop.sql",
        "V3__fills.sql",
    ]
    assert [entry.script for entry in lock.repeatables] == ["R__open.sql"]
    flyway = read_stack_file(directory.parent.parent, "team").settings.flyway
    assert not flyway.baseline_on_migrate


def test_a_schema_built_by_hand_gets_the_baseline_through_the_pulumi_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, WITH_VALUE)
    assert main(["team", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "baseline at version 3 (the highest of the files)" in out
    assert "    pulumi config set flywayBaselineOnMigrate true --stack team" in out
    assert "    pulumi config set flywayBaselineVersion 3 --stack team" in out
    assert "(set in stacks/Pulumi.team.yaml by the Pulumi CLI)" in out
    assert "records the baseline at version 3 and skips the 3 migration(s) up to it" in out
    assert "applies the 1 repeatable migration(s) once" in out
    assert "make migrations-rehearse STACK=team" in out
    assert "pulumi config set flywayBaselineOnMigrate false --stack team" in out
    root = directory.parent.parent
    text = (root / "stacks" / "Pulumi.team.yaml").read_text()
    assert "# Kept as the team wrote it." in text  # the CLI keeps comments
    assert 'tradestream-database:flywayBaselineVersion: "3"' in text
    flyway = read_stack_file(root, "team").settings.flyway
    assert flyway.baseline_on_migrate
    assert flyway.baseline_version == "3"
    # Again: nothing left to do, and it says so.
    assert main(["team", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "locked 0 migration(s)" in out
    assert "(stacks/Pulumi.team.yaml has them already)" in out


def test_an_older_baseline_can_be_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, WITH_VALUE)
    assert main(["team", "--dir", str(directory), "--baseline", "2"]) == 0
    out = capsys.readouterr().out
    assert "baseline at version 2 (given)" in out
    assert "applies 1: V3__fills.sql" in out
    assert main(["team", "--dir", str(directory), "--baseline", "two"]) == 1
    assert "--baseline 'two' is not a Flyway version" in capsys.readouterr().err


def test_without_the_pulumi_cli_nothing_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(*, local_provider: bool) -> None:
        raise EngineError("the Pulumi CLI is not installed; run: bash scripts/install-engine.sh")

    monkeypatch.setattr(adopt, "find_engine", missing)
    directory = project(tmp_path, WITH_VALUE)
    assert main(["team", "--dir", str(directory)]) == 2
    assert "nothing was changed" in capsys.readouterr().err
    assert not (directory / LOCK_FILE_NAME).exists()
    for name, text in FILES.items():
        assert (directory / name).read_text() == text
