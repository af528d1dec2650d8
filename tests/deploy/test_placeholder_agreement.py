"""`python -m deploy.lint --stack`, the rehearsal and the preview decide every placeholder case
alike: they read a stack through `FlywaySettings.given_placeholders` and a set through
`unresolved_placeholders` (the preview and the rehearsal through `check_inputs`), so a
set one accepts the others accept, and what one refuses the others refuse, naming the same
thing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.migrations import MigrationError
from components.settings import SettingsError
from components.settings.stackfile import cli_value
from deploy import rehearse
from deploy.lint import main as lint_main
from tests.program import run_config

STACK = "team"
KEY = "tradestream-database:"
TABLE = "CREATE TABLE t (v text);\n"


def config(**keys: Any) -> dict[str, Any]:
    return {KEY + key: value for key, value in {"namespace": "team", **keys}.items()}


SECRET = {"api_key": {"secure": "v1:unreadable"}}
CASES: dict[str, tuple[dict[str, Any], dict[str, str], str | None]] = {
    # name: (stack config, migration files, what a refusal names; None: accepted)
    "a plain value": (
        config(flywayPlaceholders={"region": "eu"}),
        {"V1__a.sql": TABLE + "INSERT INTO t VALUES ('${region}');\n"},
        None,
    ),
    "a secret value": (
        config(flywaySecretPlaceholders=SECRET),
        {"V1__a.sql": TABLE + "INSERT INTO t VALUES ('${api_key}');\n"},
        None,
    ),
    "no value": (config(), {"V1__a.sql": TABLE + "-- ${region}\n"}, "${region}"),
    "no value in a repeatable": (
        config(),
        {"V1__a.sql": TABLE, "R__v.sql": "CREATE OR REPLACE VIEW v AS SELECT '${r}' AS r;\n"},
        "${r}",
    ),
    "replacement off for the stack": (
        config(flywayPlaceholderReplacement="false"),
        {"V1__a.sql": TABLE + "-- ${region}\n"},
        None,
    ),
    "replacement off for the script": (
        config(),
        {"V1__a.sql": TABLE + "-- ${x}\n", "V1__a.sql.conf": "placeholderReplacement=false\n"},
        None,
    ),
    "replacement on for the script alone, no value": (
        config(flywayPlaceholderReplacement="false"),
        {"V1__a.sql": TABLE + "-- ${x}\n", "V1__a.sql.conf": "placeholderReplacement=true\n"},
        "${x}",
    ),
    "a number not stored as a string": (
        config(flywayPlaceholders={"smaPeriod": 20}),
        {"V1__a.sql": TABLE + "-- ${smaPeriod}\n"},
        "flywayPlaceholders.smaPeriod = 20: must be a string",
    ),
    "true not stored as a string": (
        config(flywayPlaceholders={"enabled": True}),
        {"V1__a.sql": TABLE + "-- ${enabled}\n"},
        "flywayPlaceholders.enabled = true: must be a string",
    ),
    "an empty value": (
        config(flywayPlaceholders={"region": None}),
        {"V1__a.sql": TABLE + "-- ${region}\n"},
        "flywayPlaceholders.region = null: must be a string",
    ),
    "another case of the name": (
        config(flywayPlaceholders={"REGION": "eu"}),
        {"V1__a.sql": TABLE + "-- ${Region}\n"},
        None,
    ),
    "a built-in": (config(), {"V1__a.sql": TABLE + "-- ${flyway:user}\n"}, None),
    "an unknown flyway: name": (
        config(),
        {"V1__a.sql": TABLE + "-- ${flyway:nope}\n"},
        "${flyway:nope}",
    ),
    "never closed": (config(), {"V1__a.sql": TABLE + "-- ${"}, "that no } closes"),
    "escaped": (config(), {"V1__a.sql": TABLE + "-- $${region}\n"}, None),
    # A baselining stack's database holds the schema up to its baseline: Flyway never runs
    # (nor reads) those scripts there, so only what is above it needs values.
    "below the baseline of an adopted database": (
        config(flywayBaselineOnMigrate="true", flywayBaselineVersion="2"),
        {"V1__a.sql": TABLE + "-- ${old}\n", "V2__b.sql": "-- ${old}\nSELECT 1;\n"},
        None,
    ),
    "above the baseline of an adopted database": (
        config(flywayBaselineOnMigrate="true", flywayBaselineVersion="1"),
        {"V1__a.sql": TABLE + "-- ${old}\n", "V2__b.sql": "-- ${old}\nSELECT 1;\n"},
        "V2__b.sql:1: uses the placeholder ${old}",
    ),
    "a name no value can reach": (
        config(flywayPlaceholders={"a.b": "x"}),
        {"V1__a.sql": TABLE + "-- ${a.b}\n"},
        '"a.b" cannot be passed to Flyway',
    ),
    "set plainly and as a secret": (
        config(flywayPlaceholders={"api_key": "x"}, flywaySecretPlaceholders=SECRET),
        {"V1__a.sql": TABLE + "-- ${api_key}\n"},
        "is also set in flywayPlaceholders",
    ),
}


def project(tmp_path: Path, stack: dict[str, Any], files: dict[str, str]) -> Path:
    """A project of its own: Pulumi.yaml, the stack file as a user wrote it, the set."""
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text("name: tradestream-database\n", encoding="utf-8")
    text = json.dumps({"config": stack})  # JSON is YAML, and keeps 20 a number
    (root / "stacks" / f"Pulumi.{STACK}.yaml").write_text(text, encoding="utf-8")
    directory = root / "migrations"
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(content, encoding="utf-8")
    return directory


def by_lint(directory: Path, capsys: pytest.CaptureFixture[str]) -> str | None:
    code = lint_main([str(directory), "--stack", STACK, "--no-squawk"])
    captured = capsys.readouterr()
    return None if code == 0 else captured.out + captured.err


def by_rehearsal(directory: Path, capsys: pytest.CaptureFixture[str]) -> str | None:
    try:
        rehearse.prepare(directory.parent, STACK, directory)
    except (SettingsError, MigrationError):
        # What the person sees: the command's own message, and no traceback.
        assert rehearse.main(["--stack", STACK, "--dir", str(directory)]) == 1
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        return captured.err
    return None


def by_preview(directory: Path, stack: dict[str, Any]) -> str | None:
    """The program under mocks, given the stack's config as the CLI hands it over (secrets
    decrypted)."""
    values: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for key, value in stack.items():
        if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            secrets[key.removeprefix(KEY)] = json.dumps(dict.fromkeys(value, "s3cret"))
        else:
            values[key] = cli_value(value)[0]
    values[KEY + "migrationsDir"] = str(directory)
    run = run_config(STACK, values, secrets)
    return None if run.error is None else str(run.error)


@pytest.mark.parametrize("case", list(CASES))
def test_lint_rehearsal_and_preview_decide_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    stack, files, refusal = CASES[case]
    directory = project(tmp_path, stack, files)
    decided = {
        "lint --stack": by_lint(directory, capsys),
        "rehearsal": by_rehearsal(directory, capsys),
        "preview": by_preview(directory, stack),
    }
    for decider, message in decided.items():
        if refusal is None:
            assert message is None, f"{decider} refused {case!r}:\n{message}"
        else:
            assert message is not None, f"{decider} accepted {case!r}"
            assert refusal in message, (
                f"{decider} on {case!r} does not name {refusal!r}:\n{message}"
            )
