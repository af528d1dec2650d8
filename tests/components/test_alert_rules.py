"""The rules as plain data: selectors, the provider's names, the job alert, the groups."""

from __future__ import annotations

import re

from components.alert_rules import (
    AlertRule,
    WatchedJob,
    autonamed,
    job_failed,
    rule_groups,
    rule_labels,
    selector,
)

JOB = WatchedJob(
    alert="FlywayMigrationFailed", resource_name="tradestream-job", what="W", consequence="C"
)


def test_a_selector_tells_equality_from_a_regular_expression() -> None:
    assert selector(namespace="ns", pod="~pg-[0-9]+") == '{namespace="ns",pod=~"pg-[0-9]+"}'


def test_the_pattern_matches_each_run_of_the_job_and_no_other_job() -> None:
    """Prometheus anchors regular expressions: the name must match whole."""
    pattern = re.compile(autonamed("tradestream-job"))
    assert pattern.fullmatch("tradestream-job-1a2b3c4d")
    assert not pattern.fullmatch("tradestream-job-1a2b3c4")
    assert not pattern.fullmatch("tradestream-job-1a2b3c4d-x")
    assert not pattern.fullmatch("tradestream-dump-1a2b3c4d")
    assert not pattern.fullmatch("other-tradestream-job-1a2b3c4d")


def test_a_failed_job_is_read_from_its_failed_condition() -> None:
    rule = job_failed("ns", JOB)
    assert rule.expr == (
        'kube_job_failed{namespace="ns",job_name=~"tradestream-job-[0-9a-f]{8}",'
        'condition="true"} == 1'
    )
    assert rule.alert == "FlywayMigrationFailed"
    assert "{{ $labels.job_name }}" in rule.description
    assert rule.description.endswith("C")


def test_a_rule_renders_as_prometheus_spells_it() -> None:
    rule = AlertRule("A", "up == 0", "warning", "S", "D", for_minutes=15)
    assert rule.render() == {
        "alert": "A",
        "expr": "up == 0",
        "for": "15m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "S", "description": "D"},
    }
    assert "for" not in AlertRule("A", "up == 0", "warning", "S", "D").render()


def test_one_group_holds_the_database_s_rules_then_the_jobs() -> None:
    database = AlertRule("Db", "up == 0", "critical", "S", "D")
    groups = rule_groups("ns", [database], [JOB])
    assert [g["name"] for g in groups] == ["tradestream-database.ns"]
    assert [r["alert"] for r in groups[0]["rules"]] == ["Db", "FlywayMigrationFailed"]


def test_the_rule_label_joins_the_program_s() -> None:
    base = {"app.kubernetes.io/name": "x"}
    assert rule_labels("", base) == base
    assert rule_labels("release=kps", base) == {**base, "release": "kps"}
    assert rule_labels("prometheus.io/rules=", base) == {**base, "prometheus.io/rules": ""}
