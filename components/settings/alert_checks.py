"""Rules of the alert keys (pure): alerts that nothing would feed would stay silent when they
matter, so the preview refuses them, naming the keys to change."""

from __future__ import annotations

from typing import Final

from components.settings.declarations import CnpgBackupMethod, Flavor, fqkey
from components.settings.keys import Settings

ALERT_KEYS: Final = (
    "alertsWalArchiveFailingMinutes",
    "alertsBackupMaxAgeHours",
    "alertsRuleLabel",
)
"""The keys only alertsEnabled reads."""


def alert_checks(s: Settings) -> list[str]:
    """alertsEnabled where the stack cannot feed every alert, or its keys without it."""
    alerts, backup = s.alerts, s.backup
    if not alerts.enabled:
        return [
            f"{fqkey(key)}: is set but alertsEnabled is false, so it would be ignored; set "
            f"alertsEnabled true, or remove it (`pulumi config rm {key}`)"
            for key in ALERT_KEYS
            if key in s.explicit
        ]
    if s.database.flavor is not Flavor.CLOUDNATIVE_PG:
        return []
    if not s.postgres.metrics_enabled:
        return [
            f"{fqkey('alertsEnabled')}: is true but postgresMetricsEnabled is false "
            "(databaseFlavor cloudnative-pg): the WAL archiving and backup alerts read the "
            "instances' exporter, which Prometheus scrapes only through the PodMonitor "
            "postgresMetricsEnabled declares. Set postgresMetricsEnabled true, or alertsEnabled "
            "false"
        ]
    barman = backup.cnpg_method is CnpgBackupMethod.BARMAN_CLOUD
    if (barman and not backup.cnpg_destination_path) or (
        not barman and not backup.cnpg_snapshot_class
    ):
        missing = "cnpgBackupDestinationPath" if barman else "cnpgBackupSnapshotClass"
        return [
            f"{fqkey('alertsEnabled')}: is true but the cluster takes no backups ({missing} is "
            f"empty, cnpgBackupMethod {backup.cnpg_method.value}), so the backup alert would "
            f"fire forever; set {missing}, or alertsEnabled false"
        ]
    if not backup.cnpg_schedule:
        return [
            f"{fqkey('alertsEnabled')}: is true but cnpgBackupSchedule is empty: base backups "
            "are then taken only before migrations, and their age says nothing about the "
            "way back; set cnpgBackupSchedule (such as '0 0 3 * * *'), or alertsEnabled false"
        ]
    return []
