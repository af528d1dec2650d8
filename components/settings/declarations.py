"""How a config key is declared, and the vocabulary the declarations use (pure).

A key's type, default, description and constraints are declared once, on a dataclass field
(`keys.py`), with `setting()` and friends below; parsing, the Pulumi.yaml schema and the
README table all read the declaration, so none can drift from another.
"""

from __future__ import annotations

import datetime
import enum
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, TypeVar

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
    maximum: int | None = None
    """An integer's upper bound; without one, the largest a Kubernetes field takes."""
    required: bool = False
    """Every stack sets it: its default would be a guess that could touch another stack."""
    flavors: frozenset[Flavor] | None = None
    """The database flavors that read the key (None: every flavor); set for another, it would
    be silently ignored, so it is refused."""


def setting(
    key: str,
    default: _T,
    description: str,
    *,
    minimum: int | None = None,
    pattern: str | None = None,
    pattern_hint: str | None = None,
    check: Callable[[str], str | None] | None = None,
    maximum: int | None = None,
    required: bool = False,
    flavors: Iterable[Flavor] | None = None,
) -> _T:
    """Declare a config key on a settings field (the default lives here and only here)."""
    spec = Spec(
        key,
        description,
        minimum,
        pattern,
        pattern_hint,
        check,
        maximum=maximum,
        required=required,
        flavors=frozenset(flavors) if flavors is not None else None,
    )
    return field(default=default, metadata={"spec": spec})


def secret_setting(
    key: str, description: str, *, flavors: Iterable[Flavor] | None = None
) -> Secret | None:
    """Declare a secret key: no default, never printed, must be set with `--secret`."""
    spec = Spec(
        key,
        description,
        secret=True,
        flavors=frozenset(flavors) if flavors is not None else None,
    )
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


FLYWAY_VERSION_RE = re.compile(r"^\d+([._]\d+)*$")
QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$"
"""A Kubernetes object name such as a Secret's (or empty)."""
PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
IMAGE_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
SEMVER = r"^\d+\.\d+\.\d+$"


def check_flyway_version(value: str) -> str | None:
    """Flyway versions are digits separated by `.` or `_` (e.g. `1`, `1.1`, `2_0_1`)."""
    if FLYWAY_VERSION_RE.match(value):
        return None
    return "must be a Flyway version: digits separated by '.' or '_' (e.g. 1, 1.1, 0)"


def check_object_store_path(value: str) -> str | None:
    """S3 (or an S3-compatible store) and Google Cloud Storage get the credentials they need
    (`cnpgBackupCredentials`); the program declares none of Azure's, whose archiving would
    then fail after the deploy."""
    if not value or value.startswith(("s3://", "gs://")):
        return None
    kind = (
        "an Azure Blob Storage path"
        if ".blob.core.windows.net" in value or value.startswith(("azure://", "https://"))
        else "neither an s3:// nor a gs:// path"
    )
    return (
        f"is {kind}: only S3 (and S3-compatible stores) and Google Cloud Storage are "
        "supported (the program declares no Azure credentials); use s3://bucket/path, with "
        "cnpgBackupEndpointUrl for an S3-compatible store, or gs://bucket/path"
    )


def object_store_scheme(path: str) -> str:
    """`s3` or `gs`: the kind of store a checked destination path names ("" when unset)."""
    return path.partition("://")[0] if "://" in path else ""


HELM_RELEASE_NAME_MAX: Final = 53
LABEL_NAME_MAX: Final = 63
CNPG_CLUSTER_NAME_MAX: Final = 50


def bitnami_fullname(release_name: str) -> str:
    """The chart's `common.names.fullname`: the release name, plus `-postgresql` unless
    present, cut to 63 characters."""
    name = release_name if "postgresql" in release_name else f"{release_name}-postgresql"
    return name[:LABEL_NAME_MAX].rstrip("-")


def check_target_time(value: str) -> str | None:
    """A moment with its offset: without one, PostgreSQL would read it in the server's time
    zone, and recovery would stop hours off."""
    if not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return "is not an RFC 3339 time; write it as 2026-12-03T09:59:00Z"
    if moment.tzinfo is None:
        return (
            "has no UTC offset, so PostgreSQL would read it in the server's time zone; add "
            "one, such as 2026-12-03T09:59:00Z"
        )
    return None


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


_CNPG_IMAGE = re.compile(r"^[^\s@]+:(\d+)(\.\d+)*([-_+][^\s@/:]*)?(@sha256:[0-9a-f]{64})?$")


def check_cnpg_image(value: str) -> str | None:
    """The operator reads the PostgreSQL major version from the image's tag, so a tag that
    does not start with it (`latest`, a digest alone) leaves the Cluster unreconciled."""
    if _CNPG_IMAGE.match(value):
        return None
    return (
        "has no tag that starts with the PostgreSQL major version, which the CloudNativePG "
        "operator reads from it: name the version in the tag, e.g. "
        "ghcr.io/cloudnative-pg/postgresql:17.6 or ...:17.6-bookworm@sha256:<digest>"
    )


def check_not_superuser(value: str) -> str | None:
    """Migrations must not run as the superuser the chart creates."""
    if value == "postgres":
        return "must not be 'postgres': migrations run as a dedicated non-superuser role"
    return None


class CnpgBackupMethod(enum.Enum):
    """How a CloudNativePG cluster is backed up before a migration.

    `barman-cloud`: the Barman Cloud plugin: base backups and continuous WAL archiving to an
    object store, so any point in time within the retention can be recovered.
    `volume-snapshot`: CSI volume snapshots of the instances' volumes (no WAL archive: the
    snapshot's own moment only).
    """

    BARMAN_CLOUD = "barman-cloud"
    VOLUME_SNAPSHOT = "volume-snapshot"


class CnpgBackupCredentials(enum.Enum):
    """How the instances (where the Barman Cloud plugin's sidecar runs) reach the object store.

    `access-keys`: the stack's secret config cnpgBackupAccessKeyId and
    cnpgBackupSecretAccessKey; the program creates the Secret in its namespace (S3).
    `secret`: a Secret the platform made, named by cnpgBackupCredentialsSecret (S3); it can
    only exist before the first `up` in a namespace the program does not create.
    `iam-role`: an AWS IAM role (S3): IRSA with cnpgBackupIamRoleArn, or the pods' own.
    `workload-identity`: GKE Workload Identity (gs://), with cnpgBackupGcpServiceAccount.
    """

    ACCESS_KEYS = "access-keys"
    SECRET = "secret"  # noqa: S105 (a way of holding credentials, not one)
    IAM_ROLE = "iam-role"
    WORKLOAD_IDENTITY = "workload-identity"


RETENTION = r"^[1-9][0-9]*[dwm]$"
GCP_SERVICE_ACCOUNT = (
    r"^([a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9][a-z0-9.-]*\.iam\.gserviceaccount\.com)?$"
)


INT32_MAX: Final = 2**31 - 1
"""The largest integer a Kubernetes field (backoffLimit, activeDeadlineSeconds...) takes."""
IN_CLUSTER: Final = frozenset({Flavor.BITNAMI, Flavor.CLOUDNATIVE_PG})
DUMPED: Final = frozenset({Flavor.BITNAMI, Flavor.EXTERNAL})
"""The flavors backed up by pg_dump to a volume of the program's."""


def fqkey(key: str) -> str:
    """A key as the stack file and every message spell it: `<project>:<key>`."""
    return f"{PROJECT}:{key}"
