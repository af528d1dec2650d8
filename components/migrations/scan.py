"""Reading a migrations directory the way Flyway will: walking it, decoding, checksumming."""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from components.migrations.model import (
    DEFAULT_ENCODING,
    JAVA_CHARSETS,
    LOCK_FILE_NAME,
    Kind,
    MigrationError,
    MigrationFile,
    MigrationSet,
    Problem,
    ScriptSettings,
    flyway_checksum,
)
from components.migrations.names import ParsedName, parse_name, parse_settings


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
