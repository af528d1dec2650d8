"""An external database whose roles a DBA created: the stack is only given the migrator's login
(what the local stack deploys with the kubernetes provider alone)."""

from __future__ import annotations

import pytest

from tests.program import (
    MOCK_CONFIG_SECRETS,
    ProgramRun,
    plain_strings,
    run_program,
    stack_settings,
)

SECRET = "kubernetes:core/v1:Secret"
JOB = "kubernetes:batch/v1:Job"


@pytest.fixture(scope="module")
def local_run() -> ProgramRun:
    run = run_program("local")
    assert run.error is None, run.error
    return run


def test_only_kubernetes_resources_are_declared(local_run: ProgramRun) -> None:
    providers = {r.type.split(":")[0] for r in local_run.resources if r.custom}
    assert providers == {"kubernetes"}


def test_flyway_logs_in_as_the_migrator_from_a_secret_of_the_program(
    local_run: ProgramRun,
) -> None:
    [secret] = local_run.of_type(SECRET)
    name = secret.inputs["metadata"]["name"]
    database = stack_settings("local").database
    migrator = f"{database.name}_migrator"
    assert secret.inputs["stringData"]["username"] == migrator
    assert secret.inputs["stringData"]["password"] == MOCK_CONFIG_SECRETS["migratorPassword"]
    for text in plain_strings(secret.wire):
        assert MOCK_CONFIG_SECRETS["migratorPassword"] not in text
    [container] = local_run.flyway_job().inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["FLYWAY_URL"] == (
        f"jdbc:postgresql://{database.access_host}:{database.access_port}/{database.name}"
        f"?sslmode={database.ssl_mode.value}"
    )
    assert env["FLYWAY_USER"] == migrator
    assert env["FLYWAY_PASSWORD"] == {"secretKeyRef": {"name": name, "key": "password"}}
    # The Job waits for the login it reads.
    assert secret.urn in local_run.flyway_job().dependencies


def test_a_dba_managed_login_needs_its_password_and_an_external_database() -> None:
    missing = run_program("local", secrets={})
    assert missing.error is not None
    assert "tradestream-database:migratorPassword: missing required secret" in str(missing.error)
    in_cluster = run_program("local", config={"databaseFlavor": "bitnami"}, secrets={})
    assert "databaseRolesManagedBy: is dba but databaseFlavor is bitnami" in str(in_cluster.error)
