"""CloudNativePG's Cluster, backups and roles as plain data (pure)."""

from __future__ import annotations

from components.database import cloudnative_pg_spec as spec
from components.settings import BackupSettings, CnpgBackupMethod


def test_cloudnative_pg_backs_up_to_the_object_store_with_its_wal() -> None:
    settings = BackupSettings(
        cnpg_destination_path="s3://bucket/db",
        cnpg_credentials_secret="s3-keys",
        cnpg_retention="14d",
    )
    archive = spec.cluster_backup(settings, "pg")
    assert archive is not None
    assert archive.cluster["plugins"] == [
        {
            "name": spec.BARMAN_PLUGIN,
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": "pg-backups"},
        }
    ]
    assert archive.object_store is not None
    assert archive.object_store["retentionPolicy"] == "14d"
    assert archive.object_store["configuration"]["destinationPath"] == "s3://bucket/db"
    assert archive.object_store["configuration"]["s3Credentials"]["accessKeyId"] == {
        "name": "s3-keys",
        "key": "ACCESS_KEY_ID",
    }
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
