"""Adopt an existing database and its migration files, so that the next deploy applies only
what is new.

    python -m deploy.adopt STACK [--dir DIR] [--baseline VERSION | --history]

Two kinds of database, both with their files already in DIR:

- built by hand or by another tool, with no Flyway history (the default): the files are
  locked as released, and the stack records the one-time baseline, flywayBaselineOnMigrate
  true and flywayBaselineVersion (the highest version of the files, or --baseline), set with
  `pulumi config set` in the committed stack file. The next deploy records the baseline,
  skips every migration up to it and applies what is above it.
- migrated by Flyway already, from another runner (--history): the files are locked as
  released, and Flyway carries the history on. Its validate (validateOnMigrate, always on)
  compares the applied migrations with these files before it applies anything and refuses a
  checksum or description that differs, naming the version; the deploy's hint names the file.

Released files are history: squawk does not judge them again, and a file of comments alone
is accepted. Everything a preview of STACK would refuse is refused first, and nothing
changes. The command prints what it set, what the next deploy will do, and the check that
shows it with real Flyway (`make migrations-rehearse`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components.migrations import (
    MigrationError,
    MigrationSet,
    Problem,
    Version,
    lint,
    scan_directory,
    update_lock,
)
from components.migrations.lock import lock_path
from components.migrations.scan import (
    NO_STATEMENT,
)
from components.settings import Settings, SettingsError
from components.settings.stackfile import read_stack_file, stack_names, stack_path
from deploy.engine import ROOT, EngineError, find_engine
from deploy.lint import project_root

BASELINE_ON = "flywayBaselineOnMigrate"
BASELINE_VERSION = "flywayBaselineVersion"


class AdoptionError(Exception):
    """Why nothing was adopted, with every problem at once."""


@dataclass(frozen=True)
class Plan:
    """What the adoption records and what the next deploy then does."""

    baseline: Version | None
    skipped: tuple[str, ...]
    repeatables: tuple[str, ...]
    applied: tuple[str, ...]


def plan(migration_set: MigrationSet, baseline: Version | None) -> Plan:
    """Which files a first deploy after the adoption skips and applies."""
    repeatables = tuple(file.path for file in migration_set.repeatable)
    versioned = [(file.path, file.version) for file in migration_set.versioned if file.version]
    if baseline is None:
        return Plan(None, (), repeatables, tuple(path for path, _ in versioned))
    return Plan(
        baseline,
        tuple(path for path, version in versioned if version <= baseline),
        repeatables,
        tuple(path for path, version in versioned if version > baseline),
    )


def check(directory: Path, settings: Settings, stack: str) -> MigrationSet:
    """The set as a preview of `stack` would take it once adopted: every file present is
    history (a file of comments alone included); anything else the preview would refuse
    stops the adoption before it changes anything."""
    problems = lint(
        directory,
        out_of_order=settings.flyway.out_of_order,
        squawk=False,
        placeholders=[settings.flyway.given_placeholders(stack)],
    )
    problems = [problem for problem in problems if problem.rule != NO_STATEMENT]
    if problems:
        raise AdoptionError(_listed(directory, problems))
    files, _ = scan_directory(directory)
    migration_set = MigrationSet(files)
    if not migration_set.versioned:
        raise AdoptionError(f"{directory.as_posix()} holds no versioned migration to adopt")
    return migration_set


def _listed(directory: Path, problems: Sequence[Problem]) -> str:
    lines = [
        str(p) if p.path == "." else f"{(directory / p.path).as_posix()}{_at(p)}: {p.detail}"
        for p in problems
    ]
    return "nothing was adopted; a preview would refuse the set:\n" + "\n".join(lines)


def _at(problem: Problem) -> str:
    return f":{problem.line}" if problem.line is not None else ""


def config_set(pulumi: Path, root: Path, stack: str, values: Sequence[tuple[str, str]]) -> None:
    """`pulumi config set KEY VALUE` for each pair, written by the Pulumi CLI itself into the
    committed stack file (--config-file), in its own form. The CLI wants the stack to exist in
    some backend, so it runs against a throwaway one; plain values need no secrets provider,
    and the stack's real state is never touched."""
    with tempfile.TemporaryDirectory(prefix="adopt-") as scratch:
        work = Path(scratch)
        shutil.copyfile(root / "Pulumi.yaml", work / "Pulumi.yaml")
        env = {
            **os.environ,
            "PULUMI_HOME": str(work / "home"),
            "PULUMI_BACKEND_URL": f"file://{work / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_hex(16),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }
        env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        (work / "state").mkdir()
        _pulumi(pulumi, work, env, "stack", "init", stack)
        for key, value in values:
            _pulumi(
                pulumi,
                work,
                env,
                "config",
                "set",
                key,
                value,
                "--stack",
                stack,
                "--config-file",
                str(stack_path(root, stack).resolve()),
            )


def _pulumi(pulumi: Path, cwd: Path, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(pulumi), *args, "--non-interactive"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise AdoptionError(f"`pulumi {' '.join(args[:3])}` failed: {detail}")


def adopt(stack: str, directory: Path, root: Path, baseline: str | None, history: bool) -> int:
    """Check, lock, set the baseline, and say what the next deploy does."""
    try:
        settings = read_stack_file(root, stack).settings
    except SettingsError as error:
        raise AdoptionError(str(error)) from None
    migration_set = check(directory, settings, stack)
    version = None if history else _baseline(migration_set, baseline)
    file = f"stacks/Pulumi.{stack}.yaml"
    wanted = [] if version is None else [(BASELINE_ON, "true"), (BASELINE_VERSION, version.text)]
    current = {
        BASELINE_ON: "true" if settings.flyway.baseline_on_migrate else "false",
        BASELINE_VERSION: settings.flyway.baseline_version,
    }
    changes = [(key, value) for key, value in wanted if current[key] != value]
    pulumi = find_engine(local_provider=False).pulumi if changes else None
    print(f"adopting {directory.as_posix()} for stack {stack}")
    added = update_lock(directory, settings.flyway.out_of_order, history=True)
    print(
        f"  locked {len(added)} migration(s) as released in {lock_path(directory).as_posix()} "
        f"({len(migration_set.versioned)} versioned in all): history now, which squawk does "
        "not judge again and Flyway holds to its checksums"
    )
    if version is None:
        print("  the database has Flyway's history from another runner: no baseline is set")
        if settings.flyway.baseline_on_migrate:
            print(f"  ({BASELINE_ON} is on in {file}; with a history it has no effect)")
    else:
        origin = "given" if baseline is not None else "the highest of the files"
        print(f"  baseline at version {version} ({origin}): the schema the database holds")
        for key, value in wanted:
            print(f"    pulumi config set {key} {value} --stack {stack}")
        if pulumi is not None:
            config_set(pulumi, root, stack, changes)
            print(f"  (set in {file} by the Pulumi CLI)")
        else:
            print(f"  ({file} has them already)")
    _show_plan(stack, plan(migration_set, version))
    return 0


def _baseline(migration_set: MigrationSet, given: str | None) -> Version:
    if given is None:
        highest = migration_set.highest_version
        assert highest is not None  # noqa: S101 (check() refuses a set without one)
        return highest
    try:
        return Version.parse(given)
    except ValueError:
        raise AdoptionError(
            f"--baseline {given!r} is not a Flyway version (digits separated by '.' or '_')"
        ) from None


def _show_plan(stack: str, planned: Plan) -> None:
    def names(paths: Sequence[str]) -> str:
        shown = ", ".join(paths[:5])
        return shown + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")

    if planned.baseline is None:
        print(
            f"the next deploy of {stack}: Flyway's validate compares the database's history "
            "with these files before applying anything (a checksum or description that "
            "differs stops it there, naming the file), then applies what the history lacks"
        )
    else:
        print(f"the next deploy of {stack}, on a database without Flyway's history:")
        print(
            f"  records the baseline at version {planned.baseline} and skips the "
            f"{len(planned.skipped)} migration(s) up to it"
        )
        if planned.repeatables:
            print(
                f"  applies the {len(planned.repeatables)} repeatable migration(s) once, as "
                f"Flyway has no record of them: {names(planned.repeatables)}"
            )
        if planned.applied:
            print(f"  applies {len(planned.applied)}: {names(planned.applied)}")
        else:
            print("  applies no versioned migration yet: add one with make migrations-new")
    print(f"check it with real Flyway: make migrations-rehearse STACK={stack}")
    if planned.baseline is not None:
        print("after that deploy, turn the baseline off again (the history exists from then on):")
        print(f"    pulumi config set {BASELINE_ON} false --stack {stack}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.adopt", description=__doc__)
    parser.add_argument("stack")
    parser.add_argument("--dir", type=Path, default=None, help="the stack's migrationsDir")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--baseline", default=None, metavar="VERSION")
    kind.add_argument(
        "--history", action="store_true", help="the database has Flyway's history already"
    )
    args = parser.parse_args(argv)
    root = project_root(args.dir) if args.dir is not None else ROOT
    if args.stack not in stack_names(root):
        print(f"error: no stack file stacks/Pulumi.{args.stack}.yaml", file=sys.stderr)
        return 2
    try:
        directory = args.dir or _shown(
            root / read_stack_file(root, args.stack).settings.migrations_dir
        )
        return adopt(args.stack, directory, root, args.baseline, args.history)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (AdoptionError, MigrationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except EngineError as error:
        print(f"error: {error}; nothing was changed", file=sys.stderr)
        return 2


def _shown(path: Path) -> Path:
    """`path` from the current folder when it lies below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


if __name__ == "__main__":
    sys.exit(main())
