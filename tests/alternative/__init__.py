"""Another team's repository, generated from a seed: a foreign migration history in place of
database/migrations/ and other values, within their allowed ranges, in every stack file. The
suite must pass there too: it tests the program, not this repository's data.

    python -m tests.alternative [--seed N] [--into DIR]   # a copy of the repository, changed
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.migrations import LOCK_FILE_NAME, update_lock
from tests.alternative.history import History, write_history
from tests.alternative.stacks import vary_stacks

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = Path("database") / "migrations"
SHARED = (".venv", ".cache")


@dataclass(frozen=True)
class Alternative:
    """What was generated, for a person reading a failure."""

    root: Path
    seed: int
    history: History
    stacks: dict[str, dict[str, str]]
    """Each stack's changed keys and their new values."""

    def describe(self) -> str:
        history = self.history
        lines = [
            f"seed {self.seed} (ALTERNATIVE_SEED={self.seed} makes the same again): "
            f"{len(history.versioned)} versioned, {len(history.repeatables)} repeatable, "
            f"{len(history.callbacks)} callback scripts, {len(history.values)} placeholders"
        ]
        lines += [
            f"  {stack}: " + ", ".join(f"{key}={value}" for key, value in sorted(changed.items()))
            for stack, changed in sorted(self.stacks.items())
        ]
        return "\n".join(lines)


def new_seed() -> int:
    given = os.environ.get("ALTERNATIVE_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**31)


def copy_repository(target: Path, source: Path = ROOT) -> Path:
    """The repository's files as git sees them (uncommitted ones included), with the shared
    .venv and .cache linked."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in (p for p in listed.split("\0") if p and (source / p).is_file()):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target / relative)
    for shared in SHARED:
        if (source / shared).exists():
            (target / shared).symlink_to((source / shared).resolve())
    return target


def generate(root: Path, seed: int) -> Alternative:
    """Replace `root`'s migrations with a foreign history (released as adopted, so locked) and
    change every stack file's values."""
    directory = root / MIGRATIONS
    own = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    shutil.rmtree(directory)
    # Every name carries a prefix that none of the repository's has.
    prefix = next(f"alt{n}_" for n in itertools.count() if not any(f"alt{n}_" in p for p in own))
    history = write_history(
        directory, seed, versioned=40, placeholders=8, identifiers=False, prefix=prefix
    )
    names = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    clash = (own - {LOCK_FILE_NAME}) & names
    if clash:
        raise AssertionError(f"the generated history reuses the repository's names: {clash}")
    update_lock(directory, history=True)
    stacks = vary_stacks(root, random.Random(seed), history)
    return Alternative(root, seed, history, stacks)


def main() -> int:
    import argparse  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m tests.alternative", description=__doc__)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--into", type=Path, default=None, help="an empty folder (default: new)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else new_seed()
    into = args.into or Path(tempfile.mkdtemp(prefix="alternative-"))
    alternative = generate(copy_repository(into), seed)
    print(alternative.describe())
    print(f"written to {into}")
    return 0
