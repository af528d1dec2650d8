"""The CloudNativePG operator release and `Cluster`, as plain data (pure)."""

from __future__ import annotations

from typing import Any, Final

from components.credentials import credentials_secret_name
from components.flyway import DatabaseEndpoint, ServerAddress
from components.postgres_chart import resources
from components.privileges import PrivilegeModel
from components.settings import CnpgSettings, DatabaseSettings, PostgresSettings

OPERATOR_CHART: Final = "cloudnative-pg"
OPERATOR_REPOSITORY: Final = "https://cloudnative-pg.github.io/charts"
API_VERSION: Final = "postgresql.cnpg.io/v1"
PORT: Final = 5432
SUPERUSER: Final = "postgres"
STATUS_PORT: Final = 8000
"""The instance manager's port, which the operator polls."""
OPERATOR_NAME: Final = "cloudnative-pg"
"""The operator pods' `app.kubernetes.io/name`, as its chart labels them."""
APP_PASSWORD_KEY: Final = "password"  # noqa: S105 (a key of the operator's Secret)
SUPERUSER_PASSWORD_KEY: Final = "password"  # noqa: S105 (a key of the superuser's Secret)


def app_secret_name(cnpg: CnpgSettings) -> str:
    """The Secret the operator creates for the owner (`username`, `password`, ...)."""
    return f"{cnpg.cluster_name}-app"


def superuser_secret_name(cnpg: CnpgSettings) -> str:
    return f"{cnpg.cluster_name}-superuser-credentials"


def ca_secret_name(cnpg: CnpgSettings) -> str:
    """The operator's CA for the cluster: it signs the server certificate, whose names
    include `<cluster>-rw.<namespace>.svc.cluster.local`."""
    return f"{cnpg.cluster_name}-ca"


def address(cnpg: CnpgSettings, db: DatabaseSettings, namespace: str) -> ServerAddress:
    """The `-rw` Service always points at the current primary, across failovers. Clients
    verify its certificate against the cluster's own CA."""
    host = f"{cnpg.cluster_name}-rw.{namespace}.svc.cluster.local"
    return ServerAddress(host=host, port=PORT, database=db.name, ca_secret=ca_secret_name(cnpg))


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
    managed_roles: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `Cluster` spec. Superuser access is on only when roles are managed with it."""
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
    if managed_roles:
        spec["managed"] = {"roles": managed_roles}
    return spec


def managed_roles(model: PrivilegeModel) -> list[dict[str, Any]]:
    """The privilege model's roles as the operator's declarative managed roles.

    Every attribute is explicit, so the operator reverts any change made in the database;
    passwords come from each role's credentials Secret. A role dropped from this list is
    left in the database as it is (the operator ignores roles it does not manage)."""
    member_of: dict[str, list[str]] = {}
    for membership in model.memberships:
        member_of.setdefault(membership.member, []).append(membership.role)
    return [
        {
            "name": role.name,
            "ensure": "present",
            "login": True,
            "superuser": False,
            "createdb": False,
            "createrole": False,
            "replication": False,
            "bypassrls": False,
            "inherit": True,
            "connectionLimit": -1,
            "inRoles": sorted(member_of.get(role.name, [])),
            "passwordSecret": {"name": credentials_secret_name(model.database, role.purpose)},
        }
        for role in model.roles
    ]


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


def client_label(cnpg: CnpgSettings) -> dict[str, str]:
    """The label a pod needs to reach the instances through the NetworkPolicy below."""
    return {f"{cnpg.cluster_name}-client": "true"}


def network_policy(cnpg: CnpgSettings, namespace: str) -> dict[str, Any]:
    """Ingress to the instances from exactly what must reach them: the other instances
    (replication), pods with the client label (the Flyway Job, applications) and the
    operator in its namespace (status and management)."""
    instances = {"matchLabels": {"cnpg.io/cluster": cnpg.cluster_name}}
    clients = {"matchLabels": client_label(cnpg)}
    postgres, status = {"protocol": "TCP", "port": PORT}, {"protocol": "TCP", "port": STATUS_PORT}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{cnpg.cluster_name}-ingress", "namespace": namespace},
        "spec": {
            "podSelector": instances,
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": instances}], "ports": [postgres, status]},
                {
                    "from": [{"podSelector": clients}],
                    "ports": [postgres],
                },
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {
                                    "kubernetes.io/metadata.name": cnpg.operator_namespace
                                }
                            },
                            "podSelector": {
                                "matchLabels": {"app.kubernetes.io/name": OPERATOR_NAME}
                            },
                        }
                    ],
                    "ports": [postgres, status],
                },
            ],
        },
    }
