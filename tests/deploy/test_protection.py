"""The database of record is protected from accidental deletion by default; disposable stacks
opt out. A change that would delete or replace it is named, key by key, before any engine
step runs."""

from __future__ import annotations

import pytest

from components.settings import PROJECT, Settings, parse_settings
from deploy.protection import protected_changes, recovery_into_a_deployed_cluster
from tests.program import ProgramRun, for_flavor, run_program, stack_config

NAMESPACE = "kubernetes:core/v1:Namespace"
CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "postgresql:index/role:Role"
GRANT = "postgresql:index/grant:Grant"
JOB = "kubernetes:batch/v1:Job"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_database_its_namespace_and_its_roles_are_protected(stack: str) -> None:
    run = run_program(stack, config={"protectDatabase": "true"})
    for kind in (CLUSTER, NAMESPACE):
        [resource] = run.of_type(kind)
        assert resource.protect, f"{kind} is not protected"
        assert resource.retain_on_delete, f"{kind} would take its volumes along if deleted"
    assert all(r.protect for r in run.of_type(ROLE) + run.of_type(GRANT))
    # What the next deploy replaces anyway is not.
    assert not run.flyway_job().protect


def test_the_bitnami_release_is_protected_when_asked() -> None:
    run = run_program("dev", config={"protectDatabase": "true"})
    release = run.one(RELEASE)
    assert release.protect
    assert release.retain_on_delete


@pytest.mark.parametrize("stack", ["dev", "local"])
def test_disposable_stacks_protect_nothing(stack: str) -> None:
    run: ProgramRun = run_program(stack, config={"protectDatabase": "false", "disposable": "true"})
    assert run.error is None, run.error
    assert run.resources
    assert not [r.name for r in run.resources if r.protect or r.retain_on_delete]


def settings_of(stack: str, **config: str) -> Settings:
    values = for_flavor(stack_config(stack), config.get("databaseFlavor"))
    values.update({f"{PROJECT}:{key}": value for key, value in config.items()})
    return parse_settings(values, frozenset(), require_secrets=False)


PROTECTED = {
    "staging": {"protectDatabase": "true"},
    "dev": {"protectDatabase": "false", "disposable": "true"},
}
"""Whether each stack protects its database in these cases, unless a case says otherwise."""
DEPLOYED = {
    "staging": {
        "namespace": "tradestream-staging",
        "databaseFlavor": "cloudnative-pg",
        "databaseResourceName": "tradestream-pg",
    },
    "dev": {
        "namespace": "tradestream-dev",
        "databaseFlavor": "bitnami",
        "databaseResourceName": "tradestream-postgresql",
    },
}


@pytest.mark.parametrize(
    ("stack", "config", "keys"),
    [
        ("staging", {}, []),
        ("staging", {"namespace": "tradestream-qa"}, ["namespace"]),
        ("staging", {"cnpgClusterName": "tradestream-pg2"}, ["cnpgClusterName"]),
        (
            "staging",
            {"databaseFlavor": "bitnami", "databaseSslMode": "disable"},
            ["databaseFlavor"],
        ),
        ("staging", {"namespace": "x", "protectDatabase": "false", "disposable": "true"}, []),
        ("dev", {"postgresReleaseName": "pg2", "protectDatabase": "true"}, ["postgresReleaseName"]),
        ("dev", {"postgresReleaseName": "pg2"}, []),
    ],
)
def test_protected_changes_name_the_key(
    stack: str, config: dict[str, str], keys: list[str]
) -> None:
    deployed = DEPLOYED[stack]
    flavor = config.get("databaseFlavor", deployed["databaseFlavor"])
    name_key = "cnpgClusterName" if flavor == "cloudnative-pg" else "postgresReleaseName"
    given = {
        "namespace": deployed["namespace"],
        name_key: deployed["databaseResourceName"],
        **PROTECTED[stack],
        **config,
    }
    assert protected_changes(deployed, settings_of(stack, **given)) == keys


def test_a_first_deploy_has_nothing_to_protect() -> None:
    settings = settings_of("staging", namespace="elsewhere", protectDatabase="true")
    assert protected_changes({}, settings) == []


def test_a_recovery_named_for_a_cluster_already_deployed_is_refused() -> None:
    def settings(name: str, origin: str) -> Settings:
        config = {
            "namespace": "ns",
            "databaseFlavor": "cloudnative-pg",
            "cnpgInstallOperator": "false",
            "cnpgBackupMethod": "barman-cloud",
            "cnpgBackupDestinationPath": "s3://bucket/db",
            "cnpgClusterName": name,
            "cnpgBackupServerName": f"{name}-folder",
            "cnpgRecoverFrom": origin,
        }
        return parse_settings({f"{PROJECT}:{k}": v for k, v in config.items() if v})

    deployed = {"databaseResourceName": "pg", "databaseRecoveredFrom": ""}
    message = recovery_into_a_deployed_cluster(deployed, settings("pg", "pg-old"))
    assert message is not None
    assert "cnpgRecoverFrom: is 'pg-old', but pg is deployed already" in message
    assert "set cnpgClusterName to a new name" in message
    # A new Cluster recovers; one created by that recovery stays as it is; no recovery at all.
    assert recovery_into_a_deployed_cluster(deployed, settings("pg-2", "pg")) is None
    recovered = {"databaseResourceName": "pg-2", "databaseRecoveredFrom": "pg"}
    assert recovery_into_a_deployed_cluster(recovered, settings("pg-2", "pg")) is None
    assert recovery_into_a_deployed_cluster(deployed, settings("pg", "")) is None
    assert recovery_into_a_deployed_cluster({}, settings("pg", "pg-old")) is None
