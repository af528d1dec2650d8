"""A PostgreSQL server inside the local cluster, where the local stack's database lives.

It stands for a managed database whose host the stack is given: a StatefulSet of the
PostgreSQL image built here, its data on a volume of the node, a Service in front whose DNS
name (`<service>.<namespace>.svc.cluster.local`) is the stack's `databaseAccessHost`, and
a superuser whose password only the set-up knows (kept in a Secret of the server's
namespace). The set-up reaches it from the host through a forwarded port, as a DBA
reaches a managed database, to create the database and the roles.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql

from standins.cluster import forward, procs
from standins.cluster.api import ApiError, Client, Obj
from standins.cluster.layout import CLUSTER_DOMAIN, Layout

SUPERUSER: Final = "postgres"
PASSWORD_KEY: Final = "POSTGRES_PASSWORD"  # noqa: S105 (a key name)
RUN_AS: Final = 999
"""The image's postgres user."""
READY_TIMEOUT: Final = 600.0
Row = tuple[Any, ...]


class ClusterDatabaseError(RuntimeError):
    """The server could not be deployed or reached; the message says why."""


@dataclass(frozen=True)
class Location:
    """Where the server answers in the cluster: its Service and namespace."""

    service: str
    namespace: str
    port: int = 5432

    @classmethod
    def from_host(cls, host: str, port: int = 5432) -> Location:
        """From a Service DNS name; a clear error for anything else."""
        parts = host.split(".")
        if len(parts) < 2 or (len(parts) > 2 and parts[2] != "svc"):
            raise ClusterDatabaseError(
                f"databaseAccessHost {host!r} is not a Service of the local cluster: the local "
                f"stack's server runs there, at <service>.<namespace>.svc.{CLUSTER_DOMAIN}"
            )
        return cls(parts[0], parts[1], port)

    @property
    def host(self) -> str:
        return f"{self.service}.{self.namespace}.svc.{CLUSTER_DOMAIN}"


def objects(location: Location, image: str, password: str) -> list[tuple[str, Obj]]:
    """(collection, object) for the server, in creation order (pure)."""
    name, ns = location.service, location.namespace
    labels = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": name}
    core, apps = f"/api/v1/namespaces/{ns}", f"/apis/apps/v1/namespaces/{ns}"
    container = {
        "name": "postgres",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {
                "name": PASSWORD_KEY,
                "valueFrom": {"secretKeyRef": {"name": name, "key": PASSWORD_KEY}},
            },
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "ports": [{"name": "postgres", "containerPort": 5432}],
        "readinessProbe": {
            "exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", SUPERUSER]},
            "periodSeconds": 2,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (an emptyDir in the pod)
        ],
    }
    pod = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            # Only when the volume's root does not match yet: changing the group on every
            # start would widen PGDATA's mode, which PostgreSQL refuses.
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
    }
    return [
        ("/api/v1/namespaces", {"metadata": {"name": ns}}),
        (
            f"{core}/secrets",
            {"metadata": {"name": name}, "type": "Opaque", "stringData": {PASSWORD_KEY: password}},
        ),
        (
            f"{core}/services",
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "selector": labels,
                    "ports": [{"name": "postgres", "port": location.port, "targetPort": 5432}],
                },
            },
        ),
        (
            f"{apps}/statefulsets",
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "serviceName": name,
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "1Gi"}},
                            },
                        }
                    ],
                },
            },
        ),
    ]


class ClusterPostgres:
    """The server at `location` in the cluster of `layout`; `start()` deploys it (once) and
    waits until it accepts connections, which then go through a forwarded port."""

    host = "127.0.0.1"

    def __init__(self, layout: Layout, api: Client, location: Location, image: str) -> None:
        self.layout = layout
        self.api = api
        self.location = location
        self.image = image
        self.superuser = SUPERUSER
        self.password = ""
        self.port = 0
        """The forwarded port on the host's loopback."""

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        loc = self.location
        secret_path = f"/api/v1/namespaces/{loc.namespace}/secrets/{loc.service}"
        try:
            for collection, obj in objects(loc, self.image, secrets.token_urlsafe(24)):
                self.api.create_if_missing(collection, obj)
            self.password = _secret_value(self.api.get(secret_path), PASSWORD_KEY)
            self._wait_ready(timeout)
            service = self.api.get(f"/api/v1/namespaces/{loc.namespace}/services/{loc.service}")
        except ApiError as error:
            raise ClusterDatabaseError(f"deploying PostgreSQL at {loc.host}: {error}") from error
        holder = procs.running(self.layout.pid_file("holder"))
        if holder is None:
            raise ClusterDatabaseError("the local cluster is not running")
        target = f"{service['spec']['clusterIP']}:{loc.port}"
        self.port = forward.start(
            self.layout, holder.pid, f"postgres-{loc.namespace}-{loc.service}", target
        ).port
        self._wait_connectable(timeout)

    def _wait_ready(self, timeout: float) -> None:
        loc = self.location
        path = f"/apis/apps/v1/namespaces/{loc.namespace}/statefulsets/{loc.service}"
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while (self.api.get(path).get("status") or {}).get("readyReplicas", 0) < 1:
            if time.monotonic() > deadline:
                raise ClusterDatabaseError(
                    f"PostgreSQL at {loc.host} not ready after {timeout:.0f} s; "
                    f"see its pod: {self._pod_state()}"
                )
            pause.wait(0.5)

    def _wait_connectable(self, timeout: float) -> None:
        """Ready as the pod sees it; the Service's rules may take a moment more."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect(connect_timeout=5):
                    return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise ClusterDatabaseError(f"PostgreSQL unreachable: {error}") from error
                time.sleep(0.5)

    def _pod_state(self) -> str:
        loc = self.location
        pod = self.api.get_or_none(f"/api/v1/namespaces/{loc.namespace}/pods/{loc.service}-0")
        if pod is None:
            return "no pod yet"
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        return "; ".join(str(s.get("state")) for s in statuses) or str(pod.get("status"))

    def connect(
        self,
        dbname: str = "postgres",
        *,
        user: str | None = None,
        password: str | None = None,
        connect_timeout: int = 10,
    ) -> psycopg.Connection[Row]:
        """An autocommit connection, as the superuser unless `user` and `password` are given."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=user or self.superuser,
            password=password if user else self.password,
            connect_timeout=connect_timeout,
            autocommit=True,
        )

    def jdbc_url(self, dbname: str = "postgres") -> str:
        """Through the forwarded port, for a Flyway command line on the host."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{dbname}"

    def query(
        self,
        statement: str | sql.SQL | sql.Composed,
        params: tuple[Any, ...] | dict[str, Any] | None = None,
        *,
        dbname: str = "postgres",
    ) -> list[Row]:
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description is not None else []


def _secret_value(secret: Obj, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()
