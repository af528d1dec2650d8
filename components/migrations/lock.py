"""The lock file: released migrations must never change, vanish or be overtaken.

Flyway's ``validate`` (run by every ``migrate``) fails when an applied migration's checksum
or description changed or its file is gone, and it refuses (or, with outOfOrder, quietly
inserts) a new migration older than the newest applied one. It only finds out against a live
database. ``migrations.lock.json`` records each released versioned and baseline migration so
the same mistakes fail in review instead. Repeatables are not locked: re-running them when
they change is their purpose. The lock keeps their released content apart (``repeatables``)
only so that the lint does not judge released SQL again: one whose content differs is new.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
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
)
from components.migrations.scan import (
    NO_STATEMENT,
    scan_directory,
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
class RepeatableEntry:
    """A repeatable migration as it was last released: its path and checksum."""

    script: str
    checksum: int


@dataclass(frozen=True)
class Lock:
    """The released migrations, sorted by version, kind and path; and the released content of
    the repeatables, sorted by path."""

    entries: tuple[LockEntry, ...] = ()
    repeatables: tuple[RepeatableEntry, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=_entry_order)))
        repeatables = tuple(sorted(self.repeatables, key=lambda entry: entry.script))
        object.__setattr__(self, "repeatables", repeatables)

    def released(self, file: MigrationFile) -> bool:
        """Whether this file, as it is now, was released: a versioned or baseline migration
        in the lock (a changed one is reported by check_lock), or a repeatable whose content
        is the released one."""
        if file.kind in _LOCKED_KINDS.values():
            return file.path in self._scripts
        return (file.path, file.checksum) in self._repeatable_content

    @cached_property
    def _scripts(self) -> frozenset[str]:
        return frozenset(entry.script for entry in self.entries)

    @cached_property
    def _repeatable_content(self) -> frozenset[tuple[str, int]]:
        return frozenset((entry.script, entry.checksum) for entry in self.repeatables)


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
    if lock.repeatables:
        document["repeatables"] = [
            {"script": entry.script, "checksum": entry.checksum} for entry in lock.repeatables
        ]
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
        raw_repeatables = document.get("repeatables", [])
        if not isinstance(raw_repeatables, list):
            raise ValueError("'repeatables' must be a list")
        repeatables = tuple(_parse_repeatable(raw) for raw in raw_repeatables)
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
    return Lock(entries, repeatables)


def _parse_repeatable(raw: Any) -> RepeatableEntry:  # noqa: ANN401 - checked here
    if not isinstance(raw, dict):
        raise TypeError("each repeatable must be an object")
    script, checksum = raw["script"], raw["checksum"]
    if not isinstance(script, str):
        raise TypeError(f"script must be a string in {raw}")
    if not isinstance(checksum, int) or isinstance(checksum, bool):
        raise TypeError(f"checksum must be an integer in {raw}")
    return RepeatableEntry(script, checksum)


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
    """The lock plus every unlocked versioned and baseline migration (entries never change),
    with the repeatables' content as it is now."""
    existing = lock.entries if lock is not None else ()
    locked = {entry.script for entry in existing}
    added = [
        entry_for(file)
        for file in (*migration_set.versioned, *migration_set.baseline)
        if file.path not in locked
    ]
    return Lock((*existing, *added), repeatable_entries(migration_set))


def repeatable_entries(migration_set: MigrationSet) -> tuple[RepeatableEntry, ...]:
    """The repeatables of a set as released now."""
    return tuple(
        RepeatableEntry(file.path, file.checksum)
        for file in migration_set.repeatable
        if file.checksum is not None
    )


def update_lock(
    directory: Path, out_of_order: bool = False, *, history: bool = False
) -> tuple[LockEntry, ...]:
    """Lock the new migrations of a directory and write the file; return what was added.

    Refuses (MigrationError) while the directory or the existing lock has problems, so a
    changed release can never be locked in. `history`: every file present is already applied
    somewhere (an adopted history), so a file of comments alone is released as it is.
    """
    files, found = scan_directory(directory)
    lock = read_lock(directory)
    problems = [p for p in found if not (history and p.rule == NO_STATEMENT)]
    problems = not_rejudged(problems, files, lock)
    if problems:
        raise MigrationError(problems)
    migration_set = MigrationSet(files)
    problems = list(check_lock(migration_set, lock, out_of_order, directory))
    if problems:
        raise MigrationError(problems)
    updated = extend_lock(migration_set, lock)
    before = set(lock.entries) if lock is not None else set()
    added = tuple(entry for entry in updated.entries if entry not in before)
    if lock is None or updated != lock:
        lock_path(directory).write_text(render_lock(updated), encoding="utf-8")
    return added


def load_released_set(directory: Path, out_of_order: bool) -> MigrationSet:
    """The migration set a deploy may use: valid, and consistent with the lock.

    The program calls this at preview time, so an edited or vanished released migration
    stops the preview instead of failing Flyway's validation in the middle of a deploy.
    """
    files, found = scan_directory(directory)
    lock = read_lock(directory)
    problems = not_rejudged(found, files, lock)
    if problems:
        raise MigrationError(problems)
    migration_set = MigrationSet(files)
    problems = list(check_lock(migration_set, lock, out_of_order, directory))
    if problems:
        raise MigrationError(problems)
    return migration_set


def not_rejudged(
    problems: Iterable[Problem], files: Iterable[MigrationFile], lock: Lock | None
) -> list[Problem]:
    """The problems that still count once released files are history: a released file of
    comments alone is applied already (Flyway records it), so only a new one is refused."""
    if lock is None:
        return list(problems)
    released = {file.path for file in files if lock.released(file)}
    return [p for p in problems if not (p.rule == NO_STATEMENT and p.path in released)]


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
    repeatables = lock.repeatables if lock is not None else ()
    remaining = Lock(tuple(other for other in entries if other is not entry), repeatables)
    lock_path(directory).write_text(render_lock(remaining), encoding="utf-8")
    return entry


def relock(directory: Path, script: str) -> LockEntry:
    """Record a released migration's content again, as it is now in the directory.

    For one case only: a database applied another copy of the file than the lock recorded (a
    history taken over from another runner), and the file was put back to what the database
    applied, so the lock must follow the database. Refuses a file that is not in the lock or
    whose version changed: that is a new migration.
    """
    lock = read_lock(directory)
    entries = lock.entries if lock is not None else ()
    found = [entry for entry in entries if entry.script == script]
    files, problems = scan_directory(directory)
    current = next((file for file in files if file.path == script), None)
    if not found or current is None:
        raise MigrationError(
            [
                Problem(
                    script,
                    f"is not a released migration in {LOCK_FILE_NAME} and the directory",
                    "Pass the path relative to the migrations directory, as "
                    "`make migrations-list` shows it.",
                )
            ]
        )
    mine = [problem for problem in problems if problem.path == script]
    if mine:
        raise MigrationError(mine)
    [entry] = found
    replaced = entry_for(current)
    if replaced.version != entry.version or replaced.kind is not entry.kind:
        raise MigrationError(
            [
                Problem(
                    script,
                    f"now has version {replaced.version}, released as {entry.version}",
                    "Give it back its released name: relock records content, not a new migration.",
                )
            ]
        )
    others = tuple(other for other in entries if other is not entry)
    repeatables = lock.repeatables if lock is not None else ()
    lock_path(directory).write_text(
        render_lock(Lock((*others, replaced), repeatables)), encoding="utf-8"
    )
    return replaced
