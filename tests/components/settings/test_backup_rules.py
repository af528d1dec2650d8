"""How the instances reach the object store, and what the program installs beside the
Cluster: each combination that could not archive is refused, naming the keys, the values and
the fixes (pure: the settings alone)."""

from __future__ import annotations

import pytest

from components.settings import (
    PROJECT,
    CnpgBackupCredentials,
    Secret,
    Settings,
    SettingsError,
    parse_settings,
    required_secrets,
)
from components.settings.declarations import check_object_store_path

BARMAN = {
    "namespace": "ns",
    "databaseFlavor": "cloudnative-pg",
    "cnpgInstallOperator": "false",
    "cnpgBackupMethod": "barman-cloud",
    "cnpgBackupDestinationPath": "s3://bucket/db",
}
KEYS = {"cnpgBackupAccessKeyId": "AKIA-test-id", "cnpgBackupSecretAccessKey": "s3cret-Key-77"}
GCP = "backups@tradestream-prod.iam.gserviceaccount.com"
ARN = "arn:aws:iam::123456789012:role/backups"


def fq(key: str) -> str:
    return f"{PROJECT}:{key}"


def parse(values: dict[str, str | None], secrets: dict[str, str] | None = None) -> Settings:
    """BARMAN with `values` over it (None removes a key); `secrets` as `--secret` sets them."""
    given = {**BARMAN, **values, **(secrets or {})}
    raw = {fq(k): v for k, v in given.items() if v is not None}
    return parse_settings(raw, frozenset(fq(k) for k in secrets or {}))


def refused(values: dict[str, str | None], secrets: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        parse(values, secrets)
    return str(caught.value)


def test_access_keys_are_read_as_secrets_and_called_for_by_the_stack() -> None:
    settings = parse({"cnpgBackupCredentials": "access-keys"}, KEYS)
    assert settings.backup.cnpg_credentials is CnpgBackupCredentials.ACCESS_KEYS
    assert settings.backup.cnpg_access_key_id == Secret("AKIA-test-id")
    assert settings.backup.cnpg_secret_access_key == Secret("s3cret-Key-77")
    values = {fq(k): v for k, v in {**BARMAN, "cnpgBackupCredentials": "access-keys"}.items()}
    assert required_secrets(values) == set(KEYS)
    assert required_secrets({fq(k): v for k, v in BARMAN.items()}) == set()


def test_missing_access_keys_are_named_with_the_command() -> None:
    message = refused({"cnpgBackupCredentials": "access-keys"})
    for key in KEYS:
        assert f"{fq(key)}: missing required secret (cnpgBackupCredentials is access-keys" in (
            message
        )
        assert f"`pulumi config set --secret {key} <value>`" in message


def test_access_keys_in_plain_text_are_refused_without_showing_them() -> None:
    message = refused({"cnpgBackupCredentials": "access-keys", **KEYS})
    assert "cnpgBackupAccessKeyId: is stored in plain text" in message
    assert "s3cret-Key-77" not in message


def test_access_keys_another_way_would_ignore_are_refused() -> None:
    message = refused({}, KEYS)
    assert f"{fq('cnpgBackupAccessKeyId')}: is set but would be ignored" in message
    assert "cnpgBackupCredentials is iam-role" in message
    assert "set cnpgBackupCredentials access-keys" in message
    assert "s3cret-Key-77" not in message


def test_a_platforms_secret_in_a_namespace_the_program_creates_is_refused() -> None:
    message = refused({"cnpgBackupCredentials": "secret", "cnpgBackupCredentialsSecret": "s3"})
    assert f"{fq('cnpgBackupCredentialsSecret')}: 's3' names a Secret the platform made" in (
        message
    )
    assert "createNamespace is true" in message
    assert "namespace 'ns'" in message
    # Both fixes, spelled out.
    assert "`pulumi config set cnpgBackupCredentials access-keys`" in message
    assert "`pulumi config set --secret cnpgBackupSecretAccessKey <key>`" in message
    assert "set createNamespace false" in message
    settings = parse(
        {
            "cnpgBackupCredentials": "secret",
            "cnpgBackupCredentialsSecret": "s3",
            "createNamespace": "false",
        }
    )
    assert settings.backup.cnpg_credentials_secret == "s3"


def test_a_secret_name_is_refused_where_no_secret_is_read_and_needed_where_one_is() -> None:
    ignored = refused({"cnpgBackupCredentialsSecret": "s3", "createNamespace": "false"})
    assert f"{fq('cnpgBackupCredentialsSecret')}: is 's3' but cnpgBackupCredentials is " in (
        ignored
    )
    assert "so it would be ignored; set cnpgBackupCredentials secret" in ignored
    missing = refused({"cnpgBackupCredentials": "secret", "createNamespace": "false"})
    assert "cnpgBackupCredentialsSecret: is empty but cnpgBackupCredentials is secret" in missing
    assert "Bad_Name" in refused({"cnpgBackupCredentialsSecret": "Bad_Name"})


def test_workload_identity_serves_gs_destinations() -> None:
    settings = parse(
        {
            "cnpgBackupDestinationPath": "gs://bucket/db",
            "cnpgBackupCredentials": "workload-identity",
            "cnpgBackupGcpServiceAccount": GCP,
        }
    )
    assert settings.backup.cnpg_gcp_service_account == GCP
    assert check_object_store_path("gs://bucket/db") is None


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        (
            {"cnpgBackupDestinationPath": "gs://bucket/db"},
            "cnpgBackupCredentials",
            "is iam-role, which serves s3:// stores, but cnpgBackupDestinationPath is a gs:// "
            "path; set cnpgBackupCredentials workload-identity",
        ),
        (
            {"cnpgBackupCredentials": "workload-identity"},
            "cnpgBackupCredentials",
            "is workload-identity, which serves gs:// stores, but cnpgBackupDestinationPath is "
            "a s3:// path; set cnpgBackupCredentials access-keys, secret or iam-role",
        ),
        (
            {
                "cnpgBackupDestinationPath": "gs://bucket/db",
                "cnpgBackupCredentials": "workload-identity",
                "cnpgBackupIamRoleArn": ARN,
            },
            "cnpgBackupIamRoleArn",
            f"is {ARN!r} but cnpgBackupCredentials is workload-identity, so it would be ignored",
        ),
        (
            {"cnpgBackupGcpServiceAccount": GCP},
            "cnpgBackupGcpServiceAccount",
            f"is {GCP!r} but cnpgBackupCredentials is iam-role, so it would be ignored; set "
            "cnpgBackupCredentials workload-identity (for gs:// stores)",
        ),
        (
            {
                "cnpgBackupDestinationPath": "gs://bucket/db",
                "cnpgBackupCredentials": "secret",
                "cnpgBackupCredentialsSecret": "gcs-key",
                "createNamespace": "false",
            },
            "cnpgBackupCredentials",
            "is secret, which serves s3:// stores, but cnpgBackupDestinationPath is a gs:// path",
        ),
        (
            {
                "cnpgBackupDestinationPath": "gs://bucket/db",
                "cnpgBackupCredentials": "workload-identity",
                "cnpgBackupEndpointUrl": "https://minio.internal",
            },
            "cnpgBackupEndpointUrl",
            "an S3 endpoint, but cnpgBackupDestinationPath is a gs:// path",
        ),
        (
            {"cnpgBackupGcpServiceAccount": "backups@gmail.com"},
            "cnpgBackupGcpServiceAccount",
            "a Google service account such as backups@project.iam.gserviceaccount.com",
        ),
        (
            {"cnpgBackupDestinationPath": "https://acct.blob.core.windows.net/c/db"},
            "cnpgBackupDestinationPath",
            "is an Azure Blob Storage path: only S3 (and S3-compatible stores) and Google "
            "Cloud Storage are supported",
        ),
    ],
)
def test_a_way_to_the_store_that_does_not_fit_it_is_refused(
    values: dict[str, str | None], key: str, words: str
) -> None:
    message = refused(values)
    assert fq(key) in message
    assert words in message


def test_the_program_does_not_install_the_operator_for_a_plugin_it_cannot_install() -> None:
    message = refused({"cnpgInstallOperator": "true"})
    assert f"{fq('cnpgInstallOperator')}: is true but cnpgBackupMethod is barman-cloud" in message
    assert '"Unknown plugin"' in message
    assert "cert-manager" in message
    assert "set cnpgInstallOperator false" in message
    assert "cnpgBackupMethod volume-snapshot" in message
    # Snapshots need no plugin: the program may install the operator for them.
    snapshots = parse(
        {
            "cnpgInstallOperator": "true",
            "cnpgBackupMethod": "volume-snapshot",
            "cnpgBackupSnapshotClass": "csi",
            "cnpgBackupDestinationPath": None,
        }
    )
    assert snapshots.cnpg.install_operator


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        (
            {"cnpgClusterName": "pg-2", "cnpgRecoverFrom": "pg-2"},
            "cnpgRecoverFrom",
            "Set cnpgBackupServerName to a new folder, such as pg-2-2",
        ),
        (
            {"cnpgBackupServerName": "pg", "cnpgRecoverFrom": "pg"},
            "cnpgRecoverFrom",
            "the folder this cluster would also archive to",
        ),
        (
            {"cnpgRecoveryTargetTime": "2026-12-03T09:59:00Z"},
            "cnpgRecoveryTargetTime",
            "cnpgRecoverFrom is empty, so it would be ignored",
        ),
        (
            {"cnpgRecoverFrom": "pg", "cnpgClusterName": "pg-2", "cnpgRecoveryTargetTime": "x"},
            "cnpgRecoveryTargetTime",
            "is not an RFC 3339 time",
        ),
        (
            {
                "cnpgRecoverFrom": "pg",
                "cnpgClusterName": "pg-2",
                "cnpgRecoveryTargetTime": "2026-12-03 09:59:00",
            },
            "cnpgRecoveryTargetTime",
            "has no UTC offset",
        ),
        (
            {
                "cnpgRecoverFrom": "pg",
                "cnpgClusterName": "pg-2",
                "cnpgBackupMethod": "volume-snapshot",
                "cnpgBackupSnapshotClass": "csi",
            },
            "cnpgRecoverFrom",
            "recovers from the Barman Cloud archive only",
        ),
    ],
)
def test_a_recovery_that_could_not_run_is_refused(
    values: dict[str, str | None], key: str, words: str
) -> None:
    message = refused(values)
    assert fq(key) in message
    assert words in message


def test_a_recovery_into_a_new_folder_is_accepted() -> None:
    settings = parse(
        {
            "cnpgClusterName": "pg-restored",
            "cnpgBackupServerName": "pg-r1",
            "cnpgRecoverFrom": "pg",
            "cnpgRecoveryTargetTime": "2026-12-03T09:59:00+01:00",
        }
    )
    assert settings.backup.cnpg_recover_from == "pg"
