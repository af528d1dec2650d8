"""The Flyway container spec, built without Pulumi."""

from __future__ import annotations

import dataclasses

from components.contract import DatabaseEndpoint, ServerAddress
from components.jobs.flyway import (
    COMMAND,
    MOUNT_PATH,
    flyway_environment,
    jdbc_url,
    job_spec,
    pod_template,
    volume_sources,
)
from components.settings import FlywaySettings

ENDPOINT = DatabaseEndpoint(
    address=ServerAddress(host="db.ns.svc.cluster.local", port=5432, database="app"),
    username="app_owner",
    secret_name="db-credentials",
    password_key="password",
)


def env_dict(settings: FlywaySettings) -> dict[str, object]:
    out: dict[str, object] = {}
    for var in flyway_environment(settings, ENDPOINT):
        k8s = var.to_k8s()
        out[k8s["name"]] = k8s.get("value", k8s.get("valueFrom"))
    return out


def test_environment_is_exactly_what_was_configured_false_and_zero_included() -> None:
    settings = dataclasses.replace(
        FlywaySettings(),
        connect_retries=0,
        connect_retries_interval=7,
        baseline_on_migrate=False,
        baseline_version="0",
        out_of_order=False,
        lock_retry_count=0,
    )
    assert env_dict(settings) == {
        "FLYWAY_URL": "jdbc:postgresql://db.ns.svc.cluster.local:5432/app",
        "FLYWAY_USER": "app_owner",
        "FLYWAY_PASSWORD": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
        "FLYWAY_LOCATIONS": "filesystem:/flyway/sql",
        "FLYWAY_CONNECT_RETRIES": "0",
        "FLYWAY_CONNECT_RETRIES_INTERVAL": "7",
        "FLYWAY_BASELINE_ON_MIGRATE": "false",
        "FLYWAY_BASELINE_VERSION": "0",
        "FLYWAY_OUT_OF_ORDER": "false",
        "FLYWAY_VALIDATE_MIGRATION_NAMING": "true",
        "FLYWAY_VALIDATE_ON_MIGRATE": "true",
        "FLYWAY_CLEAN_DISABLED": "true",
        "FLYWAY_LOCK_RETRY_COUNT": "0",
        "FLYWAY_POSTGRESQL_TRANSACTIONAL_LOCK": "false",
        "REDGATE_DISABLE_TELEMETRY": "true",
        "HOME": "/tmp",
        "FLYWAY_PLACEHOLDER_REPLACEMENT": "true",
    }


def test_true_values_reach_the_container_as_true() -> None:
    settings = dataclasses.replace(FlywaySettings(), baseline_on_migrate=True, out_of_order=True)
    env = env_dict(settings)
    assert env["FLYWAY_BASELINE_ON_MIGRATE"] == "true"
    assert env["FLYWAY_OUT_OF_ORDER"] == "true"


def test_the_password_is_only_ever_a_secret_reference() -> None:
    for var in flyway_environment(FlywaySettings(), ENDPOINT):
        if var.name == "FLYWAY_PASSWORD":
            assert var.value is None
            assert (var.secret_name, var.secret_key) == ("db-credentials", "password")


def test_pod_is_locked_down() -> None:
    settings = FlywaySettings()
    template = pod_template(
        settings,
        flyway_environment(settings, ENDPOINT),
        volume_sources([("cm-0", [("a.sql", "a.sql")])]),
        labels={"l": "v"},
        annotations={"a": "b"},
    )
    spec = template["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["command"] == list(COMMAND) == ["flyway", "-skipCheckForUpdate", "migrate"]
    assert container["image"] == f"flyway/flyway:{settings.version}-alpine"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[MOUNT_PATH]["readOnly"] is True
    assert "/tmp" in mounts  # the only writable place, an emptyDir
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tmp"]["emptyDir"]
    assert volumes["migrations"]["projected"]["sources"] == [
        {"configMap": {"name": "cm-0", "items": [{"key": "a.sql", "path": "a.sql"}]}}
    ]


def test_job_has_no_ttl_and_takes_limits_from_settings() -> None:
    settings = dataclasses.replace(FlywaySettings(), backoff_limit=0, active_deadline_seconds=42)
    spec = job_spec(settings, {"spec": {}})
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 42
    assert "ttlSecondsAfterFinished" not in spec


def test_ssl_mode_is_part_of_the_url_only_when_set() -> None:
    address = ServerAddress(host="db.example", port=6432, database="app", ssl_mode="verify-full")
    endpoint = dataclasses.replace(ENDPOINT, address=address)
    assert jdbc_url(endpoint) == "jdbc:postgresql://db.example:6432/app?sslmode=verify-full"
    assert jdbc_url(ENDPOINT) == "jdbc:postgresql://db.ns.svc.cluster.local:5432/app"
