"""The scheduled drift workflow (.github/workflows/drift.yml), read as data: it runs the
README's `make drift` for every deployed stack from the default branch only, in the stack's
drift environment with that environment's credentials alone, keeps the report, fails the run
and keeps one issue per stack on drift. (actionlint and yamllint run on it with the others:
tests/test_workflows.py.)"""

from __future__ import annotations

from typing import Any

import yaml

from deploy.drift import pods
from deploy.target import LOCAL_STACKS
from tests.test_workflows import (
    REPO_ROOT,
    SALT_CHECK,
    _jobs,
    _load,
    _stack_names,
    _steps,
    _triggers,
)

ACCESS = "deploy/cluster/drift-access.yaml"


def _job() -> dict[str, Any]:
    jobs = _jobs(_load("drift.yml"))
    assert list(jobs) == ["drift"], jobs
    return jobs["drift"]


def _step(name: str) -> dict[str, Any]:
    found = [s for s in _steps(_job()) if str(s.get("name", "")).startswith(name)]
    assert len(found) == 1, f"drift.yml: one step named {name!r}"
    return found[0]


def test_scheduled_and_from_the_default_branch_only() -> None:
    triggers = _triggers(_load("drift.yml"))
    assert set(triggers) == {"schedule", "workflow_dispatch"}, triggers
    assert triggers["schedule"][0]["cron"]
    assert (
        _job()["if"]
        == "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
    )


def test_every_deployed_stack_in_its_own_drift_environment() -> None:
    job = _job()
    assert set(job["strategy"]["matrix"]["stack"]) == _stack_names() - set(LOCAL_STACKS)
    assert job["strategy"]["fail-fast"] is False
    assert job["environment"] == "drift-${{ matrix.stack }}"
    assert job["concurrency"]["cancel-in-progress"] is False
    secrets = set()
    for step in _steps(job):
        text = yaml.safe_dump(step)
        secrets |= {
            name
            for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_CONTENT")
            if f"secrets.{name}" in text
        }
        assert "secrets.GITHUB_TOKEN" not in text
    assert secrets == {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_CONTENT"}
    for step in _steps(job):
        if step.get("uses", "").startswith("actions/checkout"):
            assert step["with"]["persist-credentials"] is False


def test_the_readmes_command_after_the_salt_check() -> None:
    steps = _steps(_job())
    check = _step("make drift")
    assert check["run"] == 'make drift STACK="${STACK}"'
    assert check["continue-on-error"] is True
    salt = [s for s in steps if s.get("run") == SALT_CHECK]
    assert len(salt) == 1
    assert steps.index(salt[0]) < steps.index(check)


def test_the_report_is_kept_and_drift_is_visible() -> None:
    steps = _steps(_job())
    keep = _step("Keep the report")
    assert keep["uses"].startswith("actions/upload-artifact@")
    assert keep["if"] == "always()"
    assert keep["with"]["path"] == ".pulumi-state/logs/${{ matrix.stack }}-drift.*"
    issue = _step("Keep the drift issue")
    assert issue["uses"].startswith("actions/github-script@")
    script = issue["with"]["script"]
    for call in ("issues.create(", "issues.update(", "state: 'closed'", "labels: ['drift']"):
        assert call in script, call
    assert _load("drift.yml")["permissions"] == {"contents": "read", "issues": "write"}
    fail = steps[-1]
    assert fail["if"] == "steps.result.outputs.status != 'clean'"
    assert "exit 1" in fail["run"]
    assert "jq -r .status" in _step("Read the result")["run"]


def test_the_credential_may_run_only_the_checks_own_jobs() -> None:
    documents = list(yaml.safe_load_all((REPO_ROOT / ACCESS).read_text(encoding="utf-8")))
    (policy,) = [d for d in documents if d["kind"] == "ValidatingAdmissionPolicy"]
    rule = policy["spec"]["validations"][0]["expression"]
    for purpose in (pods.HISTORY_PURPOSE, pods.SCHEMA_PURPOSE):
        assert f"'{purpose}'" in rule
    roles = [d for d in documents if d["kind"] == "ClusterRole"]
    verbs = {verb for role in roles for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch", "create", "delete"}
    writes = [r for role in roles for r in role["rules"] if {"create", "delete"} & set(r["verbs"])]
    assert writes == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete"]}
    ]
    assert ACCESS in (REPO_ROOT / ".github/workflows/drift.yml").read_text()
