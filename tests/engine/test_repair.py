"""The runbook of a migration that failed half-way, as a person runs it with the README's
commands on the local stack: a script outside a transaction fails after a statement took
effect, Flyway records the failure and refuses every later run, `make migrations-repair`
removes the failed record in a pod like the migration Job's, the script is fixed, and the
next `make up` applies it. The repair pod is gone afterwards and nothing is in the state."""

from __future__ import annotations

import pytest

from tests.engine.checkout import Checkout

pytestmark = pytest.mark.engine

FAILING = "CREATE TABLE repair_drill (id int);\nINSERT INTO repair_drill_missing VALUES (1);\n"
FIXED = "CREATE TABLE IF NOT EXISTS repair_drill (id int);\nINSERT INTO repair_drill VALUES (1);\n"
SCRIPT = "database/migrations/V900__repair_drill.sql"


def test_fail_repair_fix_up(checkout: Checkout) -> None:
    checkout.write(SCRIPT, FAILING)
    checkout.write(SCRIPT + ".conf", "executeInTransaction=false\n")
    try:
        code, failed = checkout.make("up", "STACK=local")
        assert code != 0, failed
        assert 'relation "repair_drill_missing" does not exist' in failed

        checkout.write(SCRIPT, FIXED)
        code, refused = checkout.make("up", "STACK=local")
        assert code != 0, refused
        assert "failed migration" in refused.lower(), refused

        code, repaired = checkout.make("migrations-repair", "STACK=local")
        assert code == 0, repaired
        assert "Successfully repaired" in repaired or "Repair" in repaired, repaired
        assert "(deleted)" in repaired

        code, applied = checkout.make("up", "STACK=local")
        assert code == 0, applied
        assert 'Successfully applied 1 migration to schema "public", now at version v900' in applied
        code, again = checkout.make("logs", "STACK=local")
        assert "repair" not in again.lower() or "migrate" in again.lower()
    finally:
        (checkout.root / SCRIPT).unlink(missing_ok=True)
        (checkout.root / (SCRIPT + ".conf")).unlink(missing_ok=True)
