"""Command line for the migrations directory, the same checks CI and the Pulumi program run.

    python -m components.migrations new "add trade index" [--dir DIR]
    python -m components.migrations lock [DIR] [--out-of-order]
    python -m components.migrations unlock FILE [--dir DIR]
    python -m components.migrations relock FILE [--dir DIR]
    python -m components.migrations list [DIR]

DIR defaults to database/migrations of this repository (or of the current directory).
The lint, which also reads the stack files, is tooling above this package:
`python -m deploy.lint` (`make migrations-lint`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from components.migrations.lock import lock_path, relock, unlock, update_lock
from components.migrations.model import (
    Kind,
    MigrationError,
    MigrationSet,
    next_version,
)
from components.migrations.report import format_problem
from components.migrations.scan import (
    NO_STATEMENT,
    load_migration_set,
    scan_directory,
)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = Path("database") / "migrations"
_DESCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,99}")


class UsageError(Exception):
    """A bad command line argument, reported without a stack trace."""


def default_directory() -> Path:
    """database/migrations of this repository, else of the current directory."""
    for base in (REPOSITORY_ROOT, Path.cwd()):
        candidate = base / MIGRATIONS
        if candidate.is_dir():
            try:
                return candidate.relative_to(Path.cwd())
            except ValueError:
                return candidate
    return MIGRATIONS


def file_name_part(description: str) -> str:
    """The description as it appears in a file name; UsageError if it would make a bad one."""
    words = description.split()
    name = "_".join(words)
    if "__" in name:
        raise UsageError(
            f"description {description!r} cannot name a migration file: it would contain "
            "'__', which Flyway reads as the end of the version. Use a single '_' or a space "
            f"(e.g. {'_'.join(part for part in name.split('_') if part)!r})"
        )
    if not _DESCRIPTION.fullmatch(" ".join(words)):
        raise UsageError(
            f"description {description!r} cannot name a migration file: use 1-100 letters, "
            "digits, spaces, '-' and '_', starting with a letter or digit"
        )
    return name


def _new(args: argparse.Namespace) -> int:
    name = file_name_part(args.description)
    directory: Path = args.directory
    # A migration still being written (comments alone) does not stop the next one.
    files, problems = scan_directory(directory)
    blocking = [problem for problem in problems if problem.rule != NO_STATEMENT]
    if blocking:
        raise MigrationError(blocking)
    version = next_version(MigrationSet(files))
    path = directory / f"V{version}__{name}.sql"
    header = (
        f"-- V{version}: {' '.join(args.description.split())}\n"
        "-- Flyway applies this once, in one transaction. Once released (locked), never edit\n"
        "-- it: put further changes in a new migration.\n"
        "-- Write the SQL below (a file of comments alone is refused), starting with\n"
        "--   SET LOCAL lock_timeout = '10s';\n"
        "--   SET LOCAL statement_timeout = '5min';\n\n"
    )
    with path.open("x", encoding="utf-8", newline="\n") as handle:
        handle.write(header)
    print(path.as_posix())
    return 0


def _lock(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    added = update_lock(directory, out_of_order=args.out_of_order)
    target = lock_path(directory).as_posix()
    if not added:
        print(f"{target} is up to date")
        return 0
    print(f"{target}: locked {len(added)} migration(s)")
    for entry in added:
        print(f"  {entry.script}")
    return 0


def _unlock(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    entry = unlock(directory, _script_argument(directory, args.file))
    print(
        f"{lock_path(directory).as_posix()}: unlocked {entry.script}. Only do this for a "
        "migration no database has applied (check flyway_schema_history of every stack); "
        "fix it, then run make migrations-lock and commit both."
    )
    return 0


def _relock(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    entry = relock(directory, _script_argument(directory, args.file))
    print(
        f"{lock_path(directory).as_posix()}: {entry.script} released again with checksum "
        f"{entry.checksum}. Only for a file put back to what a database applied; commit the "
        "file and the lock together."
    )
    return 0


def _script_argument(directory: Path, given: str) -> str:
    """A migration given relative to the directory, or as a path from here (what lint
    prints)."""
    script = Path(given)
    if script.is_absolute() or (not (directory / script).exists() and script.exists()):
        script = Path(os.path.relpath(script.resolve(), directory.resolve()))
    return script.as_posix()


def _list(args: argparse.Namespace) -> int:
    migration_set = load_migration_set(args.directory)
    rows = [("TYPE", "VERSION", "DESCRIPTION", "CHECKSUM", "PATH")]
    rows += [
        (
            file.kind.value,
            file.version.text if file.version else "",
            file.description,
            str(file.checksum),
            file.path,
        )
        for file in migration_set
        if file.kind is not Kind.CONFIG
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[4]]))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.migrations",
        description="Check, create, lock and list Flyway migrations.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def directory_argument(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "directory",
            nargs="?",
            type=Path,
            default=None,
            metavar="DIR",
            help="migrations directory (default: database/migrations)",
        )

    new_command = commands.add_parser("new", help="create the next versioned migration")
    new_command.add_argument("description")
    new_command.add_argument("--dir", dest="directory", type=Path, default=None, metavar="DIR")
    new_command.set_defaults(run=_new)

    lock_command = commands.add_parser("lock", help="record new migrations as released")
    directory_argument(lock_command)
    lock_command.add_argument("--out-of-order", action="store_true")
    lock_command.set_defaults(run=_lock)

    unlock_command = commands.add_parser(
        "unlock", help="release a fix for the newest migration, when no database applied it"
    )
    unlock_command.add_argument("file", help="the migration, e.g. V5__add_fills.sql")
    unlock_command.add_argument("--dir", dest="directory", type=Path, default=None, metavar="DIR")
    unlock_command.set_defaults(run=_unlock)

    relock_command = commands.add_parser(
        "relock",
        help="record a released migration again, put back to what a database applied",
    )
    relock_command.add_argument("file", help="the migration, e.g. V5__add_fills.sql")
    relock_command.add_argument("--dir", dest="directory", type=Path, default=None, metavar="DIR")
    relock_command.set_defaults(run=_relock)

    list_command = commands.add_parser("list", help="show migrations in Flyway's order")
    directory_argument(list_command)
    list_command.set_defaults(run=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; problems and errors are printed, never raised."""
    args = _parser().parse_args(argv)
    directory: Path = args.directory or default_directory()
    args.directory = directory
    try:
        result: int = args.run(args)
    except MigrationError as error:
        for problem in error.problems:
            print(format_problem(problem, directory), file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error.strerror or error}: {error.filename or ''}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
