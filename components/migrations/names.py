"""What a file's name and its ``.sql.conf`` tell Flyway, before the script is read.

The naming rules mirror Flyway 11's ``ResourceNameParser`` (checked against flyway-core 11.8.2
and 11.20.3), deliberately stricter in three places: a description is required (Flyway accepts
``V1.sql``), version parts must be plain ASCII digits (Flyway's ``BigInteger`` also accepts
``-1``), and ``U`` undo scripts are rejected rather than skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from components.migrations.model import (
    CONF_SUFFIX,
    JAVA_CHARSETS,
    SEPARATOR,
    SQL_SUFFIX,
    Event,
    Kind,
    ScriptSettings,
    Version,
)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# ``Event.value`` 42 times per file was most of the cost of loading a large directory.
_EVENTS_LONGEST_FIRST = sorted(Event, key=lambda event: -len(event.value))
_EVENT_NAMES = tuple(event.value for event in _EVENTS_LONGEST_FIRST)
_EVENT_BY_NAME = {event.value: event for event in Event}


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
