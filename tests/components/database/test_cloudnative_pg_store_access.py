"""What the CloudNativePG flavor declares for the object store's access, under mocks: the
Secret it makes from the stack's access keys (secret in every input and output), and the
Workload Identity of a gs:// store."""

from __future__ import annotations

import json
from collections.abc import Callable

from components.database import cloudnative_pg_spec as spec
from tests.program import MOCK_CONFIG_SECRETS, ProgramRun, is_secret, plain_strings

SECRET = "kubernetes:core/v1:Secret"
OBJECT_STORE = "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"
CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
COMPONENT = "tradestream:database:CloudNativePostgres"
KEYS = ("cnpgBackupAccessKeyId", "cnpgBackupSecretAccessKey")
GCP = "backups@tradestream-staging.iam.gserviceaccount.com"
ACCESS_KEYS = {
    "cnpgInstallOperator": "false",
    "cnpgBackupMethod": "barman-cloud",
    "cnpgBackupDestinationPath": "s3://tradestream-database-backups/test",
    "cnpgBackupCredentials": "access-keys",
}
"""Set over the stack file's own, so the tests hold whatever a stack file says."""


def test_the_program_makes_the_stores_secret_from_the_stacks_keys_in_its_namespace(
    run_stack: Callable[..., ProgramRun],
) -> None:
    run = run_stack("staging", config=ACCESS_KEYS)
    [secret] = [
        r for r in run.under(COMPONENT, SECRET) if r.name == "tradestream-backup-credentials"
    ]
    cluster_name = run.one(CLUSTER).inputs["metadata"]["name"]
    assert secret.inputs["metadata"]["name"] == spec.credentials_secret_name(cluster_name)
    assert (
        secret.inputs["metadata"]["namespace"] == run.one(CLUSTER).inputs["metadata"]["namespace"]
    )
    assert secret.inputs["stringData"] == {
        "ACCESS_KEY_ID": MOCK_CONFIG_SECRETS["cnpgBackupAccessKeyId"],
        "ACCESS_SECRET_KEY": MOCK_CONFIG_SECRETS["cnpgBackupSecretAccessKey"],
    }
    # Created before the ObjectStore that names it, and kept with a retained Cluster.
    store = run.one(OBJECT_STORE)
    assert secret.urn in store.dependencies
    assert secret.retain_on_delete is run.one(CLUSTER).retain_on_delete
    s3 = store.inputs["spec"]["configuration"]["s3Credentials"]
    assert {s3["accessKeyId"]["name"], s3["secretAccessKey"]["name"]} == {
        secret.inputs["metadata"]["name"]
    }
    # Made in the namespace the program creates, once it exists.
    namespace = run.one("kubernetes:core/v1:Namespace")
    assert namespace.urn in secret.dependencies


def test_the_access_keys_are_never_plain_in_state_previews_or_outputs(
    run_stack: Callable[..., ProgramRun],
) -> None:
    run = run_stack("staging", config=ACCESS_KEYS)
    values = [MOCK_CONFIG_SECRETS[key] for key in KEYS]
    secret = run.named("tradestream-backup-credentials")
    assert is_secret(secret.wire["stringData"])
    for resource in run.resources:
        plain = " ".join(plain_strings(resource.wire))
        assert not any(value in plain for value in values), resource.name
    for name, value in run.outputs.items():
        assert not any(v in json.dumps(value, default=str) for v in values), name


def test_no_secret_is_made_where_the_platform_or_a_cloud_identity_gives_access(
    run_stack: Callable[..., ProgramRun],
) -> None:
    platform = run_stack(
        "staging",
        config={
            **ACCESS_KEYS,
            "cnpgBackupCredentials": "secret",
            "cnpgBackupCredentialsSecret": "platform-s3",
            "createNamespace": "false",
        },
    )
    assert [r for r in platform.resources if r.name == "tradestream-backup-credentials"] == []
    s3 = platform.one(OBJECT_STORE).inputs["spec"]["configuration"]["s3Credentials"]
    assert s3["accessKeyId"]["name"] == "platform-s3"


def test_workload_identity_on_gke_for_a_gs_store(run_stack: Callable[..., ProgramRun]) -> None:
    run = run_stack(
        "staging",
        config={
            **ACCESS_KEYS,
            "cnpgBackupDestinationPath": "gs://tradestream-database-backups/staging",
            "cnpgBackupCredentials": "workload-identity",
            "cnpgBackupGcpServiceAccount": GCP,
        },
    )
    configuration = run.one(OBJECT_STORE).inputs["spec"]["configuration"]
    assert configuration["googleCredentials"] == {"gkeEnvironment": True}
    assert "s3Credentials" not in configuration
    template = run.one(CLUSTER).inputs["spec"]["serviceAccountTemplate"]
    assert template == {"metadata": {"annotations": {"iam.gke.io/gcp-service-account": GCP}}}
    assert [r for r in run.resources if r.name == "tradestream-backup-credentials"] == []
