"""Checks of the GitHub workflows and of every YAML file the project keeps.

* actionlint (pinned, installed into .cache/bin by scripts/install-actionlint.sh) on each workflow;
* yamllint with .yamllint.yaml on the YAML under .github/, Pulumi.yaml and the stack files;
* structural rules the lint tools cannot know: which commands run, for which stacks, in which
  order, with which permissions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.target import LOCAL_STACKS

REPO_ROOT = Path(__file__).resolve().parent.parent
GITHUB_DIR = REPO_ROOT / ".github"
WORKFLOWS_DIR = GITHUB_DIR / "workflows"
STACKS_DIR = REPO_ROOT / "stacks"
ACTIONLINT = REPO_ROOT / ".cache" / "bin" / "actionlint"
ACTIONLINT_INSTALLER = "scripts/install-actionlint.sh"
YAMLLINT_CONFIG = REPO_ROOT / ".yamllint.yaml"

REQUIRED_WORKFLOWS = ("ci.yml", "preview.yml", "deploy.yml")
# Promotion order of the stacks; also the stacks expected before any stack file exists.
DEPLOY_ORDER = ("dev", "staging", "prod")
PULUMI_ACTION = "pulumi/actions@v7"
# Inputs documented by pulumi/actions (README and action.yml; v7 kept v6's inputs).
PULUMI_ACTION_INPUTS = frozenset(
    {
        "always-include-summary",
        "cloud-url",
        "color",
        "command",
        "comment-on-pr",
        "comment-on-pr-number",
        "comment-on-summary",
        "config-map",
        "continue-on-error",
        "debug",
        "diff",
        "edit-pr-comment",
        "exclude-protected",
        "expect-no-changes",
        "github-token",
        "log-flow",
        "log-verbosity",
        "message",
        "omit-stdout",
        "parallel",
        "plan",
        "policyPackConfigs",
        "policyPacks",
        "pulumi-version",
        "pulumi-version-file",
        "refresh",
        "remove",
        "replace",
        "secrets-provider",
        "stack-name",
        "suppress-outputs",
        "suppress-progress",
        "target",
        "target-dependents",
        "upsert",
        "work-dir",
    }
)
MIGRATION_LINT = "python -m deploy.lint database/migrations --format github"
SALT_CHECK = '.venv/bin/python -m deploy check-secrets "${STACK}"'
"""Stacks whose passphrase only the job bound to their protected environment may use."""

Workflow = dict[str, Any]
Job = dict[str, Any]
Step = dict[str, Any]


class _WorkflowLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, so GitHub's `on:` key stays the string "on"."""


_WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_WorkflowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def _workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])


def _yaml_files() -> list[Path]:
    files = sorted(
        p for p in GITHUB_DIR.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml"}
    )
    files += [p for p in (REPO_ROOT / "Pulumi.yaml", YAMLLINT_CONFIG) if p.is_file()]
    files += sorted(STACKS_DIR.glob("*.yaml"))
    return files


MACHINE_LOCAL_STACKS = set(LOCAL_STACKS)
"""Stacks deployed to the machine they run on (make up STACK=local), never by a workflow."""


def _stack_names() -> set[str]:
    """Stacks with a stack file in stacks/ that deploy to a cluster; the three standard stacks
    until those exist."""
    names = {
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in STACKS_DIR.glob("Pulumi.*.yaml")
    } - MACHINE_LOCAL_STACKS
    return names or set(DEPLOY_ORDER)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _load(name: str) -> Workflow:
    path = WORKFLOWS_DIR / name
    if not path.is_file():
        pytest.fail(f"{_rel(path)} is missing")
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_WorkflowLoader)  # noqa: S506
    assert isinstance(data, dict), f"{_rel(path)} is not a YAML mapping"
    return data


def _jobs(workflow: Workflow) -> dict[str, Job]:
    jobs = workflow.get("jobs")
    assert isinstance(jobs, dict), "workflow has no jobs"
    return jobs


def _steps(job: Job) -> list[Step]:
    steps = job.get("steps", [])
    assert isinstance(steps, list)
    return steps


def _pulumi_steps(job: Job) -> list[Step]:
    return [s for s in _steps(job) if str(s.get("uses", "")).startswith("pulumi/actions")]


def _needs(job: Job) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _environment(job: Job) -> str | None:
    env = job.get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return None if env is None else str(env)


def _triggers(workflow: Workflow) -> dict[str, Any]:
    on = workflow.get("on")
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), "workflow has no `on:` triggers"
    return on


def _push_branches(workflow: Workflow) -> list[str]:
    push = _triggers(workflow).get("push") or {}
    return list(push.get("branches", []))


def _as_bool(value: object) -> bool:
    return value is True or str(value).lower() == "true"


def _pin(requirements: Path, package: str) -> str:
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(rf"{re.escape(package)}==([\w.]+)", line.split("#")[0].strip())
        if match:
            return match.group(1)
    pytest.fail(f"{package} is not pinned with == in {_rel(requirements)}")


# --- lint tools ------------------------------------------------------------------------------


def _actionlint() -> Path:
    if ACTIONLINT.is_file() and os.access(ACTIONLINT, os.X_OK):
        return ACTIONLINT
    message = f"actionlint is not installed at {_rel(ACTIONLINT)}; run {ACTIONLINT_INSTALLER}"
    if _in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("path", _workflow_files(), ids=_rel)
def test_actionlint(path: Path) -> None:
    result = subprocess.run(
        [str(_actionlint()), "-no-color", "-oneline", _rel(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"actionlint found problems in {_rel(path)} (exit {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("path", _yaml_files(), ids=_rel)
def test_yamllint(path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "--config-file",
            str(YAMLLINT_CONFIG),
            "--strict",
            "--format",
            "parsable",
            _rel(path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"yamllint found problems in {_rel(path)} (exit {result.returncode}):\n"
        f"{result.stdout}{result.stderr}"
    )


def test_lint_inputs_are_found() -> None:
    workflows = {p.name for p in _workflow_files()}
    missing = [name for name in REQUIRED_WORKFLOWS if name not in workflows]
    assert not missing, f"missing workflows: {missing}"
    assert YAMLLINT_CONFIG.is_file(), ".yamllint.yaml is missing"
    installer = REPO_ROOT / ACTIONLINT_INSTALLER
    assert installer.is_file(), f"{ACTIONLINT_INSTALLER} is missing"
    assert os.access(installer, os.X_OK), f"{ACTIONLINT_INSTALLER} is not executable"


# --- every workflow ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", _workflow_files(), ids=_rel)
def test_workflow_declares_minimal_permissions(path: Path) -> None:
    workflow = _load(path.name)
    permissions = workflow.get("permissions")
    assert isinstance(permissions, dict), (
        f"{_rel(path)} must declare `permissions:` as a mapping of scopes (not read-all/write-all)"
    )
    scoped = [("workflow", permissions)]
    scoped += [
        (name, job["permissions"]) for name, job in _jobs(workflow).items() if "permissions" in job
    ]
    for where, perms in scoped:
        assert isinstance(perms, dict), f"{_rel(path)} ({where}): permissions must list scopes"
    assert "id-token" not in permissions, (
        f"{_rel(path)}: grant id-token only on the job that needs it, not the whole workflow"
    )


@pytest.mark.parametrize("path", _workflow_files(), ids=_rel)
def test_pulumi_action_is_pinned_and_uses_documented_inputs(path: Path) -> None:
    workflow = _load(path.name)
    requirements_pin = _pin(REPO_ROOT / "requirements.txt", "pulumi")
    for job_id, job in _jobs(workflow).items():
        for step in _pulumi_steps(job):
            where = f"{_rel(path)} job {job_id} step {step.get('name', step['uses'])!r}"
            assert step["uses"] == PULUMI_ACTION, f"{where}: use {PULUMI_ACTION}"
            inputs = dict(step.get("with") or {})
            unknown = sorted(set(inputs) - PULUMI_ACTION_INPUTS)
            assert not unknown, f"{where}: undocumented pulumi/actions inputs {unknown}"
            assert str(inputs.get("work-dir")) == ".", f"{where}: work-dir must be ."
            assert "refresh" in inputs, f"{where}: state the refresh choice explicitly"
            assert str(inputs.get("pulumi-version")) == requirements_pin, (
                f"{where}: pulumi-version must be the pulumi SDK pin in requirements.txt "
                f"({requirements_pin})"
            )
            cloud_url = str(inputs.get("cloud-url", ""))
            assert "secrets.PULUMI_BACKEND_URL" in cloud_url, f"{where}: cloud-url from secret"
            passphrase = str((step.get("env") or {}).get("PULUMI_CONFIG_PASSPHRASE", ""))
            assert passphrase.replace(" ", "") == "${{secrets.PULUMI_CONFIG_PASSPHRASE}}", (
                f"{where}: the passphrase of the job's own environment"
            )
            assert _environment(job), f"{where}: secrets come from the job's environment"


def _secret_names(job: Job) -> set[str]:
    return set(re.findall(r"secrets\.([A-Za-z0-9_]+)", yaml.safe_dump(job)))


def test_secrets_are_only_those_of_the_jobs_environment() -> None:
    """No repository-wide secret: each job reads its own environment's, so a stack's
    credentials reach only the jobs that environment admits."""
    for name in ("preview.yml", "deploy.yml"):
        for job_id, job in _jobs(_load(name)).items():
            names = _secret_names(job)
            if names:
                assert _environment(job), (
                    f"{name} job {job_id} reads secrets {names} outside an environment"
                )
            assert names <= {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_CONTENT"}


def test_no_pull_request_job_can_reach_prod() -> None:
    """Code nobody reviewed yet gets no credential that writes to prod or decrypts its
    secrets: pull-request jobs use the preview environments of dev and staging only."""
    for path in _workflow_files():
        workflow = _load(path.name)
        if "pull_request" not in _triggers(workflow) and "pull_request_target" not in _triggers(
            workflow
        ):
            continue
        assert "pull_request_target" not in _triggers(workflow), "never run PR code with secrets"
        for job_id, job in _jobs(workflow).items():
            environment = str(job.get("environment", ""))
            where = f"{path.name} job {job_id}"
            assert not environment.startswith("prod"), where
            for step in _pulumi_steps(job):
                assert step["with"]["stack-name"] != "prod", where
            if _secret_names(job):
                assert environment.startswith("preview-"), f"{where}: {environment}"
                stacks = job.get("strategy", {}).get("matrix", {}).get("stack", [])
                assert "prod" not in stacks, where


@pytest.mark.parametrize("path", _workflow_files(), ids=_rel)
def test_every_pulumi_step_follows_the_check_of_the_committed_salt(path: Path) -> None:
    """CI refuses, as `make` does against a shared backend, a stack without its committed salt
    or passphrase, before the CLI could make a salt of its own; with the same passphrase."""
    for job_id, job in _jobs(_load(path.name)).items():
        steps = _steps(job)
        for step in _pulumi_steps(job):
            checks = [s for s in steps[: steps.index(step)] if str(s.get("run")) == SALT_CHECK]
            assert len(checks) == 1, f"{_rel(path)} job {job_id}: run `{SALT_CHECK}` first"
            (check,) = checks
            passphrase = (step.get("env") or {}).get("PULUMI_CONFIG_PASSPHRASE")
            assert (check.get("env") or {}).get("PULUMI_CONFIG_PASSPHRASE") == passphrase
            assert check.get("if") == step.get("if"), f"{_rel(path)} job {job_id}"
            assert "secrets-provider" not in (step.get("with") or {}), (
                "the committed salt is the passphrase provider's; keep the default"
            )


def test_the_deploy_commands_the_workflows_run_need_only_the_runtime_requirements() -> None:
    """preview.yml and deploy.yml install requirements.txt alone, so what they run of this
    repository must not need what requirements-dev.txt adds (the local stack's psycopg)."""
    runtime_only = [p for p in _workflow_files() if "requirements-dev.txt" not in p.read_text()]
    modules = {m for p in runtime_only for m in re.findall(r"python -m ([\w.]+)", p.read_text())}
    assert {"deploy", "deploy.review"} <= modules, modules
    commands = {
        c for p in runtime_only for c in re.findall(r"python -m deploy ([a-z-]+)", p.read_text())
    }
    assert {"namespace", "check-secrets"} <= commands, commands
    runs = [[module, "--help"] for module in sorted(modules)]
    runs += [["deploy", command, stack] for command in commands for stack in _stack_names()]
    blocked = sorted(_dev_only_modules())
    assert "psycopg" in blocked
    for module, *args in runs:
        code = (
            f"import runpy, sys; sys.modules.update(dict.fromkeys({blocked!r})); "
            f"sys.argv[1:] = {args!r}; runpy.run_module({module!r}, run_name='__main__')"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert "Traceback" not in done.stderr, f"python -m {module} {args}:\n{done.stderr}"
        assert done.returncode in {0, 2}, f"python -m {module} {args}:\n{done.stderr}"


def _dev_only_modules() -> set[str]:
    """Import names of the packages requirements-dev.txt adds to requirements.txt."""

    def names(path: Path) -> set[str]:
        pinned = (line.split("#")[0].strip() for line in path.read_text().splitlines())
        return {
            re.split(r"[\[=<>]", line)[0].lower().replace("-", "_")
            for line in pinned
            if line and not line.startswith("-r")
        }

    dev = names(REPO_ROOT / "requirements-dev.txt") - names(REPO_ROOT / "requirements.txt")
    return {name for name in dev if not name.startswith("types_")}


# --- ci.yml ------------------------------------------------------------------------------------


def test_ci_runs_make_test_on_pull_requests_and_main() -> None:
    workflow = _load("ci.yml")
    triggers = _triggers(workflow)
    assert "pull_request" in triggers
    assert _push_branches(workflow) == ["main"]
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow.get("concurrency", {}).get("cancel-in-progress") is True

    runners = [
        job
        for job in _jobs(workflow).values()
        if any(str(step.get("run", "")).strip() == "make test" for step in _steps(job))
    ]
    assert len(runners) == 1, "exactly one ci.yml job must run `make test`"
    job = runners[0]
    assert job.get("runs-on") == "ubuntu-latest"
    uses = {str(step.get("uses", "")).split("@")[0]: step for step in _steps(job)}
    python = uses.get("actions/setup-python", {}).get("with", {})
    assert str(python.get("python-version")) == "3.11"
    assert python.get("cache") == "pip"
    assert str(uses.get("actions/setup-java", {}).get("with", {}).get("java-version")) == "17"
    cached = {
        str(step.get("with", {}).get("path")).strip()
        for step in _steps(job)
        if str(step.get("uses", "")).startswith("actions/cache@")
    }
    assert ".cache" in cached, "ci.yml must cache .cache/"
    assert "~/.cache/tradestream-database/bin" in cached, "ci.yml must cache the built engine"

    ci_run = REPO_ROOT / ".ci" / "run"
    if ci_run.is_file():
        assert "make test" in ci_run.read_text(encoding="utf-8"), ".ci/run must run `make test`"


def test_ci_annotates_migration_lint_problems() -> None:
    jobs = _jobs(_load("ci.yml"))
    assert "migrations-lint" in jobs
    runs = " ".join(str(step.get("run", "")) for step in _steps(jobs["migrations-lint"]))
    assert MIGRATION_LINT in runs


# --- preview.yml -------------------------------------------------------------------------------


def test_preview_comments_every_stack_on_pull_requests() -> None:
    workflow = _load("preview.yml")
    assert set(_triggers(workflow)) == {"pull_request"}
    assert workflow["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "actions": "read",
    }

    jobs = [job for job in _jobs(workflow).values() if _pulumi_steps(job)]
    assert len(jobs) == 1, "preview.yml must preview all stacks from one matrix job"
    job = jobs[0]
    matrix = job["strategy"]["matrix"]
    assert set(matrix["stack"]) == _stack_names() - {"prod"}, (
        "the matrix must list the stacks in stacks/ but prod, which is previewed on main"
    )
    assert len(matrix["stack"]) == len(set(matrix["stack"]))
    assert job["environment"] == "preview-${{ matrix.stack }}"
    assert job["strategy"].get("fail-fast") is False
    prod = _jobs(workflow)["prod-migrations"]
    runs = " ".join(str(step.get("run", "")) for step in _steps(prod))
    assert "python -m deploy.review" in runs
    assert not _secret_names(prod)

    concurrency = job["concurrency"]
    assert concurrency["cancel-in-progress"] is True
    assert "github.event.pull_request.number" in concurrency["group"]
    assert "matrix.stack" in concurrency["group"]

    (step,) = _pulumi_steps(job)
    inputs = step["with"]
    assert inputs["command"] == "preview"
    assert inputs["stack-name"] == "${{ matrix.stack }}"
    for flag in ("diff", "comment-on-pr", "comment-on-summary"):
        assert _as_bool(inputs.get(flag)), f"preview must set {flag}: true"


def test_preview_names_per_stack_the_migrations_the_change_adds() -> None:
    """The review command runs after the preview, fed the stack's deployed `migrations`, and
    its lines reach the job summary and one comment per stack."""
    (job,) = (job for job in _jobs(_load("preview.yml")).values() if _pulumi_steps(job))
    steps = _steps(job)
    (preview,) = _pulumi_steps(job)
    (named,) = [s for s in steps if "python -m deploy.review" in str(s.get("run", ""))]
    assert steps.index(preview) < steps.index(named)
    assert 'pulumi stack output migrations --json --stack "${STACK}"' in named["run"]
    assert "GITHUB_STEP_SUMMARY" in named["run"]
    (comment,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/github-script@")]
    assert steps.index(named) < steps.index(comment)
    assert "updateComment" in comment["with"]["script"]
    assert "process.env.STACK" in comment["with"]["script"]


def test_preview_skips_pull_requests_without_secrets() -> None:
    workflow = _load("preview.yml")
    (job,) = (job for job in _jobs(workflow).values() if _pulumi_steps(job))
    steps = _steps(job)
    gates = [s for s in steps if s.get("id") == "gate"]
    assert len(gates) == 1, "preview needs a `gate` step deciding whether secrets are available"
    gate = gates[0]
    assert steps.index(gate) == 0, "the gate must run before anything else"
    gate_env = " ".join(str(v) for v in (gate.get("env") or {}).values())
    assert "github.event.pull_request.head.repo.full_name" in gate_env
    assert "GITHUB_STEP_SUMMARY" in gate["run"]
    for step in steps[1:]:
        assert "steps.gate.outputs.run == 'true'" in str(step.get("if", "")), (
            f"step {step.get('name', step.get('uses'))!r} must be skipped when the gate says so"
        )


# --- deploy.yml --------------------------------------------------------------------------------


def test_deploy_runs_only_after_the_tests_of_that_commit_passed() -> None:
    workflow = _load("deploy.yml")
    triggers = _triggers(workflow)
    assert set(triggers) == {"workflow_run", "workflow_dispatch"}, "no deploy straight on push"
    run = triggers["workflow_run"]
    assert run["workflows"] == [_load("ci.yml")["name"]]
    assert run["types"] == ["completed"]
    assert run["branches"] == ["main"]
    first = next(job for job in _jobs(workflow).values() if not _needs(job))
    condition = " ".join(str(first.get("if", "")).split())
    assert "github.event.workflow_run.conclusion == 'success'" in condition
    assert "github.ref == 'refs/heads/main'" in condition
    for job_id, job in _jobs(workflow).items():
        (checkout,) = [
            s for s in _steps(job) if str(s.get("uses", "")).startswith("actions/checkout@")
        ]
        assert "github.event.workflow_run.head_sha" in str(checkout["with"]["ref"]), (
            f"{job_id} must deploy the commit CI tested"
        )


def test_each_deploy_job_waits_as_long_as_its_stack_may_take() -> None:
    """A runner's timeout shorter than the stack's own waits would stop `pulumi up` half-way
    and leave the stack locked: each job's timeout comes from its stack (deploy/waits.py)."""
    jobs = _jobs(_load("deploy.yml"))
    runs = " ".join(str(step.get("run", "")) for step in _steps(jobs["timeouts"]))
    assert ".venv/bin/python -m deploy timeout" in runs
    for stack in DEPLOY_ORDER:
        assert jobs["timeouts"]["outputs"][stack] == f"${{{{ steps.minutes.outputs.{stack} }}}}"
        assert jobs[stack]["timeout-minutes"] == (
            f"${{{{ fromJSON(needs.timeouts.outputs.{stack}) }}}}"
        )
        assert "timeouts" in _needs(jobs[stack])


def test_deploy_promotes_dev_then_staging_then_prod() -> None:
    workflow = _load("deploy.yml")
    jobs = _jobs(workflow)
    deploys = {
        _environment(job): (job_id, job)
        for job_id, job in jobs.items()
        if any(step["with"]["command"] == "up" for step in _pulumi_steps(job))
    }
    order = [stack for stack in DEPLOY_ORDER if stack in _stack_names()]
    order += sorted(_stack_names() - set(DEPLOY_ORDER))
    assert set(deploys) == set(order), (
        f"deploy.yml must have one job per stack, bound to the environment of its name: {order}"
    )
    # prod is previewed on main, with prod's credentials that no pull request gets, before
    # its reviewers approve the deploy.
    preview = jobs["prod-preview"]
    assert _environment(preview) == "prod-preview"
    (step,) = _pulumi_steps(preview)
    assert step["with"]["command"] == "preview"
    assert step["with"]["stack-name"] == "prod"
    previous = {"dev": None, "staging": "dev", "prod": "prod-preview"}
    assert _needs(preview) == ["timeouts", "staging"]
    for stack in order:
        job_id, job = deploys[stack]
        expected = ["timeouts"] + ([previous[stack]] if previous.get(stack) else [])
        assert _needs(job) == expected, f"job {job_id} must need exactly {expected}"
        (step,) = _pulumi_steps(job)
        assert step["with"]["stack-name"] == stack, f"job {job_id} must deploy stack {stack}"

        concurrency = job.get("concurrency") or {}
        assert concurrency.get("cancel-in-progress") is False, f"{job_id}: never cancel a deploy"
        assert stack in str(concurrency.get("group")), f"{job_id}: serialise deploys per stack"
