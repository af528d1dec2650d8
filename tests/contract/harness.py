"""Run the Flyway Job the program declares, for real, against a local PostgreSQL.

Everything comes from the resources the program registers under mocks: the container's image,
command and environment, the projected volume and the ConfigMaps behind it, and how the
database comes to exist, per flavor: the Bitnami image's first start and the release's init
scripts (run as the user the image would run them as), the CloudNativePG operator's initdb, or
an external database owned by the admin role Pulumi manages roles as. Where the program manages
roles, the privilege model its pulumi-postgresql resources declare is applied with the same
SQL (`components.privileges.to_sql`), after checking that those resources are that model.

Only what cannot exist outside a cluster is substituted: the database host and port (and TLS:
the local server has none, so `sslmode` becomes `disable`), the passwords pods read from
Secrets, the mount point of the volume and the pod's scratch directory. So a green contract test
means the Job as declared works against the database as declared, not against a copy.

    job = declared_job("staging")
    prepared = prepare_database(server, job)
    lay_out_volume(job, tmp / "sql")
    proc = run_job(job, server, tmp / "sql", password=prepared.password)

Also a command line, to try any migration set the same way:

    python -m tests.contract.harness --stack staging --migrations /path/to/migrations
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from psycopg import sql

from components.credentials import credentials_secret_name
from components.flyway import TLS_PATH
from components.pod import CA_KEY
from components.privileges import PrivilegeModel, Purpose, privilege_model, to_sql
from components.settings import Flavor
from deploy.flyway_cli import DEFAULT_TIMEOUT, run_flyway
from deploy.postgres import PostgresServer
from tests.program import ROOT, ProgramRun, run_program

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


# -- reading the program ------------------------------------------------------------------------

_RunKey = tuple[str, tuple[tuple[str, str | None], ...], tuple[tuple[str, str], ...] | None, str]
_runs: dict[_RunKey, ProgramRun] = {}


def _fingerprint(config: Mapping[str, str | None]) -> str:
    """SHA-256 of the migrations directory the run would read, so a cached run is never stale."""
    directory = ROOT / (config.get("migrationsDir") or "database/migrations")
    sha = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            for chunk in (path.relative_to(directory).as_posix().encode(), path.read_bytes()):
                sha.update(len(chunk).to_bytes(8, "big"))
                sha.update(chunk)
    return sha.hexdigest()


def program_run(
    stack: str,
    config: Mapping[str, str | None] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> ProgramRun:
    """`run_program`, cached per (stack, config, secrets, content of the migrations directory)."""
    overrides = dict(config or {})
    given = tuple(sorted(secrets.items())) if secrets is not None else None
    key = (stack, tuple(sorted(overrides.items())), given, _fingerprint(overrides))
    if key not in _runs:
        _runs[key] = run_program(stack, config=overrides, secrets=secrets)
    return _runs[key]


def declared_job(
    stack: str,
    config: Mapping[str, str | None] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> DeclaredJob:
    """The Job, its ConfigMaps and the database set-up, as the program declares them.

    Raises HarnessError when the program failed (a preview would have stopped there too).
    """
    run = program_run(stack, config, secrets)
    if run.error is not None:
        raise HarnessError(f"the program failed for stack {stack!r}: {run.error}") from run.error
    return job_from_run(run)


def job_from_run(run: ProgramRun) -> DeclaredJob:
    """Extract a DeclaredJob from recorded resources; strict about the shape it relies on."""
    job = run.flyway_job().inputs
    pod = job["spec"]["template"]["spec"]
    containers = pod["containers"]
    if len(containers) != 1:
        raise HarnessError(f"expected one container, found {[c['name'] for c in containers]}")
    container = containers[0]
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    mounts = tuple(container.get("volumeMounts", []))

    projected = [m for m in mounts if "projected" in volumes.get(m["name"], {})]
    if len(projected) != 1:
        raise HarnessError(f"expected one projected volume mount, found {projected}")
    volume = volumes[projected[0]["name"]]["projected"]
    sources: list[ProjectedSource] = []
    for source in volume.get("sources", []):
        if set(source) != {"configMap"}:
            raise HarnessError(f"unsupported projected source {source}")
        items = source["configMap"].get("items")
        if not items:
            raise HarnessError(f"ConfigMap source without items: {source}")
        sources.append(
            ProjectedSource(
                config_map=source["configMap"]["name"],
                items=tuple((item["key"], item["path"]) for item in items),
                modes={item["path"]: int(item["mode"]) for item in items if "mode" in item},
            )
        )

    config_maps = {
        cm.outputs["metadata"]["name"]: ConfigMapContent(
            data=dict(cm.inputs.get("data") or {}),
            binary_data=dict(cm.inputs.get("binaryData") or {}),
        )
        for cm in run.of_type(CONFIG_MAP_TYPE)
    }
    declared = DeclaredJob(
        stack=run.stack,
        image=container["image"],
        command=tuple(container["command"]),
        env=tuple(container.get("env", [])),
        volume_mounts=mounts,
        mount_path=projected[0]["mountPath"],
        scratch_paths=tuple(
            m["mountPath"] for m in mounts if "emptyDir" in volumes.get(m["name"], {})
        ),
        sources=tuple(sources),
        default_mode=int(volume.get("defaultMode", DEFAULT_FILE_MODE)),
        config_maps=config_maps,
        setup=database_setup(run),
        packaged=tuple(run.outputs.get("migrations") or ()),
        secret_values={
            (name, key): str(value)
            for name, data in _secrets(run).items()
            for key, value in data.items()
        },
    )
    check_login(declared, run)
    return declared


# -- the database as declared -------------------------------------------------------------------


def database_setup(run: ProgramRun) -> DatabaseSetup:
    """The flavor and its database set-up, from the Bitnami release, the Cluster, or neither."""
    releases = [r for r in run.of_type(RELEASE_TYPE) if "auth" in (r.inputs.get("values") or {})]
    clusters = run.of_type(CLUSTER_TYPE)
    if len(releases) + len(clusters) > 1:
        found = [r.name for r in (*releases, *clusters)]
        raise HarnessError(f"expected at most one in-cluster database, found {found}")
    if releases:
        setup = _bitnami_setup(releases[0].inputs["values"], run)
    elif clusters:
        setup = _cloudnative_pg_setup(clusters[0].inputs)
    else:
        setup = _external_setup(run)
    exported = run.outputs.get("databaseFlavor")
    if exported is not None and exported != setup.flavor.value:
        raise HarnessError(
            f"the resources are a {setup.flavor.value} database, the output {exported}"
        )
    grants = declared_grants(run)
    if grants is None:
        return replace(setup, model=declared_model(run, setup.database, setup.owner))
    if run.of_type(PROVIDER_TYPE) or any(run.of_type(t) for t in ROLE_RESOURCE_TYPES):
        raise HarnessError("roles managed both in-cluster and with pulumi-postgresql")
    model = privilege_model(setup.database, owner=setup.owner)
    managed = (
        tuple(clusters[0].inputs["spec"].get("managed", {}).get("roles", ())) if clusters else ()
    )
    if clusters and [r["name"] for r in managed] != [r.name for r in model.roles]:
        raise HarnessError(f"the Cluster's managed roles {managed} are not the model's roles")
    return replace(setup, model=model, grants=grants, managed_roles=managed)


def declared_grants(run: ProgramRun) -> DeclaredGrants | None:
    """The in-cluster grants Job and its script, or None when the program declares none."""
    jobs = run.under(GRANTS_COMPONENT, JOB_TYPE)
    if not jobs:
        return None
    [job] = jobs
    pod = job.inputs["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, str] = {}
    script_path = script = ca_secret = None
    config_maps = {cm.outputs["metadata"]["name"]: cm.inputs for cm in run.of_type(CONFIG_MAP_TYPE)}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        kind = next(k for k in ("configMap", "emptyDir", "secret") if k in volume)
        mounts[mount["mountPath"]] = kind
        if kind == "configMap":
            [item] = volume["configMap"]["items"]
            script_path = f"{mount['mountPath']}/{item['path']}"
            script = config_maps[volume["configMap"]["name"]]["data"][item["key"]]
        elif kind == "secret":
            ca_secret = volume["secret"]["secretName"]
    if script_path is None or script is None:
        raise HarnessError("the grants Job mounts no script")
    return DeclaredGrants(
        image=container["image"],
        command=tuple(container["command"]),
        env=tuple(container["env"]),
        mounts=mounts,
        script_path=script_path,
        script=script,
        ca_secret=ca_secret,
    )


def _bitnami_setup(values: Mapping[str, Any], run: ProgramRun) -> DatabaseSetup:
    auth, primary = values["auth"], values.get("primary") or {}
    owner = auth["username"]
    secret, keys = auth.get("existingSecret"), auth.get("secretKeys") or {}
    if not secret or not {"adminPasswordKey", "userPasswordKey"} <= set(keys):
        raise HarnessError(f"the release reads no passwords from a Secret: auth = {auth}")
    declared = _secrets(run).get(secret)
    if declared is None or not {keys["adminPasswordKey"], keys["userPasswordKey"]} <= set(declared):
        raise HarnessError(f"the release reads Secret {secret}, which lacks its keys {keys}")
    scripts = dict((primary.get("initdb") or {}).get("scripts") or {})
    for name in scripts:
        if not name.endswith(".sql"):
            raise HarnessError(f"init script {name}: the harness runs .sql scripts only")
    return DatabaseSetup(
        flavor=Flavor.BITNAMI,
        database=auth["database"],
        owner=owner,
        admin=SUPERUSER,
        init_scripts=scripts,
        init_user=_init_scripts_user(primary.get("extraEnvVars") or [], auth) if scripts else None,
        owner_secret=(secret, keys["userPasswordKey"]),
    )


def _init_scripts_user(env: Sequence[Mapping[str, Any]], auth: Mapping[str, Any]) -> str:
    """Who the image runs init scripts as: POSTGRESQL_INITSCRIPTS_USERNAME, else the owner.

    The image logs in with a password over TCP, so a user other than the owner needs its
    password from the Secret the chart reads, or the scripts never run.
    """
    entries = {str(e.get("name")): e for e in env}
    user_entry = entries.get(INITSCRIPTS_USER_ENV)
    password_ref = (entries.get(INITSCRIPTS_PASSWORD_ENV) or {}).get("valueFrom", {})
    if user_entry is None:
        if INITSCRIPTS_PASSWORD_ENV in entries:
            raise HarnessError(f"{INITSCRIPTS_PASSWORD_ENV} without {INITSCRIPTS_USER_ENV}")
        return str(auth["username"])
    if "value" not in user_entry:
        raise HarnessError(f"{INITSCRIPTS_USER_ENV} has no literal value: {user_entry}")
    user = str(user_entry["value"])
    if user == auth["username"] and INITSCRIPTS_PASSWORD_ENV not in entries:
        return user
    if user != SUPERUSER:
        raise HarnessError(f"init scripts run as {user!r}, a role the image does not create")
    if auth.get("enablePostgresUser") is not True:
        raise HarnessError(
            "init scripts run as postgres, which has no password without auth.enablePostgresUser"
        )
    expected = {"name": auth["existingSecret"], "key": auth["secretKeys"]["adminPasswordKey"]}
    if password_ref.get("secretKeyRef") != expected:
        raise HarnessError(
            f"init scripts run as postgres but {INITSCRIPTS_PASSWORD_ENV} is not postgres' "
            f"password {expected}: {entries.get(INITSCRIPTS_PASSWORD_ENV)}"
        )
    return SUPERUSER


def _cloudnative_pg_setup(cluster: Mapping[str, Any]) -> DatabaseSetup:
    bootstrap = cluster["spec"].get("bootstrap") or {}
    if set(bootstrap) != {"initdb"}:
        raise HarnessError(f"the harness reproduces bootstrap.initdb only: {sorted(bootstrap)}")
    initdb = bootstrap["initdb"]
    if set(initdb) != {"database", "owner"}:
        raise HarnessError(f"the harness reproduces initdb.database/owner only: {initdb}")
    return DatabaseSetup(
        flavor=Flavor.CLOUDNATIVE_PG,
        database=initdb["database"],
        owner=initdb["owner"],
        admin=SUPERUSER,
        owner_secret=(f"{cluster['metadata']['name']}-app", CNPG_APP_PASSWORD_KEY),
    )


def _external_setup(run: ProgramRun) -> DatabaseSetup:
    providers = run.of_type(PROVIDER_TYPE)
    if len(providers) != 1:
        raise HarnessError(
            "no in-cluster database, and not one pulumi-postgresql provider to say which "
            f"external one: {[p.name for p in providers]}"
        )
    provider = providers[0].inputs
    return DatabaseSetup(
        flavor=Flavor.EXTERNAL,
        database=provider["database"],
        owner=None,
        admin=provider["username"],
    )


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


def initialise_database(server: PostgresServer, job: DeclaredJob) -> PreparedDatabase:
    """Create the database as its flavor does, before any role is managed.

    bitnami: what the image does on first start (the owner LOGIN CREATEDB, the database it
    owns, `public` handed to it), then every init script in name order through psql, as the
    image's init-scripts user, errors ignored as the image ignores them.
    cloudnative-pg: what the operator's initdb does (the owner as a plain LOGIN role, the
    database owned by it). external: the database exists, owned by the admin role.
    """
    setup = job.setup
    database = sql.Identifier(setup.database)
    passwords: dict[str, str] = {server.superuser: server.password}
    errors: list[str] = []
    if setup.flavor is Flavor.EXTERNAL:
        if setup.admin != server.superuser:
            passwords[setup.admin] = _password()
            verb = "ALTER" if server.role_exists(setup.admin) else "CREATE"
            server.query(
                sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER CREATEDB CREATEROLE PASSWORD {}").format(
                    sql.Identifier(setup.admin), sql.Literal(passwords[setup.admin])
                )
            )
        server.create_database(setup.database, owner=setup.admin)
        return PreparedDatabase(setup.database, setup.login, passwords)

    assert setup.owner is not None  # in-cluster flavors always name one
    owner = sql.Identifier(setup.owner)
    passwords[setup.owner] = _password()
    if setup.flavor is Flavor.CLOUDNATIVE_PG:
        server.query(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                owner, sql.Literal(passwords[setup.owner])
            )
        )
        server.query(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, owner))
        return PreparedDatabase(setup.database, setup.login, passwords)

    server.query(sql.SQL("CREATE DATABASE {}").format(database))
    server.query(
        sql.SQL("CREATE ROLE {} WITH LOGIN CREATEDB PASSWORD {}").format(
            owner, sql.Literal(passwords[setup.owner])
        )
    )
    server.query(sql.SQL("GRANT ALL PRIVILEGES ON DATABASE {} TO {}").format(database, owner))
    server.query(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, owner))
    server.query(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner), dbname=setup.database)
    for name in sorted(setup.init_scripts):
        assert setup.init_user is not None
        proc = server.psql(
            setup.init_scripts[name],
            dbname=setup.database,
            user=setup.init_user,
            password=passwords[setup.init_user],
        )
        if proc.returncode != 0:
            raise HarnessError(
                f"init script {name} did not run as {setup.init_user}: {proc.stderr}"
            )
        errors.extend(f"{name}: {error}" for error in psql_errors(proc.stderr))
    return PreparedDatabase(setup.database, setup.login, passwords, tuple(errors))


def psql_errors(stderr: str) -> list[str]:
    """psql's ERROR messages (with --echo-errors, each with the first line of its statement)."""
    errors: list[str] = []
    for block in re.split(r"\n(?=(?:ERROR|FATAL|WARNING|NOTICE|INFO|LOG|DEBUG):  )", stderr):
        if block.startswith("ERROR:"):
            message = block.splitlines()[0].removeprefix("ERROR:").strip()
            statement = re.search(r"^STATEMENT:\s+(.*)$", block, re.MULTILINE)
            errors.append(f"{message} [{statement.group(1)}]" if statement else message)
    return errors


def apply_roles(
    server: PostgresServer, job: DeclaredJob, prepared: PreparedDatabase
) -> PreparedDatabase:
    """Apply the declared privilege model as the superuser, as pulumi-postgresql would.

    Returns `prepared` with the roles' local passwords; unchanged when roles are not managed.
    """
    model = job.setup.model
    if model is None:
        return prepared
    passwords = {role.purpose: _password() for role in model.roles}
    with server.connect(prepared.database) as conn:
        for statement in to_sql(model, passwords):
            conn.execute(statement)
    by_name = {role.name: passwords[role.purpose] for role in model.roles}
    return replace(prepared, passwords={**prepared.passwords, **by_name})


def prepare_database(server: PostgresServer, job: DeclaredJob) -> PreparedDatabase:
    """The database as declared: created as its flavor does, then its roles where managed:
    with the model's SQL as pulumi-postgresql would, or, in-cluster, by the operator's
    managed roles and the declared grants Job, run twice (it must be idempotent)."""
    prepared = initialise_database(server, job)
    if job.setup.grants is None:
        return apply_roles(server, job, prepared)
    prepared = create_managed_roles(server, job, prepared)
    for attempt in ("first", "second"):
        proc = run_grants_job(job, server, prepared)
        if proc.returncode != 0:
            raise HarnessError(f"the grants Job's {attempt} run failed: {proc.stderr}")
    return prepared


# -- the in-cluster grants Job ------------------------------------------------------------------


def role_passwords(job: DeclaredJob, prepared: PreparedDatabase) -> PreparedDatabase:
    """Local passwords for the model's roles, as their credentials Secrets would hold them."""
    assert job.setup.model is not None
    new = {r.name: _password() for r in job.setup.model.roles if r.name not in prepared.passwords}
    return replace(prepared, passwords={**prepared.passwords, **new})


def create_managed_roles(
    server: PostgresServer, job: DeclaredJob, prepared: PreparedDatabase
) -> PreparedDatabase:
    """Create the Cluster's managed roles as CloudNativePG's instance manager does: one
    CREATE ROLE with every attribute, the memberships (IN ROLE) and the password read from
    the role's passwordSecret. Nothing when no operator manages roles (Bitnami)."""
    prepared = role_passwords(job, prepared)
    flags = (
        ("bypassrls", "BYPASSRLS"),
        ("createdb", "CREATEDB"),
        ("createrole", "CREATEROLE"),
        ("inherit", "INHERIT"),
        ("login", "LOGIN"),
        ("replication", "REPLICATION"),
        ("superuser", "SUPERUSER"),
    )
    for role in job.setup.managed_roles:
        if role.get("ensure", "present") != "present" or "passwordSecret" not in role:
            raise HarnessError(f"the harness creates present roles with a password only: {role}")
        options = " ".join(
            word if role.get(key, key == "inherit") else f"NO{word}" for key, word in flags
        )
        statement = sql.SQL(
            "CREATE ROLE {} " + options + " CONNECTION LIMIT {}{} PASSWORD {}"
        ).format(
            sql.Identifier(role["name"]),
            sql.Literal(int(role.get("connectionLimit", -1))),
            sql.SQL(" IN ROLE {}").format(sql.SQL(",").join(map(sql.Identifier, role["inRoles"])))
            if role.get("inRoles")
            else sql.SQL(""),
            sql.Literal(prepared.passwords[role["name"]]),
        )
        server.query(statement)
    return prepared


def grants_environment(  # noqa: PLR0912 (one branch per substituted variable)
    job: DeclaredJob,
    server: PostgresServer,
    prepared: PreparedDatabase,
    script_root: Path,
    scratch: Path,
) -> dict[str, str]:
    """The grants container's environment with only the cluster-specific parts substituted:
    the local server for PGHOST/PGPORT, `disable` for PGSSLMODE (the CA file is then unread),
    local passwords for every secretKeyRef (the superuser's, and each role's from its
    credentials Secret), the scratch directory for HOME. Anything else passes unchanged."""
    grants, setup = job.setup.grants, job.setup
    assert grants is not None
    assert setup.model is not None
    by_secret = {
        credentials_secret_name(setup.database, role.purpose): role.name
        for role in setup.model.roles
    }
    env: dict[str, str] = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for entry in grants.env:
        name = entry["name"]
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            if name == "PGPASSWORD":
                env[name] = prepared.passwords[server.superuser]
            elif ref["name"] in by_secret and ref["key"] == "password":
                env[name] = prepared.passwords[by_secret[ref["name"]]]
            else:
                raise HarnessError(f"{name} reads {ref}, which the harness cannot stand in for")
        elif "value" not in entry:
            raise HarnessError(f"env var {name} has no literal value: {entry}")
        elif name == "PGHOST":
            env[name] = server.host
        elif name == "PGPORT":
            env[name] = str(server.port)
        elif name == "PGSSLMODE":
            env[name] = LOCAL_SSL_MODE
        elif name == "PGSSLROOTCERT":
            if PurePosixPath(entry["value"]).parent.as_posix() not in grants.mounts:
                raise HarnessError(f"PGSSLROOTCERT {entry['value']} is not a mounted file")
            env[name] = str(scratch / "unused-ca.crt")
        elif name == "HOME":
            if grants.mounts.get(entry["value"]) != "emptyDir":
                raise HarnessError(f"HOME {entry['value']} is not an emptyDir of the pod")
            env[name] = str(scratch)
        else:
            env[name] = str(entry["value"])
    if env.get("PGUSER") != server.superuser:
        raise HarnessError(f"the grants Job logs in as {env.get('PGUSER')}, not the superuser")
    return env


def lay_out_script(job: DeclaredJob, root: Path) -> Path:
    """The script where the pod would read it, under `root`; returns its local path."""
    grants = job.setup.grants
    assert grants is not None
    local = root.joinpath(*PurePosixPath(grants.script_path).relative_to("/").parts)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(grants.script, encoding="utf-8")
    return local


def run_grants_job(
    job: DeclaredJob, server: PostgresServer, prepared: PreparedDatabase
) -> subprocess.CompletedProcess[str]:
    """The Job's psql command line, exactly, with the local psql and the substituted env."""
    grants = job.setup.grants
    assert grants is not None
    if not grants.command or grants.command[0] != "psql":
        raise HarnessError(f"the grants Job runs {grants.command}, not psql")
    with tempfile.TemporaryDirectory(prefix="grants-pod-") as pod:
        root = Path(pod)
        local = lay_out_script(job, root / "volumes")
        (root / "tmp").mkdir()
        env = grants_environment(job, server, prepared, root / "volumes", root / "tmp")
        argv = [str(server.bindir / "psql")]
        for arg in grants.command[1:]:
            if arg == f"--file={grants.script_path}":
                arg = f"--file={local}"  # noqa: PLW2901 (the one substituted argument)
            argv.append(arg)
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=DEFAULT_TIMEOUT, check=False
        )


# -- the volume ---------------------------------------------------------------------------------


def volume_files(job: DeclaredJob) -> dict[str, tuple[bytes, int]]:
    """Every projected file (path -> (bytes, mode)), as the kubelet would resolve them."""
    files: dict[str, tuple[bytes, int]] = {}
    for source in job.sources:
        if source.config_map not in job.config_maps:
            raise HarnessError(f"the volume mounts ConfigMap {source.config_map}, not declared")
        content = job.config_maps[source.config_map]
        for key, path in source.items:
            if key in content.data:
                payload = content.data[key].encode("utf-8")
            elif key in content.binary_data:
                payload = base64.b64decode(content.binary_data[key], validate=True)
            else:
                raise HarnessError(f"ConfigMap {source.config_map} has no key {key!r}")
            if path in files:
                raise HarnessError(f"two sources project {path!r}")
            files[path] = (payload, source.modes.get(path, job.default_mode))
    return files


def lay_out_volume(job: DeclaredJob, root: Path) -> Path:
    """Write the projected volume under `root` exactly as the kubelet lays it out.

    `root/..<timestamp>/` holds the files at their item paths, `root/..data` links to it, and
    each top-level entry links into `..data/`. Returns `root`.
    """
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise HarnessError(f"{root} is not empty")
    payload_dir = root / KUBELET_TIMESTAMP_DIR
    payload_dir.mkdir()
    top_level: set[str] = set()
    for path, (content, mode) in volume_files(job).items():
        parts = PurePosixPath(path).parts
        if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
            raise HarnessError(f"item path {path!r} leaves the volume")
        target = payload_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
        top_level.add(parts[0])
    (root / KUBELET_DATA_LINK).symlink_to(KUBELET_TIMESTAMP_DIR)
    for name in sorted(top_level):
        (root / name).symlink_to(f"{KUBELET_DATA_LINK}/{name}")
    return root


# -- the container ------------------------------------------------------------------------------


def _rewrite_url(url: str, server: PostgresServer, database: str) -> str:
    """The local host and port in place of the Service's; the same database; sslmode disabled.

    Only `sslmode` (and `sslrootcert` at the Job's CA mount) may appear in the query: anything
    else would be a setting the local run silently ignores or misapplies.
    """
    match = _JDBC_URL.match(url)
    if match is None:
        raise HarnessError(f"FLYWAY_URL {url!r} is not a jdbc:postgresql://host/database URL")
    if match.group("database") != database:
        raise HarnessError(f"FLYWAY_URL {url!r} is not the declared database {database!r}")
    query = ""
    if match.group("query") is not None:
        params = dict(parse_qsl(match.group("query"), keep_blank_values=True, strict_parsing=True))
        # The server's CA, where the Job mounts it; the local server serves no TLS.
        root_cert = params.pop("sslrootcert", f"{TLS_PATH}/{CA_KEY}")
        if (
            list(params) != ["sslmode"]
            or params["sslmode"] not in JDBC_SSL_MODES
            or root_cert != f"{TLS_PATH}/{CA_KEY}"
        ):
            raise HarnessError(f"FLYWAY_URL {url!r}: only sslmode and sslrootcert are expected")
        query = "?" + urlencode({"sslmode": LOCAL_SSL_MODE})
    return f"jdbc:postgresql://{server.host}:{server.port}/{database}{query}"


def _rewrite_locations(locations: str, mount_path: str, mount_root: Path) -> str:
    rewritten: list[str] = []
    for location in locations.split(","):
        prefix, _, path = location.strip().rpartition(":")
        inside = PurePosixPath(path)
        if prefix != "filesystem" or not inside.is_relative_to(mount_path):
            raise HarnessError(f"location {location!r} is not inside the volume at {mount_path}")
        local = mount_root.joinpath(*inside.relative_to(mount_path).parts)
        rewritten.append(f"filesystem:{local}")
    return ",".join(rewritten)


def _rewrite_scratch(value: str, job: DeclaredJob, scratch: Path) -> str:
    for mount in job.scratch_paths:
        if PurePosixPath(value).is_relative_to(mount):
            return str(scratch.joinpath(*PurePosixPath(value).relative_to(mount).parts))
    raise HarnessError(f"{value!r} is not inside an emptyDir of the pod")


def job_environment(
    job: DeclaredJob, server: PostgresServer, mount_root: Path, password: str, scratch: Path
) -> dict[str, str]:
    """The container's environment with only the cluster-specific parts substituted.

    FLYWAY_URL gets the local host and port (same database, sslmode `disable` where one is
    declared), FLYWAY_PASSWORD the login's local password in place of its secretKeyRef,
    FLYWAY_LOCATIONS the laid-out volume in place of the mount path, HOME the scratch directory
    in place of the emptyDir. Any other entry is passed on unchanged; one that is not a literal
    value stops the harness, and so does a FLYWAY_USER that is not the declared login.
    """
    env: dict[str, str] = {}
    if job.env_value("FLYWAY_USER") != job.setup.login:
        raise HarnessError(
            f"the Job logs in as {job.env_value('FLYWAY_USER')}, but the declared "
            f"{job.setup.flavor.value} database provides {job.setup.login}"
        )
    for entry in job.env:
        name = entry["name"]
        if name == "FLYWAY_PASSWORD":
            if "secretKeyRef" not in entry.get("valueFrom", {}):
                raise HarnessError("FLYWAY_PASSWORD is expected to come from a secretKeyRef")
            env[name] = password
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["secretKeyRef"]
            if (ref["name"], ref["key"]) not in job.secret_values:
                raise HarnessError(f"env var {name} reads {ref}, which no declared Secret holds")
            env[name] = job.secret_values[(ref["name"], ref["key"])]
        elif "value" not in entry:
            raise HarnessError(f"env var {name} has no literal value: {entry}")
        elif name == "FLYWAY_URL":
            env[name] = _rewrite_url(str(entry["value"]), server, job.database)
        elif name == "FLYWAY_LOCATIONS":
            env[name] = _rewrite_locations(str(entry["value"]), job.mount_path, mount_root)
        elif name == "HOME":
            env[name] = _rewrite_scratch(str(entry["value"]), job, scratch)
        else:
            env[name] = str(entry["value"])
    return env


def flyway_arguments(job: DeclaredJob) -> list[str]:
    """Flyway's arguments: the container command after the image's `flyway` entrypoint."""
    if not job.command or job.command[0] != ENTRYPOINT:
        raise HarnessError(f"the container command {job.command} does not start with flyway")
    return list(job.command[1:])


def run_job(
    job: DeclaredJob,
    server: PostgresServer,
    mount_root: Path,
    *,
    password: str,
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run Flyway's command line of the image's version with the container's command and env.

    Raises FlywayNotInstalledError (with the fetch command) when that version's jars are
    missing, FlywayTimeoutError when Flyway runs longer than `timeout` seconds.
    """
    with tempfile.TemporaryDirectory(prefix="flyway-pod-tmp-") as scratch:
        env = job_environment(job, server, mount_root, password, Path(scratch))
        return run_flyway(
            job.flyway_version, flyway_arguments(job), env, timeout=timeout, on_line=on_line
        )


# -- reading the outcome ------------------------------------------------------------------------

HISTORY_COLUMNS = (
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
    "installed_by",
    "installed_on",
    "success",
)


def schema_history(server: PostgresServer, database: str) -> list[dict[str, Any]] | None:
    """flyway_schema_history in installed order, or None when the table does not exist."""
    [(exists,)] = server.query(
        "SELECT to_regclass('public.flyway_schema_history') IS NOT NULL", dbname=database
    )
    if not exists:
        return None
    rows = server.query(
        sql.SQL("SELECT {} FROM public.flyway_schema_history ORDER BY installed_rank").format(
            sql.SQL(", ").join(map(sql.Identifier, HISTORY_COLUMNS))
        ),
        dbname=database,
    )
    return [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]


def format_history(history: Sequence[Mapping[str, Any]] | None) -> str:
    """A plain-text table of the history rows, for people reading a harness run."""
    if history is None:
        return "(no flyway_schema_history table)"
    columns = ("installed_rank", "version", "description", "type", "script", "checksum", "success")
    cells = [["" if row[c] is None else str(row[c]) for c in columns] for row in history]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    rows = [list(columns), *cells]
    lines = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


# -- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Deploy nothing, run everything: a throwaway PostgreSQL, the declared Job, the result."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.contract.harness",
        description="Run the stack's Flyway Job, as the program declares it, against a "
        "throwaway PostgreSQL and print Flyway's output and flyway_schema_history.",
    )
    parser.add_argument("--stack", default="dev", help="stack file to run (default: dev)")
    parser.add_argument(
        "--migrations", type=Path, help="migrations directory (default: the stack's)"
    )
    args = parser.parse_args(argv)
    config: dict[str, str | None] = {}
    if args.migrations is not None:
        config["migrationsDir"] = str(args.migrations.resolve())
    try:
        job = declared_job(args.stack, config)
    except HarnessError as error:
        print(f"harness: {error}", file=sys.stderr)
        return 2
    sources = ", ".join(f"{s.config_map} ({len(s.items)} files)" for s in job.sources)
    print(f"job: {job.image} {' '.join(job.command)}")
    print(f"volume: {sources}")
    with PostgresServer() as server:
        prepared = prepare_database(server, job)
        # Under /tmp: the directory must not be a 0700 one another user cannot enter.
        mount_root = Path(tempfile.mkdtemp(prefix="flyway-sql-", dir="/tmp"))
        try:
            lay_out_volume(job, mount_root / "sql")
            print(
                f"database: {job.setup.flavor.value} {job.database} on "
                f"{server.host}:{server.port} as {prepared.login}"
            )
            for problem in prepared.init_errors:
                print(f"init script error (the image ignores it): {problem}", file=sys.stderr)
            proc = run_job(job, server, mount_root / "sql", password=prepared.password)
            print("--- flyway ---")
            print(proc.stdout.rstrip())
            if proc.stderr.strip():
                print(proc.stderr.rstrip(), file=sys.stderr)
            print(f"--- flyway exit code {proc.returncode}; flyway_schema_history ---")
            print(format_history(schema_history(server, job.database)))
        finally:
            shutil.rmtree(mount_root, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
