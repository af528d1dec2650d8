"""Flavors under mocks: the same migration side, roles managed where Pulumi reaches the database."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.program import (
    CLOUDNATIVE_PG,
    ProgramRun,
    is_secret,
    names_for,
    plain_strings,
    run_program,
)

JOB = "kubernetes:batch/v1:Job"
ROLE = "postgresql:index/role:Role"
GRANT = "postgresql:index/grant:Grant"
DEFAULTS = "postgresql:index/defaultPrivileges:DefaultPrivileges"
PROVIDER = "pulumi:providers:postgresql"
SECRET = "kubernetes:core/v1:Secret"
EXTERNAL = {
    "databaseFlavor": "external",
    "databaseRolesManagedBy": "pulumi",
    "databaseAccessHost": "pg.internal.example",
    "databaseSslMode": "verify-full",
    "databaseCaSecret": "pg-internal-ca",
}
EXTERNAL_SECRETS = {"adminPassword": "ext-admin-Pw-4455"}


def env_of(run: ProgramRun) -> dict[str, Any]:
    (container,) = run.flyway_job().inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def dev(flavor: str) -> dict[str, str]:
    """What these tests spell out, over whatever the dev stack file holds, for `flavor`."""
    spelled = {**names_for("dev", flavor), "namespace": "tradestream-dev"}
    return {**spelled, "cnpgInstances": "3"} if flavor == "cloudnative-pg" else spelled


def flavor_runs() -> dict[str, ProgramRun]:
    return {
        "bitnami": run_program("dev", config=dev("bitnami")),
        "bitnami+roles": run_program(
            "dev",
            config={
                **dev("bitnami"),
                "databaseRolesManagedBy": "pulumi",
                "databaseAccessHost": "127.0.0.1",
                "databaseSslMode": "disable",
            },
        ),
        "cloudnative-pg": run_program("dev", config={**dev("cloudnative-pg"), **CLOUDNATIVE_PG}),
        "cloudnative-pg+roles": run_program(
            "dev",
            config={
                **dev("cloudnative-pg"),
                **CLOUDNATIVE_PG,
                "databaseRolesManagedBy": "pulumi",
                "databaseAccessHost": "127.0.0.1",
            },
        ),
        "external": run_program(
            "dev", config={**dev("external"), **EXTERNAL}, secrets=EXTERNAL_SECRETS
        ),
    }


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    result = flavor_runs()
    for name, run in result.items():
        assert run.error is None, f"{name}: {run.error}"
    return result


def test_the_job_is_the_same_component_for_every_flavor(runs: dict[str, ProgramRun]) -> None:
    shapes = set()
    for run in runs.values():
        spec = run.flyway_job().inputs["spec"]
        container = spec["template"]["spec"]["containers"][0]
        shapes.add((container["image"], tuple(container["command"]), tuple(sorted(env_of(run)))))
    assert len(shapes) == 1


@pytest.mark.parametrize(
    ("flavor", "url", "user", "secret"),
    [
        (
            "bitnami",
            "jdbc:postgresql://tradestream-postgresql.tradestream-dev.svc.cluster.local:5432/tradestream",
            "tradestream_owner",
            ("tradestream-postgresql-credentials", "password"),
        ),
        (
            "bitnami+roles",
            "jdbc:postgresql://tradestream-postgresql.tradestream-dev.svc.cluster.local:5432/tradestream",
            "tradestream_migrator",
            ("tradestream-migrator-credentials", "password"),
        ),
        (
            "cloudnative-pg",
            "jdbc:postgresql://tradestream-pg-rw.tradestream-dev.svc.cluster.local:5432/tradestream"
            "?sslmode=verify-full&sslrootcert=/flyway/tls/ca.crt",
            "tradestream_owner",
            ("tradestream-pg-app", "password"),
        ),
        (
            "cloudnative-pg+roles",
            "jdbc:postgresql://tradestream-pg-rw.tradestream-dev.svc.cluster.local:5432/tradestream"
            "?sslmode=verify-full&sslrootcert=/flyway/tls/ca.crt",
            "tradestream_migrator",
            ("tradestream-migrator-credentials", "password"),
        ),
        (
            "external",
            "jdbc:postgresql://pg.internal.example:5432/tradestream"
            "?sslmode=verify-full&sslrootcert=/flyway/tls/ca.crt",
            "tradestream_migrator",
            ("tradestream-migrator-credentials", "password"),
        ),
    ],
)
def test_each_flavor_yields_the_endpoint_contract(
    runs: dict[str, ProgramRun], flavor: str, url: str, user: str, secret: tuple[str, str]
) -> None:
    env = env_of(runs[flavor])
    assert env["FLYWAY_URL"] == url
    assert env["FLYWAY_USER"] == user
    assert env["FLYWAY_PASSWORD"] == {"secretKeyRef": {"name": secret[0], "key": secret[1]}}
    assert runs[flavor].outputs["credentialsSecretName"] == secret[0]


def test_roles_exist_only_where_pulumi_reaches_the_database(runs: dict[str, ProgramRun]) -> None:
    with_roles = {name for name, run in runs.items() if run.of_type(ROLE)}
    assert with_roles == {"bitnami+roles", "cloudnative-pg+roles", "external"}


@pytest.mark.parametrize("flavor", ["bitnami+roles", "cloudnative-pg+roles", "external"])
def test_roles_grants_and_default_privileges_come_before_the_job(
    runs: dict[str, ProgramRun], flavor: str
) -> None:
    run = runs[flavor]
    job = run.flyway_job()
    managed = run.of_type(ROLE) + run.of_type(GRANT) + run.of_type(DEFAULTS)
    assert len(run.of_type(ROLE)) == 3
    assert len(run.of_type(DEFAULTS)) == 4
    for resource in managed:
        assert resource.urn in job.dependencies, f"{resource.name} is not ordered before the Job"
    provider = run.one(PROVIDER)
    database = next(
        r
        for r in run.resources
        if r.type.startswith("tradestream:database:") and r.type.endswith("Postgres")
    )
    database_children = [r.urn for r in run.resources if r.parent == database.urn]
    assert set(database_children) <= set(provider.dependencies)
    roles = {r.inputs["name"]: r for r in run.of_type(ROLE)}
    for default in run.of_type(DEFAULTS):
        assert roles[default.inputs["owner"]].urn in default.dependencies
        assert roles[default.inputs["role"]].urn in default.dependencies


@pytest.mark.parametrize("flavor", ["bitnami+roles", "cloudnative-pg+roles", "external"])
def test_roles_are_unprivileged_logins(runs: dict[str, ProgramRun], flavor: str) -> None:
    for role in runs[flavor].of_type(ROLE):
        inputs = role.inputs
        assert inputs["login"] is True
        assert inputs["superuser"] is False
        assert inputs["createDatabase"] is False
        assert inputs["createRole"] is False
        assert is_secret(role.wire["password"])
        # Removed from the model, a role's tables are reassigned before DROP OWNED, not dropped.
        assert inputs["skipReassignOwned"] is False


@pytest.mark.parametrize("flavor", list(flavor_runs.__code__.co_consts[1:2]) or ["external"])
def test_grants_follow_the_privilege_model(runs: dict[str, ProgramRun], flavor: str) -> None:
    grants = {
        (g.inputs["role"], g.inputs["objectType"]): g.inputs["privileges"]
        for g in runs["external"].of_type(GRANT)
    }
    assert grants[("tradestream_app", "table")] == ["DELETE", "INSERT", "SELECT", "UPDATE"]
    assert grants[("tradestream_readonly", "table")] == ["SELECT"]
    assert grants[("public", "schema")] == []
    assert grants[("tradestream_migrator", "schema")] == ["CREATE", "USAGE"]


def test_role_secrets_are_delivered_to_kubernetes(runs: dict[str, ProgramRun]) -> None:
    names = {s.inputs["metadata"]["name"] for s in runs["external"].of_type(SECRET)}
    assert names == {
        "tradestream-migrator-credentials",
        "tradestream-app-credentials",
        "tradestream-readonly-credentials",
    }
    for secret in runs["external"].of_type(SECRET):
        assert is_secret(secret.wire["stringData"])


def test_external_provider_uses_the_admin_from_secret_config(runs: dict[str, ProgramRun]) -> None:
    provider = runs["external"].one(PROVIDER)
    assert provider.inputs["host"] == "pg.internal.example"
    assert provider.inputs["sslmode"] == "verify-full"
    assert provider.inputs["username"] == "postgres"
    assert not runs["external"].of_type("kubernetes:helm.sh/v3:Release")


def test_cloudnative_pg_cluster_and_operator(runs: dict[str, ProgramRun]) -> None:
    run = runs["cloudnative-pg"]
    cluster = run.one("kubernetes:postgresql.cnpg.io/v1:Cluster")
    operator = run.one("kubernetes:helm.sh/v3:Release")
    assert operator.inputs["chart"] == "cloudnative-pg"
    assert operator.urn in cluster.dependencies
    spec = cluster.inputs["spec"]
    assert spec["instances"] == 3
    assert spec["bootstrap"] == {
        "initdb": {"database": "tradestream", "owner": "tradestream_owner"}
    }
    assert spec["enableSuperuserAccess"] is False
    assert json.loads(cluster.inputs["metadata"]["annotations"]["pulumi.com/waitFor"]) == [
        "condition=Ready",
        f"jsonpath={{.status.readyInstances}}={int(spec['instances'])}",
    ]
    assert cluster.urn in run.flyway_job().dependencies
    with_roles = runs["cloudnative-pg+roles"].one("kubernetes:postgresql.cnpg.io/v1:Cluster")
    assert with_roles.inputs["spec"]["superuserSecret"] == {
        "name": "tradestream-pg-superuser-credentials"
    }


def test_an_installed_operator_is_not_installed_again(run_stack: Callable[..., ProgramRun]) -> None:
    run = run_stack("dev", config={**CLOUDNATIVE_PG, "cnpgInstallOperator": "false"})
    assert run.of_type("kubernetes:helm.sh/v3:Release") == []


def test_no_password_in_plain_text_for_any_flavor(runs: dict[str, ProgramRun]) -> None:
    for name, run in runs.items():
        # Without managed roles the operator makes every cloudnative-pg password itself.
        assert run.secret_values or name == "cloudnative-pg", name
        for resource in run.resources:
            for text in plain_strings(resource.wire):
                for secret in run.secret_values:
                    assert secret not in text, f"{name}: {resource.type} {resource.name} leaks"
        public = {k: v for k, v in run.outputs.items() if k not in run.secret_outputs}
        for secret in run.secret_values:
            assert secret not in json.dumps(public), name


@pytest.mark.parametrize(
    ("config", "secrets", "words"),
    [
        (
            {"databaseFlavor": "external", "databaseRolesManagedBy": "pulumi"},
            EXTERNAL_SECRETS,
            "databaseAccessHost: is empty but databaseFlavor is external",
        ),
        (EXTERNAL, {}, "adminPassword: missing required secret (databaseFlavor is external)"),
        ({"databaseFlavor": "kubernetes"}, {}, "one of bitnami, cloudnative-pg, external"),
        (
            {
                **CLOUDNATIVE_PG,
                "passwordSource": "config",
                "databaseRolesManagedBy": "pulumi",
                "databaseAccessHost": "h",
            },
            {},
            "adminPassword: missing required secret",
        ),
        ({"databaseSslMode": "always"}, {}, "one of disable, require, verify-ca, verify-full"),
    ],
)
def test_bad_flavor_settings_stop_the_preview(
    config: dict[str, str], secrets: dict[str, str], words: str
) -> None:
    run = run_program("dev", config=config, secrets=secrets)
    assert run.error is not None
    assert words in str(run.error)
    assert run.resources == []


def test_the_migrator_joins_the_in_cluster_owner_but_not_an_external_one(
    runs: dict[str, ProgramRun],
) -> None:
    grant_role = "postgresql:index/grantRole:GrantRole"
    for flavor in ("bitnami+roles", "cloudnative-pg+roles"):
        (membership,) = runs[flavor].of_type(grant_role)
        assert membership.inputs["role"] == "tradestream_migrator"
        assert membership.inputs["grantRole"] == "tradestream_owner"
        assert membership.urn in runs[flavor].flyway_job().dependencies
    assert runs["external"].of_type(grant_role) == []


@pytest.mark.parametrize("flavor", ["bitnami+roles", "cloudnative-pg+roles", "external"])
def test_grants_and_default_privileges_run_one_at_a_time(
    runs: dict[str, ProgramRun], flavor: str
) -> None:
    """Concurrent GRANT/REVOKE on the same objects fails with "tuple concurrently updated"."""
    run = runs[flavor]
    chain = [r for r in run.resources if r.type in (GRANT, DEFAULTS)]
    assert len(chain) > 2
    for before, after in itertools.pairwise(chain):
        assert before.urn in after.dependencies, f"{after.name} does not wait for {before.name}"


def test_cloudnative_pg_metrics_use_a_pod_monitor_not_the_deprecated_flag() -> None:
    run = run_program("prod", config={**names_for("prod"), "postgresMetricsEnabled": "true"})
    cluster = run.one("kubernetes:postgresql.cnpg.io/v1:Cluster").inputs["spec"]
    assert "monitoring" not in cluster
    monitor = run.one("kubernetes:monitoring.coreos.com/v1:PodMonitor").inputs
    assert monitor["spec"]["selector"] == {"matchLabels": {"cnpg.io/cluster": "tradestream-pg"}}
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "metrics"}]


def test_cloudnative_pg_instances_admit_exactly_their_clients() -> None:
    config = {
        **names_for("staging"),
        "postgresNetworkPolicyEnabled": "true",
        "postgresMetricsEnabled": "true",
        "cnpgOperatorNamespace": "cnpg-system",
    }
    run = run_program("staging", config=config)
    policy = run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]
    assert policy["podSelector"] == {"matchLabels": {"cnpg.io/cluster": "tradestream-pg"}}
    *admitted, metrics = policy["ingress"]
    peers = [rule["from"][0] for rule in admitted]
    assert peers[0] == {"podSelector": {"matchLabels": {"cnpg.io/cluster": "tradestream-pg"}}}
    assert peers[1] == {"podSelector": {"matchLabels": {"tradestream-pg-client": "true"}}}
    assert peers[2]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}
    }
    # Metrics on: the exporter's port alone, to whatever scrapes it.
    assert metrics == {"ports": [{"protocol": "TCP", "port": 9187}]}
    quiet = run_program("staging", config={**config, "postgresMetricsEnabled": "false"})
    rules = quiet.one("kubernetes:networking.k8s.io/v1:NetworkPolicy").inputs["spec"]["ingress"]
    assert all("from" in rule for rule in rules)
    assert all(port["port"] != 9187 for rule in rules for port in rule["ports"])
    job = run.flyway_job().inputs
    assert job["spec"]["template"]["metadata"]["labels"]["tradestream-pg-client"] == "true"
    assert not run_program(
        "staging", config={**config, "postgresNetworkPolicyEnabled": "false"}
    ).of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")


def test_a_verified_external_server_needs_its_ca_and_the_pod_mounts_it(
    runs: dict[str, ProgramRun],
) -> None:
    pod = runs["external"].flyway_job().inputs["spec"]["template"]["spec"]
    [tls] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "pg-internal-ca"
    assert {"name": "tls", "mountPath": "/flyway/tls", "readOnly": True} in (
        pod["containers"][0]["volumeMounts"]
    )
    refused = run_program(
        "dev", config={**EXTERNAL, "databaseCaSecret": None}, secrets=EXTERNAL_SECRETS
    )
    assert "databaseCaSecret: is empty but databaseSslMode is verify-full" in str(refused.error)


def test_the_bitnami_chart_serves_no_tls_so_a_tls_mode_is_refused() -> None:
    refused = run_program(
        "dev",
        config={"databaseRolesManagedBy": "pulumi", "databaseAccessHost": "pg.example"},
        secrets={},
    )
    assert "databaseSslMode: is require but the Bitnami chart serves no TLS" in str(refused.error)
