"""Every check a migrations directory must pass before it is deployed, in one list.

Naming, encodings and duplicates (model), placeholders (placeholders), the lock (lock) and
the ConfigMap size limit (packing) cover every file: they predict what Flyway would refuse
on any database, a new one included, which runs the whole history. Squawk's PostgreSQL rules
for locking and unsafe DDL judge only what is not released yet: a released migration is
history (applied somewhere, its checksum fixed), so a finding there could only be fixed by
an edit Flyway refuses. A script is linted as Flyway sends it, placeholders replaced. Flyway
wraps each PostgreSQL migration in a transaction, so scripts are linted with
``--assume-in-transaction`` unless their ``.sql.conf`` says ``executeInTransaction=false``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from components.migrations.lock import Lock, check_lock, not_rejudged, read_lock, unreleased
from components.migrations.model import (
    Kind,
    MigrationError,
    MigrationFile,
    MigrationSet,
    Problem,
)
from components.migrations.packing import pack
from components.migrations.placeholders import (
    StackPlaceholders,
    as_sent,
    unresolved_placeholders,
)
from components.migrations.scan import (
    scan_directory,
)
from components.migrations.statements import pending_refusals

SQUAWK_CONFIG = ".squawk.toml"
_INSTALL_FIX = "Install the development tools: pip install -r requirements-dev.txt."
_GLOB_CHARACTERS = frozenset("*?[]{}!")
_BATCH = 200
_NO_FILES = "Failed to find files"
"""squawk's error when its config's excluded_paths leave none of the files it was given."""
_LINTED = (Kind.VERSIONED, Kind.REPEATABLE)


def lint(
    directory: Path,
    out_of_order: bool = False,
    squawk: bool = True,
    *,
    require_released: bool = False,
    squawk_config: Path | None = None,
    placeholders: Sequence[StackPlaceholders] = (StackPlaceholders(),),
    released: Lock | None = None,
) -> list[Problem]:
    """All problems of a migrations directory; empty means ready to deploy.

    ``require_released`` adds every migration missing from the lock: what CI checks, so a
    merged migration is always a released one.
    ``squawk_config`` defaults to the ``.squawk.toml`` of the repository holding the
    directory (found by walking up to the folder with Pulumi.yaml or .git).
    ``placeholders``: what each stack gives Flyway; a placeholder without a value in any of
    them is a problem (the default: replacement on, no values). Their plain values replace
    the placeholders in what squawk reads.
    ``released``: the lock whose content squawk does not judge again: None (the default) for
    the directory's own, or another (the lock of the change's base, say; ``Lock()`` judges
    every script).
    """
    files, found = scan_directory(directory)
    try:
        lock = read_lock(directory)
    except MigrationError as error:
        lock, found = None, (*found, *error.problems)
    problems = not_rejudged(found, files, lock)
    problems.extend(unresolved_placeholders(files, placeholders))
    if not problems:
        migration_set = MigrationSet(files)
        problems.extend(check_lock(migration_set, lock, out_of_order, directory))
        problems.extend(pending_refusals(migration_set, lock))
        if require_released:
            problems.extend(unreleased(migration_set, lock))
        try:
            pack(migration_set)
        except MigrationError as error:
            problems.extend(error.problems)
    if squawk:
        scripts = not_released(files, released if released is not None else lock or Lock())
        config = squawk_config if squawk_config is not None else find_squawk_config(directory)
        problems.extend(run_squawk(directory, scripts, config, placeholders))
    return problems


def not_released(files: Iterable[MigrationFile], released: Lock) -> list[MigrationFile]:
    """The scripts squawk reads: versioned and repeatable migrations not released."""
    return [file for file in files if file.kind in _LINTED and not released.released(file)]


def find_squawk_config(directory: Path) -> Path | None:
    """The repository's .squawk.toml: the nearest one up to the repository root."""
    for folder in (directory.resolve(), *directory.resolve().parents):
        if (folder / SQUAWK_CONFIG).is_file():
            return folder / SQUAWK_CONFIG
        if (folder / "Pulumi.yaml").is_file() or (folder / ".git").exists():
            return None
    return None


def find_squawk() -> Path | None:
    """squawk from this interpreter's environment first (what pip installed), then PATH."""
    beside = Path(sys.executable).parent / ("squawk.exe" if os.name == "nt" else "squawk")
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("squawk")
    return Path(found) if found else None


def run_squawk(
    directory: Path,
    scripts: Sequence[MigrationFile],
    config: Path | None,
    placeholders: Sequence[StackPlaceholders] = (),
) -> list[Problem]:
    """squawk's violations as Problems (one per file, line and rule), sorted by file and line.

    squawk runs from the config's folder (the repository root), as it would by hand, so the
    config's excluded_paths mean the same. A script is read as Flyway sends it: where
    `placeholders` replace in it, the replaced text is fed on stdin (and squawk's lines are
    mapped back to the file's), as are files squawk cannot take as a path argument (not
    UTF-8, or glob characters in the name), decoded with their encoding.
    """
    if not scripts:
        return []
    executable = find_squawk()
    if executable is None:
        return [Problem(".", "squawk is not installed, so the SQL was not linted", _INSTALL_FIX)]
    cwd = config.parent if config is not None else directory
    shown = {Path(os.path.relpath(directory / file.path, cwd)).as_posix(): file for file in scripts}
    sent = {name: as_sent(file, placeholders) for name, file in shown.items()}
    excluded = _excluded_paths(config)
    problems: list[Problem] = []
    for in_transaction in (True, False):
        group = {
            name: file for name, file in shown.items() if _in_transaction(file) is in_transaction
        }
        base = [
            str(executable),
            "--reporter",
            "json",
            "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction",
        ]
        if config is not None:
            base += ["--config", str(config)]
        by_path = [
            name for name, file in group.items() if _path_safe(name, file) and sent[name] is None
        ]
        for start in range(0, len(by_path), _BATCH):
            problems.extend(_run(base + by_path[start : start + _BATCH], cwd, None))
        for name, file in group.items():
            if name in by_path or any(fnmatch.fnmatchcase(name, p) for p in excluded):
                continue
            replaced = sent[name]
            text = replaced[0] if replaced else file.content.decode(file.encoding)
            found = _run([*base, "--stdin-filepath", name], cwd, text.encode("utf-8"))
            problems.extend(
                _origin(problem, replaced[1]) if replaced else problem for problem in found
            )
    relative = [
        dataclasses.replace(problem, path=shown[problem.path].path)
        if problem.path in shown
        else problem
        for problem in problems
    ]
    return sorted(relative, key=lambda problem: (problem.path, problem.line or 0))


def _origin(problem: Problem, origins: Sequence[int]) -> Problem:
    """A problem found in the replaced text, at the line of the file it comes from."""
    if problem.line is None or not 0 < problem.line <= len(origins):
        return problem
    return dataclasses.replace(problem, line=origins[problem.line - 1])


def _excluded_paths(config: Path | None) -> list[str]:
    """The config's excluded_paths, which squawk does not apply to a file read on stdin."""
    if config is None:
        return []
    try:
        paths = tomllib.loads(config.read_text(encoding="utf-8")).get("excluded_paths", [])
    except (OSError, ValueError):
        return []  # squawk itself reports a config it cannot read
    return [str(p) for p in paths] if isinstance(paths, list) else []


def _in_transaction(file: MigrationFile) -> bool:
    return file.settings is None or file.settings.execute_in_transaction is not False


def _path_safe(name: str, file: MigrationFile) -> bool:
    return (
        file.encoding == "utf-8" and not name.startswith("-") and _GLOB_CHARACTERS.isdisjoint(name)
    )


def _run(command: list[str], directory: Path, stdin: bytes | None) -> list[Problem]:
    result = subprocess.run(command, cwd=directory, input=stdin, capture_output=True, check=False)
    try:
        violations = json.loads(result.stdout) if result.returncode in (0, 1) else None
    except ValueError:
        violations = None
    if not isinstance(violations, list):
        detail = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
        if detail.startswith(_NO_FILES):  # every file given is excluded by the config
            return []
        first_line = detail.splitlines()[0] if detail else f"exit code {result.returncode}"
        return [
            Problem(
                ".",
                f"squawk failed: {first_line}",
                "Run squawk on the files by hand to see the whole error.",
            )
        ]
    return [_problem(violation) for violation in violations]


def _problem(violation: dict[str, object]) -> Problem:
    rule = str(violation.get("rule_name", "squawk"))
    line = violation.get("line")
    help_text = violation.get("help")
    return Problem(
        path=str(violation.get("file", ".")),
        message=f"{rule}: {violation.get('message', '')}",
        fix=str(help_text) if help_text else f"See https://squawkhq.com/docs/{rule}.",
        line=line + 1 if isinstance(line, int) else None,
        rule=rule,
    )
