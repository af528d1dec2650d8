"""The keys of the alerts on the backups and the migrations (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from components.settings.declarations import Flavor, setting

_NAME = r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"
RULE_LABEL = rf"^({_NAME}={_VALUE})?$"
"""`name=value`, each as Kubernetes allows a label's; or empty."""


@dataclass(frozen=True)
class AlertSettings:
    """A PrometheusRule next to the database: the alerts an on-call engineer needs about the
    way back (WAL archive, backups) and the migrations."""

    enabled: bool = setting(
        "alertsEnabled",
        False,
        "Declare a PrometheusRule (monitoring.coreos.com/v1: needs the Prometheus Operator's "
        "CRDs) with alerts on the migration Job and the backups, read from kube-state-metrics "
        "and, cloudnative-pg, from the instances' exporter (postgresMetricsEnabled).",
    )
    archive_failing_minutes: int = setting(
        "alertsWalArchiveFailingMinutes",
        10,
        "cloudnative-pg, barman-cloud: minutes WAL archiving keeps failing, with no WAL file "
        "archived since, before the alert fires.",
        minimum=1,
        maximum=1440,
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    backup_max_age_hours: int = setting(
        "alertsBackupMaxAgeHours",
        26,
        "cloudnative-pg: the alert fires when the newest completed base backup is older than "
        "this (the default suits a daily cnpgBackupSchedule; raise it with a sparser one).",
        minimum=1,
        maximum=24 * 90,
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    rule_label: str = setting(
        "alertsRuleLabel",
        "",
        "A label name=value the PrometheusRule carries, for a Prometheus whose ruleSelector "
        "picks rules by label (kube-prometheus-stack: release=<its release name>).",
        pattern=RULE_LABEL,
        pattern_hint="name=value, such as release=kube-prometheus-stack",
    )
