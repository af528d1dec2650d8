"""A copy of the repository as a user has it, to run the README's commands as a black box
on the local stack: the tests' own cluster (LOCALCLUSTER_STATE, inherited), and a local
stack of its own (state, namespace, database server in that cluster), so a user's running
local stack is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from deploy.engine import ROOT
from standins import localstack
from standins.cluster.api import Client

LOCAL = "stacks/Pulumi.local.yaml"
PREFIX = "tradestream-database:"


def _tracked(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [p for p in listed.split("\0") if p and (root / p).is_file()]


@dataclass
class Checkout:
    """A copy of the repository as a user has it, with the local stack's state its own."""

    root: Path
    env: dict[str, str]
    stack_file: dict[str, object]
    stack: str = "local"

    def set(self, **config: object) -> None:
        """Write the stack file as `stack_file` with these keys set (None removes one), as a
        user would edit it; `set()` writes it back as it was."""
        values = dict(self.stack_file["config"])  # type: ignore[call-overload]
        for key, value in config.items():
            if value is None:
                values.pop(PREFIX + key, None)
            else:
                values[PREFIX + key] = value
        path = self.root / f"stacks/Pulumi.{self.stack}.yaml"
        path.write_text(yaml.safe_dump({"config": values}), encoding="utf-8")

    def write(self, relative: str, content: bytes | str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    def make(self, *args: str) -> tuple[int, str]:
        """The README's command, as typed in the checkout: exit code and what it printed."""
        return self.run("make", "--no-print-directory", *args)

    def run(self, *command: str) -> tuple[int, str]:
        """A command typed in the checkout: exit code and what it printed."""
        proc = subprocess.run(
            list(command),
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=1800,
        )
        return proc.returncode, proc.stdout


def copy_repository(root: Path) -> None:
    """The repository copied file by file (timestamps kept, so `make deps` has nothing to do)."""
    for relative in _tracked(ROOT):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, root / relative)
    for shared in (".venv", ".cache"):
        if (ROOT / shared).exists():
            (root / shared).symlink_to(ROOT / shared)


def make_checkout(
    kube: Client, tmp_path_factory: pytest.TempPathFactory, namespace: str = "messages"
) -> Iterator[Checkout]:
    """A copy of the repository sharing the tests' cluster, with a local stack of its own:
    its state, its namespace, and its database server where no other checkout's is."""
    root = tmp_path_factory.mktemp("checkout")
    copy_repository(root)
    state = tmp_path_factory.mktemp("local-state")
    database = f"{root.name}-database"
    env = {
        **os.environ,
        localstack.STATE_ENV: str(state),
        "PULUMI_YES": "1",
        "NO_COLOR": "1",
    }
    document = yaml.safe_load((root / LOCAL).read_text(encoding="utf-8"))
    document["config"][PREFIX + "databaseAccessHost"] = f"postgres.{database}.svc.cluster.local"
    document["config"][PREFIX + "namespace"] = namespace
    found = Checkout(root, env, document)
    found.set()
    yield found
    subprocess.run(
        ["make", "--no-print-directory", "destroy", "STACK=local"],
        cwd=root,
        env=env,
        capture_output=True,
        check=False,
    )
    kube.delete(f"/api/v1/namespaces/{database}")
    shutil.rmtree(state, ignore_errors=True)
