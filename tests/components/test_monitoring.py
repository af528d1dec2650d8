"""The program's PrometheusRule, under mocks: declared only when asked for, next to the
database, naming the Jobs the program really creates."""

from __future__ import annotations

import re

import pytest

from tests.program import STACKS, run_program

RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
ALERTS = "tradestream:database:Alerts"
NS = "payments"
BASE: dict[str, str | None] = {
    "namespace": NS,
    "protectDatabase": "false",
    "disposable": "true",
    "databaseRolesManagedBy": "none",
    "databaseAccessHost": None,
    "backupBeforeMigrate": "true",
    "alertsEnabled": "true",
}
"""Over the dev stack file (its placeholders serve its history): what these tests rely on."""
BITNAMI = {
    **BASE,
    "databaseFlavor": "bitnami",
    "postgresArchitecture": "standalone",
    "postgresReadReplicas": "0",
}
CNPG = {
    **BASE,
    "databaseFlavor": "cloudnative-pg",
    "postgresMetricsEnabled": "true",
    "cnpgClusterName": "ledger",
    "cnpgInstallOperator": "false",
    "cnpgBackupMethod": "barman-cloud",
    "cnpgBackupCredentials": "iam-role",
    "cnpgBackupDestinationPath": "s3://bucket/ledger",
    "cnpgBackupSchedule": "0 0 3 * * *",
    "alertsWalArchiveFailingMinutes": "10",
    "alertsBackupMaxAgeHours": "26",
}
SNAPSHOTS = {
    **CNPG,
    "cnpgBackupDestinationPath": None,
    "cnpgBackupCredentials": None,
    "cnpgBackupMethod": "volume-snapshot",
    "cnpgBackupSnapshotClass": "csi",
}


@pytest.mark.parametrize("stack", STACKS)
def test_no_rule_unless_asked_for(stack: str) -> None:
    run = run_program(stack)
    assert run.error is None
    assert run.of_type(RULE) == []


def test_the_rule_watches_the_jobs_the_program_creates() -> None:
    run = run_program("dev", {**BITNAMI, "alertsRuleLabel": "release=kps"})
    assert run.error is None, run.error
    rule = run.one_under(ALERTS, RULE)
    assert rule.inputs["metadata"]["namespace"] == NS
    assert rule.inputs["metadata"]["name"] == "tradestream-database-alerts"
    assert rule.inputs["metadata"]["labels"]["release"] == "kps"
    rules = {r["alert"]: r for g in rule.inputs["spec"]["groups"] for r in g["rules"]}
    assert set(rules) == {"FlywayMigrationFailed", "MigrationBackupFailed"}
    jobs = {
        job.name: job.outputs["metadata"]["name"] for job in run.of_type("kubernetes:batch/v1:Job")
    }
    for alert, resource in [
        ("FlywayMigrationFailed", "tradestream-job"),
        ("MigrationBackupFailed", "tradestream-dump"),
    ]:
        pattern = re.search(r'job_name=~"([^"]+)"', rules[alert]["expr"])
        assert pattern is not None
        assert re.fullmatch(pattern.group(1), jobs[resource]), (pattern.group(1), jobs)
        others = [name for key, name in jobs.items() if key != resource]
        assert not any(re.fullmatch(pattern.group(1), name) for name in others)
    assert "make logs STACK=dev" in rules["FlywayMigrationFailed"]["annotations"]["description"]


def test_without_a_backup_before_migrating_only_flyway_is_watched() -> None:
    run = run_program("dev", {**BITNAMI, "backupBeforeMigrate": "false"})
    assert run.error is None, run.error
    groups = run.one(RULE).inputs["spec"]["groups"]
    assert [r["alert"] for g in groups for r in g["rules"]] == ["FlywayMigrationFailed"]


def test_cloudnative_pg_adds_its_exporter_s_backup_alerts() -> None:
    run = run_program("dev", SNAPSHOTS)
    assert run.error is None, run.error
    groups = run.one(RULE).inputs["spec"]["groups"]
    assert [r["alert"] for g in groups for r in g["rules"]] == [
        "PostgresBackupTooOld",
        "FlywayMigrationFailed",
    ]
    run = run_program("dev", CNPG)
    assert run.error is None, run.error
    groups = run.one(RULE).inputs["spec"]["groups"]
    assert [r["alert"] for g in groups for r in g["rules"]] == [
        "PostgresWalArchivingFailing",
        "PostgresBackupTooOld",
        "FlywayMigrationFailed",
    ]


def test_cloudnative_pg_without_metrics_is_refused_before_anything_is_declared() -> None:
    run = run_program("dev", {**SNAPSHOTS, "postgresMetricsEnabled": "false"})
    assert run.error is not None
    assert "alertsEnabled: is true but postgresMetricsEnabled is false" in str(run.error)
    assert run.resources == []
