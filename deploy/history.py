"""The lock file as version control last knew it: a deleted lock must not let an edited
released migration through, nor lead anyone to lock the edit in."""

from __future__ import annotations

import subprocess
from pathlib import Path

from components.migrations import (
    LOCK_FILE_NAME,
    Lock,
    MigrationError,
    MigrationSet,
    Problem,
    check_lock,
    parse_lock,
)


def committed_lock(directory: Path) -> tuple[str, Lock] | None:
    """(commit, lock) of the newest commit that holds `directory`'s lock; None outside a
    repository or when no commit ever held one."""
    path = directory / LOCK_FILE_NAME
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--diff-filter=AM", "--", str(path)],
            cwd=directory if directory.is_dir() else Path(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not commit:
            return None
        relative = subprocess.run(
            ["git", "ls-files", "--full-name", "--error-unmatch", str(path)],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip() or _relative_to_top(directory, path)
        text = subprocess.run(
            ["git", "show", f"{commit}:{relative}"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    try:
        return commit, parse_lock(text)
    except MigrationError:
        return None


def _relative_to_top(directory: Path, path: Path) -> str:
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return path.resolve().relative_to(Path(top).resolve()).as_posix()


def missing_lock_problems(
    directory: Path, migration_set: MigrationSet, out_of_order: bool
) -> list[Problem] | None:
    """When the lock file is gone but version control has it: that, and every released
    migration the files no longer match. None when the lock is there or never was."""
    if (directory / LOCK_FILE_NAME).exists():
        return None
    found = committed_lock(directory)
    if found is None:
        return None
    commit, lock = found
    restore = f"git checkout {commit[:12]} -- {(directory / LOCK_FILE_NAME).as_posix()}"
    problems = [
        Problem(
            LOCK_FILE_NAME,
            f"is missing, but commit {commit[:12]} has it: without it an edited released "
            "migration would pass",
            f"Restore it: {restore}. Do not run make migrations-lock: it would lock in "
            "whatever the files are now. (Replacing the history with another that a "
            "database already applied? Adopt it: make migrations-adopt STACK=<stack>.)",
        )
    ]
    problems.extend(check_lock(migration_set, lock, out_of_order, directory))
    return problems
