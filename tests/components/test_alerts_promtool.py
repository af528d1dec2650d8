"""The program's alerts, proven by Prometheus' own rule tester: the PrometheusRule the program
declares for a stack (under mocks) is written as a rule file, `promtool check rules` parses
it, and `promtool test rules` evaluates it over series that make each alert fire, and over
series that must not (another Job, another namespace, a recovered archiver, a fresh backup).

promtool is built by `scripts/install-engine.sh promtool` (part of `make test-deps`); where it
is missing the test builds it, never skips.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.components.test_monitoring import BITNAMI, CNPG, NS, SNAPSHOTS
from tests.program import ROOT, ProgramRun, run_program

RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


@pytest.fixture(scope="module")
def promtool() -> Path:
    def path() -> Path:
        where = subprocess.run(
            ["bash", "scripts/install-engine.sh", "path", "promtool"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(where.stdout.strip())

    if not path().is_file():
        subprocess.run(["bash", "scripts/install-engine.sh", "promtool"], cwd=ROOT, check=True)
    assert path().is_file(), "scripts/install-engine.sh promtool built nothing"
    return path()


def render(values: Mapping[str, str | None]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rule groups the program declares for the dev stack with `values`, and the names
    the provider gave its Jobs, by resource name."""
    run: ProgramRun = run_program("dev", values)
    assert run.error is None, run.error
    groups = run.one(RULE).inputs["spec"]["groups"]
    jobs = {
        job.name: job.outputs["metadata"]["name"] for job in run.of_type("kubernetes:batch/v1:Job")
    }
    return groups, jobs


def rules_by_alert(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def fired(rule: dict[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """An alert as promtool reports it: the series' labels and the rule's, its annotations
    expanded (`{{ $labels.x }}` is all the program's templates use)."""

    def expand(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    annotations = {key: expand(value) for key, value in rule["annotations"].items()}
    assert "{{" not in "".join(annotations.values()), annotations
    return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": annotations}


def series(name: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    matchers = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{matchers}}}", "values": values}


def promtool_test(
    promtool: Path, tmp_path: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    checked = subprocess.run(
        [str(promtool), "check", "rules", "rules.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    unit = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(unit), encoding="utf-8")
    return subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def job_tests(rule: dict[str, Any], alert: str, name: str, other_job: str) -> list[dict[str, Any]]:
    """The Job failed: fires. Its Failed condition false, another Job failed, the same name
    failed in another namespace: silent."""
    failed = {"namespace": NS, "job_name": name, "condition": "true"}
    return [
        {
            "interval": "1m",
            "input_series": [
                series("kube_job_failed", failed, "0 0 1 1 1"),
                series("kube_job_failed", {**failed, "condition": "false"}, "1 1 0 0 0"),
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": alert, "exp_alerts": []},
                {"eval_time": "3m", "alertname": alert, "exp_alerts": [fired(rule, failed)]},
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                series("kube_job_failed", failed, "0 0 0 0 0"),
                series("kube_job_failed", {**failed, "condition": "false"}, "1 1 1 1 1"),
                series("kube_job_failed", {**failed, "job_name": other_job}, "1 1 1 1 1"),
                series("kube_job_failed", {**failed, "namespace": "elsewhere"}, "1 1 1 1 1"),
            ],
            "alert_rule_test": [{"eval_time": "3m", "alertname": alert, "exp_alerts": []}],
        },
    ]


def test_a_failed_migration_job_or_dump_fires_and_nothing_else_does(
    promtool: Path, tmp_path: Path
) -> None:
    groups, jobs = render(BITNAMI)
    rules = rules_by_alert(groups)
    assert set(rules) == {"FlywayMigrationFailed", "MigrationBackupFailed"}
    flyway, dump = jobs["tradestream-job"], jobs["tradestream-dump"]
    tests = [
        *job_tests(rules["FlywayMigrationFailed"], "FlywayMigrationFailed", flyway, dump),
        *job_tests(rules["MigrationBackupFailed"], "MigrationBackupFailed", dump, flyway),
        # A Job of another program whose name merely starts like the migration Job's.
        *job_tests(
            rules["FlywayMigrationFailed"],
            "FlywayMigrationFailed",
            flyway,
            f"{flyway}-cleanup",
        ),
    ]
    result = promtool_test(promtool, tmp_path, groups, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def archiver(pod: str, failed: str, last_failed: str, last_archived: str) -> list[dict[str, str]]:
    labels = {"namespace": NS, "pod": pod}
    return [
        series("cnpg_pg_stat_archiver_failed_count", labels, failed),
        series("cnpg_pg_stat_archiver_last_failed_time", labels, last_failed),
        series("cnpg_pg_stat_archiver_last_archived_time", labels, last_archived),
    ]


def test_wal_archiving_that_keeps_failing_fires_after_its_minutes(
    promtool: Path, tmp_path: Path
) -> None:
    """Each minute a failed attempt (the counter rises, its time moves on) and nothing archived
    since 60 s: pending for 10 minutes, then firing. An archiver that failed for 15 minutes and
    then archived again (resolved by 20), one whose every failure is followed by a success
    (a retry that worked), one that never failed, another cluster's pod: silent."""
    groups, _ = render(CNPG)
    rule = rules_by_alert(groups)["PostgresWalArchivingFailing"]
    assert rule["for"] == "10m"
    alert = "PostgresWalArchivingFailing"
    failing = archiver("ledger-1", "0+1x30", "60+60x30", "60x30")
    recovered = archiver("ledger-2", "0+1x15 15x15", "60+60x15 960x15", "0x15 1020+60x15")
    healthy = archiver("ledger-3", "0x30", "-1x30", "60+60x30")
    retrying = archiver("ledger-4", "0+1x30", "60+60x30", "90+60x30")
    other = archiver("ledger-archive-1", "0+1x30", "60+60x30", "60x30")
    tests = [
        {
            "interval": "1m",
            "input_series": [*failing, *recovered, *healthy, *retrying, *other],
            "alert_rule_test": [
                {"eval_time": "8m", "alertname": alert, "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": alert,
                    "exp_alerts": [fired(rule, {"namespace": NS, "pod": "ledger-1"})],
                },
            ],
        }
    ]
    result = promtool_test(promtool, tmp_path, groups, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def backup_tests(rule: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Hourly samples from the epoch, evaluated at 30 h: a backup at 1 h is 29 h old (fires
    above 26 h), one at 10 h is 20 h old (silent), none ever (0) fires; the newest of the
    instances counts, and another namespace's stale backup is not this stack's."""

    def at(pod: str, namespace: str, value: str) -> dict[str, str]:
        return series(metric, {"namespace": namespace, "pod": pod}, value)

    alert = "PostgresBackupTooOld"
    return [
        {
            "interval": "1h",
            "input_series": [at("ledger-1", NS, "3600x40"), at("ledger-2", NS, "0x40")],
            "alert_rule_test": [
                {"eval_time": "20h", "alertname": alert, "exp_alerts": []},
                {
                    "eval_time": "30h",
                    "alertname": alert,
                    "exp_alerts": [fired(rule, {"namespace": NS})],
                },
            ],
        },
        {
            "interval": "1h",
            "input_series": [at("ledger-1", NS, "0x40")],
            "alert_rule_test": [
                {
                    "eval_time": "30h",
                    "alertname": alert,
                    "exp_alerts": [fired(rule, {"namespace": NS})],
                }
            ],
        },
        {
            "interval": "1h",
            "input_series": [
                at("ledger-1", NS, "36000x40"),
                at("ledger-2", NS, "3600x40"),
                at("ledger-1", "elsewhere", "3600x40"),
                at("other-1", NS, "3600x40"),
            ],
            "alert_rule_test": [{"eval_time": "30h", "alertname": alert, "exp_alerts": []}],
        },
    ]


@pytest.mark.parametrize(
    ("values", "metric"),
    [
        (CNPG, "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"),
        (SNAPSHOTS, "cnpg_collector_last_available_backup_timestamp"),
    ],
    ids=["barman-cloud", "volume-snapshot"],
)
def test_a_backup_older_than_its_hours_fires(
    promtool: Path, tmp_path: Path, values: dict[str, str | None], metric: str
) -> None:
    groups, _ = render(values)
    rule = rules_by_alert(groups)["PostgresBackupTooOld"]
    result = promtool_test(promtool, tmp_path, groups, backup_tests(rule, metric))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tester_fails_where_an_alert_is_expected_and_does_not_fire(
    promtool: Path, tmp_path: Path
) -> None:
    """Else every test above could pass for the wrong reason: a fresh backup expected to
    fire makes promtool fail, naming the alert."""
    groups, _ = render(CNPG)
    rule = rules_by_alert(groups)["PostgresBackupTooOld"]
    metric = "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"
    fresh = series(metric, {"namespace": NS, "pod": "ledger-1"}, "100000x40")
    tests = [
        {
            "interval": "1h",
            "input_series": [fresh],
            "alert_rule_test": [
                {
                    "eval_time": "30h",
                    "alertname": "PostgresBackupTooOld",
                    "exp_alerts": [fired(rule, {"namespace": NS})],
                }
            ],
        }
    ]
    result = promtool_test(promtool, tmp_path, groups, tests)
    assert result.returncode != 0
    assert "PostgresBackupTooOld" in result.stdout + result.stderr
