"""A backup for every Flyway attempt, for real: the backup Job's script and the init container
the program declares in Flyway's own pod, run with their declared environments against a
real PostgreSQL. The first attempt after the backup Job uses its dump; a retry (a failed run
tried again, by the Job or by the next `up`) takes a new one, and the old one is kept."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from components.jobs.backup_spec import BACKUP_PATH
from tests.contract import test_backup
from tests.contract.harness import DumpJob
from tests.contract.test_backup import Deployed, dumps

pytestmark = pytest.mark.contract
deployed = test_backup.deployed
"""The backup's contract fixture: the database as deployed, and its backup Job."""


def attempt_container(d: Deployed) -> DumpJob:
    """The init container of the declared Flyway Job: what runs before each attempt."""
    [job] = [r for r in d.run.of_type("kubernetes:batch/v1:Job") if r.name == "tradestream-job"]
    pod: dict[str, Any] = job.inputs["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert mounts["backups"] == BACKUP_PATH
    claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
    assert claims["backups"] is not None
    assert init["securityContext"] == pod["containers"][0]["securityContext"]
    return DumpJob(list(init["command"]), list(init["env"]))


def test_a_retry_takes_a_new_backup_and_keeps_the_old_one(deployed: Deployed) -> None:
    d = deployed
    attempt = attempt_container(d)
    job = d.dump.run(d.server, d.prepared, d.backups)
    assert job.returncode == 0, job.stdout + job.stderr
    [first] = dumps(d.backups)

    # The first attempt after the backup Job: its dump is this attempt's, nothing new.
    one = attempt.run(d.server, d.prepared, d.backups)
    assert one.returncode == 0, one.stdout + one.stderr
    assert f"the first since {d.backups}/{first} was taken" in one.stdout, one.stdout
    assert dumps(d.backups) == [first]

    # Flyway failed; the applications kept writing; the retry backs up again.
    with d.server.connect(d.prepared.database) as conn:
        conn.execute(f"SET ROLE {d.prepared.login}")
        conn.execute("CREATE TABLE written_after_the_first_dump (id int)")
    two = attempt.run(d.server, d.prepared, d.backups)
    assert two.returncode == 0, two.stdout + two.stderr
    assert "an earlier Flyway attempt used the last dump; taking a new one" in two.stdout
    now = dumps(d.backups)
    assert len(now) == 2, now
    assert first in now
    [second] = [name for name in now if name != first]
    assert f"backup: wrote {d.backups}/{second}" in two.stdout
    listed = subprocess.run(
        [str(d.server.bindir / "pg_restore"), "--list", str(d.backups / second)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "written_after_the_first_dump" in listed.stdout


def test_a_failed_attempt_backup_fails_the_attempt(deployed: Deployed) -> None:
    d = deployed
    attempt = attempt_container(d)
    proc = attempt.run(d.server, d.prepared, d.backups, password="not-the-password")
    assert proc.returncode != 0
    assert dumps(d.backups) == []
