"""What a person sees: the README's own `make preview` / `make up`, run as a black box in a
copy of the repository on the local stack, with bad input. The refusal (key or file, value,
fix), or the engine's error, reaches the terminal once, with a non-zero exit, no traceback
and no "see above".
"""
# The `checkout` fixture (tests/engine/checkout.py): a copy of the repository with a local
# stack of its own on the tests' cluster.

from __future__ import annotations

import json
from pathlib import Path

import pytest

from standins import localstack
from tests.engine.checkout import LOCAL, PREFIX, Checkout

pytestmark = pytest.mark.engine


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


def test_a_deploy_while_another_holds_the_stack_is_refused_naming_it(checkout: Checkout) -> None:
    """CI's deploy holds the backend's lock: a `make up` from a laptop is refused, not raced."""
    state = Path(checkout.env[localstack.STATE_ENV]) / "state"
    locks = state / ".pulumi" / "locks" / "organization" / "tradestream-database" / "local"
    locks.mkdir(parents=True, exist_ok=True)
    lock = locks / "ci-deploy.json"
    lock.write_text(
        json.dumps(
            {
                "pid": 4242,
                "username": "ci",
                "hostname": "runner",
                "timestamp": "2026-12-06T02:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    try:
        code, output = checkout.make("up", "STACK=local")
    finally:
        lock.unlink()
    assert code != 0, output
    assert_shown_once(output, "the stack is currently locked by 1 lock(s)", "ci@runner")
