"""The Bitnami PostgreSQL component under mocks: credentials, the release, what it exposes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.program import ProgramRun, is_secret, run_program, stack_settings

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
PASSWORD = "random:index/randomPassword:RandomPassword"
COMPONENT = "tradestream:database:BitnamiPostgres"
REPLICATED = {
    "postgresArchitecture": "replication",
    "postgresReadReplicas": "1",
    "postgresStorageSize": "100Gi",
    "postgresChartVersion": "16.7.26",
}


@pytest.fixture(scope="module", params=["dev", "dev-replicated", "dev-config-passwords"])
def bitnami(request: pytest.FixtureRequest) -> ProgramRun:
    """dev as committed, and dev as a replicated Bitnami stack with configured passwords."""
    config = {
        "dev": {},
        "dev-replicated": REPLICATED,
        "dev-config-passwords": {**REPLICATED, "passwordSource": "config"},
    }[request.param]
    run = run_program("dev", config=config)
    assert run.error is None, run.error
    return run


def test_release_is_atomic_pinned_and_reads_the_owned_secret(bitnami: ProgramRun) -> None:
    release = bitnami.one(RELEASE).inputs
    assert release["chart"] == "oci://registry-1.docker.io/bitnamicharts/postgresql"
    assert release["version"]  # pinned per stack
    assert release["atomic"] is True
    assert release["cleanupOnFail"] is True
    assert release["timeout"] > 0
    secret = bitnami.one(SECRET).inputs
    assert release["values"]["auth"]["existingSecret"] == secret["metadata"]["name"]
    assert release["values"]["auth"]["username"] != "postgres"


def test_chart_version_and_storage_come_from_each_stack_file(
    run_stack: Callable[..., ProgramRun],
) -> None:
    replicated = run_stack("dev", config=REPLICATED)
    values = replicated.one(RELEASE).inputs["values"]
    assert replicated.one(RELEASE).inputs["version"] == "16.7.26"
    assert values["architecture"] == "replication"
    assert values["readReplicas"]["replicaCount"] == 1
    assert values["primary"]["persistence"]["size"] == "100Gi"
    committed = stack_settings("dev").postgres
    dev = run_stack("dev").one(RELEASE).inputs
    assert dev["version"] == committed.chart_version
    assert dev["values"]["primary"]["persistence"]["size"] == committed.storage_size
    assert ("readReplicas" in dev["values"]) is (committed.read_replicas > 0)


def test_secret_holds_every_key_the_chart_reads_and_only_as_secrets(bitnami: ProgramRun) -> None:
    secret = bitnami.one(SECRET)
    expected = {"postgres-password", "password"}
    if "readReplicas" in bitnami.one(RELEASE).inputs["values"]:
        expected.add("replication-password")
    assert set(secret.inputs["stringData"]) == expected
    assert is_secret(secret.wire["stringData"]), "passwords are sent in plain text"


def test_generated_passwords_when_configured_so_and_none_otherwise(
    run_stack: Callable[..., ProgramRun],
) -> None:
    dev = run_stack("dev")
    assert sorted(r.name for r in dev.of_type(PASSWORD)) == [
        "tradestream-admin-password",
        "tradestream-owner-password",
    ]
    for password in dev.of_type(PASSWORD):
        assert password.inputs["length"] >= 32
    configured = run_stack("dev", config={**REPLICATED, "passwordSource": "config"})
    assert configured.of_type(PASSWORD) == []


def test_children_are_parented_and_named_after_the_component(bitnami: ProgramRun) -> None:
    component = next(r for r in bitnami.resources if r.type == COMPONENT)
    children = [r for r in bitnami.resources if r.parent == component.urn]
    assert {r.type for r in children} >= {SECRET, RELEASE}
    for child in children:
        assert child.name.startswith(f"{component.name}-")


def test_release_waits_for_its_secret(bitnami: ProgramRun) -> None:
    release = bitnami.one(RELEASE)
    assert bitnami.one(SECRET).urn in release.dependencies
