"""The Flyway container: its environment, command and pod spec, built from settings (pure).

Everything the Job runs is decided here, so tests can read it without mocks and the
contract tests can run the very same command against a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from components.migrations.placeholders import env_name
from components.pod import CA_KEY, TMP_PATH, Container, EnvVar, locked_down_pod
from components.settings import FlywaySettings

MOUNT_PATH: Final = "/flyway/sql"
TLS_PATH: Final = "/flyway/tls"
CALLBACKS_FOLDER: Final = "deployment-callbacks"
"""Where the program's own callbacks sit in the volume, apart from the migrations."""
COMMAND: Final = ("flyway", "-skipCheckForUpdate", "migrate")
"""The image's entrypoint is `flyway`; the update check would only try to reach the internet."""


@dataclass(frozen=True)
class ServerAddress:
    """Where the migration Job reaches PostgreSQL, whichever flavor serves it."""

    host: str
    port: int
    database: str
    ssl_mode: str | None = None
    """JDBC `sslmode`; None leaves the driver's default (in-cluster flavors)."""
    ca_secret: str | None = None
    """A Secret whose `ca.crt` signed the server's certificate. Flyway then verifies the
    certificate and the host name against it (verify-full) instead of trusting any server."""


@dataclass(frozen=True)
class DatabaseEndpoint:
    """What the migration side needs from any database flavor: an address and a login."""

    address: ServerAddress
    username: str
    secret_name: str
    password_key: str

    @property
    def jdbc_url(self) -> str:
        a = self.address
        if a.ca_secret:
            mode = a.ssl_mode or "verify-full"
            query = f"?sslmode={mode}&sslrootcert={TLS_PATH}/{CA_KEY}"
        else:
            query = f"?sslmode={a.ssl_mode}" if a.ssl_mode else ""
        return f"jdbc:postgresql://{a.host}:{a.port}/{a.database}{query}"


def _flag(value: bool) -> str:
    return "true" if value else "false"


PLACEHOLDER_SECRET: Final = "<flyway placeholders Secret>"  # noqa: S105 (a stand-in name)
"""Stands for the engine-named Secret of the secret placeholders where only the Job's shape
matters (the config digest): the Secret's name changes with its content, not with the Job's."""


def placeholder_environment(
    flyway: FlywaySettings, secret_name: object = PLACEHOLDER_SECRET
) -> tuple[EnvVar, ...]:
    """Replacement always explicit; each placeholder as FLYWAY_PLACEHOLDERS_<NAME>, plain
    values literally, secret ones by secretKeyRef into the Secret (key: the name) only."""
    plain = tuple(EnvVar(env_name(name), value) for name, value in flyway.placeholders)
    secret = tuple(
        EnvVar(env_name(name), secret_name=secret_name, secret_key=name)
        for name, _ in flyway.secret_placeholders
    )
    replacement = EnvVar("FLYWAY_PLACEHOLDER_REPLACEMENT", _flag(flyway.placeholder_replacement))
    return (replacement, *sorted((*plain, *secret), key=lambda var: var.name))


def flyway_environment(
    flyway: FlywaySettings,
    endpoint: DatabaseEndpoint,
    placeholder_secret: object = PLACEHOLDER_SECRET,
) -> tuple[EnvVar, ...]:
    """Flyway's configuration, all of it explicit so a Flyway default change cannot surprise us.

    `placeholder_secret` names the Secret holding the secret placeholder values."""
    return (
        EnvVar("FLYWAY_URL", endpoint.jdbc_url),
        EnvVar("FLYWAY_USER", endpoint.username),
        EnvVar(
            "FLYWAY_PASSWORD",
            secret_name=endpoint.secret_name,
            secret_key=endpoint.password_key,
        ),
        EnvVar("FLYWAY_LOCATIONS", f"filesystem:{MOUNT_PATH}"),
        EnvVar("FLYWAY_CONNECT_RETRIES", str(flyway.connect_retries)),
        EnvVar("FLYWAY_CONNECT_RETRIES_INTERVAL", str(flyway.connect_retries_interval)),
        EnvVar("FLYWAY_BASELINE_ON_MIGRATE", _flag(flyway.baseline_on_migrate)),
        EnvVar("FLYWAY_BASELINE_VERSION", flyway.baseline_version),
        EnvVar("FLYWAY_OUT_OF_ORDER", _flag(flyway.out_of_order)),
        # A misnamed file must fail the run, not be skipped silently.
        EnvVar("FLYWAY_VALIDATE_MIGRATION_NAMING", "true"),
        # An applied migration that changed or vanished must stop the run.
        EnvVar("FLYWAY_VALIDATE_ON_MIGRATE", "true"),
        EnvVar("FLYWAY_CLEAN_DISABLED", "true"),
        EnvVar("FLYWAY_LOCK_RETRY_COUNT", str(flyway.lock_retry_count)),
        # A session-level advisory lock lets CREATE INDEX CONCURRENTLY finish; the
        # transaction-level one makes it wait on Flyway's own open transaction until
        # lock_timeout (or forever).
        EnvVar("FLYWAY_POSTGRESQL_TRANSACTIONAL_LOCK", "false"),
        EnvVar("REDGATE_DISABLE_TELEMETRY", "true"),
        # The root filesystem is read-only; anything Flyway or the JVM writes goes here.
        EnvVar("HOME", TMP_PATH),
        *placeholder_environment(flyway, placeholder_secret),
    )


def volume_sources(
    shards: Sequence[tuple[object, Sequence[tuple[str, str]]]],
) -> list[dict[str, Any]]:
    """Projected-volume sources: each ConfigMap (name, [(key, path)]) laid out by path.

    A name is whatever stands for the ConfigMap's name: a string, or its Output once the
    engine has named it."""
    return [
        {
            "configMap": {
                "name": name,
                "items": [{"key": key, "path": path} for key, path in items],
            }
        }
        for name, items in shards
    ]


def pod_template(
    flyway: FlywaySettings,
    env: Sequence[EnvVar],
    sources: list[dict[str, Any]],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    ca_secret: str | None = None,
) -> dict[str, Any]:
    """A locked-down pod: non-root, read-only root, no token, no privilege, one command;
    with `ca_secret`, the server's CA certificate mounted where the JDBC URL points."""
    mounts: list[dict[str, Any]] = [
        {"name": "migrations", "mountPath": MOUNT_PATH, "readOnly": True},
        {"name": "tmp", "mountPath": TMP_PATH},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "migrations", "projected": {"sources": sources, "defaultMode": 0o444}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
    ]
    container = Container(
        name="flyway",
        image=flyway.image,
        command=COMMAND,
        env=env,
        resources={
            "requests": {"cpu": flyway.cpu_request, "memory": flyway.memory_request},
            "limits": {"cpu": flyway.cpu_limit, "memory": flyway.memory_limit},
        },
    )
    return locked_down_pod(
        container, mounts, volumes, labels, annotations, ca_secret=ca_secret, tls_path=TLS_PATH
    )


def job_spec(flyway: FlywaySettings, template: dict[str, Any]) -> dict[str, Any]:
    """No ttlSecondsAfterFinished: the finished Job stays as the record of the last run
    until the next run replaces it, and Pulumi's state never drifts from the cluster."""
    return {
        "backoffLimit": flyway.backoff_limit,
        "activeDeadlineSeconds": flyway.active_deadline_seconds,
        "template": template,
    }


def config_digest_input(
    flyway: FlywaySettings,
    env: Sequence[EnvVar],
    labels: Mapping[str, str],
    ca_secret: str | None = None,
) -> dict[str, Any]:
    """Everything the Job runs with apart from the files: image, command, environment,
    resources, security, backoff limit and deadline.

    A change to any of it runs Flyway again in a new Job. Kubernetes cannot change a Job's
    template in place, and updating only the rest would leave a Job that did not run with
    what it shows."""
    return job_spec(flyway, pod_template(flyway, env, [], labels, {}, ca_secret=ca_secret))
