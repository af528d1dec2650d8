"""What the harness reads from the program: the declared Job, database and grants."""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Final

from components.access.privileges import PrivilegeModel, privilege_model
from components.contract import Purpose
from components.settings import Flavor
from tests.program import ProgramRun

JOB_TYPE = "kubernetes:batch/v1:Job"
CONFIG_MAP_TYPE = "kubernetes:core/v1:ConfigMap"
SECRET_TYPE = "kubernetes:core/v1:Secret"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CLUSTER_TYPE = "kubernetes:postgresql.cnpg.io/v1:Cluster"
PROVIDER_TYPE = "pulumi:providers:postgresql"
ROLE_TYPE = "postgresql:index/role:Role"
GRANT_TYPE = "postgresql:index/grant:Grant"
DEFAULT_PRIVILEGES_TYPE = "postgresql:index/defaultPrivileges:DefaultPrivileges"
GRANT_ROLE_TYPE = "postgresql:index/grantRole:GrantRole"
ROLE_RESOURCE_TYPES: Final = (ROLE_TYPE, GRANT_ROLE_TYPE, GRANT_TYPE, DEFAULT_PRIVILEGES_TYPE)
GRANTS_COMPONENT: Final = "tradestream:database:RoleGrants"
"""The in-cluster grants Job's component: roles and grants applied by psql from a pod."""
"""What pulumi-postgresql declares: together, the privilege model."""
SUPERUSER: Final = "postgres"
"""The superuser of the Bitnami image and of CloudNativePG clusters."""
INITSCRIPTS_USER_ENV: Final = "POSTGRESQL_INITSCRIPTS_USERNAME"
INITSCRIPTS_PASSWORD_ENV: Final = "POSTGRESQL_INITSCRIPTS_PASSWORD"
CNPG_APP_PASSWORD_KEY: Final = "password"
ENTRYPOINT = "flyway"
"""The Flyway image's entrypoint: the rest of the container command are Flyway's arguments."""
KUBELET_TIMESTAMP_DIR = "..2026_01_01_00_00_00.000000000"
"""The kubelet's atomic writer puts a volume's files in a timestamped hidden directory."""
KUBELET_DATA_LINK = "..data"
DEFAULT_FILE_MODE = 0o644
"""What the kubelet uses when a projected volume sets no defaultMode."""
LOCAL_SSL_MODE: Final = "disable"
"""The local server has no TLS; a declared sslmode is kept as a key, with this value."""
JDBC_SSL_MODES: Final = frozenset(
    {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
)

_IMAGE_VERSION = re.compile(r":(\d+(?:\.\d+)*)(?:-[\w.]+)?$")
_JDBC_URL = re.compile(
    r"^jdbc:postgresql://(?P<hostport>[^/?]+)/(?P<database>[^/?]+)(?:\?(?P<query>.*))?$"
)


class HarnessError(RuntimeError):
    """The declared Job cannot be run as declared (a program error or an unexpected spec)."""


@dataclass(frozen=True)
class ConfigMapContent:
    """A ConfigMap's payload as declared: text values and base64 binary values by key."""

    data: dict[str, str] = field(default_factory=dict)
    binary_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectedSource:
    """One ConfigMap source of the projected volume: which keys land at which paths."""

    config_map: str
    items: tuple[tuple[str, str], ...]
    """(key, path) pairs, in declared order."""
    modes: dict[str, int] = field(default_factory=dict)
    """Per-path file modes, where an item sets one."""


@dataclass(frozen=True)
class DeclaredGrants:
    """The in-cluster grants Job: psql's command, its environment and its script."""

    image: str
    command: tuple[str, ...]
    env: tuple[dict[str, Any], ...]
    mounts: dict[str, str]
    """Mount path -> volume kind (configMap, emptyDir, secret)."""
    script_path: str
    """Where the pod sees the script: the ConfigMap volume's mount path and item path."""
    script: str
    ca_secret: str | None


@dataclass(frozen=True)
class DatabaseSetup:
    """How the declared database comes to exist and who may log in, per the recorded resources."""

    flavor: Flavor
    database: str
    owner: str | None
    """The role owning the database in-cluster; None outside, where `admin` owns it."""
    admin: str
    """Who creates the database: the superuser in-cluster, the managed service's admin outside."""
    init_scripts: dict[str, str] = field(default_factory=dict)
    """The Bitnami release's `primary.initdb.scripts`, by file name."""
    init_user: str | None = None
    """Who the Bitnami image runs the init scripts as."""
    owner_secret: tuple[str, str] | None = None
    """(Secret, key) holding the owner's password in-cluster."""
    model: PrivilegeModel | None = None
    """The roles and grants the program manages, where it manages them."""
    grants: DeclaredGrants | None = None
    """The in-cluster grants Job, where roles are managed from inside the cluster."""
    managed_roles: tuple[dict[str, Any], ...] = ()
    """The Cluster's `spec.managed.roles`: the roles CloudNativePG's operator creates."""

    @property
    def login(self) -> str:
        """The role Flyway must log in as: the migrator where roles are managed, else the owner."""
        if self.model is not None:
            return self.model.role(Purpose.MIGRATOR).name
        if self.owner is None:
            raise HarnessError("an external database without managed roles has no login for Flyway")
        return self.owner


@dataclass(frozen=True)
class DeclaredJob:
    """The migration Job and what it depends on, read from the recorded resources only."""

    stack: str
    image: str
    command: tuple[str, ...]
    env: tuple[dict[str, Any], ...]
    """Container env entries exactly as declared (`value` or `valueFrom`)."""
    volume_mounts: tuple[dict[str, Any], ...]
    mount_path: str
    """Where the projected migrations volume is mounted in the container."""
    scratch_paths: tuple[str, ...]
    """Mount paths of emptyDir volumes: the pod's only writable places."""
    sources: tuple[ProjectedSource, ...]
    default_mode: int
    config_maps: dict[str, ConfigMapContent]
    """Every ConfigMap the program declares, by metadata.name."""
    setup: DatabaseSetup
    packaged: tuple[dict[str, Any], ...]
    """The program's `migrations` stack output."""
    secret_values: dict[tuple[str, str], str] = field(default_factory=dict)
    """(Secret name, key) -> value of every Secret the program declares, for the env vars
    other than FLYWAY_PASSWORD that a pod reads by secretKeyRef (secret placeholders)."""
    run: ProgramRun | None = field(default=None, compare=False, repr=False)
    """The program's run this was read from: every resource, for what runs beside the Job."""

    @property
    def database(self) -> str:
        return self.setup.database

    @property
    def flyway_version(self) -> str:
        """The Flyway release in the image tag (`flyway/flyway:<version>-alpine`)."""
        match = _IMAGE_VERSION.search(self.image)
        if match is None:
            raise HarnessError(f"cannot read a Flyway version from image {self.image!r}")
        return match.group(1)

    def env_value(self, name: str) -> str:
        """The literal value of a declared env var (KeyError when absent or not literal)."""
        for entry in self.env:
            if entry.get("name") == name and "value" in entry:
                return str(entry["value"])
        raise KeyError(name)

    def env_entry(self, name: str) -> dict[str, Any]:
        """The declared env entry `name`, whatever its form (KeyError when absent)."""
        for entry in self.env:
            if entry.get("name") == name:
                return entry
        raise KeyError(name)


def _secrets(run: ProgramRun) -> dict[str, dict[str, Any]]:
    """Declared Secrets' stringData by metadata.name (the engine's, where it names them)."""
    return {
        s.outputs["metadata"]["name"]: dict(s.inputs.get("stringData") or {})
        for s in run.of_type(SECRET_TYPE)
    }


def model_resources(model: PrivilegeModel) -> dict[str, list[dict[str, Any]]]:
    """The pulumi-postgresql inputs that declare `model`, by resource type (passwords aside)."""
    roles = [
        {
            "name": role.name,
            "login": True,
            "superuser": False,
            "createDatabase": False,
            "createRole": False,
            "replication": False,
            "bypassRowLevelSecurity": False,
            "inherit": True,
            "skipReassignOwned": False,
        }
        for role in model.roles
    ]
    grants: list[dict[str, Any]] = []
    for grant in model.grants:
        declared: dict[str, Any] = {
            "database": model.database,
            "role": grant.role,
            "objectType": grant.object_type,
            "objects": [],
            "privileges": list(grant.privileges),
        }
        if grant.object_type != "database":
            declared["schema"] = model.schema
        grants.append(declared)
    defaults = [
        {
            "database": model.database,
            "schema": model.schema,
            "owner": d.owner,
            "role": d.role,
            "objectType": d.object_type,
            "privileges": list(d.privileges),
        }
        for d in model.default_privileges
    ]
    return {
        ROLE_TYPE: roles,
        GRANT_ROLE_TYPE: [{"role": m.member, "grantRole": m.role} for m in model.memberships],
        GRANT_TYPE: grants,
        DEFAULT_PRIVILEGES_TYPE: defaults,
    }


def declared_model(run: ProgramRun, database: str, owner: str | None) -> PrivilegeModel | None:
    """`privilege_model(database, owner=owner)` when the recorded pulumi-postgresql resources
    are exactly that model; None when there are none. Anything else stops the harness."""
    recorded = {t: [dict(r.inputs) for r in run.of_type(t)] for t in ROLE_RESOURCE_TYPES}
    if not any(recorded.values()):
        return None
    for role in recorded[ROLE_TYPE]:
        if not role.pop("password", None):
            raise HarnessError(f"role {role.get('name')} is declared without a password")
    model = privilege_model(database, owner=owner)
    problems: list[str] = []
    for type_, expected in model_resources(model).items():
        want = Counter(json.dumps(r, sort_keys=True) for r in expected)
        got = Counter(json.dumps(r, sort_keys=True) for r in recorded[type_])
        if want != got:
            problems.append(
                f"{type_}:\n  missing {sorted((want - got).elements())}"
                f"\n  unexpected {sorted((got - want).elements())}"
            )
    if problems:
        raise HarnessError(
            f"the declared roles and grants are not privilege_model({database!r}, "
            f"owner={owner!r}):\n" + "\n".join(problems)
        )
    return model


def check_login(job: DeclaredJob, run: ProgramRun) -> None:
    """FLYWAY_USER is the login the declared database provides, and FLYWAY_PASSWORD its password.

    With managed roles the password's Secret must be declared with the migrator's password;
    otherwise it is the owner's Secret of the flavor (the chart's, or the operator's `-app`).
    """
    setup = job.setup
    user = job.env_value("FLYWAY_USER")
    if user != setup.login:
        raise HarnessError(
            f"the Job logs in as {user}, but the declared {setup.flavor.value} database "
            f"provides {setup.login}"
        )
    ref = job.env_entry("FLYWAY_PASSWORD").get("valueFrom", {}).get("secretKeyRef")
    if not ref:
        raise HarnessError("FLYWAY_PASSWORD is expected to come from a secretKeyRef")
    if setup.model is None:
        if (ref["name"], ref["key"]) != setup.owner_secret:
            raise HarnessError(f"FLYWAY_PASSWORD reads {ref}, not the owner's {setup.owner_secret}")
        return
    secret = _secrets(run).get(ref["name"])
    if setup.grants is not None:
        # In-cluster, the Secret is the password's source: the operator or the Job sets it.
        if secret is None or secret.get("username") != user or not secret.get(ref["key"]):
            raise HarnessError(f"FLYWAY_PASSWORD reads {ref}, which is not {user}'s login")
        return
    role = next(r.inputs for r in run.of_type(ROLE_TYPE) if r.inputs["name"] == user)
    if secret is None or secret.get(ref["key"]) != role["password"]:
        raise HarnessError(f"FLYWAY_PASSWORD reads {ref}, which is not {user}'s declared password")


@dataclass(frozen=True)
class PreparedDatabase:
    """A local database set up as declared, with local passwords for the roles that log in."""

    database: str
    login: str
    """The role Flyway logs in as."""
    passwords: dict[str, str]
    """Role name -> local password, in place of what pods would read from Secrets."""
    init_errors: tuple[str, ...] = ()
    """Errors of the init scripts: the Bitnami image discards them and carries on."""

    @property
    def password(self) -> str:
        return self.passwords[self.login]


def _password() -> str:
    return secrets.token_urlsafe(18)


def role_passwords(job: DeclaredJob, prepared: PreparedDatabase) -> PreparedDatabase:
    """Local passwords for the model's roles, as their credentials Secrets would hold them."""
    assert job.setup.model is not None
    new = {r.name: _password() for r in job.setup.model.roles if r.name not in prepared.passwords}
    return replace(prepared, passwords={**prepared.passwords, **new})
