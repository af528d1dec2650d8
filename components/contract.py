"""What every database flavor yields, and the types the flavors, the access wing and the Jobs
share. Nothing here deploys anything; a flavor implements `Database`, and the chooser in
`components/database/` is the only code that knows which flavors exist.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    import pulumi

    from components.alert_rules import AlertRule
    from components.settings import Settings

TYPE_PREFIX: Final = "tradestream:database"
"""Type-token prefix of every component: `tradestream:database:<Component>`. Part of every
URN in a deployed stack's state: never change it."""
APP_NAME: Final = "tradestream-database"
DIGEST_ANNOTATION_PREFIX: Final = "tradestream.io"
HISTORY_TABLE: Final = "flyway_schema_history"
"""Flyway's history table (the Job sets no FLYWAY_TABLE): ${flyway:table}, and what the
privilege model keeps the migrator's alone."""
HISTORY_CALLBACK: Final = "afterMigrate__protect_schema_history.sql"
"""The program's own Flyway callback, which keeps the history table the migrator's; a
migration file of the same name would collide with it."""
PASSWORD_KEY: Final = "password"  # noqa: S105 (a Secret key, not a password)
USERNAME_KEY: Final = "username"
VERIFIER_KEY: Final = "password-scram-sha-256"
"""The Secret key of a role's password as a SCRAM verifier, where an admin that is not a
superuser sets it (the verifier is what the server stores; no password is sent)."""


def labels(component: str) -> dict[str, str]:
    """Recommended Kubernetes labels; `component` tells the database from the migrations."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "tradestream",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def digest(value: object) -> str:
    """SHA-256 of a JSON-able value in canonical form, so equal inputs give equal names."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ServerAddress:
    """Where the Jobs reach PostgreSQL, whichever flavor serves it."""

    host: str
    port: int
    database: str
    ssl_mode: str | None = None
    """libpq/JDBC `sslmode`; None leaves the driver's default (in-cluster flavors)."""
    ca_secret: str | None = None
    """A Secret whose `ca.crt` signed the server's certificate. Clients then verify the
    certificate and the host name against it (verify-full) instead of trusting any server."""


@dataclass(frozen=True)
class DatabaseEndpoint:
    """An address and a login: what a client (Flyway, the backup) needs from any flavor."""

    address: ServerAddress
    username: str
    secret_name: str
    password_key: str


class Purpose(enum.Enum):
    """The roles of the privilege model: applications and DBAs know them by these names."""

    MIGRATOR = "migrator"
    APP = "app"
    READONLY = "readonly"


def role_name(database: str, purpose: Purpose) -> str:
    """`<database>_migrator`, `_app`, `_readonly`."""
    return f"{database}_{purpose.value}"


def credentials_secret_name(database: str, purpose: Purpose) -> str:
    """The Secret an application (or the Job) reads a role's login from."""
    return f"{database.replace('_', '-')}-{purpose.value}-credentials"


def login_secret_data(
    username: str, password: pulumi.Input[str], address: ServerAddress
) -> dict[str, pulumi.Input[str]]:
    """What every role's credentials Secret holds, for the Job and for applications.

    CloudNativePG reads `username` (which must be the role's name) and `password`; it does
    not check the Secret's type, so the one layout serves it too."""
    return {
        USERNAME_KEY: username,
        PASSWORD_KEY: password,
        "host": address.host,
        "port": str(address.port),
        "database": address.database,
    }


@dataclass(frozen=True)
class AdminAccess:
    """How the Pulumi process itself reaches PostgreSQL as a role that may create roles
    (databaseRolesManagedBy pulumi)."""

    host: str
    port: int
    username: str
    password: pulumi.Output[str]
    database: str
    ssl_mode: str


@dataclass(frozen=True)
class InClusterAdmin:
    """What a flavor offers the in-cluster grants Job: an image with psql, and an admin's
    login. A superuser can do all the Job does by right: read whether each role's password is
    set (pg_authid), grant on every object whoever owns it, set the migrator's default
    privileges, create the roles. An admin with CREATEROLE only (a managed service's) does
    what the model needs through the roles it creates (`components.access.createrole`)."""

    image: str
    username: str
    secret_name: str
    password_key: str
    creates_roles: bool
    """True: the Job creates the roles (Bitnami, external). False: the database's operator
    does (CloudNativePG's managed roles) and the Job waits for them."""
    superuser: bool = True
    """False: the admin has CREATEROLE (and CREATEDB) but is no superuser, as on a managed
    service; the Job then sets passwords as SCRAM verifiers and creates the roles itself."""


@dataclass(frozen=True)
class DumpTarget:
    """A backup by pg_dump with Flyway's own login, to a volume of the program's."""

    endpoint: DatabaseEndpoint
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """The label the database's NetworkPolicy admits."""


@dataclass(frozen=True)
class ClusterTarget:
    """A backup the database's operator takes: the custom resource that asks for one (a
    CloudNativePG `Backup`), and what its status says once it is done."""

    api_version: str
    kind: str
    spec: Mapping[str, Any]
    done_when: str
    """A `pulumi.com/waitFor` expression that holds once the backup ended, either way."""
    failed_phase: str
    """The `status.phase` of a backup that ended without a backup: `up` stops there."""


BackupTarget = DumpTarget | ClusterTarget


@dataclass(frozen=True)
class Traits:
    """What the wiring and the tools know of a flavor before anything is deployed (pure)."""

    holds_data: bool
    """The program runs the database in the stack's namespace: the namespace holds its
    volumes, so both are the database of record."""
    owner: str | None
    """The role owning the database and what existed before the migrator, where the program
    creates it; None where the database is someone else's (external)."""
    record_key: str | None
    """The key naming what holds the data; a new value replaces the database."""
    record_name: str
    """Its value ("" when the program holds no data)."""
    backup: str
    """How the backup before a migration is taken, in a reviewer's words."""
    waits: tuple[tuple[str, int], ...] = ()
    """What `pulumi up` waits for before the database is ready, at most, in seconds."""
    alerts: tuple[AlertRule, ...] = ()
    """The alerts on the database's own backups that its exporter feeds (alertsEnabled); the
    Jobs around a migration are watched by the program whatever the flavor."""
    recovered_from: str | None = None
    """The archive folder the database was recovered from when it was created ("": none);
    None where the program does not recover this flavor."""


@dataclass(frozen=True)
class AppAccess:
    """What an application's stack reads from this one to connect."""

    read_write_host: str
    read_only_host: str
    port: int
    database: str
    app_secret: str
    """The credentials Secret of the read-write role (or the owner's, where roles are not
    managed)."""
    read_only_secret: str
    """The credentials Secret of the read-only role ("" where roles are not managed)."""


class Database(Protocol):
    """What every flavor's component yields; nothing downstream asks which flavor it is."""

    address: ServerAddress
    """Where the primary answers inside the cluster (or the external host)."""
    endpoint: DatabaseEndpoint | None
    """The login Flyway uses where the program manages no roles (the owner's, or the migrator's
    a DBA created); None where the access wing provides it."""
    admin: AdminAccess | None
    """For pulumi-postgresql (databaseRolesManagedBy pulumi)."""
    in_cluster_admin: InClusterAdmin | None
    """For the in-cluster grants Job (databaseRolesManagedBy cluster)."""
    client_labels: dict[str, str]
    """Pod labels a client needs to pass the database's NetworkPolicy."""
    password_versions: Sequence[pulumi.Output[str]]
    """The versions of the Secrets whose passwords the grants Job sets (it runs again when one
    changes); empty where the database sets the passwords itself."""
    host: pulumi.Output[str]
    """The address's host, resolved once the database is ready."""
    read_only_host: str
    """Where read-only clients connect (a replica Service where there is one)."""

    def backup_target(self, login: DatabaseEndpoint) -> BackupTarget:
        """How to back this database up before a migration that logs in as `login`."""
        ...


@dataclass(frozen=True)
class ManagedRole:
    """A login role whose credentials the database holds, managed from inside the cluster."""

    name: str
    secret_name: str
    """Its credentials Secret (`username`, `password`, ...)."""
    member_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class Logins:
    """The credentials Secrets of the managed roles, once made."""

    secrets: tuple[pulumi.Resource, ...]
    versions: tuple[pulumi.Output[str], ...]
    """Each Secret's resourceVersion, which changes with its password."""


class LoginSecrets(Protocol):
    """Makes each managed role's password and credentials Secret, as children of `parent`
    (the database component): the database needs them before it creates the roles.
    `verifiers` adds each password as a SCRAM verifier (`VERIFIER_KEY`); `protect`, where
    given, overrides the protection the Secrets would inherit from `parent`."""

    def __call__(
        self,
        parent: pulumi.Resource,
        address: ServerAddress,
        *,
        operator_reloads: bool,
        verifiers: bool = False,
        protect: bool | None = None,
    ) -> Logins: ...


@dataclass(frozen=True)
class InClusterRoles:
    """The roles a database holds when they are managed from inside the cluster."""

    roles: tuple[ManagedRole, ...]
    make_logins: LoginSecrets


@dataclass(frozen=True)
class DatabaseArgs:
    """What the chooser hands every flavor."""

    settings: Settings
    namespace: pulumi.Input[str]
    roles: InClusterRoles | None = None
    """Where roles are managed from inside the cluster: their logins, which the database
    component makes (so the operator, or the grants Job, finds them); None otherwise."""


@dataclass(frozen=True)
class FlavorKind:
    """One database flavor: what is known of it before deploying, and how it is deployed."""

    traits: Callable[[Settings], Traits]
    deploy: Callable[[str, DatabaseArgs, pulumi.ResourceOptions | None], Database]


@dataclass(frozen=True)
class Step:
    """Something that runs before Flyway: Flyway waits for `resource`. A step with a
    `run_input` (a digest) runs together with Flyway: a change of it runs Flyway again."""

    resource: pulumi.Resource
    run_input: tuple[str, str] | None = None
    """(name, digest) folded into Flyway's replacement trigger."""
    gate: pulumi.Output[str] | None = None
    """Resolves once the step succeeded; its apply raises, with the reason, when it did not,
    so that Flyway's Job, which consumes it, is never created after a failed step."""
    pod_part: Mapping[str, Any] | None = None
    """`initContainers` and `volumes` this step adds to Flyway's pod: what must run before
    every attempt of Flyway, not once before the Job (the backup of each attempt)."""
