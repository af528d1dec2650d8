"""What every flavor promises the rest of the program (`contract.Database`), checked for each
flavor the chooser knows and for a fourth one made up here: the wiring takes any flavor that
keeps the contract, with no change outside its own module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import database
from components.contract import (
    PASSWORD_KEY,
    TYPE_PREFIX,
    AdminAccess,
    ClusterTarget,
    DatabaseArgs,
    DatabaseEndpoint,
    DumpTarget,
    FlavorKind,
    InClusterAdmin,
    ServerAddress,
    Traits,
    labels,
)
from components.settings import Flavor, Settings
from tests.program import ProgramRun, run_program

JOB = "kubernetes:batch/v1:Job"


class Pooled(pulumi.ComponentResource):
    """A made-up fourth flavor: a database behind a connection pooler, in the namespace."""

    address: ServerAddress
    endpoint: DatabaseEndpoint | None
    admin: AdminAccess | None = None
    in_cluster_admin: InClusterAdmin | None = None
    client_labels: dict[str, str]
    password_versions: Sequence[pulumi.Output[str]] = ()
    host: pulumi.Output[str]
    read_only_host: str

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}:PooledPostgres", name, None, opts)
        ns = args.settings.namespace
        self.address = ServerAddress(f"pooler.{ns}.svc.cluster.local", 6432, "shop")
        self.read_only_host = f"pooler-ro.{ns}.svc.cluster.local"
        self.client_labels = {"pooler-client": "true"}
        k8s.core.v1.Secret(
            f"{name}-owner",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="pooled-owner", namespace=args.namespace, labels=labels("database")
            ),
            string_data={PASSWORD_KEY: "x"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint = DatabaseEndpoint(self.address, "shop_owner", "pooled-owner", PASSWORD_KEY)
        self.host = pulumi.Output.from_input(self.address.host)
        self.register_outputs({"host": self.host})

    def backup_target(self, login: DatabaseEndpoint) -> DumpTarget | ClusterTarget:
        return DumpTarget(login, self.client_labels)


def pooled_traits(settings: Settings) -> Traits:
    return Traits(
        holds_data=True,
        owner=settings.database.owner,
        record_key=None,
        record_name="pooled",
        backup="pg_dump through the pooler",
    )


POOLED = FlavorKind(traits=pooled_traits, deploy=Pooled)


@pytest.fixture
def fourth_flavor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The made-up flavor stands where the chooser would put a new one (the Flavor enum is
    the settings' part of adding a flavor; this test borrows an existing value's slot)."""
    flavors = {**database.FLAVORS, Flavor.BITNAMI: POOLED}
    monkeypatch.setattr(database, "FLAVORS", flavors)


BASE: dict[str, str | None] = {
    "namespace": "shop",
    "databaseName": "shop",
    "databaseRolesManagedBy": "none",
    "passwordSource": "generated",
    "backupBeforeMigrate": "true",
    "protectDatabase": "true",
}
PER_FLAVOR: dict[str, dict[str, str | None]] = {
    "bitnami": {
        "databaseFlavor": "bitnami",
        "databaseOwner": "shop_owner",
        "postgresArchitecture": "standalone",
        "postgresReadReplicas": "0",
    },
    "cloudnative-pg": {
        "databaseFlavor": "cloudnative-pg",
        "databaseOwner": "shop_owner",
        "cnpgBackupMethod": "volume-snapshot",
        "cnpgBackupSnapshotClass": "csi",
        "cnpgInstallOperator": "false",
    },
    "external": {
        "databaseFlavor": "external",
        "databaseRolesManagedBy": "dba",
        "databaseAccessHost": "db.example.internal",
    },
}


def run_flavor(flavor: str) -> ProgramRun:
    run = run_program("dev", config={**BASE, **PER_FLAVOR[flavor]})
    assert run.error is None, run.error
    return run


def container(job: Any) -> dict[str, Any]:
    (only,) = job.inputs["spec"]["template"]["spec"]["containers"]
    return dict(only)


def waits_for(run: ProgramRun, dependencies: Sequence[str], component: str) -> bool:
    """A dependency on a component is one on its children."""
    children = {r.urn for r in run.resources if r.parent == component}
    return component in dependencies or bool(children & set(dependencies))


def keeps_the_contract(run: ProgramRun, component: str) -> None:
    """Flyway reaches the flavor's address with its login, carries its client label, waits for
    it and for the backup before it; the outputs an application reads are there."""
    (db,) = run.of_type(component)
    flyway = run.flyway_job()
    env = {e["name"]: e for e in container(flyway)["env"]}
    host = run.outputs["databaseHost"]
    assert f"//{host}:" in env["FLYWAY_URL"]["value"]
    pod_labels = flyway.inputs["spec"]["template"]["metadata"]["labels"]
    backups = run.under(f"{TYPE_PREFIX}:MigrationBackup", JOB) + run.under(
        f"{TYPE_PREFIX}:MigrationBackup", "kubernetes:postgresql.cnpg.io/v1:Backup"
    )
    assert len(backups) == 1
    assert backups[0].urn in flyway.dependencies
    assert waits_for(run, flyway.dependencies, db.urn)
    assert waits_for(run, backups[0].dependencies, db.urn)
    component_obj = run.namespace["db"]
    assert set(component_obj.client_labels.items()) <= set(pod_labels.items())
    for key in ("readWriteHost", "readOnlyHost", "databasePort"):
        assert run.outputs[key] not in (None, ""), key
    assert "appCredentialsSecretName" in run.outputs


@pytest.mark.parametrize(
    ("flavor", "component"),
    [
        ("bitnami", "BitnamiPostgres"),
        ("cloudnative-pg", "CloudNativePostgres"),
        ("external", "ExternalPostgres"),
    ],
)
def test_each_flavor_keeps_the_contract(flavor: str, component: str) -> None:
    keeps_the_contract(run_flavor(flavor), f"{TYPE_PREFIX}:{component}")


@pytest.mark.usefixtures("fourth_flavor")
def test_a_fourth_flavor_needs_nothing_but_its_module_and_a_line_in_the_chooser() -> None:
    run = run_flavor("bitnami")  # the slot the made-up flavor stands in
    keeps_the_contract(run, f"{TYPE_PREFIX}:PooledPostgres")
    env = {e["name"]: e for e in container(run.flyway_job())["env"]}
    assert env["FLYWAY_URL"]["value"] == "jdbc:postgresql://pooler.shop.svc.cluster.local:6432/shop"
    assert run.outputs["readOnlyHost"] == "pooler-ro.shop.svc.cluster.local"
    assert run.outputs["databaseResourceName"] == "pooled"
