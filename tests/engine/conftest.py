"""The program on the real Pulumi engine and the tests' own local cluster: a real API server
and controllers, and a real node (kubelet, containerd, runc) running the Jobs in containers
of the images the local stack names, against a PostgreSQL in the cluster.

The session's server (in the cluster, like the local stack's) gets one database and set of
roles per deployment, made as a DBA would (the local stack's `provision`); each deployment
has its own workspace, state, namespace and migrations folder, so tests never touch the
committed stack file or the developer's own local stack.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from components.migrations import MigrationSet, scan_directory
from deploy.engine import ROOT, Backend, Engine, EngineError, find_engine, open_stack
from deploy.engine import prepare_workspace as prepare
from deploy.joblogs import flyway_log
from deploy.target import Target
from standins import localstack as local
from standins.cluster.api import Client
from standins.cluster.layout import Layout
from standins.clusterdb import ClusterPostgres, Location
from tests.engine.checkout import Checkout, make_checkout

pytestmark = pytest.mark.engine

MIGRATIONS = ROOT / "database" / "migrations"


@pytest.fixture(scope="session")
def engine() -> Engine:
    try:
        found = find_engine(local_provider=True)
    except EngineError as error:
        pytest.fail(f"{error} (or: make up STACK=local, which installs everything)")
    if found.provider_note:
        _NOTES.append(found.provider_note)
    return found


_NOTES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say, at the end of every run, which engine parts the end-to-end tests used."""
    for note in _NOTES:
        terminalreporter.write_line(f"engine tests: {note}")


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: Path) -> Path:
    """The tests' own cluster, never the one `make up STACK=local` runs."""
    return Layout(local_cluster).kubeconfig


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> Client:
    return Client.from_kubeconfig(kubeconfig)


SERVER = Location("postgres", "e2e-database")


@pytest.fixture(scope="session")
def server(local_cluster: Path, kube: Client) -> ClusterPostgres:
    """A PostgreSQL in the cluster, from the image the local stack names; each deployment
    gets its own database and roles on it."""
    found = ClusterPostgres(
        Layout(local_cluster), kube, SERVER, local.stack_settings().backup.image
    )
    found.start()
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 300.0) -> None:
    """Wait for an event; the timeout only stops a hang, it is never what a test measures."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.2)


CRD_API = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crd(kube: Client, module: str, version: str, path: str) -> dict[str, Any]:
    """A CRD from a project's Go module at `version`, served by the API server; returns it."""
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@v{version}"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
    assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr
    crd: dict[str, Any] = yaml.safe_load(
        (Path(json.loads(downloaded.stdout)["Dir"]) / path).read_text()
    )
    name = crd["metadata"]["name"]
    if kube.get_or_none(f"{CRD_API}/{name}") is None:
        kube.post(CRD_API, crd)
    wait_until(
        lambda: any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (kube.get(f"{CRD_API}/{name}").get("status") or {}).get("conditions") or []
        ),
        f"CRD {name} established",
    )
    return crd


def migration_set(directory: Path) -> MigrationSet:
    """What a migrations directory holds, as Flyway lists it, whatever the lint would say of
    it (an adopted history's file of comments alone, a migration a test broke on purpose)."""
    return MigrationSet(scan_directory(directory)[0])


def copy_migrations(target: Path) -> Path:
    shutil.copytree(MIGRATIONS, target)
    return target


@dataclass
class Deployment:
    """One stack of the program in its own workspace, namespace and migrations folder."""

    target: Target
    migrations: Path
    namespace: str
    server: ClusterPostgres
    database: str
    migrator_password: str
    transcript: list[str] = field(default_factory=list)

    @property
    def stack(self) -> auto.Stack:
        return self.target.stack

    def _printer(self) -> tuple[list[str], Callable[[str], None]]:
        """Lines of one operation, also kept in the transcript of everything printed."""
        lines: list[str] = []

        def keep(line: str) -> None:
            lines.append(line)
            self.transcript.append(line)

        return lines, keep

    def preview(self, **options: Any) -> tuple[str, auto.PreviewResult]:
        lines, keep = self._printer()
        result = self.stack.preview(on_output=keep, diff=True, color="never", **options)
        return "\n".join(lines), result

    def up(self) -> tuple[str, auto.UpResult | None]:
        """`up`; the output (with Flyway's log appended), and the result or None on failure."""
        lines, keep = self._printer()
        result: auto.UpResult | None
        try:
            result = self.stack.up(on_output=keep, color="never")
        except auto.errors.CommandError as error:
            keep(str(error))
            result = None
        keep(flyway_log(self.target) or "")
        return "\n".join(lines), result

    def refresh(self) -> str:
        lines, keep = self._printer()
        self.stack.refresh(on_output=keep, color="never")
        return "\n".join(lines)

    def destroy(self) -> str:
        lines, keep = self._printer()
        self.stack.destroy(on_output=keep, color="never")
        return "\n".join(lines)

    def history(self) -> list[tuple[Any, ...]]:
        exists = self.query("SELECT to_regclass('public.flyway_schema_history') IS NOT NULL")
        if not exists[0][0]:
            return []
        return self.query(
            "SELECT version, script, installed_by, success FROM flyway_schema_history"
            " WHERE version IS NOT NULL ORDER BY installed_rank"
        )

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        return self.server.query(statement, dbname=self.database)

    def tables(self) -> set[str]:
        rows = self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {str(row[0]) for row in rows}


NewDeployment = Callable[..., Deployment]
_COUNTER = itertools.count()


@pytest.fixture
def new_deployment(
    engine: Engine,
    kubeconfig: Path,
    server: ClusterPostgres,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[NewDeployment]:
    """Builds deployments; destroys what they left in the cluster at the end."""
    made: list[Deployment] = []

    def build(**config: str) -> Deployment:
        index = next(_COUNTER)
        name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
        namespace = f"e2e-{index}-{name}"[:63].strip("-")
        database = f"e2e_{index}"
        migrator_password = local.provision(server, database, tmp_path / f"dba-{index}")
        migrations = copy_migrations(tmp_path / f"migrations-{index}")
        workspace = prepare(
            tmp_path / f"workspace-{index}",
            local.STACK,
            {
                "namespace": namespace,
                "databaseAccessHost": server.location.host,
                "databaseAccessPort": str(server.location.port),
                "databaseName": database,
                "migrationsDir": str(migrations),
                **config,
            },
        )
        backend = Backend.local_folder(tmp_path / f"state-{index}", local.STACK)
        stack = open_stack(local.STACK, workspace, backend, engine, kubeconfig=kubeconfig)
        stack.set_config("migratorPassword", auto.ConfigValue(migrator_password, secret=True))
        deployment = Deployment(
            Target(local.STACK, stack, is_local=True, kubeconfig=kubeconfig),
            migrations,
            namespace,
            server,
            database,
            migrator_password,
        )
        made.append(deployment)
        return deployment

    yield build
    for deployment in made:
        with contextlib.suppress(auto.errors.CommandError):
            deployment.stack.destroy(color="never")


@pytest.fixture(scope="module")
def checkout(kube: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkout]:
    """A copy of the repository on the tests' cluster with a local stack of its own."""
    yield from make_checkout(kube, tmp_path_factory)
