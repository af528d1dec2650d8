"""alertsEnabled: accepted where the stack can feed every alert, refused with the fix where
it cannot."""

from __future__ import annotations

import pytest

from tests.components.settings.test_settings import parse, problems_of

CNPG = {
    "databaseFlavor": "cloudnative-pg",
    "cnpgInstallOperator": "false",
    "postgresMetricsEnabled": "true",
    "cnpgBackupDestinationPath": "s3://bucket/path",
}


def test_alerts_are_off_by_default_with_thresholds_for_a_daily_backup() -> None:
    alerts = parse().alerts
    assert alerts.enabled is False
    assert alerts.backup_max_age_hours == 26
    assert alerts.archive_failing_minutes == 10
    assert alerts.rule_label == ""


@pytest.mark.parametrize(
    "values",
    [
        {"alertsEnabled": "true"},
        {"alertsEnabled": "true", "databaseFlavor": "bitnami"},
        {**CNPG, "alertsEnabled": "true", "alertsBackupMaxAgeHours": "170"},
        {
            **CNPG,
            "alertsEnabled": "true",
            "cnpgBackupMethod": "volume-snapshot",
            "cnpgBackupSnapshotClass": "csi",
            "cnpgBackupDestinationPath": "",
        },
        {"alertsEnabled": "true", "alertsRuleLabel": "release=kube-prometheus-stack"},
    ],
)
def test_stacks_that_feed_every_alert_are_accepted(values: dict[str, str]) -> None:
    assert parse(values).alerts.enabled is True


def test_cloudnative_pg_without_its_exporter_is_refused() -> None:
    message = problems_of({**CNPG, "postgresMetricsEnabled": "false", "alertsEnabled": "true"})
    assert "tradestream-database:alertsEnabled: is true but postgresMetricsEnabled is false" in (
        message
    )
    assert "Set postgresMetricsEnabled true, or alertsEnabled false" in message


def test_a_cluster_without_backups_is_refused() -> None:
    message = problems_of(
        {
            **CNPG,
            "cnpgBackupDestinationPath": "",
            "backupBeforeMigrate": "false",
            "alertsEnabled": "true",
        }
    )
    assert "the cluster takes no backups (cnpgBackupDestinationPath is empty" in message
    assert "set cnpgBackupDestinationPath, or alertsEnabled false" in message


def test_a_cluster_backed_up_only_before_migrations_is_refused() -> None:
    message = problems_of({**CNPG, "cnpgBackupSchedule": "", "alertsEnabled": "true"})
    assert "alertsEnabled: is true but cnpgBackupSchedule is empty" in message
    assert "set cnpgBackupSchedule" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("alertsBackupMaxAgeHours", "48"),
        ("alertsWalArchiveFailingMinutes", "5"),
        ("alertsRuleLabel", "release=x"),
    ],
)
def test_a_threshold_without_the_alerts_is_refused(key: str, value: str) -> None:
    message = problems_of({**CNPG, key: value})
    assert f"tradestream-database:{key}: is set but alertsEnabled is false" in message
    assert f"`pulumi config rm {key}`" in message


def test_the_cloudnative_pg_thresholds_are_refused_for_other_flavors() -> None:
    message = problems_of({"alertsEnabled": "true", "alertsBackupMaxAgeHours": "48"})
    assert "alertsBackupMaxAgeHours: is read only by databaseFlavor cloudnative-pg" in message


@pytest.mark.parametrize("label", ["release", "=x", "Release=a b", "a=b,c=d"])
def test_a_rule_label_is_one_name_and_value(label: str) -> None:
    message = problems_of({"alertsEnabled": "true", "alertsRuleLabel": label})
    assert "alertsRuleLabel" in message
    assert "name=value" in message


def test_a_zero_threshold_is_refused() -> None:
    message = problems_of({**CNPG, "alertsEnabled": "true", "alertsBackupMaxAgeHours": "0"})
    assert "alertsBackupMaxAgeHours" in message
    assert "must be an integer from 1 to 2160" in message
