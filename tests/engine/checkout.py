"""A copy of the repository as a user has it, to run the README's commands as a black box
on the local stack: the tests' own cluster, and a local stack of its own (state, database
port), so a user's running local stack is never touched."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from deploy.engine import ROOT
from standins import localstack

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Checkout:
    """A copy of the repository as a user has it, with the local stack's state its own."""

    root: Path
    env: dict[str, str]
    stack_file: dict[str, object]

    def set(self, **config: object) -> None:
        """Set keys of the local stack file (None removes one) as a user would edit it."""
        values = dict(self.stack_file["config"])  # type: ignore[call-overload]
        for key, value in config.items():
            if value is None:
                values.pop(PREFIX + key, None)
            else:
                values[PREFIX + key] = value
        (self.root / LOCAL).write_text(yaml.safe_dump({"config": values}), encoding="utf-8")

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


def make_checkout(
    kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory, namespace: str = "messages"
) -> Iterator[Checkout]:
    """The repository copied file by file (timestamps kept, so `make deps` has nothing to do),
    sharing the tests' cluster and with a local stack of its own (state, database port,
    namespace)."""
    root = tmp_path_factory.mktemp("checkout")
    for relative in _tracked(ROOT):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, root / relative)
    for shared in (".venv", ".cache"):
        if (ROOT / shared).exists():
            (root / shared).symlink_to(ROOT / shared)
    # Under /tmp and traversable: as root, PostgreSQL runs as the postgres user.
    state = Path(tempfile.mkdtemp(prefix="local-state-", dir="/tmp"))
    state.chmod(0o711)
    env = {
        **os.environ,
        localstack.STATE_ENV: str(state),
        "PULUMI_YES": "1",
        "NO_COLOR": "1",
    }
    document = yaml.safe_load((root / LOCAL).read_text(encoding="utf-8"))
    document["config"][PREFIX + "databaseAccessPort"] = _free_port()
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
    localstack.stop_database_at(state)
    shutil.rmtree(state, ignore_errors=True)
