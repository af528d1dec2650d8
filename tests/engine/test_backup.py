"""The backup before every migration, on the real engine and a real cluster API: it runs
first, writes a dump that pg_restore reads to the claim's volume, runs only when Flyway
does, and when it fails the migration does not start."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.migrations import next_version
from deploy.hints import hints
from standins.cluster.api import Client
from tests.engine.conftest import Deployment, NewDeployment, migration_set

pytestmark = pytest.mark.engine

# A table the migrator may not read: created by someone else, as a DBA might.
BLOCKER = "e2e_backup_dba_table"
ADDED = "e2e_backup_orders"


def dumps(kube: Client, deployment: Deployment, claim: str) -> list[Path]:
    """The dumps on the volume bound to the claim (the local node keeps it on disk)."""
    pvc = kube.get(f"/api/v1/namespaces/{deployment.namespace}/persistentvolumeclaims/{claim}")
    pv = kube.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
    return sorted(Path(pv["spec"]["hostPath"]["path"]).glob(f"{deployment.database}-*.dump"))


def restore_list(deployment: Deployment, dump: Path) -> str:
    listed = subprocess.run(
        [str(deployment.server.bindir / "pg_restore"), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def job(kube: Client, deployment: Deployment, name: str) -> Any:
    return kube.get(f"/apis/batch/v1/namespaces/{deployment.namespace}/jobs/{name}")


def test_the_backup_runs_before_each_migration_and_its_failure_stops_it(
    new_deployment: NewDeployment, kube: Client
) -> None:
    deployment = new_deployment()
    output, result = deployment.up()
    assert result is not None, output
    backup_name = result.outputs["backupName"].value
    flyway_name = result.outputs["migrationJobName"].value
    backup, flyway = job(kube, deployment, backup_name), job(kube, deployment, flyway_name)
    assert backup["status"]["succeeded"] == 1
    # Flyway's Job was created only once the backup had completed.
    assert backup["status"]["completionTime"] <= flyway["metadata"]["creationTimestamp"]
    assert f"--- Backup: job {deployment.namespace}/{backup_name} ---" in output
    claim = result.outputs["backupVolumeClaim"].value
    [first] = dumps(kube, deployment, claim)
    # Taken before the first migration: the database as the DBA handed it over.
    assert f"dbname: {deployment.database}" in restore_list(deployment, first)
    assert "flyway_schema_history" not in restore_list(deployment, first)

    # Nothing to migrate: no backup either.
    deployment.preview(expect_no_changes=True)

    # A new migration while the backup cannot read a table: the preview shows the backup
    # before Flyway, `up` fails at the backup, and the migration is not applied.
    deployment.query(f"CREATE TABLE {BLOCKER} (id int)")
    history = deployment.history()
    version = next_version(migration_set(deployment.migrations))
    (deployment.migrations / f"V{version}__add_orders.sql").write_text(
        f"CREATE TABLE {ADDED} (id bigint PRIMARY KEY);\n", encoding="utf-8"
    )
    text, _ = deployment.preview()
    dump_step, flyway_step = text.find("::tradestream-dump]"), text.find("::tradestream-job]")
    assert 0 <= dump_step < flyway_step, text
    output, result = deployment.up()
    assert result is None
    assert f"permission denied for table {BLOCKER}" in output
    assert any("The backup before the migration could not read" in h for h in hints(output))
    assert deployment.history() == history
    assert ADDED not in deployment.tables()
    assert job(kube, deployment, flyway_name)["metadata"]["name"] == flyway_name
    assert dumps(kube, deployment, claim) == [first], "a failed backup leaves no dump"

    # The fix the hint gives; the next `up` backs up, then migrates.
    deployment.query(f"ALTER TABLE {BLOCKER} OWNER TO {deployment.database}_migrator")
    output, result = deployment.up()
    assert result is not None, output
    assert ADDED in deployment.tables()
    second = dumps(kube, deployment, claim)[-1]
    assert second != first
    # Taken before this migration: what the first deploy migrated, and not yet the new table.
    contents = restore_list(deployment, second)
    assert "flyway_schema_history" in contents
    assert ADDED not in contents
