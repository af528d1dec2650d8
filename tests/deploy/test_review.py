"""The review lines a preview ends with: whether Flyway runs, why, and which files are new."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.migrations import load_released_set
from deploy.engine import ROOT
from deploy.joblogs import newest_job
from deploy.review import (
    CONFIG_DIGEST,
    MIGRATIONS_DIGEST,
    JobStep,
    change_lines,
    main,
    review,
    script_names,
)
from tests.program import stack_settings

OLD = {MIGRATIONS_DIGEST: "a" * 64, CONFIG_DIGEST: "c" * 64}


def test_a_new_migration_names_the_file_and_the_reason() -> None:
    job = JobStep("replace", OLD, {**OLD, MIGRATIONS_DIGEST: "b" * 64})
    lines = review("prod", job, ["V1__a.sql"], ["V1__a.sql", "V2__b.sql"])
    assert lines == [
        "prod: the migration Job will be replaced: Flyway runs because migration files "
        "changed (aaaaaaaaaaaa -> bbbbbbbbbbbb)",
        "prod: migrations new to this stack: V2__b.sql",
    ]


def test_a_settings_change_runs_flyway_with_nothing_new() -> None:
    job = JobStep("replace", OLD, {**OLD, CONFIG_DIGEST: "d" * 64})
    lines = review("dev", job, ["V1__a.sql"], ["V1__a.sql"])
    assert "because Job settings changed" in lines[0]
    assert lines[1] == "dev: no migration is new to this stack (Flyway finds nothing to apply)"


def test_an_unchanged_job_and_a_first_deploy() -> None:
    assert review("dev", JobStep("same", OLD, OLD), [], None) == [
        "dev: the migration Job is unchanged; Flyway does not run"
    ]
    first = review("dev", JobStep("create", {}, OLD), [], ["V1__a.sql"])
    assert first[0].endswith("because the stack has no migration Job yet")
    assert first[1] == "dev: migrations new to this stack: V1__a.sql"


def test_a_failed_run_is_retried_with_the_same_content() -> None:
    lines = review("dev", JobStep("replace", OLD, OLD), ["V1__a.sql"], ["V1__a.sql"])
    assert lines[0].endswith("because the last run did not complete")


def test_script_names_reads_the_stack_output() -> None:
    assert script_names([{"script": "V1__a.sql"}, {"script": "R__v.sql"}]) == [
        "V1__a.sql",
        "R__v.sql",
    ]
    assert script_names(None) == []


def test_a_pull_request_names_what_it_adds_to_each_stack() -> None:
    lines = change_lines("prod", ["V1__a.sql"], ["V1__a.sql", "V2__b.sql"], "a backup is taken")
    assert lines == [
        "`prod`: migrations this change adds: `V2__b.sql`",
        "`prod`: before Flyway runs, a backup is taken",
    ]
    assert change_lines("dev", ["V1__a.sql"], ["V1__a.sql"], "a backup is taken") == [
        "`dev`: no migration is new to this stack"
    ]
    assert change_lines("dev", None, ["V1__a.sql"], None) == [
        "`dev`: not deployed yet; the first deploy applies all 1 migrations"
    ]


def test_the_review_command_compares_the_repository_with_the_deployed_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the pull-request workflow runs for each stack, on the stack's real files."""
    settings = stack_settings("staging")
    planned = load_released_set(ROOT / settings.migrations_dir, settings.flyway.out_of_order)
    scripts = [f.path for f in planned.files if f.checksum is not None]
    deployed = tmp_path / "deployed.json"
    deployed.write_text(json.dumps([{"script": s} for s in scripts[:-1]]))
    assert main(["--stack", "staging", "--deployed", str(deployed)]) == 0
    out = capsys.readouterr().out.splitlines()
    backup = [
        f"- `staging`: before Flyway runs, a CloudNativePG Backup "
        f"({settings.backup.cnpg_method.value}) is taken"
    ]
    assert out == [
        f"- `staging`: migrations this change adds: `{scripts[-1]}`",
        *(backup if settings.backup.before_migrate else []),
    ]
    deployed.write_text("null\n")
    assert main(["--stack", "dev", "--deployed", str(deployed)]) == 0
    assert "not deployed yet" in capsys.readouterr().out


def test_the_log_shown_is_the_migration_jobs_not_the_newer_grants_jobs() -> None:
    prefix = "urn:pulumi:prod::tradestream-database::tradestream:database:"
    resources = [
        {
            "urn": f"{prefix}MigrationJob$kubernetes:batch/v1:Job::tradestream-job",
            "type": "kubernetes:batch/v1:Job",
            "outputs": {
                "metadata": {
                    "name": "tradestream-job-1",
                    "namespace": "ns",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                }
            },
        },
        {
            "urn": f"{prefix}RoleGrants$kubernetes:batch/v1:Job::tradestream-grants",
            "type": "kubernetes:batch/v1:Job",
            "outputs": {
                "metadata": {
                    "name": "tradestream-grants-2",
                    "namespace": "ns",
                    "creationTimestamp": "2026-02-01T00:00:00Z",
                }
            },
        },
    ]
    stack = SimpleNamespace(
        export_stack=lambda: SimpleNamespace(deployment={"resources": resources})
    )
    assert newest_job(stack) == ("ns", "tradestream-job-1")  # type: ignore[arg-type]
    assert newest_job(stack, "Grants") == ("ns", "tradestream-grants-2")  # type: ignore[arg-type]
    assert newest_job(stack, "Backup") is None  # type: ignore[arg-type]
