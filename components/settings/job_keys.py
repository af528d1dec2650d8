"""The keys of the Jobs around a migration: Flyway's and the backup before it (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from components.migrations.model import (
    Version,
)
from components.migrations.placeholders import StackPlaceholders
from components.settings.declarations import (
    DNS_SUBDOMAIN,
    DUMPED,
    FLYWAY_VERSION,
    GCP_SERVICE_ACCOUNT,
    QUANTITY,
    RETENTION,
    SEMVER,
    CnpgBackupCredentials,
    CnpgBackupMethod,
    Flavor,
    PlaceholderMap,
    Secret,
    SecretPlaceholderMap,
    check_flyway_version,
    check_object_store_path,
    check_target_time,
    map_setting,
    secret_map_setting,
    secret_setting,
    setting,
)


@dataclass(frozen=True)
class FlywaySettings:
    """The Flyway Job. Every value here reaches the container exactly as configured."""

    image_repository: str = setting(
        "flywayImageRepository", "flyway/flyway", "Repository of the Flyway image."
    )
    version: str = setting(
        "flywayVersion",
        FLYWAY_VERSION,
        "Flyway version; the image tag is <version>-alpine.",
        pattern=SEMVER,
        pattern_hint="an exact Flyway release such as 11.20.3",
    )
    connect_retries: int = setting(
        "flywayConnectRetries",
        60,
        "Connection attempts before Flyway gives up (0: fail at once).",
        minimum=0,
    )
    connect_retries_interval: int = setting(
        "flywayConnectRetriesInterval",
        10,
        "Maximum seconds between connection attempts.",
        minimum=1,
    )
    baseline_on_migrate: bool = setting(
        "flywayBaselineOnMigrate",
        False,
        "Baseline a non-empty schema that has no history table instead of failing.",
    )
    baseline_version: str = setting(
        "flywayBaselineVersion",
        "1",
        "Version recorded by a baseline; migrations up to it are skipped.",
        pattern_hint="a Flyway version such as 1 or 0",
        check=check_flyway_version,
    )
    out_of_order: bool = setting(
        "flywayOutOfOrder",
        False,
        "Apply migrations whose version is lower than the highest applied one.",
    )
    lock_retry_count: int = setting(
        "flywayLockRetryCount",
        50,
        "Attempts (one per second) to take Flyway's lock while another run holds it.",
        minimum=0,
    )
    backoff_limit: int = setting(
        "flywayBackoffLimit", 1, "Pod retries of a failed Job (restartPolicy Never).", minimum=0
    )
    active_deadline_seconds: int = setting(
        "flywayActiveDeadlineSeconds",
        900,
        "Kubernetes stops the Job after this many seconds.",
        minimum=1,
    )
    job_timeout_seconds: int = setting(
        "flywayJobTimeoutSeconds",
        1200,
        "How long `pulumi up` waits for the Job to complete.",
        minimum=1,
    )
    cpu_request: str = setting(
        "flywayCpuRequest",
        "100m",
        "CPU request.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 100m",
    )
    memory_request: str = setting(
        "flywayMemoryRequest",
        "256Mi",
        "Memory request.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 256Mi",
    )
    cpu_limit: str = setting(
        "flywayCpuLimit",
        "1",
        "CPU limit.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 1",
    )
    memory_limit: str = setting(
        "flywayMemoryLimit",
        "512Mi",
        "Memory limit.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 512Mi",
    )
    placeholder_replacement: bool = setting(
        "flywayPlaceholderReplacement",
        True,
        "Replace Flyway placeholders in scripts (true is Flyway's own default, kept so scripts "
        "mean what they mean under any Flyway); each preview then checks that every placeholder "
        "has a value. false: placeholder text is applied as written.",
    )
    placeholders: PlaceholderMap = map_setting(
        "flywayPlaceholders",
        "Placeholder values, an object of name: string (`pulumi config set --path "
        "'flywayPlaceholders.<name>' <value>`); names of letters, digits and '_'.",
    )
    secret_placeholders: SecretPlaceholderMap = secret_map_setting(
        "flywaySecretPlaceholders",
        "Secret placeholder values, each set with `pulumi config set --secret --path "
        "'flywaySecretPlaceholders.<name>' <value>`; Flyway reads them from a Secret.",
    )

    @property
    def image(self) -> str:
        return f"{self.image_repository}:{self.version}-alpine"

    def given_placeholders(self, stack: str) -> StackPlaceholders:
        """What this stack gives Flyway's placeholders: the one reading the preview, the
        rehearsal and the lint share."""
        names = [name for name, _ in (*self.placeholders, *self.secret_placeholders)]
        baseline = Version.parse(self.baseline_version) if self.baseline_on_migrate else None
        values = dict(self.placeholders)
        return StackPlaceholders(self.placeholder_replacement, names, stack, values, baseline)


@dataclass(frozen=True)
class BackupSettings:
    """The backup taken before every Flyway run: the way back from a migration gone wrong."""

    before_migrate: bool = setting(
        "backupBeforeMigrate",
        True,
        "Back the database up before every Flyway run; Flyway starts only after the backup "
        "succeeded (cloudnative-pg: a Backup of the cluster; bitnami, external: pg_dump).",
    )
    timeout_seconds: int = setting(
        "backupTimeoutSeconds",
        3600,
        "How long `pulumi up` waits for the backup; past it the deploy fails and Flyway "
        "does not run.",
        minimum=60,
    )
    image: str = setting(
        "backupImage",
        "postgres:17.6",
        "bitnami, external: PostgreSQL client image whose pg_dump takes the backup (its major "
        "version must be at least the server's) and, external with databaseRolesManagedBy "
        "cluster, whose psql (15 or later) applies the roles.",
        flavors=DUMPED,
    )
    retain_count: int = setting(
        "backupRetainCount",
        10,
        "bitnami, external: dumps kept on the backup volume; older ones are deleted after a "
        "new one is complete.",
        minimum=1,
        flavors=DUMPED,
    )
    volume_size: str = setting(
        "backupVolumeSize",
        "10Gi",
        "bitnami, external: size of the backup volume (room for backupRetainCount dumps).",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 10Gi",
        flavors=DUMPED,
    )
    storage_class: str = setting(
        "backupStorageClass",
        "",
        "bitnami, external: storage class of the backup volume.",
        flavors=DUMPED,
    )
    cnpg_method: CnpgBackupMethod = setting(
        "cnpgBackupMethod",
        CnpgBackupMethod.BARMAN_CLOUD,
        "cloudnative-pg: barman-cloud (object store with WAL archive: point-in-time "
        "recovery) or volume-snapshot (CSI snapshots).",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_destination_path: str = setting(
        "cnpgBackupDestinationPath",
        "",
        "cloudnative-pg, barman-cloud: object store path of base backups and WAL, such as "
        "s3://bucket/tradestream or gs://bucket/tradestream (Azure is refused: its "
        "credentials are not declared).",
        check=check_object_store_path,
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_endpoint_url: str = setting(
        "cnpgBackupEndpointUrl",
        "",
        "cloudnative-pg, barman-cloud, s3://: S3 endpoint URL; empty for AWS S3.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_credentials: CnpgBackupCredentials = setting(
        "cnpgBackupCredentials",
        CnpgBackupCredentials.IAM_ROLE,
        "cloudnative-pg, barman-cloud: how the instances reach the object store: access-keys "
        "(s3://; cnpgBackupAccessKeyId and cnpgBackupSecretAccessKey set with --secret, the "
        "program makes the Secret in its namespace), secret (s3://; a Secret the platform "
        "made, cnpgBackupCredentialsSecret, in a namespace it made: createNamespace false), "
        "iam-role (s3://; IRSA with cnpgBackupIamRoleArn, or the pods' own role) or "
        "workload-identity (gs://; GKE Workload Identity, cnpgBackupGcpServiceAccount).",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_access_key_id: Secret | None = secret_setting(
        "cnpgBackupAccessKeyId",
        "cloudnative-pg, cnpgBackupCredentials access-keys: the object store's access key "
        "ID, the Secret's ACCESS_KEY_ID.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_secret_access_key: Secret | None = secret_setting(
        "cnpgBackupSecretAccessKey",
        "cloudnative-pg, cnpgBackupCredentials access-keys: the object store's secret access "
        "key, the Secret's ACCESS_SECRET_KEY.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_credentials_secret: str = setting(
        "cnpgBackupCredentialsSecret",
        "",
        "cloudnative-pg, cnpgBackupCredentials secret: a Secret the platform made, with "
        "ACCESS_KEY_ID and ACCESS_SECRET_KEY, in the namespace it made (createNamespace "
        "false): a Secret cannot be there before the first `up` in a namespace the program "
        "creates.",
        pattern=DNS_SUBDOMAIN,
        pattern_hint="a Secret name (lower-case letters, digits, '-' and '.')",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_server_name: str = setting(
        "cnpgBackupServerName",
        "",
        "cloudnative-pg, barman-cloud: the folder of this cluster's backups and WAL under "
        "the destination path; empty: the cluster's name. Give each new incarnation of the "
        "cluster (re-created or recovered) a new one: the plugin refuses to archive into a "
        "folder that holds another cluster's WAL.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_recover_from: str = setting(
        "cnpgRecoverFrom",
        "",
        "cloudnative-pg, barman-cloud: the folder (serverName) under the destination path of "
        "the cluster this one is recovered from: a new Cluster (a new cnpgClusterName and "
        "cnpgBackupServerName) is created from its base backup and WAL instead of empty. "
        "The operator reads it only when it creates the Cluster; keep it afterwards.",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]*)?$",
        pattern_hint="a folder name such as tradestream-pg",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_recovery_target_time: str = setting(
        "cnpgRecoveryTargetTime",
        "",
        "cloudnative-pg, with cnpgRecoverFrom: replay WAL up to this moment (RFC 3339 with an "
        "offset, such as 2026-12-03T09:59:00Z): the start of the migration Job that did the "
        "damage; empty: all archived WAL.",
        check=check_target_time,
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_iam_role_arn: str = setting(
        "cnpgBackupIamRoleArn",
        "",
        "cloudnative-pg, cnpgBackupCredentials iam-role: the IAM role the instances' "
        "service account assumes on EKS (IRSA), set as its eks.amazonaws.com/role-arn "
        "annotation; empty: the pods' own IAM role.",
        pattern=r"^(arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+)?$",
        pattern_hint="an IAM role ARN such as arn:aws:iam::123456789012:role/backups",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_gcp_service_account: str = setting(
        "cnpgBackupGcpServiceAccount",
        "",
        "cloudnative-pg, cnpgBackupCredentials workload-identity: the Google service account "
        "the instances' service account acts as on GKE, set as its "
        "iam.gke.io/gcp-service-account annotation; empty: the bucket is granted to the "
        "Kubernetes service account itself (Workload Identity Federation).",
        pattern=GCP_SERVICE_ACCOUNT,
        pattern_hint="a Google service account such as backups@project.iam.gserviceaccount.com",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_retention: str = setting(
        "cnpgBackupRetention",
        "30d",
        "cloudnative-pg, barman-cloud: how far back recovery reaches; older base backups "
        "and WAL are deleted.",
        pattern=RETENTION,
        pattern_hint="a number and d, w or m, such as 30d",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_schedule: str = setting(
        "cnpgBackupSchedule",
        "0 0 3 * * *",
        "cloudnative-pg: when the operator takes a base backup besides the one before each "
        "migration (a ScheduledBackup; six-field cron with seconds, UTC); empty: none. "
        "Recovery replays WAL from the newest base backup, so this bounds how long it takes.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_snapshot_class: str = setting(
        "cnpgBackupSnapshotClass",
        "",
        "cloudnative-pg, volume-snapshot: VolumeSnapshotClass of the snapshots.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
