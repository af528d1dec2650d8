"""Every config key of the program, declared once on the typed settings it fills (pure).

`Settings` is what the program reads from a stack; each field names its key, default,
description and constraints with `setting()`. Add a key here (and its rules in `rules.py`),
then run `make pulumi-yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.migrations.model import Version
from components.migrations.placeholders import StackPlaceholders
from components.settings.declarations import (
    DNS_LABEL,
    FLYWAY_VERSION,
    IMAGE_TAG,
    PG_IDENTIFIER,
    QUANTITY,
    RETENTION,
    SEMVER,
    Architecture,
    CnpgBackupMethod,
    Flavor,
    PasswordSource,
    PlaceholderMap,
    RolesManager,
    Secret,
    SecretPlaceholderMap,
    SslMode,
    check_cluster_name,
    check_flyway_version,
    check_not_superuser,
    check_release_name,
    map_setting,
    secret_map_setting,
    secret_setting,
    setting,
)


@dataclass(frozen=True)
class DatabaseSettings:
    """Which PostgreSQL, which database, and how Pulumi reaches it to manage roles."""

    flavor: Flavor = setting(
        "databaseFlavor",
        Flavor.BITNAMI,
        "bitnami (Helm release), cloudnative-pg (operator cluster) or external (managed).",
    )
    name: str = setting(
        "databaseName",
        "tradestream",
        "The application database.",
        pattern=PG_IDENTIFIER,
        pattern_hint="a lower-case PostgreSQL identifier",
    )
    owner: str = setting(
        "databaseOwner",
        "tradestream_owner",
        "Non-superuser role owning the database in-cluster; Flyway runs as it unless roles "
        "are managed.",
        pattern=PG_IDENTIFIER,
        pattern_hint="a lower-case PostgreSQL identifier",
        check=check_not_superuser,
    )
    access_host: str = setting(
        "databaseAccessHost",
        "",
        "Host of the database as reached from where `pulumi up` runs: required for external "
        "(Flyway uses it too) and for databaseRolesManagedBy pulumi; unused otherwise in-cluster.",
    )
    access_port: int = setting("databaseAccessPort", 5432, "Port of databaseAccessHost.", minimum=1)
    ssl_mode: SslMode = setting(
        "databaseSslMode",
        SslMode.REQUIRE,
        "sslmode of Pulumi's role-management connection (databaseRolesManagedBy pulumi), and "
        "of Flyway's for external.",
    )
    admin_user: str = setting(
        "databaseAdminUser",
        "postgres",
        "Role Pulumi manages roles as (needs CREATEROLE); its password is adminPassword.",
        pattern=PG_IDENTIFIER,
        pattern_hint="a lower-case PostgreSQL identifier",
    )
    ca_secret: str = setting(
        "databaseCaSecret",
        "",
        "external: a Secret in the namespace whose ca.crt signed the server's certificate; "
        "required by databaseSslMode verify-ca and verify-full.",
    )
    roles_managed_by: RolesManager = setting(
        "databaseRolesManagedBy",
        RolesManager.NONE,
        "Who creates the migrator, app and read-only roles and their grants: none (in-cluster: "
        "no roles, Flyway runs as databaseOwner), cluster (in-cluster: from inside the cluster, "
        "no network path from `pulumi up` needed), pulumi (pulumi-postgresql at "
        "databaseAccessHost as databaseAdminUser) or dba (external: a DBA did; Flyway logs in "
        "as <databaseName>_migrator with migratorPassword).",
    )

    @property
    def manages_roles(self) -> bool:
        """The program creates the roles and grants: with pulumi-postgresql or in-cluster."""
        return self.roles_managed_by in (RolesManager.PULUMI, RolesManager.CLUSTER)

    @property
    def roles_in_cluster(self) -> bool:
        """Roles and grants are applied from inside the cluster, not by the Pulumi process."""
        return self.roles_managed_by is RolesManager.CLUSTER


@dataclass(frozen=True)
class CnpgSettings:
    """The CloudNativePG operator and cluster (databaseFlavor cloudnative-pg)."""

    install_operator: bool = setting(
        "cnpgInstallOperator",
        True,
        "Install the operator chart (false: the cluster already runs the operator).",
    )
    operator_chart_version: str = setting(
        "cnpgOperatorChartVersion",
        "0.26.1",
        "Pinned version of the cloudnative-pg operator chart.",
        pattern=SEMVER,
        pattern_hint="an exact chart version such as 0.26.1",
    )
    operator_namespace: str = setting(
        "cnpgOperatorNamespace",
        "cnpg-system",
        "Namespace of the operator release.",
        pattern=DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
    )
    cluster_name: str = setting(
        "cnpgClusterName",
        "tradestream-pg",
        "Name of the Cluster; its Services are <name>-rw, -ro and -r.",
        pattern=DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
        check=check_cluster_name,
    )
    instances: int = setting(
        "cnpgInstances", 3, "PostgreSQL instances (one primary, the rest standbys).", minimum=1
    )
    image: str = setting(
        "cnpgImage",
        "ghcr.io/cloudnative-pg/postgresql:17.6",
        "PostgreSQL operand image.",
    )


@dataclass(frozen=True)
class PostgresSettings:
    """The Bitnami PostgreSQL release; storage and resources size cloudnative-pg too."""

    release_name: str = setting(
        "postgresReleaseName",
        "tradestream-postgresql",
        "Helm release name; the Service is named after it.",
        pattern=DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
        check=check_release_name,
    )
    chart_repository: str = setting(
        "postgresChartRepository",
        "oci://registry-1.docker.io/bitnamicharts/postgresql",
        "Chart reference of the Bitnami PostgreSQL chart (OCI).",
    )
    chart_version: str = setting(
        "postgresChartVersion",
        "16.7.27",
        "Pinned Bitnami PostgreSQL chart version.",
        pattern=SEMVER,
        pattern_hint="an exact chart version such as 16.7.27",
    )
    image_registry: str = setting(
        "postgresImageRegistry", "docker.io", "Registry of the PostgreSQL image."
    )
    image_repository: str = setting(
        "postgresImageRepository",
        "bitnamilegacy/postgresql",
        "Repository of the PostgreSQL image (Bitnami moved versioned images to bitnamilegacy).",
    )
    image_tag: str = setting(
        "postgresImageTag",
        "17.6.0-debian-12-r4",
        "Pinned tag of the PostgreSQL image.",
        pattern=IMAGE_TAG,
        pattern_hint="an image tag",
    )
    architecture: Architecture = setting(
        "postgresArchitecture",
        Architecture.STANDALONE,
        "standalone (one primary) or replication (primary plus read replicas).",
    )
    read_replicas: int = setting(
        "postgresReadReplicas",
        0,
        "Read replicas when postgresArchitecture is replication.",
        minimum=0,
    )
    storage_size: str = setting(
        "postgresStorageSize",
        "8Gi",
        "Persistent volume size of each PostgreSQL instance.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 8Gi",
    )
    storage_class: str = setting(
        "postgresStorageClass", "", "Storage class; empty uses the cluster's default."
    )
    cpu_request: str = setting(
        "postgresCpuRequest",
        "250m",
        "CPU request.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 250m",
    )
    memory_request: str = setting(
        "postgresMemoryRequest",
        "512Mi",
        "Memory request.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 512Mi",
    )
    cpu_limit: str = setting(
        "postgresCpuLimit",
        "1",
        "CPU limit.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 1",
    )
    memory_limit: str = setting(
        "postgresMemoryLimit",
        "1Gi",
        "Memory limit.",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 1Gi",
    )
    metrics_enabled: bool = setting(
        "postgresMetricsEnabled", False, "Run the Prometheus exporter sidecar."
    )
    network_policy_enabled: bool = setting(
        "postgresNetworkPolicyEnabled",
        True,
        "Restrict ingress to PostgreSQL to the instances, the operator and pods labelled "
        "<release or cluster>-client (the Flyway Job carries the label).",
    )
    release_timeout_seconds: int = setting(
        "postgresReleaseTimeoutSeconds",
        600,
        "How long Helm waits for the release before rolling back (atomic).",
        minimum=1,
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
        "bitnami, external: image whose pg_dump takes the backup (its major version must be at "
        "least the server's).",
    )
    retain_count: int = setting(
        "backupRetainCount",
        10,
        "bitnami, external: dumps kept on the backup volume; older ones are deleted after a "
        "new one is complete.",
        minimum=1,
    )
    volume_size: str = setting(
        "backupVolumeSize",
        "10Gi",
        "bitnami, external: size of the backup volume (room for backupRetainCount dumps).",
        pattern=QUANTITY,
        pattern_hint="a Kubernetes quantity such as 10Gi",
    )
    storage_class: str = setting(
        "backupStorageClass", "", "bitnami, external: storage class of the backup volume."
    )
    cnpg_method: CnpgBackupMethod = setting(
        "cnpgBackupMethod",
        CnpgBackupMethod.BARMAN_CLOUD,
        "cloudnative-pg: barman-cloud (object store with WAL archive: point-in-time "
        "recovery) or volume-snapshot (CSI snapshots).",
    )
    cnpg_destination_path: str = setting(
        "cnpgBackupDestinationPath",
        "",
        "cloudnative-pg, barman-cloud: object store path of base backups and WAL, such as "
        "s3://bucket/tradestream.",
    )
    cnpg_endpoint_url: str = setting(
        "cnpgBackupEndpointUrl",
        "",
        "cloudnative-pg, barman-cloud: S3 endpoint URL; empty for AWS S3.",
    )
    cnpg_credentials_secret: str = setting(
        "cnpgBackupCredentialsSecret",
        "",
        "cloudnative-pg, barman-cloud: Secret in the namespace with ACCESS_KEY_ID and "
        "ACCESS_SECRET_KEY for the object store; empty when the pods' IAM role grants access.",
    )
    cnpg_retention: str = setting(
        "cnpgBackupRetention",
        "30d",
        "cloudnative-pg, barman-cloud: how far back recovery reaches; older base backups "
        "and WAL are deleted.",
        pattern=RETENTION,
        pattern_hint="a number and d, w or m, such as 30d",
    )
    cnpg_snapshot_class: str = setting(
        "cnpgBackupSnapshotClass",
        "",
        "cloudnative-pg, volume-snapshot: VolumeSnapshotClass of the snapshots.",
    )


@dataclass(frozen=True)
class Credentials:
    """Passwords set as secret config (used when passwordSource is `config`)."""

    admin_password: Secret | None = secret_setting(
        "adminPassword",
        "Password of the superuser (bitnami, cloudnative-pg) or of databaseAdminUser (external).",
    )
    owner_password: Secret | None = secret_setting(
        "ownerPassword", "Password of the database owner role Flyway runs as."
    )
    replication_password: Secret | None = secret_setting(
        "replicationPassword", "Password of the replication user (replication architecture)."
    )
    migrator_password: Secret | None = secret_setting(
        "migratorPassword",
        "Password of the migrator role a DBA created (databaseRolesManagedBy dba).",
    )


@dataclass(frozen=True)
class Settings:
    """Everything the program reads from stack config."""

    namespace: str = setting(
        "namespace",
        "tradestream",
        "Kubernetes namespace of the database and the migration Job.",
        pattern=DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
    )
    create_namespace: bool = setting(
        "createNamespace", True, "Create the namespace (false: it already exists)."
    )
    migrations_dir: str = setting(
        "migrationsDir",
        "database/migrations",
        "Folder of the Flyway SQL files, relative to the project root.",
    )
    protect_database: bool = setting(
        "protectDatabase",
        True,
        "Protect the database of record (release or Cluster, its namespace, roles and grants) "
        "from deletion and replacement; false only for disposable stacks.",
    )
    password_source: PasswordSource = setting(
        "passwordSource",
        PasswordSource.GENERATED,
        "generated (kept as secrets in state) or config (set with --secret).",
    )
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    cnpg: CnpgSettings = field(default_factory=CnpgSettings)
    flyway: FlywaySettings = field(default_factory=FlywaySettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    credentials: Credentials = field(default_factory=Credentials)
