"""CloudNativePG's Cluster, backups and roles as plain data (pure)."""

from __future__ import annotations

import json

from components.database import cloudnative_pg_spec as spec
from components.settings import (
    AlertSettings,
    BackupSettings,
    CnpgBackupCredentials,
    CnpgBackupMethod,
    CnpgSettings,
    DatabaseSettings,
    Settings,
)


def test_cloudnative_pg_backs_up_to_the_object_store_with_its_wal() -> None:
    settings = BackupSettings(
        cnpg_destination_path="s3://bucket/db",
        cnpg_credentials=CnpgBackupCredentials.ACCESS_KEYS,
        cnpg_retention="14d",
    )
    archive = spec.cluster_backup(settings, "pg")
    assert archive is not None
    assert archive.cluster["plugins"] == [
        {
            "name": spec.BARMAN_PLUGIN,
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "pg-backups", "serverName": "pg"},
        }
    ]
    # Ready is not enough: a base backup restores nothing without the WAL after it, and
    # right after a change of `instances` Ready is still the one from before it.
    assert json.loads(spec.cluster_ready(archive, 3)) == [
        "condition=Ready",
        "jsonpath={.status.readyInstances}=3",
        "condition=ContinuousArchiving",
    ]
    assert archive.object_store is not None
    assert archive.object_store["retentionPolicy"] == "14d"
    assert archive.object_store["configuration"]["destinationPath"] == "s3://bucket/db"
    # The keys come from the Secret the program makes from the stack's secret config.
    assert archive.credentials_secret == "pg-backup-credentials"
    assert archive.object_store["configuration"]["s3Credentials"] == {
        "accessKeyId": {"name": "pg-backup-credentials", "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": "pg-backup-credentials", "key": "ACCESS_SECRET_KEY"},
    }
    assert "serviceAccountTemplate" not in archive.cluster
    assert spec.backup_spec(settings, "pg") == {
        "cluster": {"name": "pg"},
        "method": "plugin",
        "pluginConfiguration": {"name": spec.BARMAN_PLUGIN},
    }


def test_volume_snapshots_need_only_their_class() -> None:
    settings = BackupSettings(
        cnpg_method=CnpgBackupMethod.VOLUME_SNAPSHOT, cnpg_snapshot_class="csi"
    )
    archive = spec.cluster_backup(settings, "pg")
    assert archive is not None
    assert archive.cluster == {"backup": {"volumeSnapshot": {"className": "csi"}}}
    assert archive.object_store is None
    assert spec.backup_spec(settings, "pg")["method"] == "volumeSnapshot"
    assert spec.cluster_backup(BackupSettings(), "pg") is None
    # No WAL archive to wait for.
    expected = ["condition=Ready", "jsonpath={.status.readyInstances}=2"]
    assert json.loads(spec.cluster_ready(archive, 2)) == expected
    assert json.loads(spec.cluster_ready(None, 2)) == expected


def test_a_new_incarnation_of_the_cluster_archives_under_a_server_name_of_its_own() -> None:
    settings = BackupSettings(cnpg_destination_path="s3://bucket/db", cnpg_server_name="pg-2")
    archive = spec.cluster_backup(settings, "pg")
    assert archive is not None
    [plugin] = archive.cluster["plugins"]
    assert plugin["parameters"]["serverName"] == "pg-2"


def test_a_recovered_cluster_starts_from_its_origins_folder_up_to_the_target() -> None:
    db = DatabaseSettings()
    assert spec.bootstrap(BackupSettings(), db, "pg") == {
        "bootstrap": {"initdb": {"database": db.name, "owner": db.owner}}
    }
    settings = BackupSettings(
        cnpg_destination_path="s3://bucket/db",
        cnpg_server_name="pg-2",
        cnpg_recover_from="pg",
        cnpg_recovery_target_time="2026-12-03T09:59:00Z",
    )
    started = spec.bootstrap(settings, db, "pg-restored")
    assert started["bootstrap"] == {
        "recovery": {
            "source": spec.RECOVERY_SOURCE,
            "database": db.name,
            "owner": db.owner,
            # PostgreSQL's form: the operator would hand the RFC 3339 UTC `Z` on, refused.
            "recoveryTarget": {"targetTime": "2026-12-03 09:59:00+00:00"},
        }
    }
    # Read through the new Cluster's own ObjectStore, from the origin's folder.
    assert started["externalClusters"] == [
        {
            "name": spec.RECOVERY_SOURCE,
            "plugin": {
                "name": spec.BARMAN_PLUGIN,
                "parameters": {"barmanObjectName": "pg-restored-backups", "serverName": "pg"},
            },
        }
    ]
    assert spec.postgres_time("2026-12-03T10:59:00.25+01:00") == "2026-12-03 10:59:00.250000+01:00"
    everything = BackupSettings(cnpg_destination_path="s3://b/d", cnpg_recover_from="pg")
    assert "recoveryTarget" not in spec.bootstrap(everything, db, "pg-2")["bootstrap"]["recovery"]


def test_irsa_annotates_the_instances_service_account_for_an_iam_role() -> None:
    arn = "arn:aws:iam::123456789012:role/backups"
    irsa = BackupSettings(cnpg_destination_path="s3://b/db", cnpg_iam_role_arn=arn)
    archive = spec.cluster_backup(irsa, "pg")
    assert archive is not None
    assert archive.cluster["serviceAccountTemplate"] == {
        "metadata": {"annotations": {"eks.amazonaws.com/role-arn": arn}}
    }
    assert archive.object_store is not None
    assert archive.object_store["configuration"]["s3Credentials"] == {"inheritFromIAMRole": True}
    assert archive.credentials_secret is None
    own_role = spec.cluster_backup(BackupSettings(cnpg_destination_path="s3://b/db"), "pg")
    assert own_role is not None
    assert "serviceAccountTemplate" not in own_role.cluster


def test_a_platforms_secret_is_read_by_its_name_and_not_made() -> None:
    platform = BackupSettings(
        cnpg_destination_path="s3://b/db",
        cnpg_credentials=CnpgBackupCredentials.SECRET,
        cnpg_credentials_secret="s3-keys",
    )
    archive = spec.cluster_backup(platform, "pg")
    assert archive is not None
    assert archive.object_store is not None
    assert archive.object_store["configuration"]["s3Credentials"]["accessKeyId"] == {
        "name": "s3-keys",
        "key": "ACCESS_KEY_ID",
    }
    assert archive.credentials_secret is None
    assert "serviceAccountTemplate" not in archive.cluster


def test_workload_identity_gives_gke_credentials_and_the_google_service_account() -> None:
    account = "backups@tradestream.iam.gserviceaccount.com"
    gke = BackupSettings(
        cnpg_destination_path="gs://b/db",
        cnpg_credentials=CnpgBackupCredentials.WORKLOAD_IDENTITY,
        cnpg_gcp_service_account=account,
    )
    archive = spec.cluster_backup(gke, "pg")
    assert archive is not None
    assert archive.object_store is not None
    configuration = archive.object_store["configuration"]
    # The plugin picks Google Cloud Storage by the credentials given: no s3Credentials.
    assert configuration["googleCredentials"] == {"gkeEnvironment": True}
    assert "s3Credentials" not in configuration
    assert archive.cluster["serviceAccountTemplate"] == {
        "metadata": {"annotations": {"iam.gke.io/gcp-service-account": account}}
    }
    assert archive.credentials_secret is None
    federation = BackupSettings(
        cnpg_destination_path="gs://b/db",
        cnpg_credentials=CnpgBackupCredentials.WORKLOAD_IDENTITY,
    )
    direct = spec.cluster_backup(federation, "pg")
    assert direct is not None
    assert "serviceAccountTemplate" not in direct.cluster


def _alerting(**backup: object) -> Settings:
    return Settings(
        namespace="db",
        cnpg=CnpgSettings(cluster_name="pg"),
        backup=BackupSettings(**backup),  # type: ignore[arg-type]
        alerts=AlertSettings(enabled=True, archive_failing_minutes=7, backup_max_age_hours=30),
    )


def test_barman_cloud_alerts_on_its_wal_archive_and_on_the_plugin_s_backup_time() -> None:
    alerts = spec.alerts(_alerting(cnpg_destination_path="s3://bucket/db"))
    assert [a.alert for a in alerts] == ["PostgresWalArchivingFailing", "PostgresBackupTooOld"]
    wal, age = alerts
    instances = '{namespace="db",pod=~"pg-[0-9]+"}'
    assert f"increase(cnpg_pg_stat_archiver_failed_count{instances}[5m]) > 0" in wal.expr
    assert (
        f"cnpg_pg_stat_archiver_last_failed_time{instances} > "
        f"cnpg_pg_stat_archiver_last_archived_time{instances}"
    ) in wal.expr
    assert wal.for_minutes == 7
    assert age.expr == (
        "time() - max by (namespace) "
        f"(barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{instances}) > 108000"
    )


def test_volume_snapshots_alert_on_the_operator_s_backup_time_and_have_no_archive() -> None:
    alerts = spec.alerts(
        _alerting(cnpg_method=CnpgBackupMethod.VOLUME_SNAPSHOT, cnpg_snapshot_class="csi")
    )
    assert [a.alert for a in alerts] == ["PostgresBackupTooOld"]
    assert "cnpg_collector_last_available_backup_timestamp{" in alerts[0].expr


def test_a_cluster_without_backups_has_no_backup_alerts() -> None:
    assert spec.alerts(_alerting()) == ()
    assert spec.traits(_alerting()).alerts == ()
    assert spec.traits(_alerting(cnpg_destination_path="s3://b/p")).alerts != ()
