"""The whole program: bad input stops it before any resource, and no secret leaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.database.cloudnative_pg_spec import cluster_backup
from components.migrations import update_lock
from components.settings import Flavor
from components.settings.declarations import bitnami_primary_name
from tests.program import (
    MOCK_CONFIG_SECRETS,
    ProgramRun,
    is_secret,
    names_for,
    plain_strings,
    run_program,
    stack_settings,
)


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
DUMP = {"tradestream:database:MigrationBackup", "kubernetes:core/v1:PersistentVolumeClaim"}
"""pg_dump before each migration (bitnami), to a volume of the program's."""
CLUSTER_BACKUP = {
    "tradestream:database:MigrationBackup",
    "kubernetes:postgresql.cnpg.io/v1:Backup",
    "kubernetes:barmancloud.cnpg.io/v1:ObjectStore",
}
"""An on-demand Backup before each migration, into the object store WAL is archived to;
scheduled ones between migrations come with the archive, migration backups or not."""
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
"""The stacks with postgresMetricsEnabled: the operator's enablePodMonitor is deprecated."""
BITNAMI = {
    "tradestream:database:BitnamiPostgres",
    "kubernetes:core/v1:Secret",
    "kubernetes:helm.sh/v3:Release",
    "random:index/randomPassword:RandomPassword",
}


def expected_types(stack: str) -> set[str]:
    """What a stack file's choices call for, read from the file."""
    settings = stack_settings(stack)
    backup, cnpg = settings.backup.before_migrate, settings.cnpg
    if settings.database.flavor is Flavor.BITNAMI:
        assert not settings.database.manages_roles, "a case this test does not spell out"
        return COMMON | BITNAMI | (DUMP if backup else set())
    assert settings.database.roles_in_cluster, "a case this test does not spell out"
    types = COMMON | CNPG | IN_CLUSTER_ROLES | (CLUSTER_BACKUP if backup else set())
    archived = settings.backup.cnpg_method.value == "barman-cloud"
    if archived and settings.backup.cnpg_destination_path:  # WAL archived, backup or not
        types.add("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
    backs_up = cluster_backup(settings.backup, cnpg.cluster_name) is not None
    if backs_up and settings.backup.cnpg_schedule:  # between migrations, backup or not
        types.add("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup")
    if not settings.postgres.network_policy_enabled:
        types.discard("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    if cnpg.install_operator:  # the operator's Helm release
        types.add("kubernetes:helm.sh/v3:Release")
    if settings.postgres.metrics_enabled:
        types.add(POD_MONITOR)
    return types


def test_every_stack_file_yields_the_expected_resources(stack_run: ProgramRun) -> None:
    types = {r.type for r in stack_run.resources}
    assert types == expected_types(stack_run.stack)
    assert all(
        r.type.startswith("tradestream:database:") for r in stack_run.resources if not r.custom
    )


def assert_no_plain_secret(run: ProgramRun) -> None:
    """No secret the run saw appears outside a secret wrapper: in any resource's inputs
    (replacement triggers included) or in any stack output that is not secret."""
    assert run.secret_values, "the run saw no secrets; the scan would prove nothing"
    for resource in run.resources:
        for text in [*plain_strings(resource.wire), *plain_strings(resource.replacement_trigger)]:
            for secret in run.secret_values:
                assert secret not in text, f"{resource.type} {resource.name} leaks a secret"
    for name, value in run.outputs.items():
        if name in run.secret_outputs:
            continue
        dumped = json.dumps(value)
        for secret in run.secret_values:
            assert secret not in dumped, f"stack output {name} leaks a secret"


def test_no_secret_appears_in_plain_text_in_any_input_or_output(stack_run: ProgramRun) -> None:
    assert_no_plain_secret(stack_run)


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
    settings = stack_settings(stack_run.stack)
    assert set(out) == {
        "namespace",
        "databaseFlavor",
        "databaseResourceName",
        *(("databaseRecoveredFrom",) if settings.database.flavor is Flavor.CLOUDNATIVE_PG else ()),
        "databaseHost",
        "databasePort",
        "databaseName",
        "credentialsSecretName",
        "migrationJobName",
        "migrationsDigest",
        "migrationConfigMaps",
        "migrations",
        *(("backupName", "backupVolumeClaim") if settings.backup.before_migrate else ()),
        "readWriteHost",
        "readOnlyHost",
        "appCredentialsSecretName",
        "readOnlyCredentialsSecretName",
    }
    host = (
        bitnami_primary_name(settings.postgres.release_name, settings.postgres.architecture)
        if settings.database.flavor is Flavor.BITNAMI
        else f"{settings.cnpg.cluster_name}-rw"
    )
    assert out["namespace"] == settings.namespace
    assert out["databaseHost"] == f"{host}.{settings.namespace}.svc.cluster.local"
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
    assert "tradestream-database:cnpgBackupAccessKeyId: missing required secret" in message
    assert "pulumi config set --secret cnpgBackupSecretAccessKey" in message


RELEASED = {
    "V1__orders.sql": "CREATE TABLE orders (id bigint PRIMARY KEY);\n",
    "V2__fills.sql": "CREATE TABLE fills (id bigint PRIMARY KEY);\n",
    "sub/V3__signals.sql": "CREATE TABLE signals (id bigint PRIMARY KEY);\n",
    "V4__index_fills.sql": "CREATE INDEX idx_fills_id ON fills (id);\n",
}
"""A released history of this test's own: the preview judges any set the same way."""
PLAIN = {"flywayPlaceholderReplacement": "true", "flywayPlaceholders": None}


def released_set(directory: Path) -> Path:
    for name, text in RELEASED.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    update_lock(directory)
    return directory


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("v5__lower_prefix.sql", b"SELECT 1;", "v5__lower_prefix.sql"),
        ("V5_single_underscore.sql", b"SELECT 1;", "V5_single_underscore.sql"),
        ("V04__duplicate_of_four.sql", b"SELECT 1;", "V04__duplicate_of_four.sql"),
        ("V5__empty.sql", b"", "V5__empty.sql"),
        ("V5__not_utf8.sql", b"SELECT '\xff';", "V5__not_utf8.sql"),
        ("V999__only_comments.sql", b"-- to do\n", "V999__only_comments.sql: holds no SQL"),
        ("U4__undo_index.sql", b"DROP INDEX idx_fills_id;", "U4__undo_index.sql"),
        ("V3_5__late.sql", b"SELECT 1;", "lower than the highest released version 4"),
    ],
)
def test_bad_migrations_stop_the_preview_before_any_resource(
    tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    directory = released_set(tmp_path / "migrations")
    (directory / name).write_bytes(content)
    config = {**PLAIN, "migrationsDir": str(directory), "flywayOutOfOrder": "false"}
    assert words in refused(run_program("dev", config=config))


def test_an_edited_released_migration_stops_the_preview(tmp_path: Path) -> None:
    directory = released_set(tmp_path / "migrations")
    fills = directory / "V2__fills.sql"
    fills.write_bytes(fills.read_bytes() + b"-- tweak\n")
    message = refused(run_program("dev", config={**PLAIN, "migrationsDir": str(directory)}))
    assert "V2__fills.sql: changed after it was released" in message


def test_a_missing_migrations_directory_is_named(tmp_path: Path) -> None:
    message = refused(run_program("dev", config={"migrationsDir": str(tmp_path / "nope")}))
    assert "nope" in message


# -- Flyway placeholders ------------------------------------------------------------------------

JOB = "kubernetes:batch/v1:Job"
SECRET = "kubernetes:core/v1:Secret"
API_KEY = "s3cr3t-Api-Key-9f1"
USES_PLACEHOLDERS = {
    "V1__create_settings.sql": "CREATE TABLE settings (k text, v text);\n"
    "INSERT INTO settings VALUES ('region', '${region}'), ('key', '${api_key}');\n",
    "R__settings_view.sql": "CREATE OR REPLACE VIEW key_view AS SELECT '${api_key}' AS k;\n",
}


def placeholder_migrations(tmp_path: Path, files: dict[str, str] = USES_PLACEHOLDERS) -> str:
    directory = tmp_path / "migrations"
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return str(directory)


def with_placeholders(tmp_path: Path, api_key: str = API_KEY) -> ProgramRun:
    """prod (roles, configured secrets) with one plain and one secret placeholder."""
    return run_program(
        "prod",
        config={
            "migrationsDir": placeholder_migrations(tmp_path),
            "backupBeforeMigrate": "true",
            "flywayPlaceholderReplacement": "true",
            "flywayPlaceholders": json.dumps({"region": "eu-west"}),
        },
        secrets={
            "adminPassword": MOCK_CONFIG_SECRETS["adminPassword"],
            "cnpgBackupAccessKeyId": MOCK_CONFIG_SECRETS["cnpgBackupAccessKeyId"],
            "cnpgBackupSecretAccessKey": MOCK_CONFIG_SECRETS["cnpgBackupSecretAccessKey"],
            "flywaySecretPlaceholders": json.dumps({"api_key": api_key}),
        },
    )


def job_env(run: ProgramRun) -> dict[str, Any]:
    assert run.error is None, run.error
    (container,) = run.flyway_job().inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_a_plain_placeholder_reaches_flyway_as_its_environment_variable(tmp_path: Path) -> None:
    env = job_env(with_placeholders(tmp_path))
    assert env["FLYWAY_PLACEHOLDER_REPLACEMENT"] == "true"
    assert env["FLYWAY_PLACEHOLDERS_REGION"] == "eu-west"


def test_a_secret_placeholder_is_read_from_a_secret_and_never_shown(tmp_path: Path) -> None:
    run = with_placeholders(tmp_path)
    ref = job_env(run)["FLYWAY_PLACEHOLDERS_API_KEY"]
    (secret,) = [s for s in run.of_type(SECRET) if s.name == "tradestream-placeholders"]
    assert ref == {"secretKeyRef": {"name": secret.outputs["metadata"]["name"], "key": "api_key"}}
    assert secret.inputs["immutable"] is True
    assert secret.inputs["stringData"] == {"api_key": API_KEY}
    assert API_KEY in run.secret_values
    assert_no_plain_secret(run)
    for config_map in run.of_type("kubernetes:core/v1:ConfigMap"):
        assert API_KEY not in json.dumps(config_map.inputs)
    (view,) = [m for m in run.outputs["migrations"] if m["script"] == "R__settings_view.sql"]
    assert view["checksum"] is None
    assert "secret placeholder" in view["checksumWithheld"]


def test_a_new_secret_value_replaces_the_job_through_a_secret_trigger(tmp_path: Path) -> None:
    first = with_placeholders(tmp_path / "a")
    second = with_placeholders(tmp_path / "b", api_key="an0ther-Api-Key-2c")
    one, two = first.flyway_job(), second.flyway_job()
    assert is_secret(one.replacement_trigger)
    assert one.replacement_trigger != two.replacement_trigger
    annotation = "tradestream.io/flyway-config-digest"
    assert (
        one.inputs["metadata"]["annotations"][annotation]
        == two.inputs["metadata"]["annotations"][annotation]
    )
    # The backup before Flyway runs again with it, through a secret trigger too.
    backup = "kubernetes:postgresql.cnpg.io/v1:Backup"
    assert is_secret(first.one(backup).replacement_trigger)
    assert first.one(backup).replacement_trigger != second.one(backup).replacement_trigger


def test_a_placeholder_without_a_value_stops_the_preview_before_any_resource(
    tmp_path: Path,
) -> None:
    config = {
        "migrationsDir": placeholder_migrations(tmp_path),
        "flywayPlaceholderReplacement": "true",
        "flywayPlaceholders": None,
        "flywayBaselineOnMigrate": "false",  # a baselining stack's Flyway never reads V1
    }
    message = refused(run_program("dev", config=config))
    assert "V1__create_settings.sql:2: uses the placeholder ${region}" in message
    assert (
        "pulumi config set --type string --path 'flywayPlaceholders.region' <value> --stack dev"
    ) in message
    assert "V1__create_settings.sql:2: uses the placeholder ${api_key}" in message
    assert "(2 uses in 2 files; also R__settings_view.sql:1)" in message
    assert "2 placeholders without a value in 2 files" in message
    assert "pulumi config set flywayPlaceholderReplacement false --stack <stack>" in message


def test_with_replacement_off_placeholders_need_no_value(tmp_path: Path) -> None:
    run = run_program(
        "dev",
        config={
            "migrationsDir": placeholder_migrations(tmp_path),
            "flywayPlaceholderReplacement": "false",
        },
    )
    assert job_env(run)["FLYWAY_PLACEHOLDER_REPLACEMENT"] == "false"
    assert not [s for s in run.of_type(SECRET) if s.name == "tradestream-placeholders"]


def test_a_secret_placeholder_in_plain_text_stops_the_preview(tmp_path: Path) -> None:
    message = refused(
        run_program(
            "dev",
            config={
                "migrationsDir": placeholder_migrations(tmp_path),
                "flywayPlaceholderReplacement": "true",
                "flywayPlaceholders": None,
                "flywaySecretPlaceholders": json.dumps({"api_key": API_KEY}),
            },
            secrets={},
        )
    )
    assert "pulumi config set --secret --path 'flywaySecretPlaceholders.api_key'" in message
    assert API_KEY not in message


# -- what an application's stack reads ----------------------------------------------------------

APP_FACING = {
    # flavor, roles mode: (app Secret, read-only Secret, read-only host)
    ("bitnami", "none"): (
        "tradestream-postgresql-credentials",
        "",
        "tradestream-postgresql.apps.svc.cluster.local",
    ),
    ("bitnami", "cluster"): (
        "shop-app-credentials",
        "shop-readonly-credentials",
        "tradestream-postgresql.apps.svc.cluster.local",
    ),
    ("cloudnative-pg", "cluster"): (
        "shop-app-credentials",
        "shop-readonly-credentials",
        "tradestream-pg-ro.apps.svc.cluster.local",
    ),
    ("cloudnative-pg", "none"): (
        "tradestream-pg-app",
        "",
        "tradestream-pg-ro.apps.svc.cluster.local",
    ),
    ("external", "dba"): ("", "", "db.example.internal"),
    ("external", "pulumi"): (
        "shop-app-credentials",
        "shop-readonly-credentials",
        "db.example.internal",
    ),
}


@pytest.mark.parametrize(("flavor", "roles"), sorted(APP_FACING))
def test_an_application_stack_finds_its_secrets_and_hosts_in_the_outputs(
    flavor: str, roles: str
) -> None:
    per_flavor: dict[str, dict[str, str | None]] = {
        "bitnami": {"postgresArchitecture": "standalone", "postgresReadReplicas": "0"},
        "cloudnative-pg": {
            "cnpgBackupMethod": "volume-snapshot",
            "cnpgBackupSnapshotClass": "csi",
            "cnpgInstallOperator": "false",
        },
        "external": {"databaseAccessHost": "db.example.internal"},
    }
    config: dict[str, str | None] = {
        **names_for("dev", flavor),
        "namespace": "apps",
        "databaseName": "shop",
        "databaseFlavor": flavor,
        "databaseRolesManagedBy": roles,
        "databaseSslMode": "disable",
        "passwordSource": "generated",
        "databaseAccessHost": None,
        **per_flavor[flavor],
    }
    run = run_program("dev", config=config)
    assert run.error is None, run.error
    app, read_only, ro_host = APP_FACING[(flavor, roles)]
    out = run.outputs
    assert (out["appCredentialsSecretName"], out["readOnlyCredentialsSecretName"]) == (
        app,
        read_only,
    )
    assert out["readOnlyHost"] == ro_host
    assert out["readWriteHost"] == out["databaseHost"]
    secrets = {r.inputs["metadata"].get("name") for r in run.of_type("kubernetes:core/v1:Secret")}
    assert {name for name in (app, read_only) if name} <= secrets | {"tradestream-pg-app"}


def test_a_value_set_as_a_secret_stays_secret_in_every_input_and_output() -> None:
    """cnpgBackupDestinationPath is no secret by nature; set with --secret, it is one."""
    bucket = "s3://hidden-bucket-7f2/prod"
    run = run_program(
        "dev",
        config={
            "databaseFlavor": "cloudnative-pg",
            "cnpgBackupMethod": "barman-cloud",
            "cnpgInstallOperator": "false",
            "cnpgBackupCredentials": "iam-role",
            "databaseAccessHost": None,
        },
        secrets={"cnpgBackupDestinationPath": bucket},
    )
    assert run.error is None, run.error
    store = run.one("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
    assert store.inputs["spec"]["configuration"]["destinationPath"] == bucket
    assert is_secret(store.wire["spec"])
    for resource in run.resources:
        assert bucket not in " ".join(plain_strings(resource.wire)), resource.name
    for name, value in run.outputs.items():
        if bucket in json.dumps(value, default=str):
            assert name in run.secret_outputs, name


def test_a_wrong_value_set_as_a_secret_is_refused_without_showing_it() -> None:
    run = run_program("dev", secrets={"postgresStorageSize": "lots-of-gigabytes-9x"})
    message = refused(run)
    assert "postgresStorageSize" in message
    assert "lots-of-gigabytes-9x" not in message
