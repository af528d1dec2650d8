"""Roles managed from inside the cluster: the script, the Job's pod, and the program's wiring.

The pure parts are read without mocks; the wiring runs the real program under mocks, for the
committed staging and prod stacks (CloudNativePG) and for Bitnami with the same setting.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from components.access import grants_spec
from components.access.credentials import CNPG_RELOAD_LABEL
from components.access.grants import GRANTS_DIGEST_ANNOTATION
from components.access.privileges import (
    in_cluster_sql,
    privilege_model,
)
from components.contract import HISTORY_CALLBACK, InClusterAdmin, Purpose, ServerAddress
from components.jobs.pod import CA_KEY, RUN_AS, TMP_PATH
from tests.program import ProgramRun, is_secret, names_for, plain_strings, run_program

CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
PASSWORD = "random:index/randomPassword:RandomPassword"
GRANTS = "tradestream:database:RoleGrants"
MODEL = privilege_model("shop", owner="shop_owner")
ENV = grants_spec.password_env(MODEL)
BITNAMI_CLUSTER = {"databaseRolesManagedBy": "cluster"}


def statements(script: str) -> list[str]:
    """The script's lines that are neither comments nor psql meta-commands."""
    return [
        line
        for line in script.splitlines()
        if line and not line.startswith(("--", "\\")) and not line.startswith(" ")
    ]


# -- the script ---------------------------------------------------------------------------------


def test_with_an_operator_the_script_creates_no_role_and_carries_no_password() -> None:
    script = in_cluster_sql(MODEL, password_env=None, wait_seconds=120)
    assert not re.search(r"\b(CREATE|ALTER|DROP) ROLE\b", script)
    assert "PASSWORD" not in script
    assert "\\getenv" not in script
    # It waits for each role, with a password, and for the migrator's membership of the owner.
    for role in MODEL.roles:
        assert f"('{role.name}')" in script
    assert "rolpassword IS NOT NULL" in script
    assert "('shop_migrator', 'shop_owner')" in script
    assert "interval '120 seconds'" in script
    assert "status.managedRolesStatus" in script


def test_creating_roles_is_guarded_and_passwords_come_from_the_environment() -> None:
    script = in_cluster_sql(MODEL, password_env=ENV)
    for role in MODEL.roles:
        variable = f"{role.purpose.value}_password"
        assert f"\\getenv {variable} {ENV[role.purpose]}" in script
        assert (
            f"SELECT 'CREATE ROLE \"{role.name}\"' WHERE NOT EXISTS "
            f"(SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role.name}') \\gexec"
        ) in script
        assert (
            f'ALTER ROLE "{role.name}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
            f"NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT -1 PASSWORD :'{variable}';"
        ) in script
    assert 'GRANT "shop_owner" TO "shop_migrator";' in script
    # The only PASSWORD clauses are psql variables, and nothing logs the statements.
    assert re.findall(r"PASSWORD (\S+);", script) == [f":'{p.value}_password'" for p in Purpose]
    first_password = script.index("ALTER ROLE")
    for setting in (
        "log_statement = 'none'",
        "log_min_error_statement = 'panic'",
        "log_min_duration_statement = -1",
        "pg_stat_statements.track_utility = off",
    ):
        assert script.index(f"SET {setting};") < first_password
    assert "rolpassword" not in script  # no waiting: the roles are this script's own


@pytest.mark.parametrize("env", [None, ENV], ids=["operator", "bitnami"])
def test_every_grant_is_exact_and_default_privileges_are_reset_first(
    env: dict[Purpose, str] | None,
) -> None:
    lines = statements(in_cluster_sql(MODEL, password_env=env))
    grants = [line for line in lines if line.startswith("GRANT ") and " ON " in line]
    assert grants
    for grant in grants:
        target, grantee = re.match(r"GRANT .+ ON (.+) TO (.+);$", grant).groups()  # type: ignore[union-attr]
        revoke = f"REVOKE ALL ON {target} FROM {grantee};"
        assert revoke in lines, grant
        assert lines.index(revoke) < lines.index(grant)
    defaults = [line for line in lines if line.startswith("ALTER DEFAULT PRIVILEGES")]
    assert len(defaults) == 2 * len(MODEL.default_privileges)
    for revoke, grant in zip(defaults[::2], defaults[1::2], strict=True):
        assert " REVOKE ALL ON " in revoke
        assert " GRANT " in grant
    assert 'REVOKE ALL ON DATABASE "shop" FROM PUBLIC;' in lines
    assert 'REVOKE ALL ON SCHEMA "public" FROM PUBLIC;' in lines


def test_the_history_table_is_taken_back_from_app_and_readonly_once_it_exists() -> None:
    """The exact grants above reach Flyway's history like any table; the last statement takes
    writes back, as Flyway's callback does, whether or not Flyway runs after this Job."""
    script = in_cluster_sql(MODEL, password_env=None)
    last = script.rstrip().splitlines()[-1]
    assert last.endswith("\\gexec")
    assert 'ON TABLE "public"."flyway_schema_history" FROM "shop_app", "shop_readonly"' in last
    assert 'to_regclass(\'"public"."flyway_schema_history"\') IS NOT NULL' in last


def test_the_script_is_pure() -> None:
    assert in_cluster_sql(MODEL, password_env=ENV) == in_cluster_sql(MODEL, password_env=ENV)
    assert in_cluster_sql(MODEL, password_env=None) != in_cluster_sql(MODEL, password_env=ENV)


# -- the pod ------------------------------------------------------------------------------------

ADDRESS = ServerAddress("pg-rw.ns.svc.cluster.local", 5432, "shop", ca_secret="pg-ca")
ADMIN = InClusterAdmin(
    "ghcr.io/cloudnative-pg/postgresql:17.6", "postgres", "pg-su", "password", creates_roles=False
)
CREATING = dataclasses.replace(ADMIN, creates_roles=True)


def env_dict(env: tuple[Any, ...]) -> dict[str, Any]:
    return {e.name: e.value if e.value is not None else (e.secret_name, e.secret_key) for e in env}


def test_psql_connects_like_flyway_verifying_the_server_against_the_cluster_ca() -> None:
    env = env_dict(grants_spec.grants_environment(MODEL, ADDRESS, ADMIN))
    assert env == {
        "PGHOST": "pg-rw.ns.svc.cluster.local",
        "PGPORT": "5432",
        "PGDATABASE": "shop",
        "PGUSER": "postgres",
        "PGPASSWORD": ("pg-su", "password"),
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": f"{grants_spec.TLS_PATH}/{CA_KEY}",
        "PGCONNECT_TIMEOUT": "10",
        "PGAPPNAME": "tradestream-grants",
        "HOME": TMP_PATH,
    }


def test_role_passwords_reach_the_pod_only_where_it_creates_the_roles() -> None:
    plain = ServerAddress("pg.ns.svc.cluster.local", 5432, "shop")
    env = env_dict(grants_spec.grants_environment(MODEL, plain, CREATING))
    assert env["PGSSLMODE"] == "prefer"
    assert "PGSSLROOTCERT" not in env
    assert {name: env[name] for name in ENV.values()} == {
        "ROLE_PASSWORD_MIGRATOR": ("shop-migrator-credentials", "password"),
        "ROLE_PASSWORD_APP": ("shop-app-credentials", "password"),
        "ROLE_PASSWORD_READONLY": ("shop-readonly-credentials", "password"),
    }


def test_the_pod_is_locked_down_and_writes_only_to_its_scratch_volume() -> None:
    env = grants_spec.grants_environment(MODEL, ADDRESS, ADMIN)
    template = grants_spec.pod_template(ADMIN.image, env, "cm", {"l": "v"}, {}, ca_secret="pg-ca")
    pod = template["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["command"][0] == "psql"
    assert "--set=ON_ERROR_STOP=1" in container["command"]
    assert "--single-transaction" in container["command"]
    assert not [arg for arg in container["command"] if arg.startswith(("--echo", "-e", "-a"))]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts[TMP_PATH]["name"]]
    assert all(m.get("readOnly") for path, m in mounts.items() if path != TMP_PATH)
    sql = volumes[mounts[grants_spec.SQL_PATH]["name"]]["configMap"]
    assert sql["name"] == "cm"
    assert f"--file={grants_spec.SQL_PATH}/{sql['items'][0]['path']}" in container["command"]
    tls = volumes[mounts[grants_spec.TLS_PATH]["name"]]["secret"]
    assert tls["secretName"] == "pg-ca"
    assert tls["items"] == [{"key": CA_KEY, "path": CA_KEY}]


# -- the program, under mocks -------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    protected = {"protectDatabase": "true"}
    result = {
        "staging": run_program("staging", config={**names_for("staging"), **protected}),
        "prod": run_program("prod", config={**names_for("prod"), **protected}),
        "bitnami": run_program("dev", config={**names_for("dev", "bitnami"), **BITNAMI_CLUSTER}),
    }
    for name, run in result.items():
        assert run.error is None, f"{name}: {run.error}"
    return result


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_operator_creates_the_roles_from_the_privilege_model(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    run = runs[stack]
    cluster = run.one(CLUSTER)
    spec = cluster.inputs["spec"]
    assert spec["enableSuperuserAccess"] is True
    roles = {role["name"]: role for role in spec["managed"]["roles"]}
    model = privilege_model("tradestream", owner="tradestream_owner")
    assert list(roles) == [role.name for role in model.roles]
    for role in model.roles:
        declared = roles[role.name]
        assert {k: declared[k] for k in declared if k not in ("name", "inRoles")} == {
            "ensure": "present",
            "login": True,
            "superuser": False,
            "createdb": False,
            "createrole": False,
            "replication": False,
            "bypassrls": False,
            "inherit": True,
            "connectionLimit": -1,
            "passwordSecret": {"name": f"tradestream-{role.purpose.value}-credentials"},
        }
    assert roles["tradestream_migrator"]["inRoles"] == ["tradestream_owner"]
    assert roles["tradestream_app"]["inRoles"] == []
    # Each Secret exists before the Cluster, in the layout the operator reads, labelled so a
    # changed password is applied, and protected with the database it belongs to.
    secrets = {s.inputs["metadata"]["name"]: s for s in run.of_type(SECRET)}
    for name, declared in roles.items():
        secret = secrets[declared["passwordSecret"]["name"]]
        assert secret.urn in cluster.dependencies
        assert secret.inputs["metadata"]["labels"][CNPG_RELOAD_LABEL] == "true"
        assert secret.inputs["stringData"]["username"] == name
        assert is_secret(secret.wire["stringData"])
        assert secret.protect


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_no_pulumi_postgresql_resource_and_no_connection_from_pulumi(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    run = runs[stack]
    assert not [r for r in run.resources if r.type.split(":")[0] in ("postgresql", "pulumi")]
    text = json.dumps([r.inputs for r in run.resources])
    assert "pulumi:providers:postgresql" not in text


@pytest.mark.parametrize("stack", ["staging", "prod", "bitnami"])
def test_the_grants_job_runs_after_the_database_and_before_flyway(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    run = runs[stack]
    grants, flyway = run.grants_job(), run.flyway_job()
    database = run.one("kubernetes:helm.sh/v3:Release" if stack == "bitnami" else CLUSTER)
    assert database.urn in grants.dependencies
    assert grants.urn in flyway.dependencies
    [config_map] = run.under(GRANTS, CONFIG_MAP)
    assert config_map.inputs["immutable"] is True
    assert config_map.urn in grants.dependencies
    annotations = grants.inputs["metadata"]["annotations"]
    assert annotations["pulumi.com/replaceUnready"] == "true"
    assert grants.replacement_trigger is not None
    assert len(annotations[GRANTS_DIGEST_ANNOTATION]) == 64
    assert set(grants.custom_timeouts) == {"create", "update"}
    assert "metadata" not in grants.inputs or "name" not in grants.inputs["metadata"]
    assert not grants.protect
    # Flyway logs in as the migrator, from the Secret the roles were made with.
    env = {
        e["name"]: e.get("value", e.get("valueFrom"))
        for e in flyway.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["FLYWAY_USER"] == "tradestream_migrator"
    assert env["FLYWAY_PASSWORD"] == {
        "secretKeyRef": {"name": "tradestream-migrator-credentials", "key": "password"}
    }


@pytest.mark.parametrize("stack", ["staging", "prod", "bitnami"])
def test_the_job_runs_the_script_of_the_model_as_the_superuser_and_passes_the_policy(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    run = runs[stack]
    grants = run.grants_job().inputs["spec"]
    pod = grants["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    [config_map] = run.under(GRANTS, CONFIG_MAP)
    script = config_map.inputs["data"][grants_spec.SQL_FILE]
    model = privilege_model("tradestream", owner="tradestream_owner")
    wait = grants_spec.role_wait_seconds(grants["activeDeadlineSeconds"])
    labels = grants["template"]["metadata"]["labels"]
    assert env["PGUSER"] == "postgres"
    if stack == "bitnami":
        assert container["image"] == "docker.io/bitnamilegacy/postgresql:17.6.0-debian-12-r4"
        assert env["PGPASSWORD"] == {
            "secretKeyRef": {
                "name": "tradestream-postgresql-credentials",
                "key": "postgres-password",
            }
        }
        assert script == in_cluster_sql(
            model, password_env=grants_spec.password_env(model), wait_seconds=wait
        )
        assert env["PGSSLMODE"] == "prefer"
        assert labels["tradestream-postgresql-client"] == "true"
    else:
        assert container["image"] == "ghcr.io/cloudnative-pg/postgresql:17.6"
        assert env["PGPASSWORD"] == {
            "secretKeyRef": {"name": "tradestream-pg-superuser-credentials", "key": "password"}
        }
        assert script == in_cluster_sql(model, password_env=None, wait_seconds=wait)
        assert env["PGSSLMODE"] == "verify-full"
        tls = next(v for v in pod["volumes"] if "secret" in v)
        assert tls["secret"]["secretName"] == "tradestream-pg-ca"
        assert labels["tradestream-pg-client"] == "true"


@pytest.mark.parametrize("stack", ["staging", "prod", "bitnami"])
def test_the_history_callback_is_installed_where_the_roles_exist(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    callbacks = [
        cm for cm in runs[stack].migration_config_maps() if HISTORY_CALLBACK in cm.inputs["data"]
    ]
    assert len(callbacks) == 1


def test_bitnami_keeps_the_role_logins_with_the_release_and_leaks_no_password(
    runs: dict[str, ProgramRun],
) -> None:
    run = runs["bitnami"]
    names = {s.inputs["metadata"]["name"] for s in run.of_type(SECRET)}
    assert {
        "tradestream-migrator-credentials",
        "tradestream-app-credentials",
        "tradestream-readonly-credentials",
    } <= names
    assert run.secret_values
    for resource in run.resources:
        for text in plain_strings(resource.wire):
            for secret in run.secret_values:
                assert secret not in text, f"{resource.type} {resource.name} leaks"
    public = {k: v for k, v in run.outputs.items() if k not in run.secret_outputs}
    for secret in run.secret_values:
        assert secret not in json.dumps(public)


def test_a_flyway_setting_leaves_the_grants_job_alone_and_a_model_change_reruns_it() -> None:
    base = run_program("staging")
    flyway_only = run_program("staging", config={"flywayConnectRetries": "7"})
    renamed = run_program("staging", config={"databaseName": "ledger"})
    for run in (base, flyway_only, renamed):
        assert run.error is None, run.error
    assert base.grants_job().replacement_trigger == flyway_only.grants_job().replacement_trigger
    assert base.grants_job().replacement_trigger != renamed.grants_job().replacement_trigger


@pytest.mark.parametrize(
    ("stack", "config", "words"),
    [
        (
            "dev",
            {
                "databaseFlavor": "external",
                "databaseAccessHost": "db.example",
                "databaseRolesManagedBy": "cluster",
                "databaseAdminUser": "tradestream_migrator",
                "databaseName": "tradestream",
            },
            "databaseAdminUser: is 'tradestream_migrator', one of the roles the program manages",
        ),
        (
            "dev",
            {"databaseFlavor": "external", "databaseAccessHost": "db.example"},
            "databaseRolesManagedBy: is none but databaseFlavor is external",
        ),
        (
            "staging",
            {"databaseRolesManagedBy": "pulumi"},
            "databaseRolesManagedBy: is pulumi but databaseAccessHost is empty (databaseFlavor "
            "cloudnative-pg): pulumi-postgresql needs an address",
        ),
        (
            "prod",
            {"databaseAccessHost": "tradestream-pg-rw.tradestream.svc.cluster.local"},
            "databaseAccessHost: is 'tradestream-pg-rw.tradestream.svc.cluster.local' but "
            "databaseRolesManagedBy is cluster",
        ),
        (
            "dev",
            {"databaseAccessHost": "10.0.0.5"},
            "databaseAccessHost: is '10.0.0.5' but databaseRolesManagedBy is none",
        ),
        (
            "staging",
            {"databaseRolesManagedBy": "dba"},
            "databaseRolesManagedBy: is dba but databaseFlavor is cloudnative-pg",
        ),
    ],
)
def test_contradictory_role_settings_are_refused_before_any_resource(
    stack: str, config: dict[str, str], words: str
) -> None:
    run = run_program(stack, config=config, secrets={"adminPassword": "a-Pa55word"})
    assert run.error is not None
    assert words in str(run.error)
    assert any(
        fix in str(run.error)
        for fix in ("Set databaseRolesManagedBy", "Remove databaseAccessHost", "set it to")
    )
    assert run.resources == []


@pytest.mark.parametrize(
    ("stack", "cluster", "pulumi"),
    [
        ("staging", {}, {"databaseRolesManagedBy": "pulumi", "databaseAccessHost": "pg.example"}),
        (
            "dev",
            BITNAMI_CLUSTER,
            {
                "databaseRolesManagedBy": "pulumi",
                "databaseAccessHost": "pg.example",
                "databaseSslMode": "disable",
            },
        ),
    ],
)
def test_logins_move_from_pulumi_postgresql_with_their_passwords(
    stack: str, cluster: dict[str, str], pulumi: dict[str, str]
) -> None:
    """Switching a stack from pulumi to cluster keeps each role's Secret and password: the
    new ones declare an alias for the URN the old ones had, so the engine moves them instead
    of creating Secrets of the same names beside them."""
    before, after = run_program(stack, config=pulumi), run_program(stack, config=cluster)
    assert before.error is None, before.error
    assert after.error is None, after.error
    old = {
        r.name: r.urn
        for r in before.under("tradestream:database:DatabaseRoles", SECRET)
        + before.under("tradestream:database:DatabaseRoles", PASSWORD)
    }
    assert len(old) == 6
    for name, urn in old.items():
        moved = after.named(name)
        assert moved.urn != urn
        [alias] = [a["spec"] for a in moved.aliases]
        chain = alias["parentUrn"].split("::")[2]
        project, _, _ = moved.urn.removeprefix(f"urn:pulumi:{stack}::").partition("::")
        assert f"urn:pulumi:{stack}::{project}::{chain}${moved.type}::{name}" == urn


def test_a_bitnami_image_whose_psql_cannot_create_the_roles_is_refused() -> None:
    config = {**BITNAMI_CLUSTER, "postgresImageTag": "14.10.0-debian-11-r1"}
    run = run_program("dev", config=config)
    assert (
        "tradestream-database:postgresImageTag: '14.10.0-debian-11-r1' is PostgreSQL 14, but "
        "databaseRolesManagedBy cluster runs that image's psql to create the roles"
    ) in str(run.error)
    assert run.resources == []
    # CloudNativePG's roles are the operator's: the script needs nothing newer there.
    assert (
        run_program("staging", config={"cnpgImage": "ghcr.io/cloudnative-pg/postgresql:14.9"}).error
        is None
    )
