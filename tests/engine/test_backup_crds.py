"""The backup objects of staging and prod, checked by a real API server against the CRDs of
the operator (`Backup`) and of the Barman Cloud plugin (`ObjectStore`) at the versions the
stacks are written for: server-side dry runs with strict field validation. The CRDs come
from the projects' Go modules at test time; nothing is committed."""

from __future__ import annotations

from typing import Any, Final

import pytest

from standins.cluster.api import ApiError, Client
from tests.engine.conftest import install_crd
from tests.engine.test_cloudnative_pg_crd import OPERATOR_MODULE, integral, pinned_operator
from tests.program import run_program

pytestmark = pytest.mark.engine

PLUGIN_MODULE: Final = "github.com/cloudnative-pg/plugin-barman-cloud"
PLUGIN_VERSION: Final = "0.15.0"
"""The Barman Cloud plugin release the stacks' ObjectStore is written for (CloudNativePG
1.26 or later)."""


@pytest.fixture(scope="module")
def backup_crds(kube: Client) -> None:
    install_crd(
        kube,
        OPERATOR_MODULE,
        pinned_operator(),
        "config/crd/bases/postgresql.cnpg.io_backups.yaml",
    )
    install_crd(
        kube,
        OPERATOR_MODULE,
        pinned_operator(),
        "config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml",
    )
    install_crd(
        kube,
        PLUGIN_MODULE,
        PLUGIN_VERSION,
        "config/crd/bases/barmancloud.cnpg.io_objectstores.yaml",
    )


def dry_run(kube: Client, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    namespace = obj["metadata"]["namespace"]
    if kube.get_or_none(f"/api/v1/namespaces/{namespace}") is None:
        kube.post("/api/v1/namespaces", {"metadata": {"name": namespace}})
    collection = path.format(namespace=namespace)
    try:
        return kube.post(f"{collection}?dryRun=All&fieldValidation=Strict", obj)
    except ApiError as error:
        raise AssertionError(f"the API server refused {obj['kind']}: {error}") from error


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_backup_and_its_object_store_pass_their_crds(
    kube: Client, backup_crds: None, stack: str
) -> None:
    run = run_program(stack)
    backup = integral(run.one("kubernetes:postgresql.cnpg.io/v1:Backup").inputs)
    backup["metadata"]["name"] = "before-migration"  # the engine names it on `up`
    accepted = dry_run(kube, "/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/backups", backup)
    assert accepted["spec"]["method"] == "plugin"
    store = integral(run.one("kubernetes:barmancloud.cnpg.io/v1:ObjectStore").inputs)
    accepted = dry_run(
        kube, "/apis/barmancloud.cnpg.io/v1/namespaces/{namespace}/objectstores", store
    )
    assert accepted["spec"]["retentionPolicy"] == store["spec"]["retentionPolicy"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_scheduled_backup_passes_its_crd(kube: Client, backup_crds: None, stack: str) -> None:
    scheduled = integral(
        run_program(stack).one("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup").inputs
    )
    accepted = dry_run(
        kube, "/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/scheduledbackups", scheduled
    )
    assert accepted["spec"]["schedule"] == scheduled["spec"]["schedule"]
    assert accepted["spec"]["method"] == "plugin"


def test_a_snapshot_backup_passes_too_and_a_bad_retention_is_refused(
    kube: Client, backup_crds: None
) -> None:
    run = run_program(
        "staging",
        config={"cnpgBackupMethod": "volume-snapshot", "cnpgBackupSnapshotClass": "csi"},
    )
    backup = integral(run.one("kubernetes:postgresql.cnpg.io/v1:Backup").inputs)
    backup["metadata"]["name"] = "before-migration"
    assert (
        dry_run(kube, "/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/backups", backup)["spec"][
            "method"
        ]
        == "volumeSnapshot"
    )
    store = integral(
        run_program("prod").one("kubernetes:barmancloud.cnpg.io/v1:ObjectStore").inputs
    )
    store["spec"]["retentionPolicy"] = "30 days"
    with pytest.raises(AssertionError, match="retentionPolicy"):
        dry_run(kube, "/apis/barmancloud.cnpg.io/v1/namespaces/{namespace}/objectstores", store)


def test_a_gs_object_store_through_workload_identity_passes_its_crd(
    kube: Client, backup_crds: None
) -> None:
    config = {
        "cnpgBackupDestinationPath": "gs://tradestream-database-backups/staging",
        "cnpgBackupCredentials": "workload-identity",
        "cnpgBackupGcpServiceAccount": "backups@tradestream-staging.iam.gserviceaccount.com",
    }
    store = integral(
        run_program("staging", config=config)
        .one("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
        .inputs
    )
    accepted = dry_run(
        kube, "/apis/barmancloud.cnpg.io/v1/namespaces/{namespace}/objectstores", store
    )
    configuration = accepted["spec"]["configuration"]
    assert configuration["googleCredentials"] == {"gkeEnvironment": True}
    assert "s3Credentials" not in configuration


def test_the_stores_credentials_secret_passes_the_api_server(kube: Client) -> None:
    """The Secret the program makes from the stack's access keys (staging, prod)."""
    secret = integral(run_program("staging").named("tradestream-backup-credentials").inputs)
    accepted = dry_run(
        kube,
        "/api/v1/namespaces/{namespace}/secrets",
        {"apiVersion": "v1", "kind": "Secret", **secret},
    )
    assert set(accepted["data"]) == {"ACCESS_KEY_ID", "ACCESS_SECRET_KEY"}
