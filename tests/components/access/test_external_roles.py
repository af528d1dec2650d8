"""An external database's roles under mocks: managed from inside the cluster as the managed
service's admin, and, managed by Pulumi, the migrator that no destroy drops."""

from __future__ import annotations

from typing import Any

import pytest

from components.access import grants_spec, scram
from components.access.createrole import createrole_sql
from components.access.privileges import privilege_model
from components.contract import VERIFIER_KEY
from tests.contract.harness.lifecycle import destroyed, kept_by_destroy
from tests.program import ProgramRun, is_secret, plain_strings, run_program

SECRET = "kubernetes:core/v1:Secret"
PASSWORD = "random:index/randomPassword:RandomPassword"
ROLE = "postgresql:index/role:Role"
PROVIDER = "pulumi:providers:postgresql"
GRANTS = "tradestream:database:RoleGrants"
JOB = "kubernetes:batch/v1:Job"
EXTERNAL = {
    "databaseFlavor": "external",
    "databaseAccessHost": "pg.internal.example",
    "databaseSslMode": "verify-full",
    "databaseCaSecret": "pg-internal-ca",
    "databaseName": "ledger",
    "databaseAdminUser": "rds_admin",
    "backupImage": "registry.example/postgres:17.6",
}
ADMIN = {"adminPassword": "ext-admin-Pw-4455"}


def external(roles: str, **config: str) -> ProgramRun:
    run = run_program(
        "dev", config={**EXTERNAL, "databaseRolesManagedBy": roles, **config}, secrets=ADMIN
    )
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def cluster() -> ProgramRun:
    return external("cluster", protectDatabase="true")


def env_of(job: Any) -> dict[str, Any]:
    [container] = job.inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def secrets(run: ProgramRun) -> dict[str, Any]:
    return {s.inputs["metadata"]["name"]: s for s in run.of_type(SECRET)}


def test_the_grants_job_runs_psql_from_backup_image_as_the_admin(cluster: ProgramRun) -> None:
    job = cluster.grants_job()
    [container] = job.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/postgres:17.6"
    assert container["command"][0] == "psql"
    env = env_of(job)
    assert env["PGUSER"] == "rds_admin"
    assert env["PGHOST"] == "pg.internal.example"
    assert env["PGDATABASE"] == "ledger"
    assert env["PGSSLMODE"] == "verify-full"
    assert env["PGPASSWORD"] == {
        "secretKeyRef": {"name": "ledger-admin-credentials", "key": "password"}
    }
    # Verifiers, never the passwords themselves, reach a Job whose admin cannot hide them.
    assert not [
        name for name in env if name.startswith("ROLE_PASSWORD_") and "VERIFIER" not in name
    ]
    assert env["ROLE_PASSWORD_VERIFIER_MIGRATOR"] == {
        "secretKeyRef": {"name": "ledger-migrator-credentials", "key": VERIFIER_KEY}
    }
    assert cluster.of_type(PROVIDER) == []
    assert cluster.of_type(ROLE) == []


def test_the_script_is_the_one_for_an_admin_without_superuser(cluster: ProgramRun) -> None:
    [config_map] = cluster.under(GRANTS, "kubernetes:core/v1:ConfigMap")
    script = config_map.inputs["data"]["grants.sql"]
    model = privilege_model("ledger")
    assert script == createrole_sql(model, verifier_env=grants_spec.verifier_env(model))
    assert "pg_authid" not in script
    assert "log_statement" not in script


def test_the_admin_login_and_the_role_verifiers_stay_secret(cluster: ProgramRun) -> None:
    declared = secrets(cluster)
    admin = declared["ledger-admin-credentials"]
    assert admin.inputs["stringData"]["username"] == "rds_admin"
    assert admin.inputs["stringData"]["password"] == ADMIN["adminPassword"]
    for name in ("migrator", "app", "readonly"):
        secret = declared[f"ledger-{name}-credentials"]
        data = secret.inputs["stringData"]
        assert data["username"] == f"ledger_{name}"
        assert data[VERIFIER_KEY] == scram.verifier(f"ledger_{name}", data["password"])
        assert is_secret(secret.wire["stringData"])
    for resource in cluster.resources:
        for text in plain_strings(resource.wire):
            for value in cluster.secret_values:
                assert value not in text, f"{resource.type} {resource.name} leaks"
            assert "SCRAM-SHA-256$" not in text, f"{resource.type} {resource.name} leaks"


def test_flyway_logs_in_as_the_migrator_after_the_grants_job(cluster: ProgramRun) -> None:
    env = env_of(cluster.flyway_job())
    assert env["FLYWAY_USER"] == "ledger_migrator"
    assert env["FLYWAY_PASSWORD"] == {
        "secretKeyRef": {"name": "ledger-migrator-credentials", "key": "password"}
    }
    assert cluster.outputs["appCredentialsSecretName"] == "ledger-app-credentials"
    assert cluster.outputs["readOnlyCredentialsSecretName"] == "ledger-readonly-credentials"
    # A new password runs the Job again: its trigger follows the Secrets.
    assert cluster.grants_job().replacement_trigger is not None


@pytest.mark.parametrize("protect", ["true", "false"])
def test_the_role_logins_are_protected_with_the_database(protect: str) -> None:
    run = external("cluster", protectDatabase=protect)
    logins = [
        r
        for r in run.of_type(SECRET)
        if r.name.endswith(("-migrator-credentials", "-app-credentials", "-readonly-credentials"))
    ]
    passwords = run.of_type(PASSWORD)
    assert len(logins) == 3
    assert len(passwords) == 3
    assert {r.protect for r in (*logins, *passwords)} == {protect == "true"}


def test_an_external_pulumi_migrator_outlives_an_unprotected_destroy() -> None:
    """`make destroy` of an unprotected external stack: the migrator's role, its password and
    the provider it needs stay; the other roles, grants and default privileges go."""
    run = external("pulumi", protectDatabase="false")
    roles = {r.inputs["name"]: r for r in run.of_type(ROLE)}
    assert roles["ledger_migrator"].protect
    assert not roles["ledger_app"].protect
    kept = kept_by_destroy(run)
    assert roles["ledger_migrator"].urn in kept
    assert run.one(PROVIDER).urn in kept
    assert run.named("tradestream-migrator-password").urn in kept
    gone = {r.urn for r in destroyed(run)}
    assert roles["ledger_app"].urn in gone
    assert roles["ledger_readonly"].urn in gone
    assert all(r.urn in gone for r in run.of_type("postgresql:index/grant:Grant"))
    assert run.named("tradestream-migrator-credentials").urn in gone


def test_an_in_cluster_migrator_goes_with_an_unprotected_database() -> None:
    """In-cluster, an unprotected destroy deletes the database itself: its roles go with it."""
    run = run_program(
        "dev",
        config={
            "databaseRolesManagedBy": "pulumi",
            "databaseAccessHost": "127.0.0.1",
            "databaseSslMode": "disable",
            "protectDatabase": "false",
        },
    )
    assert run.error is None, run.error
    assert not any(r.protect for r in run.of_type(ROLE))
    assert kept_by_destroy(run) == set()


def test_a_client_image_whose_psql_cannot_create_the_roles_is_refused() -> None:
    run = run_program(
        "dev",
        config={**EXTERNAL, "databaseRolesManagedBy": "cluster", "backupImage": "postgres:14.9"},
        secrets=ADMIN,
    )
    assert (
        "tradestream-database:backupImage: 'postgres:14.9' is PostgreSQL 14, but "
        "databaseRolesManagedBy cluster runs that image's psql to create the roles"
    ) in str(run.error)
    assert run.resources == []
    for image in ("postgres:17.6@sha256:" + "0" * 64, "registry:5000/postgres", "postgres:15"):
        config = {**EXTERNAL, "databaseRolesManagedBy": "cluster", "backupImage": image}
        assert run_program("dev", config=config, secrets=ADMIN).error is None, image


def test_external_without_managed_roles_names_every_way_to_manage_them() -> None:
    run = run_program("dev", config={**EXTERNAL, "databaseRolesManagedBy": "none"}, secrets=ADMIN)
    message = str(run.error)
    assert "databaseRolesManagedBy: is none but databaseFlavor is external" in message
    for way in ("cluster (the grants Job", "pulumi (Pulumi creates", "dba (a DBA"):
        assert way in message
