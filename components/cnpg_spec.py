"""The CloudNativePG operator release and `Cluster`, as plain data (pure)."""

from __future__ import annotations

from typing import Any, Final

from components.flyway import DatabaseEndpoint, ServerAddress
from components.postgres_chart import resources
from components.settings import CnpgSettings, DatabaseSettings, PostgresSettings

OPERATOR_CHART: Final = "cloudnative-pg"
OPERATOR_REPOSITORY: Final = "https://cloudnative-pg.github.io/charts"
API_VERSION: Final = "postgresql.cnpg.io/v1"
PORT: Final = 5432
SUPERUSER: Final = "postgres"
APP_PASSWORD_KEY: Final = "password"  # noqa: S105 (a key of the operator's Secret)


def app_secret_name(cnpg: CnpgSettings) -> str:
    """The Secret the operator creates for the owner (`username`, `password`, ...)."""
    return f"{cnpg.cluster_name}-app"


def superuser_secret_name(cnpg: CnpgSettings) -> str:
    return f"{cnpg.cluster_name}-superuser-credentials"


def address(cnpg: CnpgSettings, db: DatabaseSettings, namespace: str) -> ServerAddress:
    """The `-rw` Service always points at the current primary, across failovers."""
    host = f"{cnpg.cluster_name}-rw.{namespace}.svc.cluster.local"
    return ServerAddress(host=host, port=PORT, database=db.name)


def endpoint(cnpg: CnpgSettings, db: DatabaseSettings, namespace: str) -> DatabaseEndpoint:
    return DatabaseEndpoint(
        address=address(cnpg, db, namespace),
        username=db.owner,
        secret_name=app_secret_name(cnpg),
        password_key=APP_PASSWORD_KEY,
    )


def cluster_spec(
    cnpg: CnpgSettings,
    pg: PostgresSettings,
    db: DatabaseSettings,
    *,
    superuser_secret: str | None,
) -> dict[str, Any]:
    """The `Cluster` spec. Superuser access is on only when Pulumi manages roles with it."""
    storage: dict[str, Any] = {"size": pg.storage_size}
    if pg.storage_class:
        storage["storageClass"] = pg.storage_class
    spec: dict[str, Any] = {
        "instances": cnpg.instances,
        "imageName": cnpg.image,
        "storage": storage,
        "resources": resources(pg),
        "bootstrap": {"initdb": {"database": db.name, "owner": db.owner}},
        "enableSuperuserAccess": superuser_secret is not None,
    }
    if superuser_secret is not None:
        spec["superuserSecret"] = {"name": superuser_secret}
    return spec


def pod_monitor(cnpg: CnpgSettings, namespace: str) -> dict[str, Any]:
    """A Prometheus PodMonitor for the instances' exporter port. The operator's own
    `monitoring.enablePodMonitor` is deprecated since CloudNativePG 1.26, which advises
    managing the PodMonitor directly."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": cnpg.cluster_name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"cnpg.io/cluster": cnpg.cluster_name}},
            "podMetricsEndpoints": [{"port": "metrics"}],
        },
    }
