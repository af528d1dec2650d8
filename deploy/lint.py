"""Lint the migrations against the stacks that will run them: the checks CI runs.

    python -m deploy.lint [DIR] [--stack STACK] [--out-of-order] [--no-squawk] [--released]
        [--format github]

Naming, encodings, the lock, squawk, and Flyway placeholders, which are checked against the
committed stack files of the project holding DIR (read as every tool reads them): STACK's
with --stack, else every stack's, so a placeholder any stack leaves without a value is
reported with the stacks concerned. A stack file that cannot be read is a problem too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from components.migrations import MigrationError, Problem, lint, load_migration_set
from components.migrations.placeholders import StackPlaceholders
from components.migrations.report import format_problem, summary
from components.settings import SettingsError
from components.settings.stackfile import read_stack_file, stack_names
from deploy.engine import ROOT
from deploy.history import missing_lock_problems

MIGRATIONS = ROOT / "database" / "migrations"


def project_root(directory: Path) -> Path:
    """The project holding `directory` (the folder with Pulumi.yaml above it), else this one."""
    for folder in (directory.resolve(), *directory.resolve().parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return ROOT


def stack_placeholders(
    root: Path, stack: str | None
) -> tuple[list[StackPlaceholders], list[Problem]]:
    """What each stack gives the placeholders, and a problem per stack file that is wrong."""
    stacks = [stack] if stack is not None else stack_names(root)
    given: list[StackPlaceholders] = []
    problems: list[Problem] = []
    for name in stacks:
        try:
            settings = read_stack_file(root, name).settings
        except SettingsError as error:
            source = (root / (error.source or f"stacks/Pulumi.{name}.yaml")).as_posix()
            problems.extend(Problem(source, p, "", rule="stack") for p in error.problems)
            continue
        given.append(settings.flyway.given_placeholders(name))
    return given or [StackPlaceholders()], problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.lint", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=None, metavar="DIR")
    parser.add_argument("--stack", default=None, help="this stack's file only (default: all)")
    parser.add_argument("--out-of-order", action="store_true")
    parser.add_argument("--no-squawk", dest="squawk", action="store_false")
    parser.add_argument(
        "--released", action="store_true", help="also fail on migrations missing from the lock"
    )
    parser.add_argument("--format", choices=("text", "github"), default="text")
    args = parser.parse_args(argv)
    directory: Path = args.directory or _default_directory()
    root = project_root(directory)
    if args.stack is not None and args.stack not in stack_names(root):
        print(f"error: no stack file stacks/Pulumi.{args.stack}.yaml", file=sys.stderr)
        return 2
    stacks, problems = stack_placeholders(root, args.stack)
    try:
        missing = missing_lock_problems(
            directory, load_migration_set(directory), out_of_order=args.out_of_order
        )
    except MigrationError:
        missing = None  # the lint below names what is wrong with the files
    if missing is not None:
        return _report(missing, directory, args.format)
    try:
        problems += lint(
            directory,
            out_of_order=args.out_of_order,
            squawk=args.squawk,
            require_released=args.released,
            placeholders=stacks,
        )
    except MigrationError as error:
        problems += list(error.problems)
    if problems:
        return _report(problems, directory, args.format)
    print(f"{directory.as_posix()}: OK ({summary(load_migration_set(directory))})")
    return 0


def _report(problems: list[Problem], directory: Path, style: str) -> int:
    for problem in problems:
        print(format_problem(problem, directory, style))
    print(f"{len(problems)} problem(s) in {directory.as_posix()}", file=sys.stderr)
    return 1


def _default_directory() -> Path:
    try:
        return MIGRATIONS.relative_to(Path.cwd())
    except ValueError:
        return MIGRATIONS


if __name__ == "__main__":
    sys.exit(main())
