"""A backup for every Flyway attempt, as a person sees it on the local stack through `make`:
a migration fails, the next `make up` (nothing changed) tries it again, and that attempt
takes a new backup first, because the applications kept writing since the first; the dump
from before the failed attempt is kept beside it."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.engine.checkout import Checkout

pytestmark = pytest.mark.engine

MIGRATIONS = "database/migrations"
FIRST = "CREATE TABLE drill_rows (id int);\nCREATE SEQUENCE drill_attempts;\n"
# Fails on its first attempt only: a sequence's value survives the rollback of the attempt.
FLAKY = "SELECT 1 / (nextval('drill_attempts') - 1);\n"


def test_a_failed_run_then_a_retry_gives_a_new_backup_and_keeps_the_old_one(
    checkout: Checkout,
) -> None:
    saved = checkout.root / "saved-migrations"
    shutil.move(checkout.root / MIGRATIONS, saved)
    try:
        checkout.write(f"{MIGRATIONS}/V1__drill_rows.sql", FIRST)
        code, first = checkout.make("up", "STACK=local")
        assert code == 0, first

        checkout.write(f"{MIGRATIONS}/V2__drill_flaky.sql", FLAKY)
        code, failed = checkout.make("up", "STACK=local")
        assert code != 0, failed
        assert "division by zero" in failed, failed
        [taken] = re.findall(r"backup: wrote \S+/(\S+\.dump)", failed)
        assert f"this Flyway attempt is the first since /backups/{taken} was taken" in failed

        code, retried = checkout.make("up", "STACK=local")
        assert code == 0, retried
        assert "an earlier Flyway attempt used the last dump; taking a new one" in retried
        # The backup Job's log (of the failed run) is shown again above the new attempt's.
        [again] = set(re.findall(r"backup: wrote \S+/(\S+\.dump)", retried)) - {taken}
        assert "now at version v2" in retried, retried

        # Both dumps are on the claim (listed by `make restore`, which restores nothing when
        # the dump it is given is not there).
        code, listed = checkout.make("restore", "STACK=local", "BACKUP=not-there.dump")
        assert code != 0, listed
        assert taken in listed, listed
        assert again in listed, listed
    finally:
        shutil.rmtree(checkout.root / MIGRATIONS, ignore_errors=True)
        shutil.move(saved, checkout.root / MIGRATIONS)
