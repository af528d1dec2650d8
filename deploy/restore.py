"""`make restore`: a pg_dump taken before a migration put back, in one transaction, by a pod
made from the stack's own backup Job (deploy/maintenance.py), so it runs as the backup ran:
the pg_dump image that wrote the dumps, Flyway's login, the claim, the locked-down pod that
the namespace's `restricted` Pod Security level admits. What it runs: deploy/restore_spec.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from deploy import restore_spec
from deploy.kube import Kube
from deploy.maintenance import refuse_while_migrating, run_pod

MIGRATIONS_SELECTOR = "app.kubernetes.io/component=migrations"


def _env(job: Mapping[str, Any], name: str) -> str | None:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    for entry in container.get("env") or []:
        if entry.get("name") == name and "value" in entry:
            return str(entry["value"])
    return None


def restore(
    stack: str,
    kube: Kube,
    backup_job: Mapping[str, Any],
    *,
    wanted: str | None,
    confirm: Callable[[str], bool] | None,
) -> int:
    """List the dumps, restore the chosen one (by default the newest taken before a
    migration), print what was done. `confirm` asks first (None: do not ask)."""
    namespace = str(backup_job["metadata"]["namespace"])
    database = _env(backup_job, "PGDATABASE") or ""
    busy = refuse_while_migrating(kube, namespace, MIGRATIONS_SELECTOR)
    if busy is not None:
        print(f"error: {busy}", file=sys.stderr)
        return 1
    listed = run_pod(kube, backup_job, "restore-list", restore_spec.LIST_COMMAND)
    if not listed.succeeded:
        print(listed.log.rstrip(), file=sys.stderr)
        print(f"error: the dumps of {stack} could not be listed", file=sys.stderr)
        return 1
    dumps = restore_spec.parse_listing(listed.log)
    print(f"--- dumps on the backup claim of {stack} ({namespace}), oldest first ---")
    for dump in dumps:
        kind = "before a restore" if dump.before_restore else "before a migration"
        print(f"{dump.name}\t{dump.size} bytes\t{kind}")
    chosen = restore_spec.choose(dumps, database, wanted)
    if isinstance(chosen, str):
        print(f"error: {chosen}", file=sys.stderr)
        return 1
    how = "as asked (BACKUP=)" if wanted else "the newest taken before a migration"
    print(f"restoring {chosen.name} ({how}) into {database}")
    question = (
        f"Replace the database {database} of {stack} with {chosen.name}? Applications "
        "writing to it now lose what they wrote since"
    )
    if confirm is not None and not confirm(question):
        print("Nothing restored.")
        return 1
    finished = run_pod(
        kube,
        backup_job,
        "restore",
        ("sh", "-c", restore_spec.RESTORE_SCRIPT),
        extra_env={restore_spec.DUMP_ENV: chosen.name},
    )
    print(f"--- restore: job {namespace}/{finished.job} (deleted) ---")
    print(finished.log.rstrip())
    if not finished.succeeded:
        print(
            f"error: the restore of {chosen.name} failed for {stack}; in one transaction, so "
            "the database is as it was before it",
            file=sys.stderr,
        )
        return 1
    print(
        f"{stack}: {database} restored from {chosen.name}; every table checked against the "
        "dump (rows and SHA-256), flyway_schema_history included. The next `make up "
        f"STACK={stack}` migrates from the restored history: remove or fix the migration "
        "that did the damage first."
    )
    return 0
