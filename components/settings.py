"""Stack configuration -> one validated, typed `Settings` object.

Every key, its type, default, description and constraints are declared once, on the
dataclass fields below. `Pulumi.yaml`'s `config:` schema is generated from them
(`python -m components.settings schema`), and a test keeps the two in step, because
the CLI applies `Pulumi.yaml` defaults but mocks and other runners do not.

Config values arrive as strings, exactly as the Pulumi CLI hands them to the program,
and are parsed strictly: an explicit `false` or `0` is a value, never "unset".
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from components.migrations.placeholders import name_problem as placeholder_name_problem

PROJECT: Final = "tradestream-database"
STACK_CONFIG_DIR: Final = "stacks"
"""Pulumi.yaml's stackConfigDir: where `stacks/Pulumi.<stack>.yaml` holds each stack's config."""

FLYWAY_VERSION: Final = "11.20.3"
"""The one Flyway version pin: the Job's image tag and the contract tests' jars."""

_T = TypeVar("_T")


class Secret:
    """A secret config value; its repr never shows the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Architecture(enum.Enum):
    """Bitnami chart topologies."""

    STANDALONE = "standalone"
    REPLICATION = "replication"


class Flavor(enum.Enum):
    """Where PostgreSQL runs; the migration side is the same for all three."""

    BITNAMI = "bitnami"
    CLOUDNATIVE_PG = "cloudnative-pg"
    EXTERNAL = "external"


class RolesManager(enum.Enum):
    """Who creates the migrator, app and read-only roles, and their grants.

    `none`: nobody; in-cluster only, Flyway runs as the database owner.
    `cluster`: from inside the cluster, so `pulumi up` needs no path to the database:
    CloudNativePG's managed roles, and a psql Job for grants (and Bitnami's roles).
    `pulumi`: pulumi-postgresql, as databaseAdminUser, at databaseAccessHost.
    `dba`: a DBA did, outside this program; the stack only gets the migrator's login.
    """

    NONE = "none"
    CLUSTER = "cluster"
    PULUMI = "pulumi"
    DBA = "dba"


class SslMode(enum.Enum):
    """libpq/JDBC `sslmode` values worth choosing."""

    DISABLE = "disable"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"


class PasswordSource(enum.Enum):
    """Where database passwords come from.

    `generated`: the program generates them and keeps them as secrets in the stack state.
    `config`: operators set them with `pulumi config set --secret`, so they outlive the state.
    """

    GENERATED = "generated"
    CONFIG = "config"


@dataclass(frozen=True)
class Spec:
    """How one config key is declared; stored in a dataclass field's metadata."""

    key: str
    description: str
    minimum: int | None = None
    pattern: str | None = None
    pattern_hint: str | None = None
    check: Callable[[str], str | None] | None = None
    secret: bool = False
    structured: bool = False
    """An object of name -> string in the stack file (Pulumi hands it over as JSON)."""


def setting(
    key: str,
    default: _T,
    description: str,
    *,
    minimum: int | None = None,
    pattern: str | None = None,
    pattern_hint: str | None = None,
    check: Callable[[str], str | None] | None = None,
) -> _T:
    """Declare a config key on a settings field (the default lives here and only here)."""
    spec = Spec(key, description, minimum, pattern, pattern_hint, check)
    return field(default=default, metadata={"spec": spec})


def secret_setting(key: str, description: str) -> Secret | None:
    """Declare a secret key: no default, never printed, must be set with `--secret`."""
    spec = Spec(key, description, secret=True)
    return typing.cast("Secret | None", field(default=None, metadata={"spec": spec}))


# ---- Flyway placeholders -------------------------------------------------------------------
PlaceholderMap = tuple[tuple[str, str], ...]
SecretPlaceholderMap = tuple[tuple[str, Secret], ...]


def map_setting(key: str, description: str) -> PlaceholderMap:
    """Declare an object key (placeholder name -> string); empty by default.

    Pulumi.yaml's project config types are primitives, so these keys are not declared there
    (the CLI would refuse an object under a `string` type); the program validates them."""
    spec = Spec(key, description, structured=True)
    return typing.cast("PlaceholderMap", field(default=(), metadata={"spec": spec}))


def secret_map_setting(key: str, description: str) -> SecretPlaceholderMap:
    """Declare an object key whose values are secrets, each set with `--secret --path`."""
    spec = Spec(key, description, secret=True, structured=True)
    return typing.cast("SecretPlaceholderMap", field(default=(), metadata={"spec": spec}))


def _parse_structured(
    key: str, raw: str, *, secret: bool, stored_secret: bool
) -> tuple[Any, list[str]]:
    """An object key's value and problems, refusing plain text where a secret is required
    (and a secret where the values are shown in the Job)."""
    fq = f"{PROJECT}:{key}"
    value, found = _parse_map(key, raw, secret=secret)
    if secret and not stored_secret:
        return None, [
            f"{fq}.{n}: is stored in plain text; set it with "
            f"`pulumi config set --secret --path '{key}.{n}' <value>`"
            for n, _ in value or (("<name>", ""),)
        ]
    if not secret and stored_secret:
        return None, [
            f"{fq}: holds a secret value; secret placeholders belong in "
            "flywaySecretPlaceholders: `pulumi config set --secret --path "
            "'flywaySecretPlaceholders.<name>' <value>`, then `pulumi config rm --path "
            f"'{key}.<name>'`"
        ]
    return value, found


def _parse_map(key: str, raw: str, *, secret: bool) -> tuple[Any, list[str]]:
    """An object config value (JSON, as the CLI passes it) -> sorted (name, value) pairs.

    Secret values are never shown in a message, only their names."""
    fq = f"{PROJECT}:{key}"
    example = f"pulumi config set{' --secret' if secret else ''} --path '{key}.<name>' <value>"
    try:
        document = json.loads(raw) if raw.strip() else {}
    except ValueError:
        document = None
    if not isinstance(document, dict):
        shown = "the value" if secret else json.dumps(raw)
        return None, [f"{fq}: {shown} is not an object of placeholder names to strings; {example}"]
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, value in sorted(document.items()):
        shown = "" if secret else f" = {json.dumps(value)}"
        if not isinstance(value, str):
            # `config set --path` stores 3 or true typed unless told `--type string`.
            command = example.replace("<name>", name)
            command = command if secret else command.replace("--path", "--type string --path")
            problems.append(
                f"{fq}.{name}{shown}: must be a string: quote it in the stack file, or set it "
                f"with `{command}`"
            )
        if (problem := placeholder_name_problem(name)) is not None:
            fixed = re.sub(r"[^A-Za-z0-9_]", "_", name.encode("ascii", "replace").decode()) or "x"
            problems.append(
                f"{fq}.{name}{shown}: {json.dumps(name)} {problem}; rename the placeholder, "
                f"e.g. to {fixed!r}, in the migrations and in the stack file"
            )
        if (other := seen.setdefault(name.lower(), name)) != name:
            problems.append(
                f"{fq}.{name}: is the same placeholder as {other!r} (Flyway ignores case in "
                "placeholder names); keep one of them"
            )
    pairs = tuple((name, Secret(v) if secret else v) for name, v in sorted(document.items()))
    return (None if problems else pairs), problems


def _placeholder_checks(s: Settings) -> list[str]:
    """A placeholder given both a plain and a secret value would be set twice."""
    plain = {name.lower(): name for name, _ in s.flyway.placeholders}
    return [
        f"{_fqkey('flywaySecretPlaceholders')}.{name}: is also set in flywayPlaceholders "
        f"({plain[name.lower()]!r}); give it one value: remove one with "
        f"`pulumi config rm --path 'flywayPlaceholders.{plain[name.lower()]}'` or "
        f"`pulumi config rm --path 'flywaySecretPlaceholders.{name}'`"
        for name, _ in s.flyway.secret_placeholders
        if name.lower() in plain
    ]


# ---- end of Flyway placeholders -------------------------------------------------------------

_FLYWAY_VERSION_RE = re.compile(r"^\d+([._]\d+)*$")
_QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
_IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
_SEMVER = r"^\d+\.\d+\.\d+$"


def check_flyway_version(value: str) -> str | None:
    """Flyway versions are digits separated by `.` or `_` (e.g. `1`, `1.1`, `2_0_1`)."""
    if _FLYWAY_VERSION_RE.match(value):
        return None
    return "must be a Flyway version: digits separated by '.' or '_' (e.g. 1, 1.1, 0)"


HELM_RELEASE_NAME_MAX: Final = 53
LABEL_NAME_MAX: Final = 63
CNPG_CLUSTER_NAME_MAX: Final = 50


def bitnami_fullname(release_name: str) -> str:
    """The chart's `common.names.fullname`: the release name, plus `-postgresql` unless
    present, cut to 63 characters."""
    name = release_name if "postgresql" in release_name else f"{release_name}-postgresql"
    return name[:LABEL_NAME_MAX].rstrip("-")


def check_release_name(value: str) -> str | None:
    """Helm refuses longer release names."""
    if len(value) > HELM_RELEASE_NAME_MAX:
        return f"is {len(value)} characters; Helm allows at most {HELM_RELEASE_NAME_MAX}"
    return None


def bitnami_primary_name(release_name: str, architecture: Architecture) -> str:
    """The chart's `postgresql.v1.primary.fullname`: its primary's Service and the prefix of
    the client label its NetworkPolicy admits (`<primary>-client`)."""
    fullname = bitnami_fullname(release_name)
    if architecture is Architecture.REPLICATION:
        return f"{fullname}-primary"[:LABEL_NAME_MAX].rstrip("-")
    return fullname


def check_cluster_name(value: str) -> str | None:
    """The CloudNativePG operator's own rules for a Cluster's name."""
    if not value[:1].isalpha():
        return "must start with a letter (the CloudNativePG operator refuses it otherwise)"
    if len(value) > CNPG_CLUSTER_NAME_MAX:
        return (
            f"is {len(value)} characters; the CloudNativePG operator allows at most "
            f"{CNPG_CLUSTER_NAME_MAX}"
        )
    return None


def check_not_superuser(value: str) -> str | None:
    """Migrations must not run as the superuser the chart creates."""
    if value == "postgres":
        return "must not be 'postgres': migrations run as a dedicated non-superuser role"
    return None


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
        pattern=_PG_IDENTIFIER,
        pattern_hint="a lower-case PostgreSQL identifier",
    )
    owner: str = setting(
        "databaseOwner",
        "tradestream_owner",
        "Non-superuser role owning the database in-cluster; Flyway runs as it unless roles "
        "are managed.",
        pattern=_PG_IDENTIFIER,
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
        pattern=_PG_IDENTIFIER,
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
        pattern=_SEMVER,
        pattern_hint="an exact chart version such as 0.26.1",
    )
    operator_namespace: str = setting(
        "cnpgOperatorNamespace",
        "cnpg-system",
        "Namespace of the operator release.",
        pattern=_DNS_LABEL,
        pattern_hint="a DNS label (lower-case letters, digits, '-')",
    )
    cluster_name: str = setting(
        "cnpgClusterName",
        "tradestream-pg",
        "Name of the Cluster; its Services are <name>-rw, -ro and -r.",
        pattern=_DNS_LABEL,
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
        pattern=_DNS_LABEL,
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
        pattern=_SEMVER,
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
        pattern=_IMAGE_TAG,
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
        pattern=_QUANTITY,
        pattern_hint="a Kubernetes quantity such as 8Gi",
    )
    storage_class: str = setting(
        "postgresStorageClass", "", "Storage class; empty uses the cluster's default."
    )
    cpu_request: str = setting(
        "postgresCpuRequest",
        "250m",
        "CPU request.",
        pattern=_QUANTITY,
        pattern_hint="a Kubernetes quantity such as 250m",
    )
    memory_request: str = setting(
        "postgresMemoryRequest",
        "512Mi",
        "Memory request.",
        pattern=_QUANTITY,
        pattern_hint="a Kubernetes quantity such as 512Mi",
    )
    cpu_limit: str = setting(
        "postgresCpuLimit",
        "1",
        "CPU limit.",
        pattern=_QUANTITY,
        pattern_hint="a Kubernetes quantity such as 1",
    )
    memory_limit: str = setting(
        "postgresMemoryLimit",
        "1Gi",
        "Memory limit.",
        pattern=_QUANTITY,
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
        pattern=_SEMVER,
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
        pattern=_QUANTITY,
        pattern_hint="a Kubernetes quantity such as 100m",
    )
    memory_request: str = setting(
        "flywayMemoryRequest",
        "256Mi",
        "Memory request.",
        pattern=_QUANTITY,
        pattern_hint="a Kubernetes quantity such as 256Mi",
    )
    cpu_limit: str = setting(
        "flywayCpuLimit",
        "1",
        "CPU limit.",
        pattern=_QUANTITY,
        pattern_hint="a Kubernetes quantity such as 1",
    )
    memory_limit: str = setting(
        "flywayMemoryLimit",
        "512Mi",
        "Memory limit.",
        pattern=_QUANTITY,
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


class CnpgBackupMethod(enum.Enum):
    """How a CloudNativePG cluster is backed up before a migration.

    `barman-cloud`: the Barman Cloud plugin: base backups and continuous WAL archiving to an
    object store, so any point in time within the retention can be recovered.
    `volume-snapshot`: CSI volume snapshots of the instances' volumes (no WAL archive: the
    snapshot's own moment only).
    """

    BARMAN_CLOUD = "barman-cloud"
    VOLUME_SNAPSHOT = "volume-snapshot"


_RETENTION = r"^[1-9][0-9]*[dwm]$"


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
        pattern=_QUANTITY,
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
        pattern=_RETENTION,
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
        pattern=_DNS_LABEL,
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


class SettingsError(ValueError):
    """Bad stack config; lists every problem, one per line, each naming its key."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        count = len(self.problems)
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"invalid stack configuration{where} ({count} problem{'s' * (count != 1)}):\n{lines}"
        )


@dataclass(frozen=True)
class _Key:
    spec: Spec
    type: Any
    default: Any


def _keys(cls: type[Any]) -> dict[str, _Key]:
    """Every declared key of a settings dataclass tree, by key name."""
    hints = typing.get_type_hints(cls)
    out: dict[str, _Key] = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("spec")
        if spec is None:
            out.update(_keys(hints[f.name]))
        else:
            out[spec.key] = _Key(spec, hints[f.name], f.default)
    return out


def declared_keys() -> dict[str, _Key]:
    return _keys(Settings)


def _fqkey(key: str) -> str:
    return f"{PROJECT}:{key}"


def _describe(k: _Key) -> str:
    t = k.type
    if t is bool:
        return "true or false"
    if t is int:
        return f"an integer >= {k.spec.minimum}" if k.spec.minimum is not None else "an integer"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return "one of " + ", ".join(m.value for m in t)
    if k.spec.pattern_hint:
        return k.spec.pattern_hint
    return "a string"


def _parse_value(k: _Key, raw: str) -> tuple[Any, str | None]:  # noqa: PLR0911 (one exit per type)
    """Parse one raw config string; returns (value, problem)."""
    t = k.type
    shown = json.dumps(raw)
    if t is bool:
        if raw in ("true", "false"):
            return raw == "true", None
        return None, f"{shown} is not {_describe(k)}"
    if t is int:
        try:
            value = int(raw, 10)
        except ValueError:
            return None, f"{shown} is not {_describe(k)}"
        if k.spec.minimum is not None and value < k.spec.minimum:
            return None, f"{shown} is out of range: must be {_describe(k)}"
        return value, None
    if isinstance(t, type) and issubclass(t, enum.Enum):
        for member in t:
            if member.value == raw:
                return member, None
        return None, f"{shown} is not allowed: must be {_describe(k)}"
    if k.spec.pattern is not None and not re.match(k.spec.pattern, raw):
        return None, f"{shown} is not {_describe(k)}"
    if k.spec.check is not None and (problem := k.spec.check(raw)) is not None:
        return None, f"{shown} {problem}"
    return raw, None


def _parse_secret(
    fq: str, name: str, raw: str, secret_keys: frozenset[str]
) -> tuple[Secret | None, str | None]:
    if fq not in secret_keys:
        return None, (
            f"{fq}: is stored in plain text; set it with "
            f"`pulumi config set --secret {name} <value>`"
        )
    if raw == "":
        return None, f"{fq}: is empty; set it with `pulumi config set --secret {name}`"
    return Secret(raw), None


def parse_settings(
    values: Mapping[str, str],
    secret_keys: frozenset[str] = frozenset(),
    *,
    with_secrets: bool = True,
) -> Settings:
    """Build `Settings` from raw config (fully-qualified keys -> strings, as the CLI passes).

    Keys of other namespaces (providers such as `kubernetes:`) are ignored; an unknown key in
    this project's namespace is an error, since it is almost always a typo. Without
    `with_secrets` (tools that read a committed stack file, which holds secrets only
    encrypted) secret keys are skipped and not required.
    """
    keys = declared_keys()
    prefix = f"{PROJECT}:"
    problems: list[str] = []
    parsed: dict[str, Any] = {}
    for fq, raw in sorted(values.items()):
        if not fq.startswith(prefix):
            continue
        name = fq[len(prefix) :]
        k = keys.get(name)
        if k is None:
            close = difflib.get_close_matches(name, keys, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see the configuration reference"
            problems.append(f"{fq}: unknown key; {hint} (remove it with `pulumi config rm {name}`)")
            continue
        if k.spec.secret and not with_secrets:
            continue
        if k.spec.structured:
            value, found = _parse_structured(
                name, raw, secret=k.spec.secret, stored_secret=fq in secret_keys
            )
            problems.extend(found)
            parsed.update({} if found else {name: value})
            continue
        if k.spec.secret:
            secret, problem = _parse_secret(fq, name, raw, secret_keys)
            problems.extend([problem] if problem else [])
            parsed.update({name: secret} if secret else {})
            continue
        if not isinstance(raw, str):
            problems.append(f"{fq}: {json.dumps(raw)} must be {_describe(k)}")
            continue
        value, problem = _parse_value(k, raw)
        if problem is not None:
            problems.append(f"{fq}: {problem} (default: {_show_default(k)})")
        else:
            parsed[name] = value
    if problems:
        raise SettingsError(problems)
    settings = _build(Settings, parsed)
    problems.extend(_cross_checks(settings))
    if with_secrets:
        problems.extend(_credential_checks(settings))
    problems.extend(_placeholder_checks(settings))
    if problems:
        raise SettingsError(problems)
    return settings


def required_secrets(values: Mapping[str, str]) -> frozenset[str]:
    """The secret keys a stack's config calls for: an operator's checklist before a deploy."""
    keys, prefix = declared_keys(), f"{PROJECT}:"
    parsed: dict[str, Any] = {}
    for fq, raw in values.items():
        k = keys.get(fq.removeprefix(prefix))
        if fq.startswith(prefix) and k is not None and not k.spec.secret and not k.spec.structured:
            value, problem = _parse_value(k, raw)
            if problem is None:
                parsed[k.spec.key] = value
    return frozenset(_required_secrets(_build(Settings, parsed))[0])


def _show_default(k: _Key) -> str:
    d = k.default
    if isinstance(d, enum.Enum):
        return str(d.value)
    if isinstance(d, bool):
        return "true" if d else "false"
    return json.dumps(d) if isinstance(d, str) else str(d)


def _build(cls: type[_T], parsed: Mapping[str, Any]) -> _T:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = f.metadata.get("spec")
        if spec is None:
            kwargs[f.name] = _build(hints[f.name], parsed)
        elif spec.key in parsed:
            kwargs[f.name] = parsed[spec.key]
    return cls(**kwargs)


def _cross_checks(s: Settings) -> list[str]:
    """Rules that involve several keys; each message names the keys to change."""
    problems: list[str] = []
    pg, fw = s.postgres, s.flyway
    if pg.architecture is Architecture.REPLICATION and pg.read_replicas < 1:
        problems.append(
            f"{_fqkey('postgresReadReplicas')}: is {pg.read_replicas} but postgresArchitecture is "
            "replication; set postgresReadReplicas >= 1 or postgresArchitecture standalone"
        )
    if pg.architecture is Architecture.STANDALONE and pg.read_replicas > 0:
        problems.append(
            f"{_fqkey('postgresReadReplicas')}: is {pg.read_replicas} but postgresArchitecture is "
            "standalone; set postgresArchitecture replication or postgresReadReplicas 0"
        )
    if fw.job_timeout_seconds < fw.active_deadline_seconds:
        problems.append(
            f"{_fqkey('flywayJobTimeoutSeconds')}: {fw.job_timeout_seconds} is shorter than "
            f"flywayActiveDeadlineSeconds ({fw.active_deadline_seconds}); `pulumi up` would stop "
            "waiting before Kubernetes stops the Job. Raise flywayJobTimeoutSeconds."
        )
    if s.database.flavor is Flavor.EXTERNAL and not s.database.access_host:
        problems.append(
            f"{_fqkey('databaseAccessHost')}: is empty but databaseFlavor is external; set it "
            "to the host of the managed PostgreSQL"
        )
    key = f"{bitnami_primary_name(pg.release_name, pg.architecture)}-client"
    if s.database.flavor is Flavor.BITNAMI and len(key) > LABEL_NAME_MAX:
        problems.append(
            f"{_fqkey('postgresReleaseName')}: {pg.release_name!r} gives the chart's client label "
            f"key {key!r} ({len(key)} characters with postgresArchitecture "
            f"{pg.architecture.value}; Kubernetes allows {LABEL_NAME_MAX}): shorten it by "
            f"{len(key) - LABEL_NAME_MAX} characters"
        )
    database = s.database
    verifying = database.ssl_mode in (SslMode.VERIFY_CA, SslMode.VERIFY_FULL)
    if database.flavor is Flavor.EXTERNAL and verifying and not database.ca_secret:
        problems.append(
            f"{_fqkey('databaseCaSecret')}: is empty but databaseSslMode is "
            f"{database.ssl_mode.value}: the Flyway pod needs the server's CA certificate to "
            "verify it. Name a Secret holding it as ca.crt, or set databaseSslMode require"
        )
    if (
        database.flavor is Flavor.BITNAMI
        and database.roles_managed_by is RolesManager.PULUMI
        and database.ssl_mode is not SslMode.DISABLE
    ):
        problems.append(
            f"{_fqkey('databaseSslMode')}: is {database.ssl_mode.value} but the Bitnami chart "
            "serves no TLS as this program deploys it (databaseFlavor bitnami): set "
            "databaseSslMode disable, or use databaseFlavor cloudnative-pg, which serves TLS "
            "with its own CA"
        )
    problems.extend(_roles_checks(database))
    problems.extend(_psql_checks(s))
    problems.extend(_backup_checks(s))
    return problems


def _backup_checks(s: Settings) -> list[str]:
    """A backup that could not run would stop every migration: refuse it at preview."""
    b = s.backup
    if not b.before_migrate or s.database.flavor is not Flavor.CLOUDNATIVE_PG:
        return []
    if b.cnpg_method is CnpgBackupMethod.BARMAN_CLOUD and not b.cnpg_destination_path:
        return [
            f"{_fqkey('cnpgBackupDestinationPath')}: is empty but backupBeforeMigrate is true "
            "and cnpgBackupMethod is barman-cloud; set it to the object store path (such as "
            "s3://bucket/tradestream), set cnpgBackupMethod volume-snapshot, or set "
            "backupBeforeMigrate false to migrate without a way back"
        ]
    if b.cnpg_method is CnpgBackupMethod.VOLUME_SNAPSHOT and not b.cnpg_snapshot_class:
        return [
            f"{_fqkey('cnpgBackupSnapshotClass')}: is empty but cnpgBackupMethod is "
            "volume-snapshot; name the cluster's VolumeSnapshotClass (kubectl get "
            "volumesnapshotclass), or set backupBeforeMigrate false"
        ]
    return []


def _roles_checks(database: DatabaseSettings) -> list[str]:  # noqa: PLR0911 (one per conflict)
    """Who manages the roles must fit where the database is and how it can be reached."""
    key, manager = _fqkey("databaseRolesManagedBy"), database.roles_managed_by
    flavor, host = database.flavor.value, database.access_host
    if database.flavor is Flavor.EXTERNAL:
        if manager is RolesManager.NONE:
            return [
                f"{key}: is none but databaseFlavor is external: the program creates no owner "
                "there for Flyway to log in as. Set databaseRolesManagedBy pulumi (Pulumi "
                "creates the roles at databaseAccessHost) or dba (a DBA created them)"
            ]
        if manager is RolesManager.CLUSTER:
            return [
                f"{key}: is cluster but databaseFlavor is external: the in-cluster step "
                "manages the roles of an in-cluster database only. Set databaseRolesManagedBy "
                "pulumi (reachable from where `pulumi up` runs) or dba"
            ]
        return []
    if manager is RolesManager.DBA:
        return [
            f"{key}: is dba but databaseFlavor is {flavor}; a DBA-managed login is for "
            "external databases only. Set databaseRolesManagedBy cluster (roles managed from "
            "inside the cluster) or databaseFlavor external"
        ]
    if manager is RolesManager.PULUMI and not host:
        return [
            f"{key}: is pulumi but databaseAccessHost is empty (databaseFlavor {flavor}): "
            "pulumi-postgresql needs an address of the database reachable from where `pulumi "
            "up` runs. Set databaseRolesManagedBy cluster to manage the roles from inside the "
            "cluster, or set databaseAccessHost to such an address"
        ]
    if manager in (RolesManager.NONE, RolesManager.CLUSTER) and host:
        return [
            f"{_fqkey('databaseAccessHost')}: is {host!r} but databaseRolesManagedBy is "
            f"{manager.value} (databaseFlavor {flavor}), which never connects from where "
            "`pulumi up` runs. Remove databaseAccessHost, or set databaseRolesManagedBy "
            "pulumi to manage the roles through it"
        ]
    return []


PSQL_MIN_MAJOR: Final = 15
"""Where the in-cluster grants Job creates the roles (Bitnami) it reads their passwords with
psql's \\getenv, new in PostgreSQL 15."""


def _psql_checks(s: Settings) -> list[str]:
    """The grants Job runs psql from the release's own image, so its version must do."""
    if not (s.database.roles_in_cluster and s.database.flavor is Flavor.BITNAMI):
        return []
    tag = s.postgres.image_tag
    major = re.match(r"^(\d+)[.-]", tag + "-")
    if major is None or int(major.group(1)) >= PSQL_MIN_MAJOR:
        return []
    return [
        f"{_fqkey('postgresImageTag')}: {tag!r} is PostgreSQL {major.group(1)}, but "
        "databaseRolesManagedBy cluster runs that image's psql to create the roles, which "
        f"needs PostgreSQL {PSQL_MIN_MAJOR} or later: use a {PSQL_MIN_MAJOR}+ image, or set "
        "databaseRolesManagedBy none"
    ]


def _required_secrets(s: Settings) -> tuple[set[str], str]:
    """The secret keys this combination of settings needs, and why."""
    flavor, config = s.database.flavor, s.password_source is PasswordSource.CONFIG
    if flavor is Flavor.EXTERNAL:
        if s.database.roles_managed_by is RolesManager.DBA:
            return {"migratorPassword"}, "databaseRolesManagedBy is dba"
        return {"adminPassword"}, "databaseFlavor is external"
    if not config:
        return set(), "passwordSource is generated"
    if flavor is Flavor.CLOUDNATIVE_PG:
        if s.database.manages_roles:
            return {"adminPassword"}, "passwordSource is config and roles are managed"
        return set(), "the operator generates cloudnative-pg passwords unless roles are managed"
    required = {"adminPassword", "ownerPassword"}
    if s.postgres.architecture is Architecture.REPLICATION:
        required.add("replicationPassword")
    return required, "passwordSource is config"


def _credential_checks(s: Settings) -> list[str]:
    required, reason = _required_secrets(s)
    creds = s.credentials
    present = {
        "adminPassword": creds.admin_password is not None,
        "ownerPassword": creds.owner_password is not None,
        "replicationPassword": creds.replication_password is not None,
        "migratorPassword": creds.migrator_password is not None,
    }
    problems: list[str] = []
    for key, is_set in present.items():
        if key in required and not is_set:
            problems.append(
                f"{_fqkey(key)}: missing required secret ({reason}); set it with "
                f"`pulumi config set --secret {key} <value>`"
            )
        elif key not in required and is_set:
            problems.append(
                f"{_fqkey(key)}: is set but would be ignored ({reason}); remove it with "
                f"`pulumi config rm {key}` or change passwordSource/databaseFlavor"
            )
    return problems


def database_resource_name(s: Settings) -> str:
    """The name of what holds the data in-cluster (release or Cluster); empty when external."""
    match s.database.flavor:
        case Flavor.BITNAMI:
            return s.postgres.release_name
        case Flavor.CLOUDNATIVE_PG:
            return s.cnpg.cluster_name
    return ""


def protected_changes(last: Mapping[str, object], s: Settings) -> list[str]:
    """Keys whose new values would delete or replace the database of record, judged from the
    stack outputs of the last deploy. Empty when protection is off or nothing was deployed."""
    if not s.protect_database or not last:
        return []
    changed = []
    if (
        last.get("namespace") not in (None, s.namespace)
        and s.database.flavor is not Flavor.EXTERNAL
    ):
        changed.append("namespace")
    if last.get("databaseFlavor") not in (None, s.database.flavor.value):
        changed.append("databaseFlavor")
    elif last.get("databaseResourceName") not in (None, database_resource_name(s)):
        changed.append(
            "postgresReleaseName" if s.database.flavor is Flavor.BITNAMI else "cnpgClusterName"
        )
    return changed


def read_stack_settings() -> Settings:
    """Read this stack's config from the Pulumi runtime, once."""
    import pulumi  # noqa: PLC0415 (keep the rest pure)
    from pulumi.runtime import config as runtime_config  # noqa: PLC0415

    values: dict[str, str] = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    secret_keys = frozenset(runtime_config.get_config_secret_keys_env()) | frozenset(
        runtime_config._SECRET_KEYS.get()  # no public accessor exists
    )
    try:
        return parse_settings(values, secret_keys)
    except SettingsError as error:
        source = f"{STACK_CONFIG_DIR}/Pulumi.{pulumi.get_stack()}.yaml"
        raise SettingsError(error.problems, source) from None


def config_schema() -> dict[str, dict[str, Any]]:
    """`Pulumi.yaml`'s `config:` section, derived from the declarations above."""
    schema: dict[str, dict[str, Any]] = {}
    for name, k in declared_keys().items():
        if k.spec.secret or k.spec.structured:
            # Objects: Pulumi.yaml's project config types are primitives only.
            # The CLI makes a declared key without a default mandatory for every stack, but
            # secrets are needed only with passwordSource=config; the program checks them.
            continue
        kind = {bool: "boolean", int: "integer"}.get(k.type, "string")
        d = k.default
        schema[name] = {
            "type": kind,
            "description": k.spec.description,
            "default": d.value if isinstance(d, enum.Enum) else d,
        }
    return schema


def secret_keys_declared() -> list[str]:
    return [name for name, k in declared_keys().items() if k.spec.secret]


SCHEMA_MARKER: Final = "# ---- generated from components/settings.py: do not edit below ----"


def render_project_file(current: str) -> str:
    """`Pulumi.yaml` with its `config:` section regenerated; the hand-written head is kept."""
    import yaml  # noqa: PLC0415 (only the generator needs it)

    head = current.split(SCHEMA_MARKER, 1)[0].rstrip("\n")
    body = yaml.safe_dump({"config": config_schema()}, sort_keys=False, width=100)
    return f"{head}\n{SCHEMA_MARKER}\n{body}"


def reference_table() -> str:
    """The README's configuration reference, so the docs cannot drift from the code."""
    rows = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, k in declared_keys().items():
        if k.spec.structured:
            kind = "secret object" if k.spec.secret else "an object of name: string"
            default = "(none)"
        elif k.spec.secret:
            kind, default = "secret", "(none)"
        else:
            kind = _describe(k)
            default = f"`{_show_default(k)}`" if _show_default(k) != '""' else "(empty)"
        rows.append(f"| `{name}` | {kind} | {default} | {k.spec.description} |")
    return "\n".join(rows) + "\n"


def _main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args == ["flyway-version"]:
        print(FLYWAY_VERSION)
        return 0
    if args == ["reference"]:
        print(reference_table(), end="")
        return 0
    if len(args) == 2 and args[0] == "write-project-file":
        path = Path(args[1])
        path.write_text(render_project_file(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(
        "usage: python -m components.settings"
        " {flyway-version | reference | write-project-file Pulumi.yaml}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
