"""Every config key of the program, declared once on the typed settings it fills (pure).

`Settings` is what the program reads from a stack; each field names its key, default,
description and constraints with `setting()`. The flavors' keys are in `flavor_keys.py`, the
Jobs' in `job_keys.py`. Add a key on the settings it belongs to (and its rules in
`rules.py`), then `make config-reference`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from components.settings.alert_keys import AlertSettings
from components.settings.declarations import (
    DNS_LABEL,
    IN_CLUSTER,
    PG_IDENTIFIER,
    Flavor,
    PasswordSource,
    RolesManager,
    Secret,
    Spec,
    SslMode,
    check_not_superuser,
    secret_setting,
    setting,
)
from components.settings.flavor_keys import CnpgSettings, PostgresSettings
from components.settings.job_keys import BackupSettings, FlywaySettings


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
        flavors=IN_CLUSTER,
    )
    access_host: str = setting(
        "databaseAccessHost",
        "",
        "Host of the database as reached from where `pulumi up` runs: required for external "
        "(Flyway uses it too) and for databaseRolesManagedBy pulumi; unused otherwise in-cluster.",
    )
    access_port: int = setting(
        "databaseAccessPort", 5432, "Port of databaseAccessHost.", minimum=1, maximum=65535
    )
    ssl_mode: SslMode = setting(
        "databaseSslMode",
        SslMode.REQUIRE,
        "sslmode of Pulumi's role-management connection (databaseRolesManagedBy pulumi), and, "
        "for external, of Flyway's, the backup's and the grants Job's.",
    )
    admin_user: str = setting(
        "databaseAdminUser",
        "postgres",
        "Role the roles are managed as (needs CREATEROLE; external: the managed service's "
        "admin, no superuser needed); its password is adminPassword.",
        pattern=PG_IDENTIFIER,
        pattern_hint="a lower-case PostgreSQL identifier",
        flavors=[Flavor.EXTERNAL],
    )
    ca_secret: str = setting(
        "databaseCaSecret",
        "",
        "external: a Secret in the namespace whose ca.crt signed the server's certificate; "
        "required by databaseSslMode verify-ca and verify-full.",
        flavors=[Flavor.EXTERNAL],
    )
    roles_managed_by: RolesManager = setting(
        "databaseRolesManagedBy",
        RolesManager.NONE,
        "Who creates the migrator, app and read-only roles and their grants: none (in-cluster: "
        "no roles, Flyway runs as databaseOwner), cluster (a Job from inside the cluster, no "
        "network path from `pulumi up` needed; external: as databaseAdminUser), pulumi "
        "(pulumi-postgresql at databaseAccessHost as databaseAdminUser) or dba (external: a DBA "
        "did; Flyway logs in as <databaseName>_migrator with migratorPassword).",
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
        required=True,
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
    disposable: bool = setting(
        "disposable",
        False,
        "Declares the stack's data disposable (a developer's or a preview's stack): the only "
        "way protectDatabase may be false, so switching protection off is a reviewed line.",
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
    alerts: AlertSettings = field(default_factory=AlertSettings)
    credentials: Credentials = field(default_factory=Credentials)
    explicit: frozenset[str] = field(default=frozenset(), metadata={"derived": True})
    """The keys the stack sets, as opposed to those left at their defaults."""
    secret_values: frozenset[str] = field(default=frozenset(), metadata={"derived": True})
    """Values of keys that are not secrets but were set as one (`--secret`): they stay
    secret in every resource and output that carries them."""


@dataclass(frozen=True)
class DeclaredKey:
    """One key's declaration, its Python type and its default."""

    spec: Spec
    type: Any
    default: Any


def _keys(cls: type[Any]) -> dict[str, DeclaredKey]:
    """Every declared key of a settings dataclass tree, by key name."""
    hints = typing.get_type_hints(cls)
    out: dict[str, DeclaredKey] = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("spec")
        if f.metadata.get("derived"):
            continue
        if spec is None:
            out.update(_keys(hints[f.name]))
        else:
            out[spec.key] = DeclaredKey(spec, hints[f.name], f.default)
    return out


def declared_keys() -> dict[str, DeclaredKey]:
    return _keys(Settings)
