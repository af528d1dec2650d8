"""The Flyway Job run for real: its volume laid out as the kubelet would, its container's
command line, and the history it leaves."""

from __future__ import annotations

import base64
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode

from psycopg import sql

from components.jobs.flyway import TLS_PATH
from components.jobs.pod import CA_KEY
from standins.flyway_cli import DEFAULT_TIMEOUT, run_flyway
from standins.postgres import PostgresServer
from tests.contract.harness.model import (
    _JDBC_URL,
    ENTRYPOINT,
    JDBC_SSL_MODES,
    KUBELET_DATA_LINK,
    KUBELET_TIMESTAMP_DIR,
    LOCAL_SSL_MODE,
    DeclaredJob,
    HarnessError,
)

# -- the volume ---------------------------------------------------------------------------------


def volume_files(job: DeclaredJob) -> dict[str, tuple[bytes, int]]:
    """Every projected file (path -> (bytes, mode)), as the kubelet would resolve them."""
    files: dict[str, tuple[bytes, int]] = {}
    for source in job.sources:
        if source.config_map not in job.config_maps:
            raise HarnessError(f"the volume mounts ConfigMap {source.config_map}, not declared")
        content = job.config_maps[source.config_map]
        for key, path in source.items:
            if key in content.data:
                payload = content.data[key].encode("utf-8")
            elif key in content.binary_data:
                payload = base64.b64decode(content.binary_data[key], validate=True)
            else:
                raise HarnessError(f"ConfigMap {source.config_map} has no key {key!r}")
            if path in files:
                raise HarnessError(f"two sources project {path!r}")
            files[path] = (payload, source.modes.get(path, job.default_mode))
    return files


def lay_out_volume(job: DeclaredJob, root: Path) -> Path:
    """Write the projected volume under `root` exactly as the kubelet lays it out.

    `root/..<timestamp>/` holds the files at their item paths, `root/..data` links to it, and
    each top-level entry links into `..data/`. Returns `root`.
    """
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise HarnessError(f"{root} is not empty")
    payload_dir = root / KUBELET_TIMESTAMP_DIR
    payload_dir.mkdir()
    top_level: set[str] = set()
    for path, (content, mode) in volume_files(job).items():
        parts = PurePosixPath(path).parts
        if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
            raise HarnessError(f"item path {path!r} leaves the volume")
        target = payload_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
        top_level.add(parts[0])
    (root / KUBELET_DATA_LINK).symlink_to(KUBELET_TIMESTAMP_DIR)
    for name in sorted(top_level):
        (root / name).symlink_to(f"{KUBELET_DATA_LINK}/{name}")
    return root


# -- the container ------------------------------------------------------------------------------


def _rewrite_url(url: str, server: PostgresServer, database: str) -> str:
    """The local host and port in place of the Service's; the same database; sslmode disabled.

    Only `sslmode` (and `sslrootcert` at the Job's CA mount) may appear in the query: anything
    else would be a setting the local run silently ignores or misapplies.
    """
    match = _JDBC_URL.match(url)
    if match is None:
        raise HarnessError(f"FLYWAY_URL {url!r} is not a jdbc:postgresql://host/database URL")
    if match.group("database") != database:
        raise HarnessError(f"FLYWAY_URL {url!r} is not the declared database {database!r}")
    query = ""
    if match.group("query") is not None:
        params = dict(parse_qsl(match.group("query"), keep_blank_values=True, strict_parsing=True))
        # The server's CA, where the Job mounts it; the local server serves no TLS.
        root_cert = params.pop("sslrootcert", f"{TLS_PATH}/{CA_KEY}")
        if (
            list(params) != ["sslmode"]
            or params["sslmode"] not in JDBC_SSL_MODES
            or root_cert != f"{TLS_PATH}/{CA_KEY}"
        ):
            raise HarnessError(f"FLYWAY_URL {url!r}: only sslmode and sslrootcert are expected")
        query = "?" + urlencode({"sslmode": LOCAL_SSL_MODE})
    return f"jdbc:postgresql://{server.host}:{server.port}/{database}{query}"


def _rewrite_locations(locations: str, mount_path: str, mount_root: Path) -> str:
    rewritten: list[str] = []
    for location in locations.split(","):
        prefix, _, path = location.strip().rpartition(":")
        inside = PurePosixPath(path)
        if prefix != "filesystem" or not inside.is_relative_to(mount_path):
            raise HarnessError(f"location {location!r} is not inside the volume at {mount_path}")
        local = mount_root.joinpath(*inside.relative_to(mount_path).parts)
        rewritten.append(f"filesystem:{local}")
    return ",".join(rewritten)


def _rewrite_scratch(value: str, job: DeclaredJob, scratch: Path) -> str:
    for mount in job.scratch_paths:
        if PurePosixPath(value).is_relative_to(mount):
            return str(scratch.joinpath(*PurePosixPath(value).relative_to(mount).parts))
    raise HarnessError(f"{value!r} is not inside an emptyDir of the pod")


def job_environment(
    job: DeclaredJob, server: PostgresServer, mount_root: Path, password: str, scratch: Path
) -> dict[str, str]:
    """The container's environment with only the cluster-specific parts substituted.

    FLYWAY_URL gets the local host and port (same database, sslmode `disable` where one is
    declared), FLYWAY_PASSWORD the login's local password in place of its secretKeyRef,
    FLYWAY_LOCATIONS the laid-out volume in place of the mount path, HOME the scratch directory
    in place of the emptyDir. Any other entry is passed on unchanged; one that is not a literal
    value stops the harness, and so does a FLYWAY_USER that is not the declared login.
    """
    env: dict[str, str] = {}
    if job.env_value("FLYWAY_USER") != job.setup.login:
        raise HarnessError(
            f"the Job logs in as {job.env_value('FLYWAY_USER')}, but the declared "
            f"{job.setup.flavor.value} database provides {job.setup.login}"
        )
    for entry in job.env:
        name = entry["name"]
        if name == "FLYWAY_PASSWORD":
            if "secretKeyRef" not in entry.get("valueFrom", {}):
                raise HarnessError("FLYWAY_PASSWORD is expected to come from a secretKeyRef")
            env[name] = password
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["secretKeyRef"]
            if (ref["name"], ref["key"]) not in job.secret_values:
                raise HarnessError(f"env var {name} reads {ref}, which no declared Secret holds")
            env[name] = job.secret_values[(ref["name"], ref["key"])]
        elif "value" not in entry:
            raise HarnessError(f"env var {name} has no literal value: {entry}")
        elif name == "FLYWAY_URL":
            env[name] = _rewrite_url(str(entry["value"]), server, job.database)
        elif name == "FLYWAY_LOCATIONS":
            env[name] = _rewrite_locations(str(entry["value"]), job.mount_path, mount_root)
        elif name == "HOME":
            env[name] = _rewrite_scratch(str(entry["value"]), job, scratch)
        else:
            env[name] = str(entry["value"])
    return env


def flyway_arguments(job: DeclaredJob) -> list[str]:
    """Flyway's arguments: the container command after the image's `flyway` entrypoint."""
    if not job.command or job.command[0] != ENTRYPOINT:
        raise HarnessError(f"the container command {job.command} does not start with flyway")
    return list(job.command[1:])


def run_job(
    job: DeclaredJob,
    server: PostgresServer,
    mount_root: Path,
    *,
    password: str,
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run Flyway's command line of the image's version with the container's command and env.

    Raises FlywayNotInstalledError (with the fetch command) when that version's jars are
    missing, FlywayTimeoutError when Flyway runs longer than `timeout` seconds.
    """
    with tempfile.TemporaryDirectory(prefix="flyway-pod-tmp-") as scratch:
        env = job_environment(job, server, mount_root, password, Path(scratch))
        return run_flyway(
            job.flyway_version, flyway_arguments(job), env, timeout=timeout, on_line=on_line
        )


# -- reading the outcome ------------------------------------------------------------------------

HISTORY_COLUMNS = (
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
    "installed_by",
    "installed_on",
    "success",
)


def schema_history(server: PostgresServer, database: str) -> list[dict[str, Any]] | None:
    """flyway_schema_history in installed order, or None when the table does not exist."""
    [(exists,)] = server.query(
        "SELECT to_regclass('public.flyway_schema_history') IS NOT NULL", dbname=database
    )
    if not exists:
        return None
    rows = server.query(
        sql.SQL("SELECT {} FROM public.flyway_schema_history ORDER BY installed_rank").format(
            sql.SQL(", ").join(map(sql.Identifier, HISTORY_COLUMNS))
        ),
        dbname=database,
    )
    return [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in rows]


def format_history(history: Sequence[Mapping[str, Any]] | None) -> str:
    """A plain-text table of the history rows, for people reading a harness run."""
    if history is None:
        return "(no flyway_schema_history table)"
    columns = ("installed_rank", "version", "description", "type", "script", "checksum", "success")
    cells = [["" if row[c] is None else str(row[c]) for c in columns] for row in history]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    rows = [list(columns), *cells]
    lines = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
