"""Flyway migrations as data: load and validate them, lock releases, pack them into ConfigMaps.

Pure Python with no Pulumi imports, so the Pulumi components, the CLI
(``python -m components.migrations``) and the tests share one definition of what a valid
migrations directory is.
"""

from components.migrations.lint import lint
from components.migrations.lock import (
    Lock,
    LockEntry,
    check_lock,
    extend_lock,
    load_released_set,
    parse_lock,
    read_lock,
    render_lock,
    update_lock,
)
from components.migrations.model import (
    LOCK_FILE_NAME,
    Event,
    Kind,
    MigrationError,
    MigrationFile,
    MigrationSet,
    Problem,
    ScriptSettings,
    Version,
    flyway_checksum,
    next_version,
)
from components.migrations.packing import (
    CONFIGMAP_LIMIT,
    DEFAULT_BUDGET,
    Shard,
    efficiency,
    pack,
    unpack,
)
from components.migrations.scan import (
    load_migration_set,
    scan_directory,
)

__all__ = [
    "CONFIGMAP_LIMIT",
    "DEFAULT_BUDGET",
    "LOCK_FILE_NAME",
    "Event",
    "Kind",
    "Lock",
    "LockEntry",
    "MigrationError",
    "MigrationFile",
    "MigrationSet",
    "Problem",
    "ScriptSettings",
    "Shard",
    "Version",
    "check_lock",
    "efficiency",
    "extend_lock",
    "flyway_checksum",
    "lint",
    "load_migration_set",
    "load_released_set",
    "next_version",
    "pack",
    "parse_lock",
    "read_lock",
    "render_lock",
    "scan_directory",
    "unpack",
    "update_lock",
]
