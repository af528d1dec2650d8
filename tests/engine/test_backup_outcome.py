"""A CloudNativePG `Backup` that fails stops `pulumi up` at once, with the operator's error, and
Flyway's Job is never created: the program's Backup and Flyway Job on the real engine and
provider, against the real `Backup` CRD on a real API server. No operator runs here, so the
test writes the Backup's status as the operator would (phase `failed`, its error). Were the
provider's `waitFor` not to match `failed`, `up` would wait for the backup's timeout and
end with the provider's timeout message instead of the program's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pulumi import automation as auto

import deploy.engine
from components.contract import DatabaseEndpoint, ServerAddress
from components.database.cloudnative_pg_spec import backup_target
from components.inputs import Inputs
from components.jobs import flyway
from components.jobs.backup import MigrationBackup, MigrationBackupArgs
from components.jobs.migration import MigrationJob, MigrationJobArgs
from components.migrations.lock import load_released_set
from components.migrations.packing import pack
from components.settings import BackupSettings, FlywaySettings
from deploy.engine import ROOT, Backend, Engine, open_stack
from deploy.engine import prepare_workspace as prepare
from standins import localstack as local
from standins.cluster.api import Client
from tests.engine.conftest import install_crd
from tests.engine.test_cloudnative_pg_crd import OPERATOR_MODULE, pinned_operator

pytestmark = pytest.mark.engine

NAMESPACE = "e2e-backup-outcome"
BACKUPS = f"/apis/postgresql.cnpg.io/v1/namespaces/{NAMESPACE}/backups"
ENDPOINT = DatabaseEndpoint(
    address=ServerAddress("tradestream-pg-rw", 5432, "tradestream"),
    username="tradestream_owner",
    secret_name="tradestream-pg-app",
    password_key="password",
)


OPERATOR = """
import sys, time
from pathlib import Path
from standins.cluster.api import ApiError, Client
kube, backups = Client.from_kubeconfig(Path(sys.argv[1])), sys.argv[2]
deadline = time.monotonic() + 300
while True:
    try:  # a CRD just installed answers 404, then 429 while its storage starts
        items = kube.get(backups).get("items") or []
    except ApiError:
        items = []
    if items:
        break
    if time.monotonic() > deadline:
        sys.exit("no Backup was created")
    time.sleep(0.2)
name = items[0]["metadata"]["name"]
kube.patch(
    f"{backups}/{name}/status",
    {"status": {"phase": "failed", "error": "can't upload WAL: AccessDenied"}},
    content_type="application/merge-patch+json",
)
print("failed the Backup", name)
"""
"""Records the first Backup `failed` with an error, as the operator would; prints its name."""


def the_program(migrations: Path) -> None:
    """The program's own backup and Flyway Job, as `__main__` wires them for CloudNativePG."""
    found = load_released_set(migrations, out_of_order=False)
    plan = flyway.plan(
        FlywaySettings(), ENDPOINT, Inputs(found, pack(found)), pod_labels={}, callbacks={}
    )
    # Short, so that a wait that missed `failed` ends (with the provider's message) soon.
    settings = BackupSettings(timeout_seconds=120)
    backup = MigrationBackup(
        "outcome",
        MigrationBackupArgs(
            settings=settings,
            plan=plan,
            target=backup_target(settings, "tradestream-pg"),
            namespace=NAMESPACE,
            after=(),
            protect_volume=False,
        ),
    )
    MigrationJob("outcome", MigrationJobArgs(namespace=NAMESPACE, plan=plan, after=[backup.step]))


def test_a_failed_backup_stops_up_at_once_and_flyway_never_starts(
    engine: Engine,
    kubeconfig: Path,
    kube: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_crd(
        kube, OPERATOR_MODULE, pinned_operator(), "config/crd/bases/postgresql.cnpg.io_backups.yaml"
    )
    if kube.get_or_none(f"/api/v1/namespaces/{NAMESPACE}") is None:
        kube.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "V1__a.sql").write_text("CREATE TABLE a (id int);\n", encoding="utf-8")
    monkeypatch.setattr(deploy.engine, "program", lambda: the_program(migrations))
    stack = open_stack(
        local.STACK,
        prepare(tmp_path / "workspace", local.STACK),
        Backend.local_folder(tmp_path / "state", local.STACK),
        engine,
        kubeconfig=kubeconfig,
    )
    printed: list[str] = []
    # The operator's part, in a process of its own beside the engine.
    operator = subprocess.Popen(
        [sys.executable, "-c", OPERATOR, str(kubeconfig), BACKUPS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with pytest.raises(auto.errors.CommandError) as failed:
            stack.up(on_output=printed.append, color="never")
    finally:
        acted, _ = operator.communicate(timeout=600)
    assert operator.returncode == 0, acted
    name = acted.strip().rsplit(" ", 1)[-1]
    said = str(failed.value) + "".join(printed)
    assert f"the Backup {NAMESPACE}/{name} before this migration ended in phase failed" in said, (
        said
    )
    assert "can't upload WAL: AccessDenied" in said
    assert "Flyway did not run" in said
    assert "timed out" not in said.lower()
    jobs = kube.get(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs")["items"]
    assert jobs == [], jobs
