"""The keys of the Jobs around a migration: Flyway's and the backup before it (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from components.migrations.model import (
    Version,
)
from components.migrations.placeholders import StackPlaceholders
from components.settings.declarations import (
    DUMPED,
    FLYWAY_VERSION,
    QUANTITY,
    RETENTION,
    SEMVER,
    CnpgBackupMethod,
    Flavor,
    PlaceholderMap,
    SecretPlaceholderMap,
    check_flyway_version,
    map_setting,
    secret_map_setting,
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
        "s3://bucket/tradestream.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_endpoint_url: str = setting(
        "cnpgBackupEndpointUrl",
        "",
        "cloudnative-pg, barman-cloud: S3 endpoint URL; empty for AWS S3.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
    cnpg_credentials_secret: str = setting(
        "cnpgBackupCredentialsSecret",
        "",
        "cloudnative-pg, barman-cloud: Secret in the namespace with ACCESS_KEY_ID and "
        "ACCESS_SECRET_KEY for the object store; empty when the pods' IAM role grants access.",
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
    cnpg_snapshot_class: str = setting(
        "cnpgBackupSnapshotClass",
        "",
        "cloudnative-pg, volume-snapshot: VolumeSnapshotClass of the snapshots.",
        flavors=[Flavor.CLOUDNATIVE_PG],
    )
