"""Prometheus alerting rules as plain data (pure): what the stack's PrometheusRule holds.

The flavors add the alerts their exporter feeds (`Traits.alerts`); the Jobs around a migration
are watched through kube-state-metrics, which knows them only by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

API_VERSION: Final = "monitoring.coreos.com/v1"
KIND: Final = "PrometheusRule"
AUTONAME_SUFFIX: Final = "[0-9a-f]{8}"
"""What the kubernetes provider appends to a resource's name where the program gives the object
none: `-` and eight hexadecimal characters (Pulumi's default autonaming)."""


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule. Annotations may use `{{ $labels.<name> }}` of the series alone."""

    alert: str
    expr: str
    severity: str
    summary: str
    description: str
    for_minutes: int = 0
    """How long the condition must hold before the alert fires (0: at once)."""

    def render(self) -> dict[str, Any]:
        """The rule as Prometheus' rule files (and a PrometheusRule's groups) spell it."""
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_minutes:
            rule["for"] = f"{self.for_minutes}m"
        rule["labels"] = {"severity": self.severity}
        rule["annotations"] = {"summary": self.summary, "description": self.description}
        return rule


@dataclass(frozen=True)
class WatchedJob:
    """A Job of the program whose failure someone must hear about: its resource name (the
    object is named after it), the alert's name and how the alert speaks of it."""

    alert: str
    resource_name: str
    what: str
    consequence: str
    """What its failure means, and where to look first."""
    severity: str = "critical"


def selector(**matchers: str) -> str:
    """`{a="x",b=~"y"}`: a value starting with `~` is a regular expression (fully anchored)."""
    parts = [
        f'{name}=~"{value[1:]}"' if value.startswith("~") else f'{name}="{value}"'
        for name, value in matchers.items()
    ]
    return "{" + ",".join(parts) + "}"


def autonamed(resource_name: str) -> str:
    """The names the provider gives the objects of `resource_name`, as a regular expression:
    each run's Job is a new object under a new name, and the rule must know all of them."""
    return f"{resource_name}-{AUTONAME_SUFFIX}"


def job_failed(namespace: str, job: WatchedJob) -> AlertRule:
    """kube-state-metrics' `kube_job_failed` of the Job's Failed condition: the Job ran out of
    retries (or time). A failed Job stays until the next `pulumi up` replaces it, so the alert
    holds until then."""
    series = selector(
        namespace=namespace, job_name=f"~{autonamed(job.resource_name)}", condition="true"
    )
    return AlertRule(
        alert=job.alert,
        expr=f"kube_job_failed{series} == 1",
        severity=job.severity,
        summary=f"{job.what} failed in namespace {namespace}",
        description=(f"Job {{{{ $labels.job_name }}}} in {namespace} failed: {job.consequence}"),
    )


def rule_groups(
    namespace: str, database: Sequence[AlertRule], jobs: Sequence[WatchedJob]
) -> list[dict[str, Any]]:
    """The PrometheusRule's `groups`: one group for the stack's database and Jobs."""
    rules = [*database, *(job_failed(namespace, job) for job in jobs)]
    return [{"name": f"tradestream-database.{namespace}", "rules": [r.render() for r in rules]}]


def rule_labels(rule_label: str, base: Mapping[str, str]) -> dict[str, str]:
    """The PrometheusRule's labels: the program's, and the one a ruleSelector may ask for
    (`name=value` from alertsRuleLabel; empty: none)."""
    if not rule_label:
        return dict(base)
    name, _, value = rule_label.partition("=")
    return {**base, name: value}
