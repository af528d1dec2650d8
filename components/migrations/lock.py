"""The lock file: released migrations must never change, vanish or be overtaken.

Flyway's ``validate`` (run by every ``migrate``) fails when an applied migration's checksum
or description changed or its file is gone, and it refuses (or, with outOfOrder, quietly
inserts) a new migration older than the newest applied one. It only finds out against a live
database. ``migrations.lock.json`` records each released versioned and baseline migration so
the same mistakes fail in review instead. Repeatables are not locked: re-running them when
they change is their purpose.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.migrations.model import (
    LOCK_FILE_NAME,
    Kind,
    MigrationError,
    MigrationFile,
    MigrationSet,
    Problem,
    Version,
    load_migration_set,
)

LOCK_FORMAT = 1
_LOCKED_KINDS = {"versioned": Kind.VERSIONED, "baseline": Kind.BASELINE}
_NEW_COMMAND = 'make migrations-new DESC="<description>"'


@dataclass(frozen=True)
class LockEntry:
    """One released migration as it was released."""

    script: str
    kind: Kind
    version: Version
    description: str
    checksum: int


@dataclass(frozen=True)
class Lock:
    """The released migrations, sorted by version, kind and path."""

    entries: tuple[LockEntry, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=_entry_order)))


def _entry_order(entry: LockEntry) -> tuple[tuple[int, ...], str, str]:
    return (entry.version.parts, entry.kind.value, entry.script)


def lock_path(directory: Path) -> Path:
    return directory / LOCK_FILE_NAME


def entry_for(file: MigrationFile) -> LockEntry:
    """The lock entry a versioned or baseline migration gets when it is released."""
    if file.version is None or file.checksum is None or file.kind not in _LOCKED_KINDS.values():
        raise ValueError(f"{file.path} is not a versioned or baseline migration")
    return LockEntry(file.path, file.kind, file.version, file.description, file.checksum)


def render_lock(lock: Lock) -> str:
    """Stable JSON (sorted keys, indent 2, trailing newline) so diffs show only real changes."""
    document = {
        "format": LOCK_FORMAT,
        "comment": "Released migrations; written by `python -m components.migrations lock`. "
        "Never edit, rename or remove a released migration: add a new one.",
        "migrations": [
            {
                "script": entry.script,
                "type": entry.kind.value,
                "version": entry.version.text,
                "description": entry.description,
                "checksum": entry.checksum,
            }
            for entry in lock.entries
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def parse_lock(text: str) -> Lock:
    """Parse a lock file's text; a damaged lock file is a MigrationError, never ignored."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != LOCK_FORMAT:
            raise ValueError(f"expected an object with format {LOCK_FORMAT}")
        raw_entries = document["migrations"]
        if not isinstance(raw_entries, list):
            raise ValueError("'migrations' must be a list")
        entries = tuple(_parse_entry(raw) for raw in raw_entries)
    except (ValueError, KeyError, TypeError) as error:
        raise MigrationError(
            [
                Problem(
                    LOCK_FILE_NAME,
                    f"is not a valid lock file ({error})",
                    f"Restore it from version control (git checkout -- {LOCK_FILE_NAME}).",
                )
            ]
        ) from error
    scripts = [entry.script for entry in entries]
    if len(set(scripts)) != len(scripts):
        raise MigrationError(
            [
                Problem(
                    LOCK_FILE_NAME,
                    "lists a script more than once",
                    f"Restore it from version control (git checkout -- {LOCK_FILE_NAME}).",
                )
            ]
        )
    return Lock(entries)


def _parse_entry(raw: Any) -> LockEntry:  # noqa: ANN401 - untrusted JSON is checked here
    if not isinstance(raw, dict):
        raise TypeError("each migration must be an object")
    script, kind, version = raw["script"], raw["type"], raw["version"]
    description, checksum = raw["description"], raw["checksum"]
    if not all(isinstance(value, str) for value in (script, kind, version, description)):
        raise TypeError(f"script, type, version and description must be strings in {raw}")
    if kind not in _LOCKED_KINDS:
        raise ValueError(f"unknown type {kind!r}")
    if not isinstance(checksum, int) or isinstance(checksum, bool):
        raise TypeError(f"checksum must be an integer in {raw}")
    return LockEntry(script, _LOCKED_KINDS[kind], Version.parse(version), description, checksum)


def read_lock(directory: Path) -> Lock | None:
    """The directory's lock, or None when it has none yet (nothing released)."""
    path = lock_path(directory)
    if not path.exists():
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MigrationError(
            [
                Problem(
                    LOCK_FILE_NAME,
                    f"is not UTF-8 (byte {error.start}: {raw[error.start : error.start + 1]!r}); "
                    "the program writes it as UTF-8 JSON, so it was damaged",
                    f"Restore it from version control (git checkout -- {LOCK_FILE_NAME}).",
                )
            ]
        ) from None
    return parse_lock(text)


def shown_path(directory: Path, script: str) -> str:
    """A migration's path as a command typed in the current directory needs it."""
    path = directory / script
    if not path.is_absolute():
        return path.as_posix()
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


def check_lock(
    migration_set: MigrationSet,
    lock: Lock | None,
    out_of_order: bool,
    directory: Path = Path(),
) -> tuple[Problem, ...]:
    """Problems that Flyway's validate or migrate would hit on a database that ran the lock.

    `directory` only makes the fixes' commands name paths that work where they are typed.
    """
    if lock is None:
        return ()
    files = migration_set.by_path
    locked = {entry.script for entry in lock.entries}
    new = [
        file
        for file in (*migration_set.versioned, *migration_set.baseline)
        if file.path not in locked
    ]
    problems: list[Problem] = []
    renamed: set[str] = set()
    for entry in lock.entries:
        current = files.get(entry.script)
        shown = shown_path(directory, entry.script)
        if current is not None:
            if current.checksum != entry.checksum:
                problems.append(
                    Problem(
                        entry.script,
                        f"changed after it was released (checksum {entry.checksum} in "
                        f"{LOCK_FILE_NAME}, now {current.checksum}); Flyway's validate fails "
                        "on every database that applied it",
                        f"Restore the released content (git checkout HEAD -- {shown}) and put "
                        f"the change in a new migration ({_NEW_COMMAND}). If no database has "
                        "applied it (its deploy failed and Flyway rolled it back), release the "
                        f"fix instead: make migrations-unlock FILE={shown}, edit it, then "
                        "make migrations-lock.",
                    )
                )
            continue
        successor = _successor(entry, new)
        if successor is not None:
            renamed.add(successor.path)
            problems.append(
                Problem(
                    entry.script,
                    f"was released but has been renamed to {successor.path}",
                    f"Rename it back to {entry.script}: Flyway validates released migrations "
                    "by version, description and checksum.",
                )
            )
        else:
            problems.append(
                Problem(
                    entry.script,
                    "was released but is missing; Flyway's validate fails on an applied "
                    "migration it cannot find",
                    f"Restore it (git checkout HEAD -- {shown}).",
                )
            )
    problems.extend(_too_old(lock, new, renamed, out_of_order))
    return tuple(problems)


def _successor(entry: LockEntry, new: list[MigrationFile]) -> MigrationFile | None:
    """The unlocked file that looks like a locked one under another name, if any."""
    same_kind = [file for file in new if file.kind is entry.kind]
    by_version = [file for file in same_kind if file.version == entry.version]
    by_content = [file for file in same_kind if file.checksum == entry.checksum]
    return next(iter(by_version or by_content), None)


def _too_old(
    lock: Lock, new: list[MigrationFile], renamed: set[str], out_of_order: bool
) -> list[Problem]:
    released = [entry.version for entry in lock.entries if entry.kind is Kind.VERSIONED]
    if out_of_order or not released:
        return []
    highest = max(released)
    next_major = max([highest, *(file.version for file in new if file.version)]).parts[0] + 1
    return [
        Problem(
            file.path,
            f"has version {file.version}, lower than the highest released version {highest}; "
            "Flyway refuses it while outOfOrder is off",
            f"Rename it to V{next_major}__{file.name.partition('__')[2]}, or enable "
            "out-of-order migrations (--out-of-order and the stack's outOfOrder setting).",
        )
        for file in new
        if file.kind is Kind.VERSIONED
        and file.path not in renamed
        and file.version is not None
        and file.version < highest
    ]


def extend_lock(migration_set: MigrationSet, lock: Lock | None) -> Lock:
    """The lock plus every unlocked versioned and baseline migration; entries never change."""
    existing = lock.entries if lock is not None else ()
    locked = {entry.script for entry in existing}
    added = [
        entry_for(file)
        for file in (*migration_set.versioned, *migration_set.baseline)
        if file.path not in locked
    ]
    return Lock((*existing, *added))


def update_lock(directory: Path, out_of_order: bool = False) -> tuple[LockEntry, ...]:
    """Lock the new migrations of a directory and write the file; return what was added.

    Refuses (MigrationError) while the directory or the existing lock has problems, so a
    changed release can never be locked in.
    """
    migration_set = load_migration_set(directory)
    lock = read_lock(directory)
    problems = check_lock(migration_set, lock, out_of_order, directory)
    if problems:
        raise MigrationError(problems)
    updated = extend_lock(migration_set, lock)
    before = set(lock.entries) if lock is not None else set()
    added = tuple(entry for entry in updated.entries if entry not in before)
    if added or lock is None:
        lock_path(directory).write_text(render_lock(updated), encoding="utf-8")
    return added


def load_released_set(directory: Path, out_of_order: bool) -> MigrationSet:
    """The migration set a deploy may use: valid, and consistent with the lock.

    The program calls this at preview time, so an edited or vanished released migration
    stops the preview instead of failing Flyway's validation in the middle of a deploy.
    """
    migration_set = load_migration_set(directory)
    problems = check_lock(migration_set, read_lock(directory), out_of_order, directory)
    if problems:
        raise MigrationError(problems)
    return migration_set


def unreleased(migration_set: MigrationSet, lock: Lock | None) -> tuple[Problem, ...]:
    """Versioned and baseline migrations missing from the lock: what a merge must not carry.

    Locking is the release: once merged, a migration may reach a database, and from then on
    the lock is what keeps it from changing.
    """
    locked = {entry.script for entry in lock.entries} if lock is not None else set()
    return tuple(
        Problem(
            file.path,
            f"is not in {LOCK_FILE_NAME}, so nothing stops it from changing after it is applied",
            "Release it: make migrations-lock, and commit the lock file with it.",
        )
        for file in (*migration_set.versioned, *migration_set.baseline)
        if file.path not in locked
    )


def unlock(directory: Path, script: str) -> LockEntry:
    """Remove one released migration from the lock, so a migration no database applied can be
    fixed in place. Refuses anything but the newest released version: an older one may
    already have been overtaken by migrations that did apply.
    """
    lock = read_lock(directory)
    entries = lock.entries if lock is not None else ()
    found = [entry for entry in entries if entry.script == script]
    if not found:
        raise MigrationError(
            [
                Problem(
                    script,
                    f"is not in {LOCK_FILE_NAME}",
                    "Pass the path relative to the migrations directory, as "
                    "`make migrations-list` shows it.",
                )
            ]
        )
    [entry] = found
    newer = [other.script for other in entries if other.version > entry.version]
    if newer:
        raise MigrationError(
            [
                Problem(
                    script,
                    f"is not the newest released migration ({', '.join(newer)} came after it), "
                    "so a database may have applied it",
                    f"Leave it as released and put the change in a new migration ({_NEW_COMMAND}).",
                )
            ]
        )
    remaining = Lock(tuple(other for other in entries if other is not entry))
    lock_path(directory).write_text(render_lock(remaining), encoding="utf-8")
    return entry
