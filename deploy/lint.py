"""Lint the migrations against the stacks that will run them: the checks CI runs.

    python -m deploy.lint [DIR] [--stack STACK] [--out-of-order] [--no-squawk] [--released]
        [--since REF] [--format github]

Naming, encodings, the lock and Flyway placeholders cover every file; squawk reads only what
is not released yet (not in the lock, or, with --since, not in the lock as committed at REF),
each script as Flyway sends it, with the stack's placeholder values. Placeholders are checked
against the committed stack files of the project holding DIR (read as every tool reads them):
STACK's with --stack, else every stack's, so a placeholder any stack leaves without a value is
reported with the stacks concerned. A stack file that cannot be read is a problem too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from components.migrations import MigrationError, MigrationSet, Problem, lint, scan_directory
from components.migrations.lint import not_released
from components.migrations.lock import Lock, lock_path, parse_lock, read_lock
from components.migrations.placeholders import StackPlaceholders
from components.migrations.report import format_problem, summary
from components.settings import SettingsError
from components.settings.stackfile import read_stack_file, stack_names
from deploy.engine import ROOT
from deploy.history import missing_lock_problems

MIGRATIONS = ROOT / "database" / "migrations"
STACK_RULE = "stack"


def project_root(directory: Path) -> Path:
    """The project holding `directory` (the folder with Pulumi.yaml above it), else this one."""
    for folder in (directory.resolve(), *directory.resolve().parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return ROOT


def stack_placeholders(
    root: Path, stack: str | None
) -> tuple[list[StackPlaceholders], list[Problem]]:
    """What each stack gives the placeholders, and a problem per stack file that is wrong.

    A stack whose file cannot be read gives nothing to check against (its problems say why);
    only a project without any stack file is checked as Flyway's defaults would run it."""
    stacks = [stack] if stack is not None else stack_names(root)
    given: list[StackPlaceholders] = []
    problems: list[Problem] = []
    for name in stacks:
        try:
            settings = read_stack_file(root, name).settings
        except SettingsError as error:
            source = (root / (error.source or f"stacks/Pulumi.{name}.yaml")).as_posix()
            problems.extend(Problem(source, p, "", rule=STACK_RULE) for p in error.problems)
            continue
        given.append(settings.flyway.given_placeholders(name))
    return (given if stacks else [StackPlaceholders()]), problems


def released_at(directory: Path, ref: str) -> Lock:
    """The lock as committed at git `ref` (none there: nothing was released)."""
    path = lock_path(directory).resolve()
    top = Path(_git(path.parent, "rev-parse", "--show-toplevel").strip()).resolve()
    relative = path.relative_to(top).as_posix()
    if not _git(top, "ls-tree", "--name-only", ref, "--", relative).strip():
        return Lock()
    return parse_lock(_git(top, "show", f"{ref}:{relative}"))


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


class GitError(RuntimeError):
    """--since named something git cannot show."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.lint", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=None, metavar="DIR")
    parser.add_argument("--stack", default=None, help="this stack's file only (default: all)")
    parser.add_argument("--out-of-order", action="store_true")
    parser.add_argument("--no-squawk", dest="squawk", action="store_false")
    parser.add_argument(
        "--released", action="store_true", help="also fail on migrations missing from the lock"
    )
    parser.add_argument(
        "--since",
        default=None,
        metavar="REF",
        help="squawk what is not in the lock as committed at this git ref (a change's base)",
    )
    parser.add_argument("--format", choices=("text", "github"), default="text")
    args = parser.parse_args(argv)
    directory: Path = args.directory or _default_directory()
    root = project_root(directory)
    if args.stack is not None and args.stack not in stack_names(root):
        print(f"error: no stack file stacks/Pulumi.{args.stack}.yaml", file=sys.stderr)
        return 2
    try:
        released = released_at(directory, args.since) if args.since else None
    except (GitError, MigrationError) as error:
        print(f"error: --since {args.since}: {error}", file=sys.stderr)
        return 2
    stacks, stack_problems = stack_placeholders(root, args.stack)
    # What the files hold, as Flyway lists them (the lint names what is wrong with them).
    migration_set = MigrationSet(scan_directory(directory)[0])
    missing = missing_lock_problems(directory, migration_set, out_of_order=args.out_of_order)
    if missing is not None:
        return _report([], missing, root, directory, args.format)
    problems: list[Problem] = []
    try:
        problems += lint(
            directory,
            out_of_order=args.out_of_order,
            squawk=args.squawk,
            require_released=args.released,
            placeholders=stacks,
            released=released,
        )
    except MigrationError as error:
        problems += list(error.problems)
    if stack_problems or problems:
        return _report(stack_problems, problems, root, directory, args.format)
    lock = released if released is not None else read_lock(directory) or Lock()
    new = len(not_released(migration_set, lock))
    judged = f"; squawk read the {new} not yet released" if args.squawk else ""
    print(f"{directory.as_posix()}: OK ({summary(migration_set)}{judged})")
    return 0


def _report(
    stack_problems: list[Problem],
    problems: list[Problem],
    root: Path,
    directory: Path,
    style: str,
) -> int:
    """Each problem on its line: a stack file's from the project, a migration's from DIR."""
    for problem in stack_problems:
        print(format_problem(problem, Path(os.path.relpath(root)), style))
    for problem in problems:
        print(format_problem(problem, directory, style))
    count = len(stack_problems) + len(problems)
    print(f"{count} problem(s) in {directory.as_posix()}", file=sys.stderr)
    return 1


def _default_directory() -> Path:
    try:
        return MIGRATIONS.relative_to(Path.cwd())
    except ValueError:
        return MIGRATIONS


if __name__ == "__main__":
    sys.exit(main())
