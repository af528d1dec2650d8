"""Values for the Bitnami PostgreSQL chart, and the endpoint it yields (pure)."""

from __future__ import annotations

from typing import Any, Final

from components.contract import DatabaseEndpoint, ServerAddress, Traits
from components.settings import (
    Architecture,
    DatabaseSettings,
    PostgresSettings,
    Settings,
    bitnami_fullname,
    bitnami_primary_name,
)

# Keys of the credentials Secret the chart reads (names, not passwords).
ADMIN_PASSWORD_KEY: Final = "postgres-password"  # noqa: S105
OWNER_PASSWORD_KEY: Final = "password"  # noqa: S105
REPLICATION_PASSWORD_KEY: Final = "replication-password"  # noqa: S105
BITNAMI_DEFAULT_REPOSITORY: Final = "bitnami/postgresql"
PORT: Final = 5432


def traits(settings: Settings) -> Traits:
    return Traits(
        holds_data=True,
        owner=settings.database.owner,
        record_key="postgresReleaseName",
        record_name=settings.postgres.release_name,
        backup="pg_dump writes a backup to the stack's backup volume",
        waits=(
            (
                "the release (postgresReleaseTimeoutSeconds)",
                settings.postgres.release_timeout_seconds,
            ),
        ),
    )


def read_only_host(pg: PostgresSettings, namespace: str) -> str:
    """The read replicas' Service where there are replicas, else the primary."""
    if pg.architecture is Architecture.REPLICATION:
        return f"{bitnami_fullname(pg.release_name)}-read.{namespace}.svc.cluster.local"
    return f"{bitnami_primary_name(pg.release_name, pg.architecture)}.{namespace}.svc.cluster.local"


def secret_name(release_name: str) -> str:
    return f"{release_name}-credentials"


def secret_keys(pg: PostgresSettings) -> list[str]:
    keys = [ADMIN_PASSWORD_KEY, OWNER_PASSWORD_KEY]
    if pg.architecture is Architecture.REPLICATION:
        keys.append(REPLICATION_PASSWORD_KEY)
    return keys


def client_label(pg: PostgresSettings) -> dict[str, str]:
    """The label the chart's NetworkPolicy requires of clients when allowExternal is false:
    named after the primary, which with replication is `<fullname>-primary`."""
    return {f"{bitnami_primary_name(pg.release_name, pg.architecture)}-client": "true"}


def address(pg: PostgresSettings, db: DatabaseSettings, namespace: str) -> ServerAddress:
    """Where the primary answers inside the cluster (with replication its Service is
    `<fullname>-primary`; `<fullname>` alone does not exist); known before deploy."""
    primary = bitnami_primary_name(pg.release_name, pg.architecture)
    host = f"{primary}.{namespace}.svc.cluster.local"
    return ServerAddress(host=host, port=PORT, database=db.name)


def endpoint(pg: PostgresSettings, db: DatabaseSettings, namespace: str) -> DatabaseEndpoint:
    """The owner's login, for Flyway when roles are not managed."""
    return DatabaseEndpoint(
        address=address(pg, db, namespace),
        username=db.owner,
        secret_name=secret_name(pg.release_name),
        password_key=OWNER_PASSWORD_KEY,
    )


def owner_role_sql(db: DatabaseSettings) -> str:
    """Run once by the image at first initialisation, in the app database.

    The image creates the owner role WITH CREATEDB; migrations need to own the schema, not
    to create databases or roles, so those rights are taken away here. Only a superuser may
    do that, and the image runs init scripts as the owner unless told otherwise: see
    `init_script_env`.
    """
    owner, database = db.owner, db.name
    return (
        f'ALTER ROLE "{owner}" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;\n'
        f'ALTER DATABASE "{database}" OWNER TO "{owner}";\n'
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;\n'
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO "{owner}";\n'
    )


def resources(pg: PostgresSettings) -> dict[str, dict[str, str]]:
    """Requests and limits of one PostgreSQL instance (Bitnami and CloudNativePG alike)."""
    return {
        "requests": {"cpu": pg.cpu_request, "memory": pg.memory_request},
        "limits": {"cpu": pg.cpu_limit, "memory": pg.memory_limit},
    }


def init_script_env(pg: PostgresSettings) -> list[dict[str, Any]]:
    """Make the image run init scripts as `postgres`, reading its password from our Secret.

    (`primary.initdb.user`/`password` would put the password in chart values.)
    """
    return [
        {"name": "POSTGRESQL_INITSCRIPTS_USERNAME", "value": "postgres"},
        {
            "name": "POSTGRESQL_INITSCRIPTS_PASSWORD",
            "valueFrom": {
                "secretKeyRef": {"name": secret_name(pg.release_name), "key": ADMIN_PASSWORD_KEY}
            },
        },
    ]


EXPORTER_IMAGE: Final = "postgres-exporter"
METRICS_PORT: Final = 9187
"""The exporter's port (the chart's `metrics.containerPorts.metrics`)."""


def metrics_values(pg: PostgresSettings) -> dict[str, Any]:
    """The exporter sidecar comes from where the main image does: the chart's default,
    docker.io/bitnami, has had no free versioned images since 2025-08-28. The chart's
    pinned tag is kept; the legacy namespace holds the same tags."""
    if not pg.metrics_enabled:
        return {"enabled": False}
    namespace = pg.image_repository.rpartition("/")[0]
    repository = f"{namespace}/{EXPORTER_IMAGE}" if namespace else EXPORTER_IMAGE
    return {
        "enabled": True,
        "image": {"registry": pg.image_registry, "repository": repository},
        "containerPorts": {"metrics": METRICS_PORT},
    }


def network_policy_values(pg: PostgresSettings) -> dict[str, Any]:
    """The chart's NetworkPolicy of each instance: PostgreSQL from the instances and pods with
    the client label alone (allowExternal false). The chart admits its exporter's port only
    from those pods too, which no Prometheus is; with metrics on, the port is open to any
    scraper, as for cloudnative-pg (where Prometheus runs differs per cluster; the port serves
    nothing but metrics)."""
    values: dict[str, Any] = {"enabled": pg.network_policy_enabled, "allowExternal": False}
    if pg.metrics_enabled:
        values["extraIngress"] = [{"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}]
    return values


def chart_values(pg: PostgresSettings, db: DatabaseSettings) -> dict[str, Any]:
    """Chart values; no password ever appears here (`auth.existingSecret`)."""
    persistence: dict[str, Any] = {"enabled": True, "size": pg.storage_size}
    if pg.storage_class:
        persistence["storageClass"] = pg.storage_class
    network_policy = network_policy_values(pg)
    values: dict[str, Any] = {
        "image": {
            "registry": pg.image_registry,
            "repository": pg.image_repository,
            "tag": pg.image_tag,
        },
        "architecture": pg.architecture.value,
        "auth": {
            "enablePostgresUser": True,
            "username": db.owner,
            "database": db.name,
            "existingSecret": secret_name(pg.release_name),
            "secretKeys": {
                "adminPasswordKey": ADMIN_PASSWORD_KEY,
                "userPasswordKey": OWNER_PASSWORD_KEY,
                "replicationPasswordKey": REPLICATION_PASSWORD_KEY,
            },
        },
        "primary": {
            "persistence": persistence,
            "resources": resources(pg),
            "networkPolicy": network_policy,
            "initdb": {"scripts": {"10-owner-role.sql": owner_role_sql(db)}},
            "extraEnvVars": init_script_env(pg),
        },
        "metrics": metrics_values(pg),
    }
    if pg.architecture is Architecture.REPLICATION:
        values["readReplicas"] = {
            "replicaCount": pg.read_replicas,
            "persistence": persistence,
            "resources": resources(pg),
            "networkPolicy": network_policy,
        }
    if pg.image_repository != BITNAMI_DEFAULT_REPOSITORY:
        # Since 2025 the chart refuses images other than its own unless told otherwise.
        values["global"] = {"security": {"allowInsecureImages": True}}
    return values
