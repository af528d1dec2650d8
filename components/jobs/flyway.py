"""Flyway's plan: its environment, pod template, digests and trigger, computed once (pure).

Everything the migration Job runs is decided here, and handed on: the backup runs with the
plan's trigger, the Job renders the plan's template with the names the engine gives its
ConfigMaps, and the contract tests run the very same command against a real PostgreSQL.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from components.contract import HISTORY_TABLE, DatabaseEndpoint, digest
from components.inputs import Inputs
from components.jobs.pod import CA_KEY, TMP_PATH, Container, EnvVar, locked_down_pod
from components.migrations import Kind, MigrationSet, Shard
from components.migrations.placeholders import env_name, recorded_checksum
from components.settings import FlywaySettings

MOUNT_PATH: Final = "/flyway/sql"
TLS_PATH: Final = "/flyway/tls"
CALLBACKS_FOLDER: Final = "deployment-callbacks"
"""Where the program's own callbacks sit in the volume, apart from the migrations."""
COMMAND: Final = ("flyway", "-skipCheckForUpdate", "migrate")
"""The image's entrypoint is `flyway`; the update check would only try to reach the internet."""


def flyway_command(verb: str) -> tuple[str, ...]:
    """Flyway with another verb (repair, validate, info), as the Job runs migrate."""
    return (*COMMAND[:-1], verb)


ENVIRONMENT: Final = "default"
"""Flyway's environment when none is chosen: the value of ${flyway:environment}."""
PLACEHOLDER_SECRET: Final = "<flyway placeholders Secret>"  # noqa: S105 (a stand-in name)
"""Stands for the engine-named Secret of the secret placeholders in the plan; the Job puts the
Secret's name in its place. The Secret's name changes with its content, not with the Job's."""


def jdbc_url(endpoint: DatabaseEndpoint) -> str:
    """Verify-full against the CA where the address has one, else its declared sslmode."""
    a = endpoint.address
    if a.ca_secret:
        mode = a.ssl_mode or "verify-full"
        query = f"?sslmode={mode}&sslrootcert={TLS_PATH}/{CA_KEY}"
    else:
        query = f"?sslmode={a.ssl_mode}" if a.ssl_mode else ""
    return f"jdbc:postgresql://{a.host}:{a.port}/{a.database}{query}"


def _flag(value: bool) -> str:
    return "true" if value else "false"


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
        EnvVar("FLYWAY_URL", jdbc_url(endpoint)),
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


@dataclass(frozen=True)
class FlywayPlan:
    """What the migration Job runs, decided once from the settings, the login and the files.

    `spec` is the Job's spec with no migration volume sources and no pod annotations, and
    with `PLACEHOLDER_SECRET` where the secret placeholders' Secret is named: exactly what
    `config_digest` covers. `render` fills those in with what the engine names."""

    settings: FlywaySettings
    endpoint: DatabaseEndpoint
    migrations: MigrationSet
    shards: tuple[Shard, ...]
    """The migration files packed into ConfigMaps, once, when the inputs were checked."""
    pod_labels: Mapping[str, str]
    callbacks: Mapping[str, str]
    spec: dict[str, Any]
    config_digest: str
    """Everything the Job runs with apart from the files: image, command, environment,
    resources, security, backoff limit and deadline, the program's callbacks."""
    trigger: str
    """When Flyway runs again, before the steps that run with it are folded in: the
    migrations or the configuration changed."""

    def run_trigger(self, run_inputs: Mapping[str, str]) -> str:
        """The trigger with the digests of the steps that run with Flyway (the backup)."""
        return digest(
            {"migrations": self.migrations.digest, "flyway": self.config_digest, **run_inputs}
        )

    def render(
        self,
        sources: list[dict[str, Any]],
        annotations: Mapping[str, str],
        placeholder_secret: object = PLACEHOLDER_SECRET,
    ) -> dict[str, Any]:
        """The Job's spec with the ConfigMaps' volume sources, the pod's annotations and the
        placeholder Secret's name (an Output once the engine has named it)."""
        spec = copy.deepcopy(self.spec)
        pod = spec["template"]
        pod["metadata"]["annotations"] = dict(annotations)
        for volume in pod["spec"]["volumes"]:
            if volume["name"] == "migrations":
                volume["projected"]["sources"] = sources
        for var in pod["spec"]["containers"][0]["env"]:
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None and ref["name"] == PLACEHOLDER_SECRET:
                ref["name"] = placeholder_secret
        return spec


def plan(
    flyway: FlywaySettings,
    endpoint: DatabaseEndpoint,
    inputs: Inputs,
    *,
    pod_labels: Mapping[str, str],
    callbacks: Mapping[str, str],
) -> FlywayPlan:
    """Flyway's plan; a change to any part of it runs Flyway again in a new Job (Kubernetes
    cannot change a Job's template in place, and updating only the rest would leave a Job that
    did not run with what it shows)."""
    env = flyway_environment(flyway, endpoint)
    spec = job_spec(
        flyway,
        pod_template(flyway, env, [], pod_labels, {}, ca_secret=endpoint.address.ca_secret),
    )
    config_digest = digest({"job": spec, "callbacks": dict(callbacks)})
    trigger = digest({"migrations": inputs.migrations.digest, "flyway": config_digest})
    return FlywayPlan(
        settings=flyway,
        endpoint=endpoint,
        migrations=inputs.migrations,
        shards=inputs.shards,
        pod_labels=dict(pod_labels),
        callbacks=dict(callbacks),
        spec=spec,
        config_digest=config_digest,
        trigger=trigger,
    )


def packaged_scripts(
    migrations: MigrationSet,
    settings: FlywaySettings | None = None,
    endpoint: DatabaseEndpoint | None = None,
) -> list[dict[str, object]]:
    """What a reviewer reads in the preview: every script Flyway will see, in its order, with
    the checksum Flyway will record for it (for a repeatable, after placeholder replacement).

    A repeatable whose recorded checksum depends on a secret placeholder shows none, and says
    why: a CRC32 of the replaced text would let anyone test guesses of the secret against it.
    """
    flyway_settings = settings or FlywaySettings()
    built_ins = {"flyway:table": HISTORY_TABLE, "flyway:environment": ENVIRONMENT}
    if endpoint is not None:
        built_ins |= {
            "flyway:user": endpoint.username,
            "flyway:database": endpoint.address.database,
        }
    scripts: list[dict[str, object]] = []
    for f in migrations.files:
        if f.kind is Kind.CONFIG:
            continue
        checksum = recorded_checksum(
            f,
            replacement=flyway_settings.placeholder_replacement,
            values=dict(flyway_settings.placeholders),
            secret_names=[name for name, _ in flyway_settings.secret_placeholders],
            known_built_ins=built_ins,
        )
        script: dict[str, object] = {
            "script": f.path,
            "type": f.kind.value,
            "version": str(f.version) if f.version is not None else None,
            "description": f.description,
            "checksum": checksum.value,
        }
        if checksum.withheld is not None:
            script["checksumWithheld"] = checksum.withheld
        scripts.append(script)
    return scripts
