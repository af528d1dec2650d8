"""The migrations directory as Flyway sees it: names, versions, encodings and checksums.

Flyway (Community, with its default settings) silently skips files whose names it does not
understand, and only finds a changed or duplicated migration once it talks to a database. This
module reads a directory the way Flyway will, but refuses everything Flyway would skip or trip
over, so the problem surfaces in a pull request instead of in a failed Kubernetes Job.

The naming rules mirror Flyway 11's ``ResourceNameParser`` (checked against flyway-core 11.8.2
and 11.20.3), deliberately stricter in three places: a description is required (Flyway accepts
``V1.sql``), version parts must be plain ASCII digits (Flyway's ``BigInteger`` also accepts
``-1``), and ``U`` undo scripts are rejected rather than skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Final

LOCK_FILE_NAME = "migrations.lock.json"
SQL_SUFFIX = ".sql"
CONF_SUFFIX = ".sql.conf"
SEPARATOR = "__"

_VERSION_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
# ``Event.value`` 42 times per file was most of the cost of loading a large directory.
_EVENTS_LONGEST_FIRST = sorted(Event, key=lambda event: -len(event.value))
_EVENT_NAMES = tuple(event.value for event in _EVENTS_LONGEST_FIRST)
_EVENT_BY_NAME = {event.value: event for event in Event}

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


@dataclass(frozen=True)
class ParsedName:
    """What a file name says, before the file is read."""

    kind: Kind
    version: Version | None = None
    description: str = ""
    event: Event | None = None


def parse_name(name: str) -> ParsedName | tuple[str, str]:
    """Classify a file name as Flyway does; on failure return (what is wrong, how to fix it)."""
    if name.endswith(CONF_SUFFIX):
        return ParsedName(Kind.CONFIG)
    if not name.endswith(SQL_SUFFIX):
        return _not_a_script(name)
    stem = name[: -len(SQL_SUFFIX)]
    if stem.startswith(_EVENT_NAMES):
        event_name = next(event_name for event_name in _EVENT_NAMES if stem.startswith(event_name))
        return _parse_callback(stem, _EVENT_BY_NAME[event_name])
    return _PREFIXES.get(stem[:1], _unknown_prefix)(stem)


def _not_a_script(name: str) -> tuple[str, str]:
    if name.lower().endswith((SQL_SUFFIX, CONF_SUFFIX)):
        return (
            "has an upper-case suffix, which Flyway does not read",
            "Rename it with a lower-case '.sql' (or '.sql.conf') suffix.",
        )
    return (
        "is not a migration: Flyway reads only '.sql' scripts and their '.sql.conf' files",
        "Move it out of the migrations directory (documentation belongs in database/).",
    )


def _undo(_stem: str) -> tuple[str, str]:
    return (
        "is an undo migration, which Flyway Community cannot run (it would skip it)",
        "Delete it and write a new versioned migration that reverses the change.",
    )


def _parse_callback(stem: str, event: Event) -> ParsedName | tuple[str, str]:
    rest = stem[len(event.value) :]
    if rest and not rest.startswith(SEPARATOR):
        return (
            f"looks like a '{event.value}' callback but has text after the event name",
            f"Name it {event.value}.sql or {event.value}__<description>.sql.",
        )
    description = rest[len(SEPARATOR) :].replace("_", " ")
    return ParsedName(Kind.CALLBACK, description=description, event=event)


def _parse_versioned(stem: str) -> ParsedName | tuple[str, str]:
    prefix, rest = stem[:1], stem[1:]
    kind = Kind.VERSIONED if prefix == "V" else Kind.BASELINE
    example = f"{prefix}1__create_users.sql"
    version_text, separator, raw_description = rest.partition(SEPARATOR)
    if not separator:
        try:
            Version.parse(rest)
        except ValueError:
            if "_" in rest:
                return (
                    "separates version and description with a single '_'",
                    f"Use two underscores '__' between version and description, e.g. {example}.",
                )
            return (
                "has no '__' between version and description",
                f"Name it {prefix}<version>__<description>.sql, e.g. {example}.",
            )
        return (
            "has no description",
            f"Add one after two underscores: {prefix}{rest}__<description>.sql.",
        )
    try:
        version = Version.parse(version_text)
    except ValueError as error:
        return (
            f"has a {error}",
            "Versions are digits separated by '.' or '_' (V1__, V1.1__, V2_3__); "
            f"name it like {example}.",
        )
    if not raw_description.strip("_ "):
        return (
            "has no description",
            f"Add one after the '__': {prefix}{version_text}__<description>.sql.",
        )
    return ParsedName(kind, version=version, description=raw_description.replace("_", " "))


def _parse_repeatable(stem: str) -> ParsedName | tuple[str, str]:
    rest = stem[1:]
    if not rest.startswith(SEPARATOR):
        if SEPARATOR in rest:
            return (
                "is a repeatable migration with a version, which Flyway rejects",
                "Remove the version: R__<description>.sql.",
            )
        if rest.startswith("_"):
            return (
                "uses a single '_' after the 'R' prefix",
                "Use two underscores: R__<description>.sql.",
            )
        return _unknown_prefix(stem)
    raw_description = rest[len(SEPARATOR) :]
    if not raw_description.strip("_ "):
        return ("has no description", "Name it R__<description>.sql.")
    return ParsedName(Kind.REPEATABLE, description=raw_description.replace("_", " "))


def _unknown_prefix(stem: str) -> tuple[str, str]:
    lowered = stem.lower()
    for event in _EVENTS_LONGEST_FIRST:
        if lowered.startswith(event.value.lower()):
            return (
                f"looks like a '{event.value}' callback, but callback names are case-sensitive",
                f"Rename it to start with '{event.value}'.",
            )
    if stem[:1] in ("v", "r", "b", "u") and (stem[1:2].isdigit() or stem[1:3] == SEPARATOR):
        upper = stem[:1].upper()
        return (
            f"has a lower-case prefix '{stem[:1]}'; Flyway's prefixes are case-sensitive",
            f"Rename it to start with upper-case '{upper}'.",
        )
    return (
        "has no prefix Flyway knows, so Flyway would skip it silently",
        "Name it V<version>__<description>.sql, R__<description>.sql, or after a callback "
        "event such as afterMigrate.sql.",
    )


_PREFIXES: dict[str, Callable[[str], ParsedName | tuple[str, str]]] = {
    "V": _parse_versioned,
    "B": _parse_versioned,
    "R": _parse_repeatable,
    "U": _undo,
}

_TRUE_FALSE = {"true": True, "false": False}
_KNOWN_SETTINGS = ("executeInTransaction", "encoding", "placeholderReplacement")
_PROPERTY = re.compile(r"([^=:\s]+)\s*[=:]?\s*(.*)")


def parse_settings(text: str) -> tuple[ScriptSettings, tuple[str, ...]]:
    """Parse a ``.sql.conf`` file; also return the errors, one sentence each.

    Flyway reads these as Java properties (``key=value``, ``key: value`` or ``key value``;
    ``#`` and ``!`` comments), trims values and takes booleans case-insensitively; any other
    key fails the migration (``shouldExecute`` needs a paid edition). Checked against
    flyway-core 11's ``SqlScriptMetadata``.
    """
    values: dict[str, str] = {}
    errors: list[str] = []
    for raw_line in _LINE_BREAK.split(text.lstrip("\ufeff")):
        line = raw_line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        match = _PROPERTY.fullmatch(line)
        key, value = (match.group(1), match.group(2).strip()) if match else (line, "")
        if key == "shouldExecute":
            errors.append("sets 'shouldExecute', a paid-edition feature Flyway Community rejects")
        elif key not in _KNOWN_SETTINGS:
            errors.append(f"has an unknown key {key!r} (known: {', '.join(_KNOWN_SETTINGS)})")
        elif key in values:
            errors.append(f"sets {key!r} twice")
        else:
            values[key] = value
    flags: dict[str, bool | None] = {}
    for key in ("executeInTransaction", "placeholderReplacement"):
        value = values.get(key)
        flags[key] = None if value is None else _TRUE_FALSE.get(value.lower())
        if value is not None and flags[key] is None:
            errors.append(f"has {key}={value!r}; it must be true or false")
    encoding = values.get("encoding")
    if encoding is not None and encoding.upper() not in JAVA_CHARSETS:
        errors.append(
            f"has an unsupported encoding {encoding!r} (use UTF-8, ISO-8859-1, windows-1252, ...)"
        )
    settings = ScriptSettings(
        execute_in_transaction=flags["executeInTransaction"],
        encoding=encoding,
        placeholder_replacement=flags["placeholderReplacement"],
    )
    return settings, tuple(errors)


def _walk(root: Path) -> tuple[list[tuple[str, str]], list[Problem]]:
    """Every regular file below root (relative posix path, absolute path), sorted by path.

    Paths stay strings: a ``Path`` per file cost more than listing the directory did.
    """
    files: list[tuple[str, str]] = []
    problems: list[Problem] = []
    pending = [("", os.fspath(root))]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                relative = prefix + entry.name
                if prefix == "" and entry.name == LOCK_FILE_NAME and entry.is_file():
                    continue
                if entry.name.startswith("."):
                    problems.append(
                        Problem(
                            relative,
                            "is hidden, and Flyway would skip it silently",
                            "Rename it without the leading '.' or move it out of the "
                            "migrations directory.",
                        )
                    )
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((relative + "/", entry.path))
                elif entry.is_dir():
                    problems.append(
                        Problem(
                            relative,
                            "is a symbolic link to a directory",
                            "Replace it with a real directory holding the files.",
                        )
                    )
                elif entry.is_file() and entry.is_symlink() and not _inside(root, entry.path):
                    problems.append(
                        Problem(
                            relative,
                            f"is a symbolic link to {os.path.realpath(entry.path)}, outside the "
                            "migrations directory: what is deployed would not be what the "
                            "repository holds",
                            "Replace the link with the file itself (copy it in), so a review "
                            "sees what Flyway runs.",
                        )
                    )
                elif entry.is_file():
                    files.append((relative, entry.path))
                else:
                    problems.append(
                        Problem(
                            relative,
                            "is not a regular file",
                            "Remove it from the migrations directory.",
                        )
                    )
    files.sort()
    return files, problems


def _inside(root: Path, path: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, base]) == base


def _read_bytes(path: str) -> bytes:
    """A whole file, unbuffered: one read sized by fstat instead of copies through a buffer."""
    with open(path, "rb", buffering=0) as stream:
        return stream.readall()


def _utf8_checksum(content: bytes) -> int:
    """``flyway_checksum(content.decode("utf-8"))`` without re-encoding the text.

    Valid UTF-8 round-trips byte for byte and never uses the bytes of CR or LF inside a
    multi-byte character, so dropping the BOM and those bytes here gives the same CRC32.
    """
    start = 3 if content.startswith(b"\xef\xbb\xbf") else 0
    joined = content.replace(b"\n", b"")
    if b"\r" in joined:
        joined = joined.replace(b"\r", b"")
    crc = zlib.crc32(memoryview(joined)[start:])
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def _is_blank(text: str) -> bool:
    """``not text.lstrip("\ufeff").strip()``, without copying a file that is not blank."""
    rest = text.lstrip("\ufeff")
    return not rest or rest.isspace()


_LINE_END = re.compile(r"[\r\n]")
NO_STATEMENT: Final = "no-statement"
"""The rule of a script with comments alone: a migration still being written."""


def has_statement(text: str) -> bool:
    """Whether any SQL is left once comments, white space and bare semicolons are removed.

    A file of comments alone passes Flyway, is recorded as applied and can never be given its
    SQL afterwards without a checksum mismatch, so it is refused before it is released.
    Line comments and (nested, as in PostgreSQL) block comments are skipped; anything else,
    a quote included, counts as SQL.
    """
    position, end = 0, len(text)
    while position < end:
        char = text[position]
        if char.isspace() or char in ";\ufeff":
            position += 1
        elif text.startswith("--", position):
            line_end = _LINE_END.search(text, position)
            position = line_end.end() if line_end else end
        elif text.startswith("/*", position):
            position = _block_comment_end(text, position)
        else:
            return True
    return False


def _block_comment_end(text: str, start: int) -> int:
    """The index after the block comment opening at `start` (the end if it never closes)."""
    depth, position = 0, start
    while position < len(text):
        if text.startswith("/*", position):
            depth += 1
            position += 2
        elif text.startswith("*/", position):
            depth -= 1
            position += 2
            if depth == 0:
                return position
        else:
            position += 1
    return position


def _decode(path: str, content: bytes, java_name: str) -> tuple[str, str] | Problem:
    """Decode as Flyway would (strictly), returning (text, Python codec) or the problem."""
    codec = JAVA_CHARSETS.get(java_name.upper(), "utf-8")
    try:
        return content.decode(codec), codec
    except UnicodeDecodeError as error:
        conf_name = path.rpartition("/")[2] + ".conf"
        line = content.count(b"\n", 0, error.start) + 1
        column = error.start - (content.rfind(b"\n", 0, error.start) + 1) + 1
        return Problem(
            path,
            f"does not decode as {java_name} (invalid byte 0x{content[error.start]:02x} at "
            f"line {line}, column {column})",
            f"Save it as UTF-8, or declare its real encoding in {conf_name} "
            "(e.g. encoding=ISO-8859-1).",
            line=line,
        )


def scan_directory(directory: Path) -> tuple[tuple[MigrationFile, ...], tuple[Problem, ...]]:
    """Read and check every file; return the files that could be read and all problems.

    Each file is read once; everything else is linear in the number of files.
    """
    if not directory.is_dir():
        return (), (
            Problem(
                ".",
                f"is not a directory ({directory.resolve()})",
                "Create it, or pass the path of the migrations directory.",
            ),
        )
    entries, problems = _walk(directory)
    names: dict[str, ParsedName] = {}
    for relative, _ in entries:
        parsed = parse_name(relative.rpartition("/")[2])
        if isinstance(parsed, tuple):
            problems.append(Problem(relative, *parsed))
        else:
            names[relative] = parsed
    contents = {relative: _read_bytes(absolute) for relative, absolute in entries}
    configs = {path: name for path, name in names.items() if name.kind is Kind.CONFIG}
    scripts = {path: name for path, name in names.items() if name.kind is not Kind.CONFIG}
    files = _read_configs(configs, contents, problems)
    settings_of = {file.path[: -len(".conf")]: file.settings for file in files if file.settings}
    files += _read_scripts(scripts, contents, settings_of, problems)
    problems.extend(_duplicates(files))
    return tuple(files), tuple(sorted(problems, key=lambda problem: problem.path))


def _read_configs(
    configs: dict[str, ParsedName], contents: dict[str, bytes], problems: list[Problem]
) -> list[MigrationFile]:
    files: list[MigrationFile] = []
    for path, name in configs.items():
        script = path[: -len(".conf")]
        if script not in contents:
            problems.append(
                Problem(
                    path,
                    f"configures {script.rpartition('/')[2]}, which does not exist",
                    "Rename it to match its script, or delete it.",
                )
            )
        decoded = _decode(path, contents[path], DEFAULT_ENCODING)
        if isinstance(decoded, Problem):
            problems.append(decoded)
            continue
        if _is_blank(decoded[0]):
            problems.append(Problem(path, "is empty", "Add settings, or delete the file."))
        settings, errors = parse_settings(decoded[0])
        problems.extend(
            Problem(path, error, "Fix the setting (see Flyway's script config files).")
            for error in errors
        )
        files.append(_file(path, name, contents[path], codec="utf-8", settings=settings))
    return files


def _read_scripts(
    scripts: dict[str, ParsedName],
    contents: dict[str, bytes],
    settings_of: dict[str, ScriptSettings],
    problems: list[Problem],
) -> list[MigrationFile]:
    files: list[MigrationFile] = []
    for path, name in scripts.items():
        settings = settings_of.get(path)
        java_name = (settings.encoding if settings else None) or DEFAULT_ENCODING
        decoded = _decode(path, contents[path], java_name)
        if isinstance(decoded, Problem):
            problems.append(decoded)
            continue
        text, codec = decoded
        if _is_blank(text):
            problems.append(
                Problem(path, "is empty", "Write the migration's SQL, or delete the file.")
            )
            continue
        if not has_statement(text):
            problems.append(
                Problem(
                    path,
                    "holds no SQL statement, only comments; Flyway would record it as applied "
                    "and its SQL could never be added later",
                    "Write the migration's SQL below the comments, or delete the file.",
                    rule=NO_STATEMENT,
                )
            )
        files.append(
            _file(
                path,
                name,
                contents[path],
                codec=codec,
                checksum=_utf8_checksum(contents[path])
                if codec == "utf-8"
                else flyway_checksum(text),
                settings=settings,
            )
        )
    return files


def _file(
    path: str,
    name: ParsedName,
    content: bytes,
    *,
    codec: str,
    checksum: int | None = None,
    settings: ScriptSettings | None = None,
) -> MigrationFile:
    return MigrationFile(
        path=path,
        kind=name.kind,
        version=name.version,
        description=name.description,
        encoding=codec,
        content=content,
        checksum=checksum,
        settings=settings,
        event=name.event,
    )


def _duplicates(files: Iterable[MigrationFile]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[tuple[Kind, object], MigrationFile] = {}
    for file in sorted(files, key=lambda file: file.path):
        if file.kind in (Kind.VERSIONED, Kind.BASELINE):
            key: tuple[Kind, object] = (file.kind, file.version)
        elif file.kind is Kind.REPEATABLE:
            key = (file.kind, file.description)
        elif file.kind is Kind.CALLBACK:
            key = (file.kind, file.name)
        else:
            continue
        first = seen.setdefault(key, file)
        if first is file:
            continue
        if file.kind is Kind.CALLBACK:
            problems.append(
                Problem(
                    file.path,
                    f"is a second callback named {file.name} (the first is {first.path}); "
                    "Flyway refuses two callbacks of one name",
                    "Give one of them another description (afterMigrate__<description>.sql) or "
                    "merge them.",
                )
            )
        elif file.kind is Kind.REPEATABLE:
            problems.append(
                Problem(
                    file.path,
                    f"has the same description {file.description!r} as {first.path}",
                    "Give one of them a different description.",
                )
            )
        else:
            problems.append(
                Problem(
                    file.path,
                    f"has version {file.version}, which Flyway treats as the same version "
                    f"as {first.path}",
                    "Give it the next free version number "
                    "(python -m components.migrations new creates one).",
                )
            )
    return problems


def load_migration_set(directory: Path) -> MigrationSet:
    """Load a migrations directory, or raise MigrationError listing every problem."""
    files, problems = scan_directory(directory)
    if problems:
        raise MigrationError(problems)
    return MigrationSet(files)
