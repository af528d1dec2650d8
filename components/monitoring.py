"""The stack's alerts: one PrometheusRule next to the database (alertsEnabled)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import alert_rules
from components.contract import APP_NAME, TYPE_PREFIX, labels


@dataclass(frozen=True)
class AlertsArgs:
    namespace: pulumi.Input[str]
    groups: Sequence[dict[str, Any]]
    """The rule groups, as `alert_rules.rule_groups` renders them."""
    rule_label: str = ""
    """alertsRuleLabel: `name=value` for a Prometheus that selects rules by label."""


class Alerts(pulumi.ComponentResource):
    """A PrometheusRule, read by the Prometheus Operator (its CRD must be installed): the
    rules are plain data, rendered and tested apart from Pulumi."""

    rule_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:Alerts", name, None, opts)
        rule_name = f"{APP_NAME}-alerts"
        rule = k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version=alert_rules.API_VERSION,
            kind=alert_rules.KIND,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=rule_name,
                namespace=args.namespace,
                labels=alert_rules.rule_labels(args.rule_label, labels("alerts")),
            ),
            spec={"groups": list(args.groups)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.rule_name = rule.id.apply(lambda _: rule_name)
        self.register_outputs({"ruleName": self.rule_name})
