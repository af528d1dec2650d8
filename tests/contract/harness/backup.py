"""The backup Job the program declares before every migration (pg_dump), run for real."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.jobs.backup_spec import BACKUP_PATH
from standins.postgres import PostgresServer
from tests.contract.harness.model import PreparedDatabase
from tests.program import ProgramRun


@dataclass
class DumpJob:
    """The declared backup Job: its script and environment, with the cluster parts replaced."""

    command: list[str]
    env: list[dict[str, Any]]

    @classmethod
    def of(cls, run: ProgramRun) -> DumpJob:
        [job] = [r for r in run.of_type("kubernetes:batch/v1:Job") if r.name == "tradestream-dump"]
        [container] = job.inputs["spec"]["template"]["spec"]["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["backups"] == BACKUP_PATH
        return cls(list(container["command"]), list(container["env"]))

    def value(self, name: str) -> str:
        return next(str(e["value"]) for e in self.env if e["name"] == name)

    def run(
        self,
        server: PostgresServer,
        prepared: PreparedDatabase,
        directory: Path,
        *,
        password: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{server.bindir}:/usr/bin:/bin", "LANG": "C.UTF-8"}
        for entry in self.env:
            name = entry["name"]
            if name == "PGPASSWORD":
                assert "secretKeyRef" in entry["valueFrom"], "the password must come from a Secret"
                env[name] = (
                    prepared.passwords[self.value("PGUSER")] if password is None else password
                )
            elif name == "PGHOST":
                env[name] = server.host
            elif name == "PGPORT":
                env[name] = str(server.port)
            elif name == "PGSSLMODE":
                env[name] = "disable"  # the local server has no certificate
            elif name == "BACKUP_DIR":
                env[name] = str(directory)
            elif name == "HOME":
                env[name] = tempfile.mkdtemp(prefix="backup-home-", dir=directory.parent)
            else:
                env[name] = str(entry["value"])
        assert self.command[:2] == ["sh", "-c"], self.command
        return subprocess.run(
            self.command, env=env, capture_output=True, text=True, timeout=300, check=False
        )
