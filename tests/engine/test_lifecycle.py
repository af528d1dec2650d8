"""What users rely on most, shown by the real engine rather than a model of it: the Job
awaited, a new migration replacing it, a failure reported and retried, no drift, secrets
kept secret, and data left in place by destroy."""

from __future__ import annotations

import re

import pytest
from pulumi import automation as auto

from components.migrations import next_version
from deploy import review
from standins.cluster.api import Client
from tests.engine.conftest import Deployment, NewDeployment, migration_set

pytestmark = pytest.mark.engine

JOB = "kubernetes:batch/v1:Job"
DIGEST_ANNOTATION = "tradestream.io/migrations-digest"
# Tables of the migrations the test adds; named so that no project migration has them.
FILLS, FEES = "e2e_lifecycle_fills", "e2e_lifecycle_fill_fees"


def versions(deployment: Deployment) -> list[str]:
    return [str(row[0]) for row in deployment.history()]


def next_file(deployment: Deployment, description: str) -> str:
    version = next_version(migration_set(deployment.migrations))
    return f"V{version}__{description}.sql"


def jobs(kube: Client, namespace: str) -> list[str]:
    listed = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")
    return sorted(item["metadata"]["name"] for item in listed["items"])


def test_the_migration_lifecycle_on_the_real_engine(
    new_deployment: NewDeployment, kube: Client
) -> None:
    deployment = new_deployment()
    listed = migration_set(deployment.migrations)
    project = [str(f.version) for f in listed.versioned]

    # a. The first `up` waits for the Job, which applies every migration as the migrator.
    output, result = deployment.up()
    assert result is not None, output
    assert versions(deployment) == project
    assert {row[2] for row in deployment.history()} == {f"{deployment.database}_migrator"}
    # Flyway counts the repeatables it applies once after the versioned ones too.
    assert f"Successfully applied {len(project) + len(listed.repeatable)} migration" in output
    # The migration Job, and the backup that ran before it.
    assert jobs(kube, deployment.namespace) == sorted(
        [result.outputs["migrationJobName"].value, result.outputs["backupName"].value]
    )
    old_digest = result.outputs["migrationsDigest"].value

    # b. Nothing changes right after, nor after a refresh.
    deployment.preview(expect_no_changes=True)
    deployment.refresh()
    deployment.preview(expect_no_changes=True)

    # c. A new migration: the preview shows the Job replaced for its digest; `up` applies it.
    added = next_file(deployment, "add_fills")
    (deployment.migrations / added).write_text(
        f"CREATE TABLE {FILLS} (id bigint PRIMARY KEY, price numeric NOT NULL);\n",
        encoding="utf-8",
    )
    text, preview = deployment.preview()
    assert preview.change_summary.get(auto.OpType.REPLACE, 0) >= 2, text  # the Job, a ConfigMap
    assert f"+-{JOB}: (replace)" in text
    assert re.search(rf'~ {DIGEST_ANNOTATION}\s*: "{old_digest}" => "[0-9a-f]{{64}}"', text)
    events: list[auto.EngineEvent] = []
    deployment.stack.preview(on_event=events.append, color="never")
    job, planned = review.collect(events)
    deployed = review.script_names(result.outputs["migrations"].value)
    assert review.review("local", job, deployed, planned) == [
        "local: the migration Job will be replaced: Flyway runs because migration files "
        f"changed ({old_digest[:12]} -> {job.new[DIGEST_ANNOTATION][:12] if job else ''})",
        f"local: migrations new to this stack: {added}",
    ]
    output, result = deployment.up()
    assert result is not None, output
    assert versions(deployment) == [*project, added[1:].split("__")[0]]
    assert "Successfully applied 1 migration" in output
    assert FILLS in deployment.tables()

    # d. A failing migration: `up` fails with Flyway's own words, the schema stays as it was;
    # once the file is fixed, the next `up` retries and succeeds.
    before, tables = deployment.history(), deployment.tables()
    broken = next_file(deployment, "add_fill_fees")
    (deployment.migrations / broken).write_text(
        f"CREATE TABLE {FEES} (fill_id bigint REFERENCES {FILLS} (no_such_column));\n",
        encoding="utf-8",
    )
    output, result = deployment.up()
    assert result is None
    assert "no_such_column" in output
    assert 'column "no_such_column" referenced in foreign key constraint does not exist' in output
    assert deployment.history() == before
    assert deployment.tables() == tables
    (deployment.migrations / broken).write_text(
        f"CREATE TABLE {FEES} (fill_id bigint REFERENCES {FILLS} (id), fee numeric);\n",
        encoding="utf-8",
    )
    output, result = deployment.up()
    assert result is not None, output
    assert FEES in deployment.tables()
    deployment.preview(expect_no_changes=True)

    # f. No secret value in anything the engine printed.
    assert deployment.migrator_password not in "\n".join(deployment.transcript)

    # g. destroy removes what the program deployed and leaves the database's data.
    deployment.destroy()
    assert FEES in deployment.tables()
    assert len(versions(deployment)) == len(project) + 2
    assert kube.get_or_none(f"/api/v1/namespaces/{deployment.namespace}") is None


def test_a_bad_config_value_fails_the_preview_naming_the_key(
    new_deployment: NewDeployment, kube: Client
) -> None:
    deployment = new_deployment(flywayConnectRetries="-1")
    with pytest.raises(auto.errors.CommandError) as caught:
        deployment.preview()
    assert "tradestream-database:flywayConnectRetries" in str(caught.value)
    with pytest.raises(auto.errors.CommandError):
        deployment.stack.up(color="never")
    resources = (deployment.stack.export_stack().deployment or {}).get("resources", [])
    assert [r["type"] for r in resources if not r["type"].startswith("pulumi:")] == []
    assert kube.get_or_none(f"/api/v1/namespaces/{deployment.namespace}") is None
