"""The drift check's pods, made from the deployed migration Job's pod (pure).

Both run on the one mechanism for a pod outside the stack (`deploy.maintenance.run_pod`), as
exactly what migrations run as, from inside the cluster: Flyway's `info` and `validate` with
Flyway's image, login and migration files; the catalog query with the backup's PostgreSQL
client image and the same login, its libpq settings read from Flyway's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from components.contract import ServerAddress
from components.jobs import flyway
from components.jobs.libpq import libpq_environment
from components.jobs.pod import TMP_PATH

HISTORY_PURPOSE: Final = "drift-history"
SCHEMA_PURPOSE: Final = "drift-schema"
"""The maintenance label of each pod; the drift credential may create only Jobs of these."""
HISTORY_COMMAND: Final = (
    *flyway.flyway_command("info")[:-1],
    "-outputType=json",
    "info",
    "validate",
)
"""One JVM for both verbs; Flyway prints one JSON document with a result per verb."""
CATALOG_SQL: Final = (Path(__file__).with_name("catalog.sql")).read_text(encoding="utf-8")
SCHEMA_COMMAND: Final = ("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", CATALOG_SQL)
"""Unaligned, tuples only: the one JSON document the query returns, and nothing else."""
MIGRATIONS_VOLUME: Final = "migrations"
"""The Flyway pod's volume of migration files, which the catalog query does not read."""


class PodError(ValueError):
    """The deployed Job's pod is not one this check knows how to copy."""


def _container(job: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    if len(containers) != 1:
        raise PodError(f"the migration Job has {len(containers)} containers, not one")
    container: Mapping[str, Any] = containers[0]
    return container


def _env(job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(var["name"]): var for var in _container(job).get("env") or []}


def server_address(flyway_url: str) -> ServerAddress:
    """The address Flyway's JDBC URL names, with its sslmode, as libpq takes it."""
    if not flyway_url.startswith("jdbc:postgresql://"):
        raise PodError(f"FLYWAY_URL is not a PostgreSQL JDBC URL: {flyway_url}")
    parts = urlsplit(flyway_url.removeprefix("jdbc:"))
    query = parse_qs(parts.query)
    return ServerAddress(
        host=parts.hostname or "",
        port=parts.port or 5432,
        database=parts.path.lstrip("/"),
        ssl_mode=query.get("sslmode", [None])[0],
    )


def _root_certificate(flyway_url: str) -> str | None:
    return parse_qs(urlsplit(flyway_url.removeprefix("jdbc:")).query).get("sslrootcert", [None])[0]


def libpq_env(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """libpq's environment for Flyway's own login: its server, user, password (by reference
    to the same Secret key) and verification, the CA where Flyway's pod mounts it."""
    env = _env(job)
    try:
        url = str(env["FLYWAY_URL"]["value"])
        user = str(env["FLYWAY_USER"]["value"])
        password = env["FLYWAY_PASSWORD"]["valueFrom"]["secretKeyRef"]
    except KeyError as missing:
        raise PodError(f"the migration Job's container sets no {missing} as Flyway's") from None
    address = server_address(url)
    variables = libpq_environment(
        address,
        user=user,
        password_secret=str(password["name"]),
        password_key=str(password["key"]),
        tls_path=flyway.TLS_PATH,
        application="drift-check",
    )
    made = [var.to_k8s() for var in variables]
    root = _root_certificate(url)
    if root is not None:  # where Flyway's pod mounts the server's CA certificate
        made.append({"name": "PGSSLROOTCERT", "value": root})
    return [*made, {"name": "HOME", "value": TMP_PATH}]


def needs(job: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the pod reads: a pod whose ConfigMap or
    Secret is missing or changed by hand would wait or fail, so the check skips it then."""
    pod = job["spec"]["template"]["spec"]
    found: set[tuple[str, str]] = set()
    for volume in pod.get("volumes") or []:
        if "configMap" in volume:
            found.add(("ConfigMap", str(volume["configMap"]["name"])))
        if "secret" in volume:
            found.add(("Secret", str(volume["secret"]["secretName"])))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                found.add(("ConfigMap", str(source["configMap"]["name"])))
            if "secret" in source:
                found.add(("Secret", str(source["secret"]["name"])))
    for var in _container(job).get("env") or []:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if ref is not None:
            found.add(("Secret", str(ref["name"])))
    return found


def flyway_env(job: Mapping[str, Any]) -> dict[str, str | None]:
    """Flyway's settings as the deployed Job runs with them: a literal value each, None for
    one read from a Secret (the password, secret placeholders)."""
    return {
        name: (str(var["value"]) if "value" in var else None) for name, var in _env(job).items()
    }


def migration_sources(job: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(ConfigMap name, [(key, path)]) of the Job's volume of migration files, in order."""
    for volume in job["spec"]["template"]["spec"].get("volumes") or []:
        if volume["name"] == MIGRATIONS_VOLUME:
            return [
                (
                    str(source["configMap"]["name"]),
                    [
                        (str(i["key"]), str(i["path"]))
                        for i in source["configMap"].get("items") or []
                    ],
                )
                for source in volume["projected"]["sources"]
                if "configMap" in source
            ]
    raise PodError("the migration Job mounts no volume of migration files")


def command_line(command: Sequence[str]) -> str:
    """A command as a person reads it in the report (the catalog query elided)."""
    return " ".join("<catalog query>" if part == CATALOG_SQL else part for part in command)
