"""The migration ConfigMaps and the Flyway Job under mocks: what a user relies on."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.jobs.flyway import CALLBACKS_FOLDER
from components.jobs.migration import MigrationJob
from components.migrations import LOCK_FILE_NAME
from tests.program import ROOT, ProgramRun, names_for, stack_settings

JOB = "kubernetes:batch/v1:Job"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
CALLBACKS = CALLBACKS_FOLDER

VERIFY_CNPG = "?sslmode=verify-full&sslrootcert=/flyway/tls/ca.crt"
"""CloudNativePG serves TLS with its own CA; Flyway verifies the server against it."""
MIGRATOR_PASSWORD = {
    "secretKeyRef": {"name": "tradestream-migrator-credentials", "key": "password"}
}
EXACT = {
    # Each case's inputs and the environment they must give, both written out by hand: the
    # test fails if the program drops, renames or rewrites any value on the way to the
    # container. The stack file gives the flavor and who manages the roles.
    "dev": (
        {
            "namespace": "tradestream-dev",
            "flywayConnectRetries": "30",
            "flywayConnectRetriesInterval": "5",
            "flywayBaselineOnMigrate": "false",
            "flywayBaselineVersion": "1",
            "flywayOutOfOrder": "true",
        },
        {
            "FLYWAY_URL": "jdbc:postgresql://tradestream-postgresql.tradestream-dev.svc.cluster.local:5432/tradestream",
            "FLYWAY_USER": "tradestream_owner",
            "FLYWAY_PASSWORD": {
                "secretKeyRef": {"name": "tradestream-postgresql-credentials", "key": "password"}
            },
            "FLYWAY_CONNECT_RETRIES": "30",
            "FLYWAY_CONNECT_RETRIES_INTERVAL": "5",
            "FLYWAY_BASELINE_ON_MIGRATE": "false",
            "FLYWAY_BASELINE_VERSION": "1",
            "FLYWAY_OUT_OF_ORDER": "true",
        },
    ),
    "staging": (
        {
            "namespace": "tradestream-staging",
            "flywayConnectRetries": "60",
            "flywayConnectRetriesInterval": "10",
            "flywayBaselineOnMigrate": "true",
            "flywayBaselineVersion": "4.1",
            "flywayOutOfOrder": "false",
        },
        {
            "FLYWAY_URL": "jdbc:postgresql://tradestream-pg-rw.tradestream-staging.svc.cluster.local:5432/tradestream"
            + VERIFY_CNPG,
            "FLYWAY_USER": "tradestream_migrator",
            "FLYWAY_PASSWORD": MIGRATOR_PASSWORD,
            "FLYWAY_CONNECT_RETRIES": "60",
            "FLYWAY_CONNECT_RETRIES_INTERVAL": "10",
            "FLYWAY_BASELINE_ON_MIGRATE": "true",
            "FLYWAY_BASELINE_VERSION": "4.1",
            "FLYWAY_OUT_OF_ORDER": "false",
        },
    ),
    "prod": (
        {
            "namespace": "tradestream",
            "flywayConnectRetries": "0",
            "flywayConnectRetriesInterval": "1",
            "flywayBaselineOnMigrate": "false",
            "flywayBaselineVersion": "1",
            "flywayOutOfOrder": "false",
        },
        {
            "FLYWAY_URL": "jdbc:postgresql://tradestream-pg-rw.tradestream.svc.cluster.local:5432/tradestream"
            + VERIFY_CNPG,
            "FLYWAY_USER": "tradestream_migrator",
            "FLYWAY_PASSWORD": MIGRATOR_PASSWORD,
            "FLYWAY_CONNECT_RETRIES": "0",
            "FLYWAY_CONNECT_RETRIES_INTERVAL": "1",
            "FLYWAY_BASELINE_ON_MIGRATE": "false",
            "FLYWAY_BASELINE_VERSION": "1",
            "FLYWAY_OUT_OF_ORDER": "false",
        },
    ),
}
COMMON_ENV = {
    "FLYWAY_LOCATIONS": "filesystem:/flyway/sql",
    "FLYWAY_VALIDATE_MIGRATION_NAMING": "true",
    "FLYWAY_VALIDATE_ON_MIGRATE": "true",
    "FLYWAY_CLEAN_DISABLED": "true",
    "FLYWAY_LOCK_RETRY_COUNT": "17",
    "FLYWAY_POSTGRESQL_TRANSACTIONAL_LOCK": "false",
    "REDGATE_DISABLE_TELEMETRY": "true",
    "HOME": "/tmp",
    "FLYWAY_PLACEHOLDER_REPLACEMENT": "true",
}


def container(run: ProgramRun) -> dict[str, Any]:
    (only,) = run.flyway_job().inputs["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_of(run: ProgramRun) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(run)["env"]}


def volume_files(run: ProgramRun) -> dict[str, bytes]:
    """What the container sees under /flyway/sql, rebuilt from the recorded resources only."""
    maps = {cm.outputs["metadata"]["name"]: cm.inputs for cm in run.migration_config_maps()}
    volumes = run.flyway_job().inputs["spec"]["template"]["spec"]["volumes"]
    (projected,) = [v["projected"] for v in volumes if v["name"] == "migrations"]
    files: dict[str, bytes] = {}
    for source in projected["sources"]:
        cm = maps[source["configMap"]["name"]]
        for item in source["configMap"]["items"]:
            key, path = item["key"], item["path"]
            assert path not in files, f"{path} is projected twice"
            if key in cm.get("data", {}):
                files[path] = cm["data"][key].encode("utf-8")
            else:
                files[path] = base64.b64decode(cm["binaryData"][key])
    return files


def disk_files(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE_NAME
    }


@pytest.mark.parametrize("stack", list(EXACT))
def test_exact_flyway_environment(
    run_stack: Callable[..., ProgramRun], tmp_path: Path, stack: str
) -> None:
    given, expected = EXACT[stack]
    config = {
        **names_for(stack),
        **given,
        "flywayLockRetryCount": "17",
        "flywayPlaceholderReplacement": "true",
        "flywayPlaceholders": None,
        "migrationsDir": str(write_set(tmp_path / "migrations", SMALL_SET)),
    }
    assert env_of(run_stack(stack, config=config)) == {**COMMON_ENV, **expected}


def test_job_runs_flyway_migrate_from_the_pinned_image(stack_run: ProgramRun) -> None:
    c = container(stack_run)
    assert c["image"] == "flyway/flyway:11.20.3-alpine"
    assert c["command"] == ["flyway", "-skipCheckForUpdate", "migrate"]


def test_pod_security(stack_run: ProgramRun) -> None:
    pod = stack_run.flyway_job().inputs["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(stack_run)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    writable = [m for m in container(stack_run)["volumeMounts"] if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == ["/tmp"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod["volumes"]


def test_job_limits_retries_and_await_timeout_come_from_settings(
    run_stack: Callable[..., ProgramRun],
) -> None:
    dev = run_stack(
        "dev",
        config={
            "flywayBackoffLimit": "0",
            "flywayActiveDeadlineSeconds": "600",
            "flywayJobTimeoutSeconds": "900",
        },
    )
    prod = run_stack(  # on CloudNativePG
        "prod",
        config={
            "flywayBackoffLimit": "1",
            "flywayActiveDeadlineSeconds": "1800",
            "flywayJobTimeoutSeconds": "2400",
        },
    )
    assert dev.flyway_job().inputs["spec"]["backoffLimit"] == 0
    assert prod.flyway_job().inputs["spec"]["backoffLimit"] == 1
    assert prod.flyway_job().inputs["spec"]["activeDeadlineSeconds"] == 1800
    assert dev.flyway_job().custom_timeouts == {"create": "900s", "update": "900s"}
    assert prod.flyway_job().custom_timeouts == {"create": "2400s", "update": "2400s"}
    assert "ttlSecondsAfterFinished" not in prod.flyway_job().inputs["spec"]


def test_failed_job_is_retried_by_the_next_up(stack_run: ProgramRun) -> None:
    annotations = stack_run.flyway_job().inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/replaceUnready"] == "true"
    # Awaited: a failed Job fails `pulumi up`, and nothing that depends on it is created.
    assert "pulumi.com/skipAwait" not in annotations


def test_order_is_database_then_config_maps_then_job(stack_run: ProgramRun) -> None:
    """What a Helm hook's weight did: the database (and its roles), the files, then Flyway."""
    database = [
        r
        for r in stack_run.resources
        if r.type in (RELEASE, CLUSTER) or r.type.startswith("postgresql:index/")
    ]
    assert database
    job, config_maps = stack_run.flyway_job(), stack_run.migration_config_maps()
    assert config_maps
    for resource in database:
        assert resource.urn in job.dependencies, resource.name
        for cm in config_maps:
            assert resource.urn in cm.dependencies, (resource.name, cm.name)
    for cm in config_maps:
        assert cm.urn in job.dependencies


def test_children_are_parented_and_named_after_the_component(stack_run: ProgramRun) -> None:
    component = next(
        r for r in stack_run.resources if r.type == "tradestream:database:MigrationJob"
    )
    children = [r for r in stack_run.resources if r.parent == component.urn]
    assert {r.type for r in children} == {CONFIG_MAP, JOB}
    for child in children:
        assert child.name.startswith(f"{component.name}-")


def test_config_maps_are_immutable_labelled_and_hold_the_files_byte_for_byte(
    stack_run: ProgramRun,
) -> None:
    for cm in stack_run.migration_config_maps():
        assert cm.inputs["immutable"] is True
        labels = cm.inputs["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "tradestream-database"
        assert labels["app.kubernetes.io/component"] == "migrations"
    files = volume_files(stack_run)
    callbacks = {path: files.pop(path) for path in list(files) if path.startswith(CALLBACKS)}
    settings = stack_settings(stack_run.stack)
    assert files == disk_files(ROOT / settings.migrations_dir)
    # The program's own callback sits apart, where roles exist that it protects history from.
    assert bool(callbacks) == settings.database.manages_roles


def test_flyways_history_is_protected_by_a_callback_of_the_programs(stack_run: ProgramRun) -> None:
    files = volume_files(stack_run)
    path = f"{CALLBACKS}/afterMigrate__protect_schema_history.sql"
    database = stack_settings(stack_run.stack).database
    if not database.manages_roles:  # Flyway runs as the owner; there is no app role
        assert path not in files
        return
    text = files[path].decode()
    assert 'ON TABLE "public"."flyway_schema_history" FROM' in text
    assert f'"{database.name}_app", "{database.name}_readonly"' in text


def test_awkward_files_reach_the_container_unchanged(
    run_stack: Callable[..., ProgramRun], tmp_path: Path
) -> None:
    files = {
        "V1__crlf.sql": b"CREATE TABLE a (id int);\r\nSELECT 1;\r\n",
        "V2__bom.sql": b"\xef\xbb\xbfCREATE TABLE b (id int);\n",
        "V3__trailing_whitespace.sql": b"SELECT 1;   \n\t\n  ",
        "sub dir/V4__non_ascii.sql": "-- café, 日本語\nSELECT 'é';\n".encode(),
        "V5__latin1.sql": "SELECT 'caf\u00e9';\n".encode("latin-1"),
        "V5__latin1.sql.conf": b"encoding=ISO-8859-1\n",
        "V6__cr_only.sql": b"SELECT 1;\rSELECT 2;\r",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    run = run_stack("dev", config={"migrationsDir": str(tmp_path)})
    assert volume_files(run) == files


def test_the_job_exposes_what_workloads_that_need_the_schema_depend_on(
    run_stack: Callable[..., ProgramRun],
) -> None:
    run = run_stack("staging")
    component = run.namespace["migration_job"]
    assert isinstance(component, MigrationJob)
    assert isinstance(component.job, pulumi.CustomResource)
    assert run.outputs["migrationJobName"] == run.flyway_job().outputs["metadata"]["name"]


SMALL_SET = {
    "V1__create_a.sql": "CREATE TABLE a (id int);\n",
    "V1_1__create_b.sql": "CREATE TABLE b (id int);\n",
    "nested/V2__create_c.sql": "CREATE TABLE c (id int);\n",
    "R__view_of_a.sql": "CREATE OR REPLACE VIEW va AS SELECT id FROM a;\n",
}


def write_set(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_outputs_list_the_packaged_migrations(
    run_stack: Callable[..., ProgramRun], tmp_path: Path, stack: str
) -> None:
    directory = write_set(tmp_path / "migrations", SMALL_SET)
    run = run_stack(stack, config={"migrationsDir": str(directory)})
    listed = run.outputs["migrations"]
    assert [(m["script"], m["version"]) for m in listed] == [
        ("V1__create_a.sql", "1"),
        ("V1_1__create_b.sql", "1.1"),
        ("nested/V2__create_c.sql", "2"),
        ("R__view_of_a.sql", None),
    ]
    assert all(isinstance(m["checksum"], int) for m in listed)
    assert (
        run.outputs["migrationsDigest"]
        == run.flyway_job().inputs["metadata"]["annotations"]["tradestream.io/migrations-digest"]
    )
    assert sorted(run.outputs["migrationConfigMaps"]) == sorted(
        cm.outputs["metadata"]["name"] for cm in run.migration_config_maps()
    )


# Re-run semantics: compare two programs the way the engine would diff them.

DEV = {
    "backupBeforeMigrate": "true",
    "flywayBackoffLimit": "0",
    "flywayActiveDeadlineSeconds": "600",
    "flywayJobTimeoutSeconds": "900",
    "flywayCpuLimit": "1",
    "flywayMemoryRequest": "256Mi",
    "flywayConnectRetries": "30",
    "postgresStorageSize": "2Gi",
    "postgresMetricsEnabled": "false",
    "postgresChartVersion": "16.7.27",
    "postgresCpuLimit": "500m",
}
"""The dev stack these comparisons start from, whatever its file says: each change below is
then a change, and the backup runs with Flyway."""


def snapshot(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {
        f"{r.type}::{r.name}": {"inputs": r.inputs, "trigger": r.replacement_trigger}
        for r in run.resources
    }


def replaced(before: ProgramRun, after: ProgramRun) -> set[str]:
    """Resources whose replacement the engine would plan: a new name, a new trigger, or
    a changed immutable ConfigMap / Job spec."""
    old, new = snapshot(before), snapshot(after)
    out: set[str] = set()
    for key in old.keys() & new.keys():
        a, b = old[key], new[key]
        if key.startswith((JOB, CONFIG_MAP)) and a != b:
            out.add(key.split("::", 1)[1])
    return out


def test_an_unchanged_program_has_no_diff(run_stack: Callable[..., ProgramRun]) -> None:
    assert snapshot(run_stack("dev", config=DEV)) == snapshot(run_stack("dev", config=DEV))


def test_a_new_migration_replaces_the_job_and_only_the_changed_config_map(
    run_stack: Callable[..., ProgramRun], tmp_path: Path
) -> None:
    directory = write_set(tmp_path / "migrations", SMALL_SET)
    config = {**DEV, "migrationsDir": str(directory)}
    before = run_stack("dev", config=config)
    write_set(directory, {"V3__add_fills.sql": "CREATE TABLE fills (id bigint);\n"})
    after = run_stack("dev", config=config)
    assert replaced(before, after) == {"tradestream-dump", "tradestream-job", "tradestream-sql-0"}
    assert before.flyway_job().replacement_trigger != after.flyway_job().replacement_trigger
    old_annotations = before.flyway_job().inputs["metadata"]["annotations"]
    new_annotations = after.flyway_job().inputs["metadata"]["annotations"]
    assert (
        old_annotations["tradestream.io/migrations-digest"]
        != new_annotations["tradestream.io/migrations-digest"]
    )
    assert (
        old_annotations["tradestream.io/flyway-config-digest"]
        == new_annotations["tradestream.io/flyway-config-digest"]
    )
    assert before.one(RELEASE).inputs == after.one(RELEASE).inputs


def test_a_changed_flyway_setting_replaces_the_job_but_not_the_files(
    run_stack: Callable[..., ProgramRun],
) -> None:
    before = run_stack("dev", config=DEV)
    after = run_stack("dev", config={**DEV, "flywayConnectRetries": "0"})
    # The backup runs exactly when Flyway does.
    assert replaced(before, after) == {"tradestream-dump", "tradestream-job"}
    assert env_of(after)["FLYWAY_CONNECT_RETRIES"] == "0"
    assert before.flyway_job().replacement_trigger != after.flyway_job().replacement_trigger


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("flywayBackoffLimit", "2"),
        ("flywayActiveDeadlineSeconds", "700"),
        ("flywayCpuLimit", "2"),
        ("flywayMemoryRequest", "300Mi"),
    ],
)
def test_a_changed_job_setting_replaces_the_job_too(
    run_stack: Callable[..., ProgramRun], key: str, value: str
) -> None:
    """A Job's template cannot change in place, and a finished Job updated in place would show
    settings it never ran with: every Job setting runs Flyway again in a new Job."""
    before = run_stack("dev", config=DEV)
    after = run_stack("dev", config={**DEV, key: value})
    # The backup runs exactly when Flyway does.
    assert replaced(before, after) == {"tradestream-dump", "tradestream-job"}
    assert before.flyway_job().replacement_trigger != after.flyway_job().replacement_trigger


@pytest.mark.parametrize(
    "config",
    [
        {"postgresStorageSize": "3Gi"},
        {"postgresMetricsEnabled": "true"},
        {"postgresChartVersion": "16.7.28"},
        {"postgresCpuLimit": "2"},
    ],
)
def test_postgres_chart_changes_do_not_rerun_flyway(
    run_stack: Callable[..., ProgramRun], config: dict[str, str]
) -> None:
    before, after = run_stack("dev", config=DEV), run_stack("dev", config={**DEV, **config})
    assert before.one(RELEASE).inputs != after.one(RELEASE).inputs
    assert replaced(before, after) == set()
