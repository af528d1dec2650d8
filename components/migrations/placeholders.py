"""Flyway placeholders: where scripts use them, which would get no value, and what replacing
them does to a repeatable migration's checksum.

Flyway 11 (checked against the source and the command line of 11.20.3) replaces placeholders
while it reads a script, character by character, before any SQL parsing:

- everywhere: in comments, string literals and dollar-quoted bodies alike;
- ``${`` opens a placeholder and the first ``}`` after it closes it, whatever lies between
  (spaces and line breaks included); when none does, the rest of the script but its last
  character is taken for the name (so ``-- ${x`` and a final line break pass when ``x`` has
  a value), and an empty rest fails;
- its reader looks ahead one character after a ``$``; when that is not ``{``, both characters
  pass unexamined, so ``$${x}`` stays as written while ``${x}`` and ``$$${x}`` are replaced;
- names are matched case-insensitively; ``flyway:`` names are Flyway's own, any other
  ``flyway:`` name fails with "Failed to populate value for default placeholder";
- a script's ``.sql.conf`` may turn replacement on or off for that script alone
  (``placeholderReplacement``), overriding the global setting;
- a versioned or baseline script's checksum is taken from the file as written; a repeatable
  script's checksum, when replacement applies to it, from the text after replacement.

A versioned script with a placeholder that has no value fails only when Flyway reaches it,
after the migrations before it were applied; this module finds it at preview time instead.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from components.migrations.model import (
    Kind,
    MigrationFile,
    MigrationSet,
    Problem,
    Version,
    flyway_checksum,
)

PREFIX: Final = "${"
SUFFIX: Final = "}"
SEPARATOR: Final = ":"
REPLACEMENT_KEY: Final = "flywayPlaceholderReplacement"
PLAIN_KEY: Final = "flywayPlaceholders"
SECRET_KEY: Final = "flywaySecretPlaceholders"  # noqa: S105 (a config key)
ENV_PREFIX: Final = "FLYWAY_PLACEHOLDERS_"
RULE: Final = "placeholder"

BUILT_INS: Final = (
    "flyway:defaultSchema",
    "flyway:user",
    "flyway:database",
    "flyway:timestamp",
    "flyway:filename",
    "flyway:workingDirectory",
    "flyway:table",
    "flyway:environment",
)
"""The placeholders Flyway 11.20.3 fills itself (``ParsingContext``)."""
_BUILT_IN_KEYS: Final = frozenset(name.lower() for name in BUILT_INS)

_NAME: Final = re.compile(r"[A-Za-z0-9_]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SCRIPTS: Final = (Kind.VERSIONED, Kind.REPEATABLE, Kind.BASELINE, Kind.CALLBACK)


def name_problem(name: str) -> str | None:
    """Why a placeholder name cannot be given a value through the Job, or None.

    Values reach Flyway as environment variables ``FLYWAY_PLACEHOLDERS_<NAME>``, which Flyway
    lower-cases into the placeholder's name (and looks names up case-insensitively). Flyway's
    command line refuses such a variable whose name holds a '.', and shells drop variables
    whose names hold a '-' or anything else outside letters, digits and '_'.
    """
    if not _NAME.fullmatch(name) or not name.isascii():
        return (
            "cannot be passed to Flyway: a placeholder name given a value must consist of "
            "ASCII letters, digits and '_' only (it becomes the environment variable "
            f"{ENV_PREFIX}<NAME>)"
        )
    return None


def env_name(name: str) -> str:
    """The environment variable that gives placeholder `name` its value."""
    return ENV_PREFIX + name.upper()


@dataclass(frozen=True)
class Occurrence:
    """One placeholder in a script, as Flyway's reader finds it."""

    name: str
    line: int
    start: int
    end: int
    """Offsets of ``${`` and just after the closing ``}`` (the end of the text if none)."""
    closed: bool = True

    @property
    def empty(self) -> bool:
        """An unclosed ``${`` with nothing after it, which Flyway cannot read at all."""
        return not self.closed and self.end - self.start <= len(PREFIX)


def find_placeholders(text: str) -> list[Occurrence]:
    """Every placeholder Flyway would try to replace in `text`, in order.

    Mirrors ``PlaceholderReplacingReader`` with the default prefix and suffix (see the module
    docstring for the rules). A BOM is ignored, as Flyway strips it first.
    """
    found: list[Occurrence] = []
    position, end = (1 if text.startswith("\ufeff") else 0), len(text)
    while position < end:
        dollar = text.find("$", position)
        if dollar < 0 or dollar + 1 >= end:
            break
        if text[dollar + 1] != "{":
            position = dollar + 2
            continue
        close = text.find(SUFFIX, dollar + 2)
        line = _line_of(text, dollar)
        if close < 0:
            found.append(Occurrence(text[dollar + 2 : end - 1], line, dollar, end, closed=False))
            break
        found.append(Occurrence(text[dollar + 2 : close], line, dollar, close + 1))
        position = close + 1
    return found


def _line_of(text: str, offset: int) -> int:
    return len(_LINE_BREAK.findall(text, 0, offset)) + 1


def replaces(file: MigrationFile, replacement: bool) -> bool:
    """Whether Flyway replaces placeholders in this script: its .sql.conf decides, else the
    global setting."""
    own = file.settings.placeholder_replacement if file.settings is not None else None
    return replacement if own is None else own


def is_built_in(name: str) -> bool:
    return name.lower() in _BUILT_IN_KEYS


def _text(file: MigrationFile) -> str:
    return file.content.decode(file.encoding)


def _may_use_placeholders(file: MigrationFile) -> bool:
    """False when the bytes alone show no ``${``: every codec the model reads but UTF-16
    encodes ASCII as itself, so most files are ruled out without decoding them."""
    return file.encoding.startswith("utf-16") or PREFIX.encode("ascii") in file.content


def _shown(name: str) -> str:
    return (PREFIX + name + SUFFIX).replace("\r", "\\r").replace("\n", "\\n")


@dataclass(frozen=True)
class StackPlaceholders:
    """What one stack gives Flyway: replacement on or off, the placeholder names it gives
    values to (plain or secret), and the plain values (secret ones are never read).
    `stack` names it in messages and commands."""

    replacement: bool = True
    names: Collection[str] = ()
    stack: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    baseline: Version | None = None
    """Set when the stack baselines (flywayBaselineOnMigrate): its database holds the schema
    of this version already, so Flyway never runs the versioned scripts up to it there, and
    never reads their placeholders (checked with Flyway 11.20.3)."""

    def runs(self, file: MigrationFile) -> bool:
        """Whether Flyway may run `file` on this stack's database."""
        if self.baseline is None or file.version is None:
            return True
        return file.kind not in (Kind.VERSIONED, Kind.BASELINE) or file.version > self.baseline


MORE_SHOWN: Final = 3
"""How many places a placeholder's line names before "and N more"."""


def unresolved_placeholders(
    files: Iterable[MigrationFile], stacks: Sequence[StackPlaceholders]
) -> list[Problem]:
    """Every placeholder Flyway would fail on in some stack, in the scripts it runs there, as
    a report to act on.

    One problem per placeholder without a value (the stacks it lacks one in, its uses counted
    with the first few places, the command that gives it one), located at its first use in
    Flyway's order; one per place Flyway cannot read at all (never closed, an unknown
    ``flyway:`` name, a name no value can reach); and, when any has no value, a last line
    summing them up (path ".") with the ways to turn replacement off.
    """
    given = [{name.lower() for name in s.names} for s in stacks]
    missing: dict[tuple[str, tuple[int, ...]], list[tuple[MigrationFile, Occurrence]]] = {}
    report: list[Problem | tuple[str, tuple[int, ...]]] = []
    for file in MigrationSet(tuple(files)):
        if file.kind not in _SCRIPTS or not _may_use_placeholders(file):
            continue
        replacing = [
            i for i, s in enumerate(stacks) if s.runs(file) and replaces(file, s.replacement)
        ]
        if not replacing:
            continue
        for found in find_placeholders(_text(file)):
            failing = tuple(i for i in replacing if _fails(found, given[i]))
            if not failing:
                continue
            if not _wants_a_value(found):
                report.append(_problem(file, found, [stacks[i] for i in failing]))
                continue
            key = (found.name.lower(), failing)
            if key not in missing:
                report.append(key)  # its place: the first use, in Flyway's order
            missing.setdefault(key, []).append((file, found))
    problems = [
        entry
        if isinstance(entry, Problem)
        else _missing_problem(missing[entry], [stacks[i] for i in entry[1]])
        for entry in report
    ]
    if missing:
        problems.append(_summary(missing))
    return problems


def _wants_a_value(found: Occurrence) -> bool:
    """A placeholder that a value would satisfy (the others need a fix in the script)."""
    name = found.name
    return (
        found.closed
        and not name.lower().startswith("flyway" + SEPARATOR)
        and name_problem(name) is None
    )


def _fails(found: Occurrence, given: Collection[str]) -> bool:
    if found.empty:
        return True
    name = found.name.lower()
    return name not in given and not is_built_in(name)


def _place(file: MigrationFile, found: Occurrence) -> str:
    return f"{file.path}:{found.line}"


def _missing_problem(
    uses: Sequence[tuple[MigrationFile, Occurrence]], failing: Sequence[StackPlaceholders]
) -> Problem:
    first_file, first = uses[0]
    name, shown = first.name, _shown(first.name)
    names = [s.stack for s in failing if s.stack]
    where = f" in stack {', '.join(names)}" if names else ""
    message = f"uses the placeholder {shown}, which has no value{where}; Flyway would fail here"
    if first_file.kind is Kind.VERSIONED:
        message += ", after applying the migrations before it"
    if len(uses) > 1:
        files = len({file.path for file, _ in uses})
        places = ", ".join(_place(file, found) for file, found in uses[1 : 1 + MORE_SHOWN])
        more = len(uses) - 1 - MORE_SHOWN
        places += f" and {more} more" if more > 0 else ""
        message += f" ({len(uses)} uses in {files} file{'s' * (files != 1)}; also {places})"
    fix = f"Give it a value: {_set_command(name, names)}"
    by_conf = sorted({file.name for file, _ in uses if not any(s.replacement for s in failing)})
    if by_conf:
        fix += "; or remove placeholderReplacement=true from " + ", ".join(
            f"{script}.conf" for script in by_conf
        )
    return Problem(first_file.path, message, fix + ".", line=first.line, rule=RULE)


def _summary(
    missing: Mapping[tuple[str, tuple[int, ...]], Sequence[tuple[MigrationFile, Occurrence]]],
) -> Problem:
    names = len({name for name, _ in missing})
    files = len({file.path for uses in missing.values() for file, _ in uses})
    return Problem(
        ".",
        f"{names} placeholder{'s' * (names != 1)} without a value in {files} "
        f"file{'s' * (files != 1)}",
        "Give each a value with the command on its line, or turn replacement off, so that "
        f"${{...}} text is applied as written: for a stack with `pulumi config set "
        f"{REPLACEMENT_KEY} false --stack <stack>`, for one script with "
        "placeholderReplacement=false in its .sql.conf.",
        rule=RULE,
    )


def _problem(
    file: MigrationFile, found: Occurrence, failing: Sequence[StackPlaceholders]
) -> Problem:
    """A placeholder no value can fix: never closed, an unknown flyway: name, or a name that
    cannot reach Flyway."""
    name, shown = found.name, _shown(found.name)
    names = [s.stack for s in failing if s.stack]
    off = _turn_off(file, any(s.replacement for s in failing), names)
    if not found.closed:
        return Problem(
            file.path,
            f"opens a placeholder {PREFIX} that no {SUFFIX} closes; Flyway would fail the script",
            f"Close it with {SUFFIX}, or {off}.",
            line=found.line,
            rule=RULE,
        )
    if name.lower().startswith("flyway" + SEPARATOR):
        return Problem(
            file.path,
            f"uses {shown}, which is not one of Flyway's built-in placeholders "
            f"({', '.join(BUILT_INS)}); Flyway would fail the script",
            f"Use one of them, or {off}.",
            line=found.line,
            rule=RULE,
        )
    return Problem(
        file.path,
        f"uses the placeholder {shown}, which no value can reach; Flyway would fail here",
        f"Rename it to ASCII letters, digits and '_' (a name like {shown} cannot be given "
        f"a value through the Job), or {off}.",
        line=found.line,
        rule=RULE,
    )


def _stack_flag(stacks: Sequence[str]) -> str:
    return f" --stack {stacks[0]}" if len(stacks) == 1 else (" --stack <stack>" if stacks else "")


def _set_command(name: str, stacks: Sequence[str]) -> str:
    """The command that gives a placeholder a value. The value is not known here, and one
    that reads as a number or true/false is stored typed (and refused) without
    `--type string`, which a string is unharmed by: so it is always there."""
    flag = _stack_flag(stacks)
    return (
        f"`pulumi config set --type string --path '{PLAIN_KEY}.{name}' <value>{flag}` "
        f"(a secret one: `pulumi config set --secret --path '{SECRET_KEY}.{name}' "
        f"<value>{flag}`)"
    )


def _turn_off(file: MigrationFile, replacement: bool, stacks: Sequence[str]) -> str:
    script = file.path.rpartition("/")[2]
    if not replacement:  # on for this script alone, by its .sql.conf
        return f"remove placeholderReplacement=true from {script}.conf"
    return (
        f"turn replacement off with `{REPLACEMENT_KEY}: false` in the stack file "
        f"(`pulumi config set {REPLACEMENT_KEY} false{_stack_flag(stacks)}`), or for this "
        f"script alone with placeholderReplacement=false in {script}.conf"
    )


def as_sent(
    file: MigrationFile, stacks: Sequence[StackPlaceholders]
) -> tuple[str, list[int]] | None:
    """The script as Flyway sends it to PostgreSQL, for a linter, with the line of the file
    each of its lines comes from; None when Flyway sends the file as written.

    Replaced when any of `stacks` replaces in it, with the first plain value a stack gives;
    a placeholder without one (a secret, a built-in, a missing value) becomes a neutral
    identifier, ``placeholder_<name>``, which reads as SQL wherever a value could stand.
    """
    text = _text(file)
    if not any(replaces(file, s.replacement) for s in stacks) or not _may_use_placeholders(file):
        return None
    values: dict[str, str] = {}
    for stack in stacks:
        if replaces(file, stack.replacement):
            for name, value in stack.values.items():
                values.setdefault(name.lower(), value)
    pieces: list[str] = []
    origins = [1]
    line, position = 1, 0
    for found in find_placeholders(text):
        if found.empty:
            break
        before = text[position : found.start]
        for _ in _LINE_BREAK.finditer(before):
            line += 1
            origins.append(line)
        value = values.get(found.name.lower(), _stand_in(found.name))
        origins.extend(found.line for _ in _LINE_BREAK.finditer(value))
        line += len(_LINE_BREAK.findall(text, found.start, found.end))
        pieces += [before, value]
        position = found.end
    rest = text[position:]
    for _ in _LINE_BREAK.finditer(rest):
        line += 1
        origins.append(line)
    pieces.append(rest)
    return "".join(pieces), origins


def _stand_in(name: str) -> str:
    return "placeholder_" + re.sub(r"[^A-Za-z0-9_]", "_", name).lower()


def replace_placeholders(text: str, values: Mapping[str, str]) -> str:
    """`text` as Flyway reads it with these values (names case-insensitive).

    KeyError names a placeholder without a value, or a `${` with nothing after it.
    """
    lowered = {name.lower(): value for name, value in values.items()}
    pieces: list[str] = []
    position = 0
    for found in find_placeholders(text):
        if found.empty:
            raise KeyError(PREFIX)
        pieces += [text[position : found.start], lowered[found.name.lower()]]
        position = found.end
    pieces.append(text[position:])
    return "".join(pieces)


@dataclass(frozen=True)
class Checksum:
    """What Flyway records for a script: its checksum, or why it cannot be shown before the
    run (`value` None)."""

    value: int | None
    withheld: str | None = None


def recorded_checksum(
    file: MigrationFile,
    *,
    replacement: bool,
    values: Mapping[str, str],
    secret_names: Collection[str] = (),
    known_built_ins: Mapping[str, str] | None = None,
) -> Checksum:
    """The checksum Flyway stores in ``flyway_schema_history`` for this script.

    Versioned and baseline scripts, and repeatables that Flyway does not replace in: the
    file's checksum as written. Replaced repeatables: the checksum of the replaced text, when
    every value is known here. It is withheld when the text depends on a secret value (a
    CRC32 of a guessable secret would give it away) or on a built-in Flyway fills at run time
    (``flyway:timestamp``, ``flyway:workingDirectory`` and whatever `known_built_ins`, which
    ``flyway:filename`` always joins, does not give).
    """
    if file.checksum is None or file.kind is not Kind.REPEATABLE:
        return Checksum(file.checksum)
    if not replaces(file, replacement) or not _may_use_placeholders(file):
        return Checksum(file.checksum)
    occurrences = find_placeholders(_text(file))
    if not occurrences:
        return Checksum(file.checksum)
    known = {name.lower(): value for name, value in (known_built_ins or {}).items()}
    known["flyway:filename"] = file.name
    known.update({name.lower(): value for name, value in values.items()})
    secrets = {name.lower() for name in secret_names}
    secret_used = sorted({o.name for o in occurrences if o.name.lower() in secrets})
    if secret_used:
        return Checksum(
            None,
            "depends on the secret placeholder(s) "
            + ", ".join(_shown(name) for name in secret_used)
            + "; Flyway computes it at run time and it is not shown",
        )
    unknown = sorted({o.name for o in occurrences if o.name.lower() not in known})
    if unknown:
        return Checksum(
            None,
            "depends on " + ", ".join(_shown(name) for name in unknown) + ", known only when "
            "Flyway runs",
        )
    return Checksum(flyway_checksum(replace_placeholders(_text(file), known)))
