"""The migrations directory as Flyway sees it: the files, their versions, kinds and checksums.

Flyway (Community, with its default settings) silently skips files whose names it does not
understand, and only finds a changed or duplicated migration once it talks to a database. The
package reads a directory the way Flyway will (``names`` for what a name says, ``scan`` for
reading and decoding), but refuses everything Flyway would skip or trip over, so the problem
surfaces in a pull request instead of in a failed Kubernetes Job. This module holds the types
they produce and everything downstream reads.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

LOCK_FILE_NAME = "migrations.lock.json"
SQL_SUFFIX = ".sql"
CONF_SUFFIX = ".sql.conf"
SEPARATOR = "__"

_VERSION_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)*")


class Kind(Enum):
    """What Flyway does with a file, decided by its name."""

    VERSIONED = "versioned"
    REPEATABLE = "repeatable"
    BASELINE = "baseline"
    CALLBACK = "callback"
    CONFIG = "config"


class Event(Enum):
    """Flyway's callback events; a script named after one runs when the event fires.

    The ids are those of ``org.flywaydb.core.api.callback.Event`` in Flyway 11. The
    ``...OperationFinish`` events of clean, validate, undo, repair and baseline share the id
    ``afterInfoOperationFinish`` in Flyway itself, so they appear once here.
    """

    BEFORE_CLEAN = "beforeClean"
    AFTER_CLEAN = "afterClean"
    AFTER_CLEAN_ERROR = "afterCleanError"
    BEFORE_MIGRATE = "beforeMigrate"
    BEFORE_EACH_MIGRATE = "beforeEachMigrate"
    BEFORE_EACH_MIGRATE_STATEMENT = "beforeEachMigrateStatement"
    AFTER_EACH_MIGRATE_STATEMENT = "afterEachMigrateStatement"
    AFTER_EACH_MIGRATE_STATEMENT_ERROR = "afterEachMigrateStatementError"
    AFTER_EACH_MIGRATE = "afterEachMigrate"
    AFTER_EACH_MIGRATE_ERROR = "afterEachMigrateError"
    BEFORE_REPEATABLES = "beforeRepeatables"
    AFTER_VERSIONED = "afterVersioned"
    AFTER_MIGRATE_APPLIED = "afterMigrateApplied"
    AFTER_MIGRATE = "afterMigrate"
    AFTER_MIGRATE_ERROR = "afterMigrateError"
    BEFORE_UNDO = "beforeUndo"
    BEFORE_EACH_UNDO = "beforeEachUndo"
    BEFORE_EACH_UNDO_STATEMENT = "beforeEachUndoStatement"
    AFTER_EACH_UNDO_STATEMENT = "afterEachUndoStatement"
    AFTER_EACH_UNDO_STATEMENT_ERROR = "afterEachUndoStatementError"
    AFTER_EACH_UNDO = "afterEachUndo"
    AFTER_EACH_UNDO_ERROR = "afterEachUndoError"
    AFTER_UNDO = "afterUndo"
    AFTER_UNDO_ERROR = "afterUndoError"
    BEFORE_VALIDATE = "beforeValidate"
    AFTER_VALIDATE = "afterValidate"
    AFTER_VALIDATE_ERROR = "afterValidateError"
    BEFORE_BASELINE = "beforeBaseline"
    AFTER_BASELINE = "afterBaseline"
    AFTER_BASELINE_ERROR = "afterBaselineError"
    BEFORE_REPAIR = "beforeRepair"
    AFTER_REPAIR = "afterRepair"
    AFTER_REPAIR_ERROR = "afterRepairError"
    BEFORE_INFO = "beforeInfo"
    AFTER_INFO = "afterInfo"
    AFTER_INFO_ERROR = "afterInfoError"
    AFTER_MIGRATE_OPERATION_FINISH = "afterMigrateOperationFinish"
    AFTER_INFO_OPERATION_FINISH = "afterInfoOperationFinish"
    CREATE_SCHEMA = "createSchema"
    BEFORE_CREATE_SCHEMA = "beforeCreateSchema"
    BEFORE_CONNECT = "beforeConnect"
    AFTER_CONNECT = "afterConnect"


# Flyway tries the longest prefix first, so afterMigrateError wins over afterMigrate. The names
# are plain strings so one C-level ``startswith`` rules out the callbacks for most files: reading

# Java charset names (and the aliases people actually write) -> Python codecs with the same
# strict decoding. Java's plain "UTF-16" guesses the byte order differently from Python's, so it
# is left out on purpose; UTF-16LE/BE are unambiguous.
JAVA_CHARSETS: dict[str, str] = {
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "ISO-8859-1": "latin-1",
    "ISO8859-1": "latin-1",
    "ISO8859_1": "latin-1",
    "ISO_8859_1": "latin-1",
    "LATIN1": "latin-1",
    "ISO-8859-15": "iso8859-15",
    "ISO8859_15": "iso8859-15",
    "LATIN9": "iso8859-15",
    "US-ASCII": "ascii",
    "ASCII": "ascii",
    "WINDOWS-1250": "cp1250",
    "CP1250": "cp1250",
    "WINDOWS-1251": "cp1251",
    "CP1251": "cp1251",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
    "UTF-16LE": "utf-16-le",
    "UTF-16BE": "utf-16-be",
}
DEFAULT_ENCODING = "UTF-8"


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is, and how to fix it, so a report reads as a to-do list."""

    path: str
    message: str
    fix: str
    line: int | None = None
    rule: str | None = None

    @property
    def detail(self) -> str:
        """What is wrong and the fix, without the location."""
        message = self.message if self.message.endswith(".") else f"{self.message}."
        return f"{message} {self.fix}".rstrip()

    def __str__(self) -> str:
        if self.path == ".":  # the directory as a whole
            return self.detail
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.detail}"


class MigrationError(Exception):
    """Every problem found at once, so one run shows the whole to-do list."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True, order=True)
class Version:
    """A Flyway version: equal, ordered and hashed on its numeric parts only.

    ``parts`` is the comparison key: the numbers with trailing zeros removed, so ``1``,
    ``1.0``, ``01`` and ``1_0`` are one version (a duplicate, to Flyway). Because parts are
    never negative, comparing these stripped tuples gives exactly Flyway's order, which pads
    the shorter version with zeros.

    ``text`` is what Flyway writes to ``flyway_schema_history.version`` and shows in
    ``info``: the version as written in the file name with ``_`` replaced by ``.`` and
    nothing else normalised (``V01__x.sql`` is ``"01"``, ``V1_0__x.sql`` is ``"1.0"``;
    checked against flyway-core 11's ``MigrationVersion.getVersion``).
    """

    parts: tuple[int, ...]
    text: str = field(compare=False)

    @classmethod
    def parse(cls, raw: str) -> Version:
        """Parse the version part of a file name; ValueError says which part is wrong."""
        text = raw.replace("_", ".")
        if text.isascii() and text.isdigit():
            return cls((int(text),), text)
        if not _VERSION_TEXT.fullmatch(text):
            raise ValueError(f"non-digit version {raw!r}")
        numbers = [int(piece) for piece in text.split(".")]
        while len(numbers) > 1 and numbers[-1] == 0:
            numbers.pop()
        return cls(tuple(numbers), text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ScriptSettings:
    """The settings a ``<script>.sql.conf`` companion gives its script (None: not set)."""

    execute_in_transaction: bool | None = None
    encoding: str | None = None
    placeholder_replacement: bool | None = None


@dataclass(frozen=True)
class MigrationFile:
    """One file Flyway reads, with everything later steps need, read from disk once.

    ``encoding`` is the Python codec the file was decoded with; ``checksum`` is Flyway's
    checksum of the file as written (None for ``.sql.conf`` files, which Flyway does not
    checksum): what Flyway records for every script except a repeatable it replaces
    placeholders in (see ``placeholders.recorded_checksum``), and what the lock keeps;
    ``settings`` are
    the script's companion settings, or for a ``.sql.conf`` file its own.
    """

    path: str
    kind: Kind
    version: Version | None
    description: str
    encoding: str
    content: bytes = field(repr=False)
    checksum: int | None
    settings: ScriptSettings | None = None
    event: Event | None = None

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


def _flyway_order(file: MigrationFile) -> tuple[int, tuple[int, ...], str, str]:
    if file.kind is Kind.VERSIONED and file.version is not None:
        return (0, file.version.parts, "", file.path)
    if file.kind is Kind.REPEATABLE:
        return (1, (), file.description, file.path)
    return (2, (), "", file.path)


@dataclass(frozen=True)
class MigrationSet:
    """A valid migrations directory, in the order Flyway applies it.

    Order: versioned migrations by version, then repeatables by description (Flyway runs
    them in that order), then everything else (baselines, callbacks, ``.sql.conf`` files) by
    path. The constructor sorts, so any iterable of files gives the same set.
    """

    files: tuple[MigrationFile, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(sorted(self.files, key=_flyway_order)))

    def __iter__(self) -> Iterator[MigrationFile]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def _of(self, kind: Kind) -> tuple[MigrationFile, ...]:
        return tuple(file for file in self.files if file.kind is kind)

    @property
    def versioned(self) -> tuple[MigrationFile, ...]:
        return self._of(Kind.VERSIONED)

    @property
    def repeatable(self) -> tuple[MigrationFile, ...]:
        return self._of(Kind.REPEATABLE)

    @property
    def baseline(self) -> tuple[MigrationFile, ...]:
        return self._of(Kind.BASELINE)

    @property
    def callbacks(self) -> tuple[MigrationFile, ...]:
        return self._of(Kind.CALLBACK)

    @property
    def highest_version(self) -> Version | None:
        """The highest versioned migration's version (baselines do not count)."""
        versions = [file.version for file in self.versioned if file.version is not None]
        return max(versions) if versions else None

    @cached_property
    def digest(self) -> str:
        """SHA-256 over every file's path and bytes: any edit, addition or rename changes it."""
        sha = hashlib.sha256(b"tradestream-migrations/1\n")
        for file in sorted(self.files, key=lambda file: file.path):
            for chunk in (file.path.encode("utf-8"), file.content):
                sha.update(len(chunk).to_bytes(8, "big"))
                sha.update(chunk)
        return sha.hexdigest()

    @cached_property
    def by_path(self) -> dict[str, MigrationFile]:
        return {file.path: file for file in self.files}


def next_version(migration_set: MigrationSet) -> Version:
    """The version for a new migration: one above the highest major, padded like it (V007)."""
    versions = [
        file.version for file in (*migration_set.versioned, *migration_set.baseline) if file.version
    ]
    if not versions:
        return Version.parse("1")
    highest = max(versions)
    major = highest.text.split(".")[0]
    number = str(highest.parts[0] + 1)
    return Version.parse(number.zfill(len(major)) if major.startswith("0") else number)


def flyway_checksum(text: str) -> int:
    """Flyway's checksum of a decoded script, as stored in ``flyway_schema_history``.

    Flyway feeds CRC32 every line that ``BufferedReader.readLine`` returns, re-encoded as UTF-8
    without its terminator, after dropping a BOM from the first line, and stores the value as a
    Java ``int``. Only ``\\n``, ``\\r`` and ``\\r\\n`` end a line there (unlike Python's
    ``splitlines``, which also splits on U+2028, form feeds and more). Since CRC32 is fed the
    lines back to back, that equals the CRC32 of the text with every ``\\r`` and ``\\n``
    removed, which is what this computes. Versioned and baseline checksums are over the file as
    written; for a repeatable that placeholders are replaced in, Flyway checksums the text after
    replacement (verified against Flyway 11.20.3: ``SqlMigrationResolver``, and the command
    line in the contract tests), which ``placeholders.recorded_checksum`` computes.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    crc = zlib.crc32(text.replace("\r", "").replace("\n", "").encode("utf-8"))
    return crc - (1 << 32) if crc >= (1 << 31) else crc
