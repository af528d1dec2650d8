"""Problems as a person or a CI annotation reads them, and a set's one-line summary (pure)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from components.migrations.model import (
    MigrationSet,
    Problem,
)


def _located(problem: Problem, directory: Path) -> Problem:
    """The problem's path as the reader finds the file: outside the directory, from here."""
    if Path(problem.path).is_absolute():
        path = Path(problem.path)
        if path.is_relative_to(Path.cwd()):
            path = path.relative_to(Path.cwd())
    else:
        path = directory if problem.path == "." else directory / problem.path
    return dataclasses.replace(problem, path=path.as_posix())


def _github_escape(text: str, *, is_property: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if is_property else text


def format_problem(problem: Problem, directory: Path, style: str = "text") -> str:
    """One line per problem: plain text, or a GitHub Actions error annotation."""
    located = _located(problem, directory)
    if style != "github":
        return str(located)
    fields = (
        [] if problem.path == "." else [f"file={_github_escape(located.path, is_property=True)}"]
    )
    if problem.line is not None:
        fields.append(f"line={problem.line}")
    fields.append(f"title={_github_escape(problem.rule or 'migrations', is_property=True)}")
    return f"::error {','.join(fields)}::{_github_escape(problem.detail)}"


def summary(migration_set: MigrationSet) -> str:
    counts = ", ".join(
        f"{len(files)} {label}"
        for label, files in (
            ("versioned", migration_set.versioned),
            ("repeatable", migration_set.repeatable),
            ("baseline", migration_set.baseline),
            ("callback", migration_set.callbacks),
        )
        if files
    )
    highest = migration_set.highest_version
    return f"{counts or 'no migrations'}; highest version {highest or 'none'}"
