"""Rules across the backup keys (pure): a backup that could not run would stop every
migration, and archiving that cannot reach its store fails `up` only after the deploy
started; each message names the keys to change and how."""

from __future__ import annotations

from typing import Final

from components.settings.declarations import (
    CnpgBackupCredentials,
    CnpgBackupMethod,
    Flavor,
    fqkey,
    object_store_scheme,
)
from components.settings.keys import Settings

ACCESS_KEYS: Final = ("cnpgBackupAccessKeyId", "cnpgBackupSecretAccessKey")
"""The secret keys `cnpgBackupCredentials: access-keys` reads."""
SCHEME_OF: Final = {
    CnpgBackupCredentials.ACCESS_KEYS: "s3",
    CnpgBackupCredentials.SECRET: "s3",
    CnpgBackupCredentials.IAM_ROLE: "s3",
    CnpgBackupCredentials.WORKLOAD_IDENTITY: "gs",
}
"""The store each way of reaching it serves: the program gives the plugin a Secret's keys
as S3 credentials only (no `googleCredentials.applicationCredentials`)."""
SET_KEYS: Final = (
    "`pulumi config set cnpgBackupCredentials access-keys`, "
    "`pulumi config set --secret cnpgBackupAccessKeyId <id>` and "
    "`pulumi config set --secret cnpgBackupSecretAccessKey <key>`"
)


def barman_cloud(s: Settings) -> bool:
    """The stack archives through the Barman Cloud plugin (its keys are read)."""
    return (
        s.database.flavor is Flavor.CLOUDNATIVE_PG
        and s.backup.cnpg_method is CnpgBackupMethod.BARMAN_CLOUD
    )


def required_backup_secrets(s: Settings) -> set[str]:
    """The secret keys the object store's access needs."""
    if barman_cloud(s) and s.backup.cnpg_credentials is CnpgBackupCredentials.ACCESS_KEYS:
        return set(ACCESS_KEYS)
    return set()


def backup_secret_checks(s: Settings, *, require: bool = True) -> list[str]:
    """The access keys are set exactly where `cnpgBackupCredentials: access-keys` reads them."""
    b = s.backup
    given = {
        "cnpgBackupAccessKeyId": b.cnpg_access_key_id,
        "cnpgBackupSecretAccessKey": b.cnpg_secret_access_key,
    }
    required = required_backup_secrets(s)
    problems = []
    for key, value in given.items():
        if key in required and value is None and require:
            problems.append(
                f"{fqkey(key)}: missing required secret (cnpgBackupCredentials is access-keys: "
                "the program makes the object store's Secret from it); set it with "
                f"`pulumi config set --secret {key} <value>`"
            )
        elif key not in required and value is not None:
            problems.append(
                f"{fqkey(key)}: is set but would be ignored (cnpgBackupCredentials is "
                f"{b.cnpg_credentials.value}); remove it with `pulumi config rm {key}`, or "
                "set cnpgBackupCredentials access-keys to have the program make the Secret"
            )
    return problems


def backup_checks(s: Settings) -> list[str]:
    """What the backup before a migration, and the archive it relies on, need."""
    b = s.backup
    problems = []
    if b.before_migrate and s.database.flavor is Flavor.CLOUDNATIVE_PG:
        if b.cnpg_method is CnpgBackupMethod.BARMAN_CLOUD and not b.cnpg_destination_path:
            problems.append(
                f"{fqkey('cnpgBackupDestinationPath')}: is empty but backupBeforeMigrate is "
                "true and cnpgBackupMethod is barman-cloud; set it to the object store path "
                "(such as s3://bucket/tradestream), set cnpgBackupMethod volume-snapshot, or "
                "set backupBeforeMigrate false to migrate without a way back"
            )
        if b.cnpg_method is CnpgBackupMethod.VOLUME_SNAPSHOT and not b.cnpg_snapshot_class:
            problems.append(
                f"{fqkey('cnpgBackupSnapshotClass')}: is empty but cnpgBackupMethod is "
                "volume-snapshot; name the cluster's VolumeSnapshotClass (kubectl get "
                "volumesnapshotclass), or set backupBeforeMigrate false"
            )
    if barman_cloud(s):
        problems.extend(_plugin_checks(s))
        problems.extend(_access_checks(s))
    problems.extend(_recovery_checks(s))
    return problems


def _recovery_checks(s: Settings) -> list[str]:
    """A recovery the operator could not run fails only after the deploy started, and one
    into the folder it reads from would be refused by the plugin."""
    b = s.backup
    if s.database.flavor is not Flavor.CLOUDNATIVE_PG:
        return []
    if not b.cnpg_recover_from:
        if b.cnpg_recovery_target_time:
            return [
                f"{fqkey('cnpgRecoveryTargetTime')}: is {b.cnpg_recovery_target_time!r} but "
                "cnpgRecoverFrom is empty, so it would be ignored; set cnpgRecoverFrom to the "
                "folder of the cluster to recover from, or remove the key"
            ]
        return []
    if not barman_cloud(s) or not b.cnpg_destination_path:
        return [
            f"{fqkey('cnpgRecoverFrom')}: is {b.cnpg_recover_from!r} but the stack has no "
            "object store (cnpgBackupMethod barman-cloud with cnpgBackupDestinationPath): the "
            "program recovers from the Barman Cloud archive only. Set both to the store the "
            "origin archived to, or recover from volume snapshots by hand (see the README)"
        ]
    folder = b.cnpg_server_name or s.cnpg.cluster_name
    if folder == b.cnpg_recover_from:
        return [
            f"{fqkey('cnpgRecoverFrom')}: is {b.cnpg_recover_from!r}, the folder this cluster "
            "would also archive to (cnpgBackupServerName, or the cluster's name when it is "
            "empty); the plugin refuses a folder that holds another cluster's WAL. Set "
            f"cnpgBackupServerName to a new folder, such as {b.cnpg_recover_from}-2"
        ]
    return []


def _plugin_checks(s: Settings) -> list[str]:
    """The program installs the operator alone: the plugin needs cert-manager, a cluster-wide
    service no database stack should own, so the plugin is the platform's to install."""
    if not s.cnpg.install_operator or not s.backup.cnpg_destination_path:
        return []
    return [
        f"{fqkey('cnpgInstallOperator')}: is true but cnpgBackupMethod is barman-cloud: the "
        "program installs the operator but not the Barman Cloud plugin (nor cert-manager, "
        'which the plugin needs), so the Cluster would wait in "Unknown plugin" until `up` '
        "fails after postgresReleaseTimeoutSeconds. Have the platform install the operator, "
        "cert-manager and the plugin, and set cnpgInstallOperator false; or set "
        "cnpgBackupMethod volume-snapshot (with cnpgBackupSnapshotClass)"
    ]


def _access_checks(s: Settings) -> list[str]:
    """The way the instances reach the store must fit the store and the namespace; a key
    of another way would be silently ignored."""
    b, mode = s.backup, s.backup.cnpg_credentials
    key, value = fqkey("cnpgBackupCredentials"), mode.value
    problems = []
    scheme = object_store_scheme(b.cnpg_destination_path)
    if scheme and SCHEME_OF[mode] != scheme:
        fix = (
            "set cnpgBackupCredentials workload-identity (GKE Workload Identity, with "
            "cnpgBackupGcpServiceAccount)"
            if scheme == "gs"
            else "set cnpgBackupCredentials access-keys, secret or iam-role"
        )
        problems.append(
            f"{key}: is {value}, which serves {SCHEME_OF[mode]}:// stores, but "
            f"cnpgBackupDestinationPath is a {scheme}:// path; {fix}, or use a "
            f"{SCHEME_OF[mode]}:// destination"
        )
    if scheme == "gs" and b.cnpg_endpoint_url:
        problems.append(
            f"{fqkey('cnpgBackupEndpointUrl')}: is {b.cnpg_endpoint_url!r}, an S3 endpoint, "
            "but cnpgBackupDestinationPath is a gs:// path; remove it "
            "(`pulumi config rm cnpgBackupEndpointUrl`)"
        )
    secret = b.cnpg_credentials_secret
    if mode is CnpgBackupCredentials.SECRET and not secret:
        problems.append(
            f"{fqkey('cnpgBackupCredentialsSecret')}: is empty but cnpgBackupCredentials is "
            "secret; name the Secret the platform made (keys ACCESS_KEY_ID, "
            f"ACCESS_SECRET_KEY), or hold the keys in the stack: {SET_KEYS}"
        )
    if mode is CnpgBackupCredentials.SECRET and secret and s.create_namespace:
        problems.append(
            f"{fqkey('cnpgBackupCredentialsSecret')}: {secret!r} names a Secret the platform "
            f"made, but createNamespace is true: the program creates namespace "
            f"{s.namespace!r} itself, so no Secret can be in it before the first `up` (the "
            "provider refuses to create a namespace that already exists), and archiving and "
            f"the Backup would fail. Hold the keys in the stack instead: {SET_KEYS}, then "
            "`pulumi config rm cnpgBackupCredentialsSecret` (the program makes the Secret); "
            "or have the platform make the namespace with the Secret and set createNamespace "
            "false"
        )
    if mode is not CnpgBackupCredentials.SECRET and secret:
        problems.append(
            f"{fqkey('cnpgBackupCredentialsSecret')}: is {secret!r} but cnpgBackupCredentials "
            f"is {value}, so it would be ignored; set cnpgBackupCredentials secret (the "
            "platform's Secret, with createNamespace false), or remove it "
            "(`pulumi config rm cnpgBackupCredentialsSecret`)"
        )
    for other, other_mode, given in (
        ("cnpgBackupIamRoleArn", CnpgBackupCredentials.IAM_ROLE, b.cnpg_iam_role_arn),
        (
            "cnpgBackupGcpServiceAccount",
            CnpgBackupCredentials.WORKLOAD_IDENTITY,
            b.cnpg_gcp_service_account,
        ),
    ):
        if given and mode is not other_mode:
            problems.append(
                f"{fqkey(other)}: is {given!r} but cnpgBackupCredentials is {value}, so it "
                f"would be ignored; set cnpgBackupCredentials {other_mode.value} (for "
                f"{SCHEME_OF[other_mode]}:// stores), or remove it (`pulumi config rm {other}`)"
            )
    return problems
