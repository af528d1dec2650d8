"""What to do about the failures Flyway reports in words a deployer may not connect to a
setting or a file. Shown under Flyway's log when a deploy fails."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path

from components.migrations import Kind, Version, scan_directory
from components.settings import SettingsError
from components.settings.stackfile import read_stack_file

_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r'database "([^"]+)" does not exist'),
        "The database {0!r} does not exist on the server. An external database must exist "
        "before the first deploy: its administrator creates it (CREATE DATABASE {0}), or "
        "databaseName names the one that exists.",
    ),
    (
        re.compile(r'password authentication failed for user "([^"]+)"'),
        "The server refused the password of {0!r}. Set the password the database has for "
        "it: migratorPassword (databaseRolesManagedBy dba), or adminPassword.",
    ),
    (
        re.compile(r"Connection to ([^ ]+) refused"),
        "Nothing accepts connections at {0}. Check databaseAccessHost and "
        "databaseAccessPort, and that the server is up and reachable from the cluster.",
    ),
    (
        re.compile(r"pg_dump: error: .*permission denied for (?:table|sequence) (\S+)"),
        "The backup before the migration could not read {0}, so Flyway did not run. The "
        "backup logs in as Flyway does: make the migrator own what it migrates (ALTER TABLE "
        "... OWNER TO the migrator) or grant it SELECT, then deploy again.",
    ),
    (
        re.compile(r"No value provided for placeholder: \$\{([^}]*)\}"),
        "A migration uses the placeholder ${{{0}}}, which has no value. Give it one "
        "(pulumi config set --path 'flywayPlaceholders.{0}' <value>, or with --secret under "
        "flywaySecretPlaceholders), or set flywayPlaceholderReplacement false.",
    ),
    (
        re.compile(r"Failed to populate value for default placeholder: \$\{([^}]*)\}"),
        "${{{0}}} is not one of Flyway's built-in placeholders (flyway:defaultSchema, "
        "flyway:user, flyway:database, flyway:timestamp, flyway:filename, "
        "flyway:workingDirectory, flyway:table, flyway:environment).",
    ),
)


_VERSION = r"([0-9][0-9._]*?)\.?(?=\s|$)"
_CHECKSUM = re.compile(
    r"Migration checksum mismatch for migration version "
    + _VERSION
    + r"\s*-> Applied to database : (-?\d+)\s*-> Resolved locally\s*: (-?\d+)"
)
_DESCRIPTION = re.compile(
    r"Migration description mismatch for migration version "
    + _VERSION
    + r"\s*-> Applied to database : (.*)\n\s*-> Resolved locally\s*: (.*)"
)
_MISSING = re.compile(r"Detected applied migration not resolved locally: " + _VERSION)
_NO_HISTORY = re.compile(r"Found non-empty schema\(s\) (\S+) but no schema history table")
_HISTORY = (
    "Flyway's validate compared the database's history with the files and refused before "
    "applying anything"
)
_WAYS = (
    "Either put back what the database applied and release it again (`make migrations-relock "
    "FILE={file}`), or, if the file is right and the schema already matches it, record the "
    "file in the history: `make migrations-repair STACK={stack}` (database/README.md, 'When "
    "the history and the files differ'); then deploy again."
)


def hints(
    log: str, scripts: Mapping[tuple[int, ...], str] | None = None, stack: str = "<stack>"
) -> list[str]:
    """One line of advice per known failure found in Flyway's log, in the order known.

    `scripts` (from `scripts_by_version`) names the file of a version Flyway names; `stack`
    goes into the commands."""
    found = []
    for pattern, advice in _HINTS:
        match = pattern.search(log)
        if match:
            found.append(advice.format(*match.groups()))
    found.extend(_history_hints(log, scripts or {}, stack))
    return found


def _history_hints(log: str, scripts: Mapping[tuple[int, ...], str], stack: str) -> list[str]:
    def file_of(version: str) -> str:
        return scripts.get(Version.parse(version).parts, f"the file of version {version}")

    repair = f"`make migrations-repair STACK={stack}`"
    found = []
    if match := _CHECKSUM.search(log):
        version, applied, local = match.groups()
        file = file_of(version)
        found.append(
            f"{_HISTORY}: {file} is not what the database applied as version {version} "
            f"(checksum {applied} there, {local} here). " + _WAYS.format(file=file, stack=stack)
        )
    if match := _DESCRIPTION.search(log):
        version, applied, local = (group.strip() for group in match.groups())
        found.append(
            f"{_HISTORY}: {file_of(version)} describes version {version} as {local!r}, the "
            f"database applied it as {applied!r}. Name the file after the applied description, "
            f"or record the new one in the history: {repair}."
        )
    if match := _MISSING.search(log):
        found.append(
            f"{_HISTORY}: the database applied version {match.group(1)}, and no file has it. "
            "Restore the file from version control (or the copy that runner deployed) and "
            f"lock it; if it was removed on purpose, {repair} marks it deleted in the history."
        )
    if match := _NO_HISTORY.search(log):
        found.append(
            f"The database's schema {match.group(1)} holds tables but no Flyway history: it "
            f"was built by hand or by another tool. Adopt it once: make migrations-adopt "
            f"STACK={stack} (database/README.md, 'Adopting an existing database'); if it "
            "should be empty, the stack points at the wrong database."
        )
    return found


def scripts_by_version(directory: Path) -> dict[tuple[int, ...], str]:
    """The versioned and baseline files of a migrations directory, by version (for a hint to
    name a file where Flyway names only a version); empty when there is none to read."""
    files, _ = scan_directory(directory)
    ordered = sorted(files, key=lambda file: file.kind is Kind.VERSIONED)  # versioned win
    return {
        file.version.parts: (directory / file.path).as_posix()
        for file in ordered
        if file.version is not None and file.kind in (Kind.VERSIONED, Kind.BASELINE)
    }


def stack_scripts(root: Path, stack: str) -> dict[tuple[int, ...], str]:
    """`scripts_by_version` of the stack's migrationsDir, as a path from the current folder
    where it lies below it; empty when the stack file cannot be read."""
    try:
        directory = root / read_stack_file(root, stack).settings.migrations_dir
    except SettingsError:
        return {}
    with contextlib.suppress(ValueError):
        directory = directory.resolve().relative_to(Path.cwd().resolve())
    return scripts_by_version(directory)
