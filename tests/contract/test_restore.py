"""The restore `make restore` runs, for real: its exact script with the backup Job's own
environment (as the restore pod gets it) against a real PostgreSQL, after the backup Job's
script took the dump and a bad migration damaged the database. The same substitutions as
the backup's contract test: host and port, the password, the claim's mount, the scratch
directory.

A restore must bring back the schema and every row exactly, history included, drop what
the bad migration created, keep what it replaced, and change nothing at all when anything
fails: a table it may not drop, or a table that does not read back as the dump has it.
"""

from __future__ import annotations

import subprocess

import pytest

from deploy.restore_spec import DUMP_ENV, RESTORE_SCRIPT
from tests.contract import test_backup
from tests.contract.harness import DumpJob
from tests.contract.test_backup import Deployed, dumps, snapshot

pytestmark = pytest.mark.contract
deployed = test_backup.deployed
"""The backup's contract fixture: the database as deployed, and its backup Job."""

TYPES = (
    "CREATE TABLE kinds (\n"
    "  id int PRIMARY KEY, at timestamptz, day date, span interval, ratio float8,\n"
    "  amount numeric(12, 4), note text, raw bytea, tags text[], doc jsonb,\n"
    "  doubled int GENERATED ALWAYS AS (id * 2) STORED\n"
    ");\n"
    "INSERT INTO kinds (id, at, day, span, ratio, amount, note, raw, tags, doc) VALUES\n"
    "  (1, '2026-12-03 09:59:00+01', '2026-12-03', '1 day 2 hours', 0.1, 12.5,\n"
    "   E'tab\\there\\nnew line \\\\ backslash', '\\xdeadbeef', '{a,\"b c\"}',\n"
    "   '{\"k\": [1, 2]}'),\n"
    "  (2, NULL, NULL, NULL, '-Infinity', -0.0001, '', '', '{}', 'null'),\n"
    "  (3, '1999-12-31 23:59:59.999999-08', '0001-01-01', '-3 mons', 1e300, 0, 'ünïcödé',\n"
    "   NULL, NULL, NULL);\n"
)
DAMAGE = (
    "DROP VIEW order_totals;\n"
    "DELETE FROM orders;\n"
    "UPDATE accounts SET name = 'x' || id;\n"
    "ALTER TABLE accounts ADD COLUMN damaged boolean;\n"
    "CREATE TABLE made_by_the_bad_migration (id int);\n"
    "CREATE FUNCTION made_too() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
    "UPDATE kinds SET note = 'lost';\n"
    "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script,"
    " checksum, installed_by, execution_time, success)"
    " VALUES (100, '3', 'bad', 'SQL', 'V3__bad.sql', 1, current_user, 1, true);\n"
)


def restore(d: Deployed, dump: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The restore pod's command, with the backup Job's environment and the dump to restore."""
    extra = [{"name": DUMP_ENV, "value": dump}, *({"name": k, "value": v} for k, v in env.items())]
    return DumpJob(["sh", "-c", RESTORE_SCRIPT], [*d.dump.env, *extra]).run(
        d.server, d.prepared, d.backups
    )


def backed_up(d: Deployed) -> str:
    """The test's extra table, as the login (so it is the login's), then the backup Job."""
    with d.server.connect(d.prepared.database) as conn:
        conn.execute(f"SET ROLE {d.prepared.login}")
        conn.execute(TYPES)
    proc = d.dump.run(d.server, d.prepared, d.backups)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [dump] = dumps(d.backups)
    return dump


def damage(d: Deployed) -> None:
    with d.server.connect(d.prepared.database) as conn:
        conn.execute(f"SET ROLE {d.prepared.login}")
        conn.execute(DAMAGE)


def test_a_restore_brings_back_schema_rows_and_history_and_keeps_what_it_replaced(
    deployed: Deployed,
) -> None:
    d = deployed
    dump = backed_up(d)
    before = snapshot(d.server, d.prepared.database)
    damage(d)
    damaged = snapshot(d.server, d.prepared.database)
    assert damaged != before

    proc = restore(d, dump)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = snapshot(d.server, d.prepared.database)
    assert after == before
    for table in ("accounts", "orders", "kinds", "flyway_schema_history"):
        assert f"restore: public.{table}: " in proc.stdout, proc.stdout
    assert proc.stdout.count(", as in the dump") == 4, proc.stdout
    assert "every table checked" in proc.stdout
    # What was there is kept, and a later restore of it brings the damage back.
    [kept] = [name for name in dumps(d.backups) if name.endswith("-before-restore.dump")]
    assert f"restore: the database as it was before this restore: {d.backups}/{kept}" in (
        proc.stdout
    )
    again = restore(d, kept)
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(d.server, d.prepared.database) == damaged


def test_a_table_that_reads_back_otherwise_stops_the_restore_and_changes_nothing(
    deployed: Deployed,
) -> None:
    """Rows that read back differently (here: timestamps shown in another time zone than the
    dump's) fail the check before COMMIT: the damaged database stays exactly as it was."""
    d = deployed
    dump = backed_up(d)
    damage(d)
    damaged = snapshot(d.server, d.prepared.database)
    proc = restore(d, dump, PGTZ="Pacific/Chatham")
    assert proc.returncode != 0, proc.stdout
    assert "restore: public.kinds differs from the dump" in proc.stdout, proc.stdout
    assert "the restored data differs from the dump" in proc.stderr, proc.stderr
    assert "every table checked" not in proc.stdout
    assert snapshot(d.server, d.prepared.database) == damaged


def test_an_object_the_login_may_not_replace_stops_the_restore_and_changes_nothing(
    deployed: Deployed,
) -> None:
    d = deployed
    with d.server.connect(d.prepared.database) as conn:
        conn.execute("CREATE TABLE dba_owned (id int)")
        conn.execute(f"GRANT SELECT ON dba_owned TO {d.prepared.login}")
    dump = backed_up(d)
    damage(d)
    damaged = snapshot(d.server, d.prepared.database)
    proc = restore(d, dump)
    assert proc.returncode != 0, proc.stdout
    # Its owner's table: neither its ownership nor its removal is the login's to restore.
    assert "dba_owned" in proc.stderr or 'role "postgres"' in proc.stderr, proc.stderr
    assert snapshot(d.server, d.prepared.database) == damaged


def test_a_missing_dump_is_named(deployed: Deployed) -> None:
    proc = restore(deployed, "tradestream-20200101T000000Z-0123456789ab.dump")
    assert proc.returncode != 0
    assert "restore: no dump tradestream-20200101T000000Z-0123456789ab.dump" in proc.stderr
