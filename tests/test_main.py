"""The whole program: bad input stops it before any resource, and no secret leaks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pulumi
import pytest

from tests.program import ROOT, ProgramRun, plain_strings, run_program


def refused(run: ProgramRun) -> str:
    """The preview-time error, after checking that nothing was declared half-way."""
    assert isinstance(run.error, pulumi.RunError), run.error
    assert run.resources == [], "resources were declared before the input was checked"
    return str(run.error)


COMMON = {
    "tradestream:database:Namespace",
    "tradestream:database:MigrationJob",
    "kubernetes:core/v1:Namespace",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:batch/v1:Job",
}
ROLES = {
    "tradestream:database:DatabaseRoles",
    "pulumi:providers:postgresql",
    "postgresql:index/role:Role",
    "postgresql:index/grant:Grant",
    "postgresql:index/grantRole:GrantRole",
    "postgresql:index/defaultPrivileges:DefaultPrivileges",
    "random:index/randomPassword:RandomPassword",
    "kubernetes:core/v1:Secret",
}
IN_CLUSTER_ROLES = {
    "tradestream:database:RoleGrants",
    "random:index/randomPassword:RandomPassword",
    "kubernetes:core/v1:Secret",
}
"""Roles managed from inside the cluster: no pulumi-postgresql resource at all."""
CNPG = {
    "tradestream:database:CloudNativePostgres",
    "kubernetes:postgresql.cnpg.io/v1:Cluster",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
}
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
"""The stacks with postgresMetricsEnabled: the operator's enablePodMonitor is deprecated."""
EXPECTED_TYPES = {
    "dev": COMMON
    | {
        "tradestream:database:BitnamiPostgres",
        "kubernetes:core/v1:Secret",
        "kubernetes:helm.sh/v3:Release",
        "random:index/randomPassword:RandomPassword",
    },
    # staging installs the operator (a Helm release); prod's superuser password is configured.
    "staging": COMMON | CNPG | IN_CLUSTER_ROLES | {"kubernetes:helm.sh/v3:Release", POD_MONITOR},
    "prod": COMMON | CNPG | IN_CLUSTER_ROLES | {POD_MONITOR},
}


def test_every_stack_file_yields_the_expected_resources(stack_run: ProgramRun) -> None:
    types = {r.type for r in stack_run.resources}
    assert types == EXPECTED_TYPES[stack_run.stack]
    assert all(
        r.type.startswith("tradestream:database:") for r in stack_run.resources if not r.custom
    )


def test_no_secret_appears_in_plain_text_in_any_input_or_output(stack_run: ProgramRun) -> None:
    assert stack_run.secret_values, "the run saw no secrets; the scan would prove nothing"
    for resource in stack_run.resources:
        for text in plain_strings(resource.wire):
            for secret in stack_run.secret_values:
                assert secret not in text, f"{resource.type} {resource.name} leaks a password"
    for name, value in stack_run.outputs.items():
        if name in stack_run.secret_outputs:
            continue
        dumped = json.dumps(value)
        for secret in stack_run.secret_values:
            assert secret not in dumped, f"stack output {name} leaks a password"


def test_the_leak_scan_would_catch_a_plain_password() -> None:
    wire = {
        "data": {"a": "x-pw-x"},
        "hidden": {
            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
            "value": "pw",
        },
    }
    texts = list(plain_strings(wire))
    assert "x-pw-x" in texts
    assert "pw" not in texts


def test_stack_outputs_a_reviewer_reads(stack_run: ProgramRun) -> None:
    out = stack_run.outputs
    assert set(out) == {
        "namespace",
        "databaseFlavor",
        "databaseResourceName",
        "databaseHost",
        "databasePort",
        "databaseName",
        "credentialsSecretName",
        "migrationJobName",
        "migrationsDigest",
        "migrationConfigMaps",
        "migrations",
    }
    host = {
        "dev": "tradestream-postgresql",
        "staging": "tradestream-pg-rw",
        "prod": "tradestream-pg-rw",
    }
    assert out["databaseHost"] == f"{host[stack_run.stack]}.{out['namespace']}.svc.cluster.local"
    assert out["databasePort"] == 5432
    assert len(out["migrationsDigest"]) == 64


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"flywayConnectRetries": "-3"}, "tradestream-database:flywayConnectRetries"),
        ({"flywayBaselineVersion": "one"}, "tradestream-database:flywayBaselineVersion"),
        ({"flywayBaselineOnMigrat": "true"}, "did you mean 'flywayBaselineOnMigrate'"),
        ({"passwordSource": "config"}, "pulumi config set --secret adminPassword"),
    ],
)
def test_bad_config_stops_the_preview_before_any_resource(
    config: dict[str, str], words: str
) -> None:
    message = refused(run_program("dev", config=config, secrets={}))
    assert words in message
    assert "invalid stack configuration in stacks/Pulumi.dev.yaml (" in message


def test_prod_without_its_secrets_is_refused_with_the_command_to_fix_it() -> None:
    message = refused(run_program("prod", secrets={}))
    assert "tradestream-database:adminPassword: missing required secret" in message
    assert "pulumi config set --secret adminPassword" in message


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("v5__lower_prefix.sql", b"SELECT 1;", "v5__lower_prefix.sql"),
        ("V5_single_underscore.sql", b"SELECT 1;", "V5_single_underscore.sql"),
        ("V04__duplicate_of_four.sql", b"SELECT 1;", "V04__duplicate_of_four.sql"),
        ("V5__empty.sql", b"", "V5__empty.sql"),
        ("V5__not_utf8.sql", b"SELECT '\xff';", "V5__not_utf8.sql"),
        ("V999__only_comments.sql", b"-- to do\n", "V999__only_comments.sql: holds no SQL"),
        ("U4__undo_signals.sql", b"DROP TABLE signals;", "U4__undo_signals.sql"),
    ],
)
def test_bad_migrations_stop_the_preview_before_any_resource(
    tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(ROOT / "database" / "migrations", directory)
    (directory / name).write_bytes(content)
    assert words in refused(run_program("dev", config={"migrationsDir": str(directory)}))


def test_an_edited_released_migration_stops_the_preview(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(ROOT / "database" / "migrations", directory)
    v2 = directory / "V2__add_strategy_specs.sql"
    v2.write_bytes(v2.read_bytes() + b"-- tweak\n")
    message = refused(run_program("dev", config={"migrationsDir": str(directory)}))
    assert "V2__add_strategy_specs.sql" in message
    assert "changed after it was released" in message


def test_a_missing_migrations_directory_is_named(tmp_path: Path) -> None:
    message = refused(run_program("dev", config={"migrationsDir": str(tmp_path / "nope")}))
    assert "nope" in message
