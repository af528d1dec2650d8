"""A change that would delete or replace the database of record, found before the engine
runs (pure): the stack file's new values against the last deploy's outputs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from components import database
from components.migrations import Kind, MigrationSet
from components.settings import Settings

OUTPUT_OF: Final = {"namespace": "namespace", "databaseFlavor": "databaseFlavor"}
"""The stack output each key's deployed value is read from; the key that names what holds
the data (release or Cluster) is read from `databaseResourceName`."""
RECORD_OUTPUT: Final = "databaseResourceName"
RECOVERY_OUTPUT: Final = "databaseRecoveredFrom"


def protected_changes(last: Mapping[str, object], settings: Settings) -> list[str]:
    """Keys whose new values would delete or replace the database of record. Empty when
    protection is off or nothing was deployed."""
    if not settings.protect_database or not last:
        return []
    traits = database.traits(settings)
    changed = []
    if last.get("namespace") not in (None, settings.namespace) and traits.holds_data:
        changed.append("namespace")
    if last.get("databaseFlavor") not in (None, settings.database.flavor.value):
        changed.append("databaseFlavor")
    elif traits.record_key and last.get(RECORD_OUTPUT) not in (None, traits.record_name):
        changed.append(traits.record_key)
    return changed


def recovery_into_a_deployed_cluster(last: Mapping[str, object], settings: Settings) -> str | None:
    """Why a recovery named for a Cluster that is already deployed would not run: the operator
    reads the bootstrap only when it creates a Cluster, so `up` would succeed and recover
    nothing."""
    traits = database.traits(settings)
    origin, name = traits.recovered_from, traits.record_name
    if not origin or last.get(RECORD_OUTPUT) != name or last.get(RECOVERY_OUTPUT) == origin:
        return None
    return (
        f"cnpgRecoverFrom: is {origin!r}, but {name} is deployed already, and the "
        "operator reads how a Cluster starts only when it creates it: nothing would be "
        "recovered. Nothing was changed. Recover into a new Cluster: set cnpgClusterName to a "
        'new name and cnpgBackupServerName to a new folder (see the README, "Recovering a '
        'CloudNativePG cluster"), or remove cnpgRecoverFrom'
    )


def deployed_value(key: str, last: Mapping[str, object]) -> object:
    """What `key` was at the last deploy, from its outputs."""
    return last.get(OUTPUT_OF.get(key, RECORD_OUTPUT))


def edited_migrations(deployed: object, migrations: MigrationSet, stack: str) -> list[str]:
    """Versioned migrations the stack applied (its `migrations` output) whose file has changed
    since: Flyway would refuse the whole run. Found even when the lock file was deleted,
    since the stack's own record is the one that matters."""
    if not isinstance(deployed, list):
        return []
    now = {f.path: f for f in migrations.files if f.kind in (Kind.VERSIONED, Kind.BASELINE)}
    problems = []
    for entry in deployed:
        if not isinstance(entry, dict) or entry.get("type") not in ("versioned", "baseline"):
            continue
        script = str(entry.get("script"))
        current = now.get(script)
        if current is not None and entry.get("checksum") not in (None, current.checksum):
            problems.append(
                f"{script}: {stack} applied it with checksum {entry.get('checksum')}, and the "
                f"file now has {current.checksum}: an applied migration was edited, and Flyway "
                "would refuse the run. Restore the file as it was applied (git log -- "
                f"{script}), and make the change in a new migration "
                '(make migrations-new DESC="...").'
            )
    return problems
