"""`make restore` as a person runs it on the local stack, with the README's commands only: a
migration writes data, a bad one damages it (and is recorded in Flyway's history), `make
restore` puts back the dump taken before the bad run in one transaction with every table
checked, and the next `make up` runs a fixed migration that finds the data and the history
exactly as they were. The restore runs in a pod made from the backup Job's, which the
namespace's `restricted` Pod Security level admits; nothing of it is left behind."""

from __future__ import annotations

import re
import shutil

import pytest

from standins.cluster.api import Client
from tests.engine.checkout import Checkout

pytestmark = pytest.mark.engine

MIGRATIONS = "database/migrations"
GOOD = (
    "CREATE TABLE drill_accounts (id int PRIMARY KEY, name text NOT NULL);\n"
    "INSERT INTO drill_accounts VALUES (1, 'ada'), (2, 'grace'), (3, 'edsger');\n"
)
BAD = (
    "DELETE FROM drill_accounts WHERE id > 1;\n"
    "UPDATE drill_accounts SET name = 'lost';\n"
    "CREATE TABLE drill_made_by_the_bad_migration (id int);\n"
)
# Runs only if the data and the history are those of before the bad run: Flyway would refuse
# a history that still records the bad V2 (its checksum differs), and this fails otherwise.
CHECKED = (
    "DO $$ BEGIN\n"
    "  IF (SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM drill_accounts)\n"
    "     IS DISTINCT FROM '1=ada,2=grace,3=edsger'\n"
    "     OR to_regclass('drill_made_by_the_bad_migration') IS NOT NULL\n"
    "     OR (SELECT count(*) FROM flyway_schema_history WHERE version = '2') <> 0 THEN\n"
    "    RAISE EXCEPTION 'the restore did not bring back the data and history';\n"
    "  END IF;\n"
    "END $$;\n"
    "CREATE TABLE drill_after_restore (id int);\n"
)


def test_migrate_damage_restore_up(checkout: Checkout, kube: Client) -> None:
    saved = checkout.root / "saved-migrations"
    shutil.move(checkout.root / MIGRATIONS, saved)
    try:
        checkout.write(f"{MIGRATIONS}/V1__drill_accounts.sql", GOOD)
        code, first = checkout.make("up", "STACK=local")
        assert code == 0, first
        assert "now at version v1" in first, first

        checkout.write(f"{MIGRATIONS}/V2__drill_damage.sql", BAD)
        code, damaged = checkout.make("up", "STACK=local")
        assert code == 0, damaged
        assert "now at version v2" in damaged, damaged
        written = re.findall(r"backup: wrote \S+/(\S+\.dump)", damaged)
        assert len(written) == 1, damaged
        before_bad_run = written[0]

        code, restored = checkout.make("restore", "STACK=local")
        assert code == 0, restored
        # The dumps are listed, and the default is the one taken before the last run.
        assert "--- dumps on the backup claim of local" in restored, restored
        assert f"restoring {before_bad_run} (the newest taken before a migration)" in restored
        # Every table checked in the transaction, the history shown as Flyway will read it.
        assert "restore: public.drill_accounts: 3 rows, sha256 " in restored, restored
        assert re.search(r"restore: public\.flyway_schema_history: \d+ rows, sha256 ", restored)
        assert "restore: the history Flyway will read:" in restored
        assert "drill damage" not in restored.split("the history Flyway will read:")[1]
        assert "restored into" in restored
        assert "every table checked" in restored
        assert "(deleted)" in restored
        # Its pod was admitted where every pod must pass the `restricted` level.
        config = checkout.stack_file["config"]
        assert isinstance(config, dict)
        namespace = kube.get(f"/api/v1/namespaces/{config['tradestream-database:namespace']}")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
            "restricted"
        )
        assert re.search(
            r"the database as it was before this restore: \S+-before-restore", restored
        )

        # The fixed next step: Flyway validates the restored history and the data is back.
        (checkout.root / MIGRATIONS / "V2__drill_damage.sql").unlink()
        checkout.write(f"{MIGRATIONS}/V2__drill_checked.sql", CHECKED)
        code, after = checkout.make("up", "STACK=local")
        assert code == 0, after
        assert 'Successfully applied 1 migration to schema "public", now at version v2' in after

        # A named dump that is not there is refused, naming it; nothing runs.
        code, refused = checkout.make("restore", "STACK=local", "BACKUP=nothing-here.dump")
        assert code != 0, refused
        assert "no dump named 'nothing-here.dump'" in refused, refused
    finally:
        shutil.rmtree(checkout.root / MIGRATIONS, ignore_errors=True)
        shutil.move(saved, checkout.root / MIGRATIONS)
