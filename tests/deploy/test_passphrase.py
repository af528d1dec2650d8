"""Whose passphrase and which salt: one decision per stack, refused before anything is written
or started when the stack cannot run with what is at hand; and the workspace copy that keeps
every run out of the committed stack file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from deploy import __main__ as deploy_main
from deploy import engine
from deploy import target as deploy_target
from deploy.engine import Backend, prepare_workspace
from deploy.passphrase import SecretsError, ci_secret, decide, passphrase_hint, salt_command

SALT = "v1:c2FsdA==:v1:bm9uY2U=:Y2lwaGVy"
SECRET = {"secure": "v1:bm9uY2U=:c2VjcmV0"}
GIVEN = {"PULUMI_CONFIG_PASSPHRASE": "the stack's"}
GIVEN_FILE = {"PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/dev"}


def test_the_local_stack_always_has_a_passphrase_and_salt_of_its_own() -> None:
    for environ in ({}, GIVEN, {"PULUMI_BACKEND_URL": "s3://x"}):
        found = decide(
            "local",
            salt=None,
            encrypted=(),
            environ=environ,
            machine_local=True,
            shared_backend=False,
        )
        assert (found.own_passphrase, found.committed_salt) == (True, False)


def test_the_local_stack_refuses_values_committed_encrypted() -> None:
    with pytest.raises(SecretsError, match=r"stacks/Pulumi.local.yaml holds values stored enc"):
        decide(
            "local",
            salt=None,
            encrypted=("p:k",),
            environ={},
            machine_local=True,
            shared_backend=False,
        )


@pytest.mark.parametrize("environ", [GIVEN, GIVEN_FILE])
def test_a_shared_backend_runs_with_the_stacks_passphrase_and_committed_salt(
    environ: dict[str, str],
) -> None:
    found = decide(
        "dev", salt=SALT, encrypted=(), environ=environ, machine_local=False, shared_backend=True
    )
    assert (found.own_passphrase, found.committed_salt) == (False, True)


def test_a_shared_backend_without_the_passphrase_is_refused_naming_where_it_is() -> None:
    with pytest.raises(SecretsError) as refused:
        decide(
            "prod",
            salt=SALT,
            encrypted=(),
            environ={"PULUMI_CONFIG_PASSPHRASE": ""},
            machine_local=False,
            shared_backend=True,
        )
    message = str(refused.value)
    assert "set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE)" in message
    assert "PULUMI_CONFIG_PASSPHRASE of the GitHub environment prod" in message
    assert "Nothing was run" in message


def test_a_shared_backend_without_a_committed_salt_is_refused_with_the_one_time_command() -> None:
    with pytest.raises(SecretsError) as refused:
        decide(
            "staging",
            salt=None,
            encrypted=(),
            environ=GIVEN,
            machine_local=False,
            shared_backend=True,
            pulumi="/opt/pulumi/bin/pulumi",
        )
    message = str(refused.value)
    assert message.startswith("stacks/Pulumi.staging.yaml has no encryptionsalt.")
    assert message.endswith(
        '\n    PULUMI_BACKEND_URL="file://$(mktemp -d)" /opt/pulumi/bin/pulumi stack init staging '
        "--secrets-provider passphrase"
    )


def test_a_sandbox_uses_the_stacks_passphrase_when_given_else_its_own() -> None:
    given = decide(
        "dev", salt=SALT, encrypted=(), environ=GIVEN, machine_local=False, shared_backend=False
    )
    assert (given.own_passphrase, given.committed_salt) == (False, True)
    own = decide(
        "dev", salt=SALT, encrypted=(), environ={}, machine_local=False, shared_backend=False
    )
    assert (own.own_passphrase, own.committed_salt) == (True, False)


def test_a_sandbox_of_its_own_cannot_read_committed_secrets_and_says_so() -> None:
    with pytest.raises(SecretsError, match=r"\(p:adminPassword\), and no passphrase is given"):
        decide(
            "prod",
            salt=SALT,
            encrypted=("p:adminPassword",),
            environ={},
            machine_local=False,
            shared_backend=False,
        )


def test_names_of_the_ci_secret_and_the_command() -> None:
    assert ci_secret("dev") == "PULUMI_CONFIG_PASSPHRASE of the GitHub environment dev"
    assert salt_command("dev") == (
        'PULUMI_BACKEND_URL="file://$(mktemp -d)" pulumi stack init dev '
        "--secrets-provider passphrase"
    )


def test_a_passphrase_of_its_own_wins_over_one_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI prefers PULUMI_CONFIG_PASSPHRASE to a file, so the local stack hands its own
    over in that variable: another stack's passphrase exported in the shell changes nothing."""
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "dev's, exported for dev")
    own = Backend.local_folder(tmp_path, "local")
    assert own.passphrase_file is not None
    assert own.env()["PULUMI_CONFIG_PASSPHRASE"] == own.passphrase_file.read_text().strip()
    assert os.stat(own.passphrase_file).st_mode & 0o077 == 0
    given = Backend.local_folder(tmp_path / "given", "dev", own_passphrase=False)
    assert given.env() == {"PULUMI_BACKEND_URL": f"file://{(tmp_path / 'given').resolve()}"}
    assert not (tmp_path / "given" / "dev.passphrase").exists()


def test_a_passphrase_file_given_relative_to_the_repository_is_found_from_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "secrets/dev")
    env = Backend("s3://bucket").env()
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(tmp_path.resolve() / "secrets" / "dev")


def project(root: Path, config: Mapping[str, object], salt: str | None) -> Path:
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text("name: tradestream-database\n", encoding="utf-8")
    document: dict[str, object] = {"config": dict(config)}
    if salt:
        document["encryptionsalt"] = salt
    (root / "stacks" / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return root


def workspace_file(workspace: Path) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(
        (workspace / "stacks" / "Pulumi.dev.yaml").read_text()
    )
    return loaded


def test_the_workspace_carries_the_committed_salt_and_secrets_for_the_stacks_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"tradestream-database:namespace": "dev", "tradestream-database:adminPassword": SECRET}
    monkeypatch.setattr(engine, "ROOT", project(tmp_path / "repo", config, SALT))
    workspace = prepare_workspace(tmp_path / "ws", "dev", committed_salt=True)
    assert workspace_file(workspace) == {"encryptionsalt": SALT, "config": config}


def test_a_workspace_of_its_own_keeps_its_salt_and_secrets_and_none_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"tradestream-database:namespace": "dev", "tradestream-database:adminPassword": SECRET}
    monkeypatch.setattr(engine, "ROOT", project(tmp_path / "repo", config, SALT))
    workspace = prepare_workspace(tmp_path / "ws", "dev")
    assert workspace_file(workspace) == {"config": {"tradestream-database:namespace": "dev"}}
    # What the CLI wrote into the workspace (its salt, a secret set there) survives a refresh.
    own = {"secure": "v1:b3du:b3du"}
    kept = {"encryptionsalt": "v1:own", "config": {"tradestream-database:migratorPassword": own}}
    (workspace / "stacks" / "Pulumi.dev.yaml").write_text(yaml.safe_dump(kept), encoding="utf-8")
    prepare_workspace(tmp_path / "ws", "dev")
    assert workspace_file(workspace) == {
        "encryptionsalt": "v1:own",
        "config": {
            "tradestream-database:namespace": "dev",
            "tradestream-database:migratorPassword": own,
        },
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose dev stack has no committed salt, as deploy's ROOT."""
    root = project(tmp_path / "repo", {"tradestream-database:namespace": "dev"}, None)
    monkeypatch.setattr(deploy_main, "ROOT", root)
    monkeypatch.setattr(deploy_main, "STATE", root / ".pulumi-state")
    monkeypatch.setattr(deploy_target, "STATE", root / ".pulumi-state")
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path / 'shared'}")
    return root


@pytest.mark.parametrize("passphrase", [None, "dev's"])
def test_make_refuses_before_it_writes_or_starts_anything(
    repo: Path,
    passphrase: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if passphrase is not None:
        monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", passphrase)
    committed = (repo / "stacks" / "Pulumi.dev.yaml").read_bytes()
    assert deploy_main.main(["preview", "dev"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert ("has no encryptionsalt" in err) == (passphrase is not None)
    assert (repo / "stacks" / "Pulumi.dev.yaml").read_bytes() == committed
    assert not (repo / ".pulumi-state").exists()


def test_check_secrets_is_the_same_refusal_for_ci(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PULUMI_BACKEND_URL")  # CI hands the backend to the CLI, not to this
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "dev's")
    assert deploy_main.main(["check-secrets", "dev"]) == 2
    assert salt_command("dev") in capsys.readouterr().err
    stack_file = repo / "stacks" / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + f"encryptionsalt: {SALT}\n")
    assert deploy_main.main(["check-secrets", "dev"]) == 0
    assert "dev: the salt is committed" in capsys.readouterr().out


def test_a_wrong_passphrase_gets_a_hint_naming_the_stack_and_the_fix() -> None:
    error = "error: getting stack configuration: get stack secrets manager: incorrect passphrase"
    hint = passphrase_hint("dev", error)
    assert hint is not None
    assert "stacks/Pulumi.dev.yaml" in hint
    assert "give dev's passphrase in PULUMI_CONFIG_PASSPHRASE" in hint
    assert passphrase_hint("dev", "error: the stack is locked") is None


def test_deploy_names_the_local_stack_as_its_set_up_does() -> None:
    from standins import localstack  # noqa: PLC0415 (deploy imports it only to run it)

    assert deploy_target.LOCAL == localstack.STACK
