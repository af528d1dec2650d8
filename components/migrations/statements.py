"""What Flyway will refuse in a script before it sends it: read as Flyway's PostgreSQL parser
reads it (pure).

Flyway splits a script into statements and, for each, decides from its leading keywords
whether it can run in a transaction. With `mixed` off (Flyway's default, which the Job
keeps) a script that holds both kinds fails at deploy, after the migrations before it were
applied. A psql meta-command (`\\i`, `\\set`) is not SQL: Flyway sends it to the server, which
refuses it. The keywords below are those of Flyway 11's PostgreSQLParser; `ALTER TYPE ... ADD
VALUE` is transactional from PostgreSQL 12, the oldest the program deploys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from components.migrations.lock import Lock
from components.migrations.model import (
    Kind,
    MigrationFile,
    MigrationSet,
    Problem,
)

_NON_TRANSACTIONAL: Final = tuple(
    re.compile(pattern)
    for pattern in (
        r"(CREATE|DROP) (DATABASE|TABLESPACE|SUBSCRIPTION)",
        r"ALTER SYSTEM",
        r"(CREATE|DROP)( UNIQUE)? INDEX CONCURRENTLY",
        r"REINDEX( VERBOSE)? (SCHEMA|DATABASE|SYSTEM)",
        r"VACUUM",
        r"DISCARD ALL",
    )
)
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text without comments, and the line it starts on."""

    text: str
    line: int

    @property
    def keywords(self) -> str:
        """Its leading words, upper-cased and single-spaced, as Flyway simplifies them."""
        head = re.split(r"[('\"$]", self.text, maxsplit=1)[0]
        return " ".join(w.upper() for w in _WORD.findall(head)[:5])

    @property
    def transactional(self) -> bool:
        words = self.keywords
        return not any(
            pattern.match(words) and _whole_words(pattern, words) for pattern in _NON_TRANSACTIONAL
        )

    @property
    def meta_command(self) -> str | None:
        """The psql meta-command this statement is (`\\i`, `\\set`...), if it is one."""
        stripped = self.text.lstrip()
        if stripped.startswith("\\"):
            return stripped.split(None, 1)[0]
        return None


def _whole_words(pattern: re.Pattern[str], words: str) -> bool:
    """The pattern ends at a word boundary (`VACUUM`, not `VACUUMED`)."""
    found = pattern.match(words)
    return found is not None and (found.end() == len(words) or words[found.end()] == " ")


def statements(text: str) -> list[Statement]:
    """The script split as PostgreSQL (and Flyway) split it: at semicolons outside quotes,
    dollar quotes and comments; a psql meta-command ends at its line's end."""
    found: list[Statement] = []
    current: list[str] = []
    start_line = line = 1
    i = 0
    while i < len(text):
        empty = not "".join(current).strip()
        if empty:
            start_line = line
        end, keep = _span(text, i, at_start=empty)
        if end is None:
            if text[i] == ";":
                _finish(found, current, start_line)
            else:
                current.append(text[i])
            line += text[i] == "\n"
            i += 1
            continue
        line += text.count("\n", i, end)
        current.append(keep)
        if keep.startswith("\\"):  # a meta-command is a statement of its own
            _finish(found, current, start_line)
        i = end
    _finish(found, current, start_line)
    return found


def _finish(found: list[Statement], current: list[str], line: int) -> None:
    body = "".join(current).strip()
    if body:
        found.append(Statement(body, line))
    current.clear()


def _span(text: str, i: int, *, at_start: bool) -> tuple[int | None, str]:
    """A comment, quoted text, dollar-quoted body or meta-command starting at `i`: where it
    ends and what of it the statement keeps; (None, "") for an ordinary character."""
    char = text[i]
    if char == "\\" and at_start:
        end = text.find("\n", i)
        end = len(text) if end == -1 else end
        return end, text[i:end]
    if text.startswith("--", i):
        end = text.find("\n", i)
        return (len(text) if end == -1 else end), ""
    if text.startswith("/*", i):
        return _block_comment_end(text, i), " "
    if char in "'\"":
        end = _quoted_end(text, i, char)
        return end, text[i:end]
    tag = _DOLLAR_TAG.match(text, i) if char == "$" else None
    if tag is not None:
        close = text.find(tag.group(0), tag.end())
        end = len(text) if close == -1 else close + len(tag.group(0))
        return end, text[i:end]
    return None, ""


def _block_comment_end(text: str, start: int) -> int:
    """After a /* comment */, which PostgreSQL nests."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _quoted_end(text: str, start: int, quote: str) -> int:
    """After a quoted literal or identifier ('' or "" inside stand for the quote)."""
    i = start + 1
    escapes = quote == "'" and start > 0 and text[start - 1] in "eE"
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if text.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def flyway_refusals(file: MigrationFile) -> Iterator[Problem]:
    """What Flyway would refuse in this script at deploy."""
    if file.kind is Kind.CONFIG:
        return
    parsed = statements(file.content.decode(file.encoding, errors="replace"))
    for statement in parsed:
        command = statement.meta_command
        if command is not None:
            yield Problem(
                file.path,
                f"holds the psql meta-command {command}, which is not SQL: Flyway sends it to "
                "the server, which refuses it",
                "Write it as SQL (for \\i, put the included statements in the migration "
                "itself; for \\set, use a Flyway placeholder).",
                line=statement.line,
            )
    if file.settings is not None and file.settings.execute_in_transaction is False:
        return
    outside = [s for s in parsed if s.meta_command is None and not s.transactional]
    inside = [s for s in parsed if s.meta_command is None and s.transactional]
    if outside and inside:
        first = outside[0]
        yield Problem(
            file.path,
            f"mixes {first.keywords} (line {first.line}), which cannot run in a transaction, "
            f"with statements that must (line {inside[0].line}); Flyway refuses such a script "
            "at deploy",
            "Move the statement into a migration of its own (Flyway runs a script that holds "
            f"only such statements outside a transaction), or add {file.path.rsplit('/', 1)[-1]}"
            ".conf with executeInTransaction=false if none of it needs a transaction.",
            line=first.line,
        )


def pending_refusals(migration_set: MigrationSet, lock: Lock | None) -> list[Problem]:
    """Flyway's refusals in the scripts it will still run: repeatables and callbacks, and
    versioned migrations not yet released. Released ones are history, applied already."""
    released = {entry.script for entry in lock.entries} if lock is not None else set()
    return [
        problem
        for file in migration_set.files
        if file.path not in released
        for problem in flyway_refusals(file)
    ]
