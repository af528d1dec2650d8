"""Rules that involve several keys (pure); each message names the keys to change and how."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from components.settings.alert_checks import alert_checks
from components.settings.backup_rules import backup_checks
from components.settings.declarations import (
    LABEL_NAME_MAX,
    Architecture,
    Flavor,
    PasswordSource,
    RolesManager,
    SslMode,
    bitnami_fullname,
    bitnami_primary_name,
    fqkey,
)
from components.settings.keys import DatabaseSettings, Settings, declared_keys


def placeholder_checks(s: Settings) -> list[str]:
    """A placeholder given both a plain and a secret value would be set twice."""
    plain = {name.lower(): name for name, _ in s.flyway.placeholders}
    return [
        f"{fqkey('flywaySecretPlaceholders')}.{name}: is also set in flywayPlaceholders "
        f"({plain[name.lower()]!r}); give it one value: remove one with "
        f"`pulumi config rm --path 'flywayPlaceholders.{plain[name.lower()]}'` or "
        f"`pulumi config rm --path 'flywaySecretPlaceholders.{name}'`"
        for name, _ in s.flyway.secret_placeholders
        if name.lower() in plain
    ]


def cross_checks(s: Settings) -> list[str]:
    """Rules that involve several keys; each message names the keys to change."""
    problems: list[str] = []
    pg, fw = s.postgres, s.flyway
    if pg.architecture is Architecture.REPLICATION and pg.read_replicas < 1:
        problems.append(
            f"{fqkey('postgresReadReplicas')}: is {pg.read_replicas} but postgresArchitecture is "
            "replication; set postgresReadReplicas >= 1 or postgresArchitecture standalone"
        )
    if pg.architecture is Architecture.STANDALONE and pg.read_replicas > 0:
        problems.append(
            f"{fqkey('postgresReadReplicas')}: is {pg.read_replicas} but postgresArchitecture is "
            "standalone; set postgresArchitecture replication or postgresReadReplicas 0"
        )
    if fw.job_timeout_seconds < fw.active_deadline_seconds:
        problems.append(
            f"{fqkey('flywayJobTimeoutSeconds')}: {fw.job_timeout_seconds} is shorter than "
            f"flywayActiveDeadlineSeconds ({fw.active_deadline_seconds}); `pulumi up` would stop "
            "waiting before Kubernetes stops the Job. Raise flywayJobTimeoutSeconds."
        )
    if s.database.flavor is Flavor.EXTERNAL and not s.database.access_host:
        problems.append(
            f"{fqkey('databaseAccessHost')}: is empty but databaseFlavor is external; set it "
            "to the host of the managed PostgreSQL"
        )
    key = f"{bitnami_primary_name(pg.release_name, pg.architecture)}-client"
    if s.database.flavor is Flavor.BITNAMI and len(key) > LABEL_NAME_MAX:
        problems.append(
            f"{fqkey('postgresReleaseName')}: {pg.release_name!r} gives the chart's client label "
            f"key {key!r} ({len(key)} characters with postgresArchitecture "
            f"{pg.architecture.value}; Kubernetes allows {LABEL_NAME_MAX}): shorten it by "
            f"{len(key) - LABEL_NAME_MAX} characters"
        )
    database = s.database
    verifying = database.ssl_mode in (SslMode.VERIFY_CA, SslMode.VERIFY_FULL)
    if database.flavor is Flavor.EXTERNAL and verifying and not database.ca_secret:
        problems.append(
            f"{fqkey('databaseCaSecret')}: is empty but databaseSslMode is "
            f"{database.ssl_mode.value}: the Flyway pod needs the server's CA certificate to "
            "verify it. Name a Secret holding it as ca.crt, or set databaseSslMode require"
        )
    if (
        database.flavor is Flavor.BITNAMI
        and database.roles_managed_by is RolesManager.PULUMI
        and database.ssl_mode is not SslMode.DISABLE
    ):
        problems.append(
            f"{fqkey('databaseSslMode')}: is {database.ssl_mode.value} but the Bitnami chart "
            "serves no TLS as this program deploys it (databaseFlavor bitnami): set "
            "databaseSslMode disable, or use databaseFlavor cloudnative-pg, which serves TLS "
            "with its own CA"
        )
    problems.extend(_roles_checks(database))
    problems.extend(_psql_checks(s))
    problems.extend(backup_checks(s))
    problems.extend(alert_checks(s))
    problems.extend(_flavor_scope_checks(s))
    problems.extend(_protection_checks(s))
    problems.extend(_name_checks(s))
    problems.extend(_resource_checks(s))
    return problems


def _flavor_scope_checks(s: Settings) -> list[str]:
    """A key only another flavor reads would be silently ignored: refuse it."""
    flavor = s.database.flavor
    problems = []
    for name, k in declared_keys().items():
        readers = k.spec.flavors
        if name in s.explicit and readers is not None and flavor not in readers:
            names = " or ".join(sorted(f.value for f in readers))
            problems.append(
                f"{fqkey(name)}: is read only by databaseFlavor {names}, and this stack is "
                f"{flavor.value}, so it would be ignored; remove it (`pulumi config rm {name}`)"
            )
    return problems


def _protection_checks(s: Settings) -> list[str]:
    """Switching protection off must be a deliberate, reviewed statement about the data."""
    if s.protect_database or s.disposable:
        return []
    return [
        f"{fqkey('protectDatabase')}: is false, but the stack does not declare its data "
        "disposable; a database of record loses its protection only on purpose: set "
        "disposable true (`pulumi config set disposable true`) if losing this stack's data is "
        "acceptable, else remove protectDatabase"
    ]


ROLE_SUFFIX_MAX: Final = len("_readonly")
PG_NAME_BYTES: Final = 63
STATEFULSET_NAME_MAX: Final = 52
"""A StatefulSet's pods carry `controller-revision-hash: <name>-<10 characters>`, a label value
of at most 63 characters: a longer name gets no pods at all."""


def _name_checks(s: Settings) -> list[str]:
    """Names derived from settings must be valid where they end up."""
    problems = []
    db = s.database.name
    derived = f"{db.replace('_', '-')}-migration-backups"
    if not db[:1].isalnum():
        problems.append(
            f"{fqkey('databaseName')}: {db!r} gives Kubernetes names such as {derived!r}, which "
            "must start with a letter or digit; rename the database to start with a letter"
        )
    if s.database.roles_managed_by is not RolesManager.NONE:
        longest = f"{db}_readonly"
        if len(longest.encode()) > PG_NAME_BYTES:
            problems.append(
                f"{fqkey('databaseName')}: {db!r} ({len(db)} characters) gives role names such "
                f"as {longest!r}, longer than PostgreSQL's {PG_NAME_BYTES} bytes (it would cut "
                f"them silently); use at most {PG_NAME_BYTES - ROLE_SUFFIX_MAX} characters"
            )
    if s.database.flavor is Flavor.BITNAMI:
        pg = s.postgres
        fullname = bitnami_fullname(pg.release_name)
        sets = (
            [f"{fullname}-primary", f"{fullname}-read"]
            if pg.architecture is Architecture.REPLICATION
            else [fullname]
        )
        for name in sets:
            if len(name) > STATEFULSET_NAME_MAX:
                problems.append(
                    f"{fqkey('postgresReleaseName')}: {pg.release_name!r} gives the chart's "
                    f"StatefulSet {name!r} ({len(name)} characters); above "
                    f"{STATEFULSET_NAME_MAX} its pods are never created (their revision label "
                    f"would pass 63): shorten it by {len(name) - STATEFULSET_NAME_MAX}"
                )
                break
    return problems


_SUFFIXES: Final[dict[str, Decimal | int]] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity (already checked against QUANTITY) as a number."""
    number = text.rstrip("kMGTPEimn")
    suffix = text[len(number) :]
    return Decimal(number) * Decimal(_SUFFIXES[suffix])


def _resource_checks(s: Settings) -> list[str]:
    """A request above its limit is refused by the API server, after the database was
    already being deployed: refuse it here."""
    pairs = [
        ("postgresCpuRequest", "postgresCpuLimit", s.postgres.cpu_request, s.postgres.cpu_limit),
        (
            "postgresMemoryRequest",
            "postgresMemoryLimit",
            s.postgres.memory_request,
            s.postgres.memory_limit,
        ),
        ("flywayCpuRequest", "flywayCpuLimit", s.flyway.cpu_request, s.flyway.cpu_limit),
        (
            "flywayMemoryRequest",
            "flywayMemoryLimit",
            s.flyway.memory_request,
            s.flyway.memory_limit,
        ),
    ]
    if s.database.flavor is Flavor.EXTERNAL:
        pairs = pairs[2:]
    return [
        f"{fqkey(request_key)}: {request!r} is more than {limit_key} ({limit!r}); Kubernetes "
        f"refuses a request above its limit: lower {request_key} or raise {limit_key}"
        for request_key, limit_key, request, limit in pairs
        if quantity(request) > quantity(limit)
    ]


def _roles_checks(database: DatabaseSettings) -> list[str]:  # noqa: PLR0911 (one per conflict)
    """Who manages the roles must fit where the database is and how it can be reached."""
    key, manager = fqkey("databaseRolesManagedBy"), database.roles_managed_by
    flavor, host = database.flavor.value, database.access_host
    if database.flavor is Flavor.EXTERNAL:
        if manager is RolesManager.NONE:
            return [
                f"{key}: is none but databaseFlavor is external: the program creates no owner "
                "there for Flyway to log in as. Set databaseRolesManagedBy cluster (the grants "
                "Job creates the roles from inside the cluster, as databaseAdminUser), pulumi "
                "(Pulumi creates them at databaseAccessHost) or dba (a DBA created them)"
            ]
        managed = {f"{database.name}_{p}" for p in ("migrator", "app", "readonly")}
        if database.manages_roles and database.admin_user in managed:
            return [
                f"{fqkey('databaseAdminUser')}: is {database.admin_user!r}, one of the roles "
                f"the program manages (databaseRolesManagedBy {manager.value}), which it would "
                "strip of CREATEROLE; set it to the managed service's admin role"
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
            f"{fqkey('databaseAccessHost')}: is {host!r} but databaseRolesManagedBy is "
            f"{manager.value} (databaseFlavor {flavor}), which never connects from where "
            "`pulumi up` runs. Remove databaseAccessHost, or set databaseRolesManagedBy "
            "pulumi to manage the roles through it"
        ]
    return []


PSQL_MIN_MAJOR: Final = 15
"""Where the in-cluster grants Job creates the roles (Bitnami, external) it reads their
passwords with psql's \\getenv, new in PostgreSQL 15."""


def _psql_checks(s: Settings) -> list[str]:
    """The grants Job runs psql from the release's own image (Bitnami) or from backupImage
    (external), so its version must do."""
    if not s.database.roles_in_cluster or s.database.flavor is Flavor.CLOUDNATIVE_PG:
        return []
    external = s.database.flavor is Flavor.EXTERNAL
    key, tag = (
        ("backupImage", _image_tag(s.backup.image))
        if external
        else ("postgresImageTag", s.postgres.image_tag)
    )
    major = re.match(r"^(\d+)[.-]", tag + "-")
    if major is None or int(major.group(1)) >= PSQL_MIN_MAJOR:
        return []
    value = s.backup.image if external else tag
    return [
        f"{fqkey(key)}: {value!r} is PostgreSQL {major.group(1)}, but "
        "databaseRolesManagedBy cluster runs that image's psql to create the roles, which "
        f"needs PostgreSQL {PSQL_MIN_MAJOR} or later: use a {PSQL_MIN_MAJOR}+ image, or set "
        f"databaseRolesManagedBy {'pulumi or dba' if external else 'none'}"
    ]


def _image_tag(image: str) -> str:
    """`17.6` of `postgres:17.6`, `registry:5000/postgres:17.6@sha256:...`; "" without one."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rpartition(":")[2] if ":" in last else ""


def required_secret_keys(s: Settings) -> tuple[set[str], str]:
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


def credential_checks(s: Settings, *, require: bool = True) -> list[str]:
    required, reason = required_secret_keys(s)
    creds = s.credentials
    present = {
        "adminPassword": creds.admin_password is not None,
        "ownerPassword": creds.owner_password is not None,
        "replicationPassword": creds.replication_password is not None,
        "migratorPassword": creds.migrator_password is not None,
    }
    problems: list[str] = []
    for key, is_set in present.items():
        if key in required and not is_set and require:
            problems.append(
                f"{fqkey(key)}: missing required secret ({reason}); set it with "
                f"`pulumi config set --secret {key} <value>`"
            )
        elif key not in required and is_set:
            problems.append(
                f"{fqkey(key)}: is set but would be ignored ({reason}); remove it with "
                f"`pulumi config rm {key}` or change passwordSource/databaseFlavor"
            )
    return problems
