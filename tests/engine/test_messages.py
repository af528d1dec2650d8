"""What a person sees: the README's own `make preview` / `make up`, run as a black box in a
copy of the repository on the local stack, with bad input. The refusal (key or file, value,
fix), or the engine's error, reaches the terminal once, with a non-zero exit, no traceback
and no "see above".
"""

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

pytestmark = pytest.mark.engine

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
        proc = subprocess.run(
            ["make", "--no-print-directory", *args],
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


DATABASE = "postgres.messages-database.svc.cluster.local"
"""Where this checkout's local stack puts its server: apart from other tests' databases."""


@pytest.fixture(scope="module")
def checkout(kube: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkout]:
    """A copy of the repository sharing the tests' cluster (LOCALCLUSTER_STATE), with a local
    stack of its own: its state, namespace and database server."""
    root = tmp_path_factory.mktemp("checkout")
    copy_repository(root)
    state = tmp_path_factory.mktemp("local-state")
    env = {
        **os.environ,
        localstack.STATE_ENV: str(state),
        "PULUMI_YES": "1",
        "NO_COLOR": "1",
    }
    document = yaml.safe_load((root / LOCAL).read_text(encoding="utf-8"))
    document["config"][PREFIX + "databaseAccessHost"] = DATABASE
    document["config"][PREFIX + "namespace"] = "messages"
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
    kube.delete(f"/api/v1/namespaces/{DATABASE.split('.')[1]}")
    shutil.rmtree(state, ignore_errors=True)


def assert_shown_once(output: str, *parts: str) -> None:
    """Each part is in what the person sees; the line holding the first appears once; no
    traceback, no pointer to output that is not there."""
    for part in parts:
        assert part in output, f"{part!r} is not in:\n{output}"
    lines = [line for line in output.splitlines() if parts[0] in line]
    assert len(lines) == 1, f"{parts[0]!r} is shown {len(lines)} times:\n{output}"
    assert "Traceback" not in output, output
    assert "see above" not in output, output


def test_a_bad_value_in_the_stack_file_is_named_with_its_value_and_what_is_allowed(
    checkout: Checkout,
) -> None:
    checkout.set(flywayConnectRetries="-3")
    code, output = checkout.make("preview", "STACK=local")
    checkout.set()
    assert code != 0, output
    assert_shown_once(
        output,
        f"{PREFIX}flywayConnectRetries",
        '"-3"',
        "must be an integer >= 0",
        "stacks/Pulumi.local.yaml",
    )


def test_a_bad_migration_is_named_with_the_fix(checkout: Checkout) -> None:
    checkout.write("database/migrations/V900__not_utf8.sql", b"SELECT '\xff';\n")
    try:
        code, output = checkout.make("preview", "STACK=local")
    finally:
        (checkout.root / "database/migrations/V900__not_utf8.sql").unlink()
    assert code != 0, output
    assert_shown_once(output, "V900__not_utf8.sql", "UTF-8")


def test_a_yaml_syntax_error_names_the_line_before_the_engine_starts(checkout: Checkout) -> None:
    text = (checkout.root / LOCAL).read_text(encoding="utf-8")
    checkout.write(LOCAL, text + "  bad: [unclosed\n")
    try:
        code, output = checkout.make("preview", "STACK=local")
    finally:
        checkout.write(LOCAL, text)
    assert code != 0, output
    assert_shown_once(output, "stacks/Pulumi.local.yaml", "line ")


def test_a_failed_migration_job_during_up_is_reported_once(checkout: Checkout) -> None:
    checkout.write(
        "database/migrations/V900__breaks.sql", "ALTER TABLE no_such_table ADD COLUMN x int;\n"
    )
    try:
        code, output = checkout.make("up", "STACK=local")
    finally:
        (checkout.root / "database/migrations/V900__breaks.sql").unlink()
    assert code != 0, output
    assert_shown_once(output, "error: `pulumi up` failed for local")
    assert 'relation "no_such_table" does not exist' in output
    job_errors = [
        line for line in output.splitlines() if line.startswith("error: kubernetes:batch")
    ]
    assert len(job_errors) == len(set(job_errors)) >= 1, output


def test_a_provider_error_is_reported_once(checkout: Checkout) -> None:
    checkout.set(namespace="nowhere-to-be-found", createNamespace=False)
    try:
        code, output = checkout.make("up", "STACK=local")
    finally:
        checkout.set()
    assert code != 0, output
    missing = 'namespaces "nowhere-to-be-found" not found'
    assert "Traceback" not in output
    assert "see above" not in output
    lines = [line for line in output.splitlines() if missing in line]
    # One error per resource the API server refused, each naming it; nothing repeated.
    assert lines, output
    assert all(line.startswith("error: kubernetes:") for line in lines), output
    assert len(lines) == len(set(lines)), output
