"""`make preview` and `make up` never write into a committed stack file: every stack runs from
a workspace copy, with the passphrase and salt decided once per stack (README: "Passphrases
and salts"). The README's commands run as a black box in a copy of the repository.

The local stack previews and deploys for real. dev cannot preview to the end here: the
providers its program asks for (kubernetes 4.34.2, random) and its Bitnami chart are
downloaded, and this machine reaches no such server. So its preview fails in the engine,
after the CLI has created the stack, made or read the salt and run the program on the
stack's config ("Previewing update (dev)"), which is what used to write into the committed
file. Its file is checked after that, as a sandbox of the clone and against a shared backend,
before and after the one-time command that commits its salt.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from deploy.engine import ROOT
from standins import localstack
from standins.cluster.api import Client
from tests.engine.checkout import _tracked

pytestmark = pytest.mark.engine

SALT_LINE = re.compile(r"^encryptionsalt: v1:\S+\n\Z")


@dataclass
class Repository:
    """A copy of the repository as a user has it, its local stack in a state of its own."""

    root: Path
    env: dict[str, str]
    local_state: Path

    def stack_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.root / "stacks").glob("*.yaml"))}

    def run(self, *args: str, **env: str) -> tuple[int, str]:
        """A command typed in the copy: exit code and what it printed."""
        proc = subprocess.run(
            args,
            cwd=self.root,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=1800,
        )
        return proc.returncode, proc.stdout

    def make(self, *args: str, **env: str) -> tuple[int, str]:
        return self.run("make", "--no-print-directory", *args, **env)


@pytest.fixture(scope="module")
def repo(
    kubeconfig: Path, kube: Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Repository]:
    root = tmp_path_factory.mktemp("repository")
    for relative in _tracked(ROOT):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, root / relative)
    for shared in (".venv", ".cache"):
        if (ROOT / shared).exists():
            (root / shared).symlink_to(ROOT / shared)
    state = Path(tempfile.mkdtemp(prefix="local-state-"))
    local_file = root / "stacks" / "Pulumi.local.yaml"
    text = local_file.read_text(encoding="utf-8")
    database = f"{root.name}-database"  # a server of its own in the tests' cluster
    text = re.sub(
        r"(databaseAccessHost: )\S+", rf"\g<1>postgres.{database}.svc.cluster.local", text
    )
    text = re.sub(r"(:namespace: )\S+", r"\g<1>committed-files", text)
    local_file.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env |= {
        localstack.STATE_ENV: str(state),
        "KUBECONFIG": str(kubeconfig),
        "PULUMI_YES": "1",
        "NO_COLOR": "1",
    }
    found = Repository(root, env, state)
    yield found
    found.make("destroy", "STACK=local")
    kube.delete(f"/api/v1/namespaces/{database}")
    shutil.rmtree(state, ignore_errors=True)


def salt_of(path: Path) -> str | None:
    salt = yaml.safe_load(path.read_text(encoding="utf-8")).get("encryptionsalt")
    return None if salt is None else str(salt)


def test_preview_and_up_of_the_local_stack_leave_every_stack_file_as_committed(
    repo: Repository,
) -> None:
    committed = repo.stack_files()
    for command in ("preview", "up", "preview"):
        code, output = repo.make(command, "STACK=local")
        assert code == 0, output
        assert repo.stack_files() == committed, f"`make {command} STACK=local` wrote:\n{output}"
    # The CLI wrote its salt where the stack ran: the workspace copy beside the local state.
    assert salt_of(repo.local_state / "workspace" / "stacks" / "Pulumi.local.yaml")
    assert "encryptionsalt" not in committed["Pulumi.local.yaml"].decode()


def test_a_dev_preview_as_a_sandbox_of_the_clone_leaves_the_file_as_committed(
    repo: Repository,
) -> None:
    committed = repo.stack_files()
    code, output = repo.make("preview", "STACK=dev")
    assert "Previewing update (dev)" in output, output
    assert code != 0, output  # its providers cannot be downloaded here (see the docstring)
    assert repo.stack_files() == committed, output
    workspace = repo.root / ".pulumi-state" / "workspaces" / "dev" / "own-passphrase"
    assert salt_of(workspace / "stacks" / "Pulumi.dev.yaml"), "the CLI made its salt there"
    assert (repo.root / ".pulumi-state" / "dev.passphrase").is_file()


def test_a_dev_preview_against_a_shared_backend_needs_the_passphrase_and_committed_salt(
    repo: Repository, tmp_path: Path
) -> None:
    stack_file = repo.root / "stacks" / "Pulumi.dev.yaml"
    before = repo.stack_files()
    shared = {"PULUMI_BACKEND_URL": f"file://{tmp_path}"}

    code, output = repo.make("preview", "STACK=dev", **shared)
    assert code != 0, output
    assert "needs dev's own passphrase" in output, output
    assert "PULUMI_CONFIG_PASSPHRASE of the GitHub environment dev" in output

    shared["PULUMI_CONFIG_PASSPHRASE"] = "dev's passphrase, from the password manager"
    code, output = repo.make("preview", "STACK=dev", **shared)
    assert code != 0, output
    assert "stacks/Pulumi.dev.yaml has no encryptionsalt" in output, output
    assert repo.stack_files() == before
    assert not list(tmp_path.iterdir()), "nothing reached the shared backend"

    # The one-time command, exactly as printed, with the CLI the message names.
    (command,) = [line.strip() for line in output.splitlines() if "stack init dev" in line]
    code, printed = repo.run(
        "bash", "-c", command, PULUMI_CONFIG_PASSPHRASE=shared["PULUMI_CONFIG_PASSPHRASE"]
    )
    assert code == 0, printed
    committed = stack_file.read_text(encoding="utf-8")
    old = before["Pulumi.dev.yaml"].decode()
    assert committed.startswith(old), "the command changes nothing but the salt"
    assert SALT_LINE.match(committed[len(old) :]), committed[len(old) :]
    assert not list(tmp_path.iterdir()), "the command leaves the shared backend alone"

    code, output = repo.run(".venv/bin/python", "-m", "deploy", "check-secrets", "dev", **shared)
    assert code == 0, output

    with_salt = repo.stack_files()
    code, output = repo.make("preview", "STACK=dev", **shared | {"PULUMI_CONFIG_PASSPHRASE": "x"})
    assert code != 0, output
    assert "hint: the passphrase given does not open the salt dev runs with" in output, output
    assert repo.stack_files() == with_salt, output

    code, output = repo.make("preview", "STACK=dev", **shared)
    assert "Previewing update (dev)" in output, output
    assert repo.stack_files() == with_salt, output
    workspace = repo.root / ".pulumi-state" / "workspaces" / "dev" / "stack-passphrase"
    copied = workspace / "stacks" / "Pulumi.dev.yaml"
    assert salt_of(copied) == salt_of(stack_file), "the run used the committed salt"
    assert list(tmp_path.iterdir()), "the stack was created in the shared backend"

    # A sandbox with a passphrase of its own ignores the committed salt it cannot open.
    code, output = repo.make("preview", "STACK=dev")
    assert "Previewing update (dev)" in output, output
    assert repo.stack_files() == with_salt, output
