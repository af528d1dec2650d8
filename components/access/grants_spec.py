"""The in-cluster grants Job: psql's environment, command and pod, built from data (pure).

The Job applies the privilege model from inside the cluster, so `pulumi up` needs no
network path to the database. Everything it runs is decided here, so tests read it without
mocks and the contract tests run the very same command against a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from components.access.privileges import PrivilegeModel
from components.contract import (
    PASSWORD_KEY,
    VERIFIER_KEY,
    InClusterAdmin,
    Purpose,
    ServerAddress,
    credentials_secret_name,
)
from components.jobs.libpq import libpq_environment
from components.jobs.pod import TMP_PATH, Container, EnvVar, locked_down_pod

SQL_PATH: Final = "/grants"
SQL_FILE: Final = "grants.sql"
TLS_PATH: Final = "/grants-tls"
CONTAINER: Final = "psql"
COMMAND: Final = (
    "psql",
    "--no-psqlrc",
    "--set=ON_ERROR_STOP=1",
    "--single-transaction",
    f"--file={SQL_PATH}/{SQL_FILE}",
)
"""All or nothing, stopping at the first error. Never --echo-*: an echoed statement would
show a password psql interpolated into it."""
BACKOFF_LIMIT: Final = 2
"""A pod lost with its node, or a connection refused during a failover, is retried."""
ROLE_WAIT_MARGIN_SECONDS: Final = 60
"""The script stops waiting for the operator's roles this long before the Job's deadline,
so the failure names the missing roles instead of a bare DeadlineExceeded."""
RESOURCES: Final = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}


def password_env_name(purpose: Purpose) -> str:
    return f"ROLE_PASSWORD_{purpose.name}"


def password_env(model: PrivilegeModel) -> dict[Purpose, str]:
    """The environment variable that holds each role's password, where the Job sets it."""
    return {role.purpose: password_env_name(role.purpose) for role in model.roles}


def verifier_env(model: PrivilegeModel) -> dict[Purpose, str]:
    """The environment variable that holds each role's SCRAM verifier, where an admin that is
    not a superuser sets the passwords."""
    return {role.purpose: f"ROLE_PASSWORD_VERIFIER_{role.purpose.name}" for role in model.roles}


def role_secret_env(model: PrivilegeModel, admin: InClusterAdmin) -> dict[Purpose, tuple[str, str]]:
    """Where the Job sets the passwords: each role's (environment variable, Secret key)."""
    if not admin.creates_roles:
        return {}
    if admin.superuser:
        return {purpose: (name, PASSWORD_KEY) for purpose, name in password_env(model).items()}
    return {purpose: (name, VERIFIER_KEY) for purpose, name in verifier_env(model).items()}


def grants_environment(
    model: PrivilegeModel,
    address: ServerAddress,
    admin: InClusterAdmin,
) -> tuple[EnvVar, ...]:
    """libpq's connection settings, the admin's password and, where the Job creates the roles,
    each role's password (or its verifier), all from Secrets by reference."""
    env = [
        *libpq_environment(
            address,
            user=admin.username,
            password_secret=admin.secret_name,
            password_key=admin.password_key,
            tls_path=TLS_PATH,
            application="tradestream-grants",
        ),
        # The root filesystem is read-only; anything psql or libpq writes goes here.
        EnvVar("HOME", TMP_PATH),
    ]
    env.extend(
        EnvVar(name, secret_name=credentials_secret_name(model.database, purpose), secret_key=key)
        for purpose, (name, key) in role_secret_env(model, admin).items()
    )
    return tuple(env)


def pod_template(
    image: str,
    env: Sequence[EnvVar],
    config_map: object,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    ca_secret: str | None = None,
) -> dict[str, Any]:
    """A locked-down pod like Flyway's: non-root, read-only root, no token, no privilege,
    one command; the script from its ConfigMap, the server's CA where the address has one.
    `config_map` stands for the ConfigMap's name (a string, or its Output)."""
    mounts: list[dict[str, Any]] = [
        {"name": "sql", "mountPath": SQL_PATH, "readOnly": True},
        {"name": "tmp", "mountPath": TMP_PATH},
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "sql",
            "configMap": {
                "name": config_map,
                "items": [{"key": SQL_FILE, "path": SQL_FILE}],
                "defaultMode": 0o444,
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
    ]
    container = Container(
        name=CONTAINER, image=image, command=COMMAND, env=env, resources=RESOURCES
    )
    return locked_down_pod(
        container, mounts, volumes, labels, annotations, ca_secret=ca_secret, tls_path=TLS_PATH
    )


def job_spec(template: dict[str, Any], deadline_seconds: int) -> dict[str, Any]:
    """No ttlSecondsAfterFinished: the finished Job stays as the record of the last run."""
    return {
        "backoffLimit": BACKOFF_LIMIT,
        "activeDeadlineSeconds": deadline_seconds,
        "template": template,
    }


def role_wait_seconds(deadline_seconds: int) -> int:
    return max(deadline_seconds - ROLE_WAIT_MARGIN_SECONDS, 1)
