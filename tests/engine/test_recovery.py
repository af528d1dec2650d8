"""Sequences that only the real engine shows: a failed deploy followed by a revert or a fix,
a setting changed and changed back, and destroy/up cycles. Each ends with exactly the Job
and ConfigMaps the state records, and nothing left for refresh to find."""

from __future__ import annotations

import pytest
from pulumi import automation as auto

from components.migrations import next_version
from components.migrations.lock import unlock, update_lock
from standins.cluster.api import Client
from tests.engine.conftest import Deployment, NewDeployment, migration_set

pytestmark = pytest.mark.engine

JOB = "kubernetes:batch/v1:Job"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
MIGRATIONS_SELECTOR = "app.kubernetes.io/component in (migrations,backup)"
"""The migration Job and its ConfigMaps, and the backup Job that runs before it."""
# Tables of the migrations the tests add; named so that no project migration has them.
BROKEN = "CREATE TABLE e2e_recovery_broken (id bigint REFERENCES no_such_table (id));\n"
FIXED = "CREATE TABLE e2e_recovery_fixed (id bigint);\n"


def in_state(deployment: Deployment) -> dict[str, set[str]]:
    """The Jobs and ConfigMaps the state holds, pending deletes included."""
    resources = (deployment.stack.export_stack().deployment or {}).get("resources", [])
    found: dict[str, set[str]] = {JOB: set(), CONFIG_MAP: set()}
    for resource in resources:
        if resource["type"] in found:
            found[resource["type"]].add(resource["outputs"]["metadata"]["name"])
    return found


def in_cluster(kube: Client, namespace: str) -> dict[str, set[str]]:
    query = {"labelSelector": MIGRATIONS_SELECTOR}
    jobs = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs", query)
    maps = kube.get(f"/api/v1/namespaces/{namespace}/configmaps", query)
    return {
        JOB: {item["metadata"]["name"] for item in jobs["items"]},
        CONFIG_MAP: {item["metadata"]["name"] for item in maps["items"]},
    }


def assert_consistent(deployment: Deployment, kube: Client) -> None:
    """The cluster holds exactly what the state records, and neither refresh nor a preview
    finds anything to change."""
    assert in_cluster(kube, deployment.namespace) == in_state(deployment)
    deployment.refresh()
    deployment.preview(expect_no_changes=True)
    assert in_cluster(kube, deployment.namespace) == in_state(deployment)
    # One migration Job and the one backup taken before it.
    assert sorted(job.rsplit("-", 1)[0] for job in in_state(deployment)[JOB]) == [
        "tradestream-dump",
        "tradestream-job",
    ]


def add_migration(deployment: Deployment, sql: str, description: str) -> str:
    version = next_version(migration_set(deployment.migrations))
    name = f"V{version}__{description}.sql"
    (deployment.migrations / name).write_text(sql, encoding="utf-8")
    return name


def up_ok(deployment: Deployment) -> None:
    output, result = deployment.up()
    assert result is not None, output


def up_fails(deployment: Deployment, kube: Client, reason: str) -> None:
    """A failed `up`: Flyway's reason shown, and still no object the state does not know."""
    output, result = deployment.up()
    assert result is None, output
    assert reason in output
    assert in_cluster(kube, deployment.namespace) == in_state(deployment)


@pytest.mark.parametrize("then_fix", [False, True], ids=["revert", "fix-then-revert"])
def test_a_failed_deploy_then_a_revert_leaves_the_state_and_cluster_equal(
    new_deployment: NewDeployment, kube: Client, then_fix: bool
) -> None:
    deployment = new_deployment()
    up_ok(deployment)
    applied = deployment.history()

    broken = add_migration(deployment, BROKEN, "add_broken")
    up_fails(deployment, kube, 'relation "no_such_table" does not exist')
    if then_fix:
        (deployment.migrations / broken).write_text(FIXED)
        up_ok(deployment)
        assert_consistent(deployment, kube)
        applied = deployment.history()
    # The usual revert. After the fix was applied, Flyway treats the applied migration it no
    # longer finds as a future one and leaves it be; either way the names the revert brings
    # back must not collide with what the engine still means to delete.
    (deployment.migrations / broken).unlink()
    up_ok(deployment)

    assert deployment.history() == applied
    assert_consistent(deployment, kube)
    # A later settings change runs a Job whose ConfigMaps all exist.
    deployment.stack.set_config("tradestream-database:flywayConnectRetries", auto.ConfigValue("3"))
    up_ok(deployment)
    assert_consistent(deployment, kube)


def test_a_setting_changed_then_changed_back(new_deployment: NewDeployment, kube: Client) -> None:
    deployment = new_deployment()
    up_ok(deployment)
    first = in_state(deployment)[JOB]
    for deadline in ("700", "600"):
        deployment.stack.set_config(
            "tradestream-database:flywayActiveDeadlineSeconds", auto.ConfigValue(deadline)
        )
        output, result = deployment.up()
        assert result is not None, output
        assert 'Schema "public" is up to date' in output  # the new Job ran Flyway again
        assert_consistent(deployment, kube)
        [job] = [j for j in in_state(deployment)[JOB] if j.startswith("tradestream-job-")]
        spec = kube.get(f"/apis/batch/v1/namespaces/{deployment.namespace}/jobs/{job}")["spec"]
        assert spec["activeDeadlineSeconds"] == int(deadline)
    assert in_state(deployment)[JOB] != first


def test_three_destroy_and_up_cycles(new_deployment: NewDeployment, kube: Client) -> None:
    deployment = new_deployment()
    up_ok(deployment)
    applied = deployment.history()
    for _ in range(3):
        deployment.destroy()
        assert in_state(deployment) == {JOB: set(), CONFIG_MAP: set()}
        assert deployment.history() == applied  # destroy keeps the data
        up_ok(deployment)
        assert deployment.history() == applied  # nothing applied twice
        assert_consistent(deployment, kube)


def test_a_released_migration_that_failed_is_fixed_in_place_after_unlock(
    new_deployment: NewDeployment, kube: Client
) -> None:
    """No database applied it (Flyway rolled it back), so the fix goes into the same file:
    the lock refuses the edit until the file is unlocked, and the fixed file is released."""
    deployment = new_deployment()
    up_ok(deployment)
    broken = add_migration(deployment, BROKEN, "add_broken")
    update_lock(deployment.migrations)  # released, as a merge to main releases it
    up_fails(deployment, kube, 'relation "no_such_table" does not exist')

    (deployment.migrations / broken).write_text(FIXED, encoding="utf-8")
    with pytest.raises(auto.errors.CommandError, match="make migrations-unlock FILE="):
        deployment.preview()
    unlock(deployment.migrations, broken)
    update_lock(deployment.migrations)
    up_ok(deployment)
    assert broken in [row[1] for row in deployment.history()]
    assert_consistent(deployment, kube)
