"""The backup before every migration: what each flavor declares, and that it runs exactly
when Flyway runs, before it, and stops it by failing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.contract import DatabaseEndpoint, ServerAddress
from components.jobs import backup_spec
from components.settings import BackupSettings, FlywaySettings
from tests.program import CLOUDNATIVE_PG, ProgramRun, run_program

JOB = "kubernetes:batch/v1:Job"
BACKUP = "kubernetes:postgresql.cnpg.io/v1:Backup"
CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
SCHEDULED = "kubernetes:postgresql.cnpg.io/v1:ScheduledBackup"
OBJECT_STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
RELEASE = "kubernetes:helm.sh/v3:Release"

ENDPOINT = DatabaseEndpoint(
    address=ServerAddress("db.internal", 5432, "trades"),
    username="trades_migrator",
    secret_name="trades-migrator-credentials",
    password_key="password",
)


def dump_job(run: ProgramRun) -> Any:
    [job] = [r for r in run.of_type(JOB) if r.name == "tradestream-dump"]
    return job


def env_of(job_inputs: dict[str, Any]) -> dict[str, Any]:
    [container] = job_inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# -- pure ---------------------------------------------------------------------------------------


def test_the_dump_logs_in_with_flyways_login_and_reads_the_password_from_its_secret() -> None:
    env = {
        e.name: e
        for e in backup_spec.dump_environment(ENDPOINT, BackupSettings(), FlywaySettings(), "abc")
    }
    assert env["PGUSER"].value == "trades_migrator"
    assert env["PGPASSWORD"].value is None
    assert (env["PGPASSWORD"].secret_name, env["PGPASSWORD"].secret_key) == (
        "trades-migrator-credentials",
        "password",
    )
    assert env["BACKUP_RETAIN_COUNT"].value == str(BackupSettings().retain_count)
    assert "PGSSLROOTCERT" not in env


def test_a_verified_server_is_verified_by_the_dump_too() -> None:
    verified = DatabaseEndpoint(
        address=ServerAddress("db", 5432, "trades", ca_secret="db-ca"),
        username="u",
        secret_name="s",
        password_key="password",
    )
    env = {
        e.name: e.value
        for e in backup_spec.dump_environment(verified, BackupSettings(), FlywaySettings(), "abc")
    }
    assert env["PGSSLMODE"] == "verify-full"
    assert env["PGSSLROOTCERT"] == f"{backup_spec.TLS_PATH}/ca.crt"
    spec = backup_spec.dump_job_spec(BackupSettings(), (), claim="c", labels={}, ca_secret="db-ca")
    pod = spec["template"]["spec"]
    assert {"name": "tls", "mountPath": backup_spec.TLS_PATH, "readOnly": True} in pod[
        "containers"
    ][0]["volumeMounts"]
    assert any(v.get("secret", {}).get("secretName") == "db-ca" for v in pod["volumes"])


def test_the_dump_pod_is_locked_down_and_writes_only_its_volume() -> None:
    spec = backup_spec.dump_job_spec(BackupSettings(), (), claim="c", labels={}, ca_secret=None)
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {backup_spec.BACKUP_PATH, "/tmp"}
    assert {"name": "backups", "persistentVolumeClaim": {"claimName": "c"}} in pod["volumes"]
    assert container["command"] == ["sh", "-c", backup_spec.JOB_SCRIPT]


# -- the program --------------------------------------------------------------------------------

BACKUP_ON = {"backupBeforeMigrate": "true"}


@pytest.fixture
def run_stack(run_stack: Callable[..., ProgramRun]) -> Callable[..., ProgramRun]:
    """A stack with the backup on, as these tests need it, whatever its file says."""

    def run(stack: str, config: dict[str, str | None] | None = None, **kwargs: Any) -> ProgramRun:
        return run_stack(stack, config={**BACKUP_ON, **(config or {})}, **kwargs)

    return run


def test_flyway_waits_for_the_dump_which_waits_for_the_database(
    run_stack: Callable[..., ProgramRun],
) -> None:
    run = run_stack("dev")
    dump, flyway = dump_job(run), run.flyway_job()
    assert dump.urn in flyway.dependencies
    assert run.one(RELEASE).urn in dump.dependencies
    assert run.one(CLAIM).urn in dump.dependencies
    # Awaited, retried by the next `up` if it failed; a failure fails the deploy before Flyway.
    annotations = dump.inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/replaceUnready"] == "true"
    assert "pulumi.com/skipAwait" not in annotations
    assert env_of(dump.inputs)["PGUSER"] == env_of(flyway.inputs)["FLYWAY_USER"]


def test_every_flyway_attempt_is_preceded_by_a_backup_in_its_own_pod(
    run_stack: Callable[..., ProgramRun],
) -> None:
    """The Job's pod runs the attempt's backup first (an init container like the backup Job's
    container, on the same claim); a failed backup fails the attempt before Flyway starts."""
    run = run_stack("dev", config={"databaseName": "tradestream", "backupBeforeMigrate": "true"})
    dump = dump_job(run).inputs["spec"]["template"]["spec"]
    pod = run.flyway_job().inputs["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    [dumper] = dump["containers"]
    assert init["command"] == ["sh", "-c", backup_spec.ATTEMPT_SCRIPT]
    assert dumper["command"] == ["sh", "-c", backup_spec.JOB_SCRIPT]
    assert {k: v for k, v in init.items() if k != "command"} == {
        k: v for k, v in dumper.items() if k != "command"
    }
    [claim] = [v for v in pod["volumes"] if v["name"] == "backups"]
    assert claim == {"persistentVolumeClaim": {"claimName": "tradestream-migration-backups"}} | {
        "name": "backups"
    }
    mounted = {v["name"] for v in pod["volumes"]}
    assert {m["name"] for m in init["volumeMounts"]} <= mounted


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_cloudnative_pg_takes_a_backup_of_the_cluster_before_flyway(
    run_stack: Callable[..., ProgramRun], stack: str
) -> None:
    run = run_stack(stack)
    backup, cluster, store = run.one(BACKUP), run.one(CLUSTER), run.one(OBJECT_STORE)
    assert backup.urn in run.flyway_job().dependencies
    assert cluster.urn in backup.dependencies
    assert store.urn in cluster.dependencies
    # Awaited until it ended either way; a failed one stops `up` before Flyway (below).
    assert backup.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == (
        "jsonpath={[?@.phase=='completed' || @.phase=='failed'].phase}"
    )
    assert "status" not in backup.inputs
    assert backup.inputs["spec"]["cluster"] == {"name": cluster.inputs["metadata"]["name"]}
    [plugin] = cluster.inputs["spec"]["plugins"]
    assert plugin["isWALArchiver"] is True
    assert plugin["parameters"]["barmanObjectName"] == store.inputs["metadata"]["name"]
    assert store.inputs["spec"]["retentionPolicy"]
    assert run.of_type(CLAIM) == []
    assert "initContainers" not in run.flyway_job().inputs["spec"]["template"]["spec"]


def test_a_failed_operator_backup_is_named_with_its_error_and_stops_up() -> None:
    why = backup_spec.operator_backup_failure(
        "Backup", "tradestream-backup-1a2b", {"phase": "failed", "error": "no WAL"}, "failed"
    )
    assert why is not None
    assert "Backup tradestream-backup-1a2b" in why
    assert "no WAL" in why
    assert "Flyway did not run" in why
    for status in (None, {}, {"phase": "completed"}, {"phase": "running"}):
        assert backup_spec.operator_backup_failure("Backup", "b", status, "failed") is None


def test_flyway_waits_for_the_operator_backups_outcome(
    run_stack: Callable[..., ProgramRun],
) -> None:
    """Flyway's trigger consumes the Backup's outcome: with the Backup failed, the program
    raises before Flyway's Job is registered (the engine's test: test_backup_outcome)."""
    run = run_stack("staging")
    assert run.flyway_job().replacement_trigger


def test_cloudnative_pg_also_takes_scheduled_base_backups(
    run_stack: Callable[..., ProgramRun],
) -> None:
    run = run_stack("staging")
    [scheduled] = run.of_type(SCHEDULED)
    cluster = run.one(CLUSTER)
    assert cluster.urn in scheduled.dependencies
    spec = scheduled.inputs["spec"]
    assert spec["schedule"] == "0 0 3 * * *"
    assert spec["backupOwnerReference"] == "self"
    # The same kind of backup as the one before each migration.
    assert {k: spec[k] for k in ("cluster", "method")} == {
        k: run.one(BACKUP).inputs["spec"][k] for k in ("cluster", "method")
    }
    assert run_stack("staging", config={"cnpgBackupSchedule": ""}).of_type(SCHEDULED) == []
    assert run_stack("dev").of_type(SCHEDULED) == []


def triggers(run: ProgramRun) -> tuple[Any, Any]:
    return dump_job(run).replacement_trigger, run.flyway_job().replacement_trigger


@pytest.mark.parametrize(
    ("key", "value", "runs"),
    [
        ("flywayConnectRetries", "0", True),
        ("flywayMemoryLimit", "2Gi", True),
        ("backupRetainCount", "9", True),
        ("backupImage", "postgres:17.7", True),
        ("postgresCpuLimit", "2", False),
        ("postgresMetricsEnabled", "true", False),
    ],
)
def test_the_backup_runs_exactly_when_flyway_runs(
    run_stack: Callable[..., ProgramRun], key: str, value: str, runs: bool
) -> None:
    base = {
        "flywayConnectRetries": "30",
        "flywayMemoryLimit": "512Mi",
        "backupRetainCount": "3",
        "backupImage": "postgres:17.6",
        "postgresCpuRequest": "100m",
        "postgresCpuLimit": "500m",
        "postgresMetricsEnabled": "false",
    }
    before = triggers(run_stack("dev", config=base))
    after = triggers(run_stack("dev", config={**base, key: value}))
    assert (before[0] != after[0]) is runs
    assert (before[1] != after[1]) is runs


def test_a_new_migration_runs_the_backup_and_names_the_set_in_the_dump(
    run_stack: Callable[..., ProgramRun], tmp_path: Path
) -> None:
    (tmp_path / "V1__a.sql").write_text("CREATE TABLE a (id int);\n")
    before = run_stack("dev", config={"migrationsDir": str(tmp_path)})
    (tmp_path / "V2__b.sql").write_text("CREATE TABLE b (id int);\n")
    after = run_stack("dev", config={"migrationsDir": str(tmp_path)})
    assert triggers(before)[0] != triggers(after)[0]
    label = env_of(dump_job(after).inputs)["BACKUP_LABEL"]
    assert after.outputs["migrationsDigest"].startswith(label)


def test_the_backup_volume_is_kept_like_the_database(run_stack: Callable[..., ProgramRun]) -> None:
    protected = run_stack("dev", config={"protectDatabase": "true"}).one(CLAIM)
    assert protected.protect
    assert protected.retain_on_delete
    disposable = run_stack(
        "dev",
        config={"protectDatabase": "false", "disposable": "true", "databaseName": "ledger"},
    )
    assert not disposable.one(CLAIM).protect
    assert disposable.one(CLAIM).inputs["metadata"]["name"] == "ledger-migration-backups"


def test_without_the_backup_flyway_runs_alone(run_stack: Callable[..., ProgramRun]) -> None:
    run = run_stack("dev", config={"backupBeforeMigrate": "false"})
    assert [r.name for r in run.of_type(JOB)] == ["tradestream-job"]
    assert "initContainers" not in run.flyway_job().inputs["spec"]["template"]["spec"]
    assert run.of_type(CLAIM) == []
    assert "backupName" not in run.outputs


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (
            {"databaseFlavor": "cloudnative-pg"},
            "cnpgBackupDestinationPath: is empty but backupBeforeMigrate is true",
        ),
        (
            {**CLOUDNATIVE_PG, "cnpgBackupSnapshotClass": ""},
            "cnpgBackupSnapshotClass: is empty but cnpgBackupMethod is volume-snapshot",
        ),
        ({"cnpgBackupRetention": "30 days"}, "a number and d, w or m"),
        ({"backupRetainCount": "0"}, "out of range"),
        (
            {"databaseFlavor": "cloudnative-pg", "cnpgBackupDestinationPath": "gs://b/db"},
            "cnpgBackupCredentials: is iam-role, which serves s3:// stores, but "
            "cnpgBackupDestinationPath is a gs:// path; set cnpgBackupCredentials "
            "workload-identity",
        ),
        (
            {
                "databaseFlavor": "cloudnative-pg",
                "cnpgBackupDestinationPath": "https://acct.blob.core.windows.net/c/db",
            },
            "is an Azure Blob Storage path: only S3 (and S3-compatible stores) and Google "
            "Cloud Storage are supported",
        ),
        (
            {"databaseFlavor": "cloudnative-pg", "cnpgBackupIamRoleArn": "backups"},
            "an IAM role ARN such as arn:aws:iam::123456789012:role/backups",
        ),
    ],
)
def test_a_backup_that_could_not_run_is_refused_at_preview(
    config: dict[str, str], words: str
) -> None:
    run = run_program("dev", config={**BACKUP_ON, **config})
    assert run.error is not None
    assert words in str(run.error)
    assert run.resources == []


def test_a_failed_operator_backup_left_in_state_is_found_to_be_replaced() -> None:
    def resource(urn: str, phase: str | None, marked: bool = True) -> dict[str, object]:
        annotations = {backup_spec.RUN_ANNOTATION: "r"} if marked else {}
        outputs: dict[str, object] = {"metadata": {"annotations": annotations}}
        if phase is not None:
            outputs["status"] = {"phase": phase}
        return {"urn": urn, "outputs": outputs}

    resources: list[dict[str, object]] = [
        resource("urn:a", "failed"),
        resource("urn:b", "completed"),
        resource("urn:c", None),
        resource("urn:d", "failed", marked=False),  # not one of the program's backups
        {"urn": "urn:e"},
    ]
    assert backup_spec.failed_backups(resources) == ["urn:a"]
    why = backup_spec.operator_backup_failure("Backup", "b", {"phase": "failed"}, "failed", "u:1")
    assert why is not None
    assert "`pulumi up --replace 'u:1'`" in why
    assert "`make up` again" in why


def test_a_completed_operator_backup_is_taken_again_before_a_retry() -> None:
    def resource(urn: str, kind: str, phase: str, marked: bool = True) -> dict[str, object]:
        annotations = {backup_spec.RUN_ANNOTATION: "r"} if marked else {}
        outputs = {
            "kind": kind,
            "metadata": {"annotations": annotations},
            "status": {"phase": phase},
        }
        return {"urn": urn, "outputs": outputs}

    resources: list[dict[str, object]] = [
        resource("urn:a", "Backup", "completed"),
        resource("urn:b", "Backup", "failed"),  # replaced for its own reason
        resource("urn:c", "Job", "completed"),  # a dump flavor's Job: its Flyway pod dumps
        resource("urn:d", "Backup", "completed", marked=False),  # not the program's
        {"urn": "urn:e"},
    ]
    assert backup_spec.backups_before_a_failed_attempt(resources) == ["urn:a"]
