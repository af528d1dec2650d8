"""Everything the program reads, checked whole before the first resource is declared (pure).

The program calls this at every preview; `python -m deploy check` calls the same function, so
`make preview` refuses bad input in a second, before any engine or cluster starts, with the
same words, and a plain `pulumi preview` refuses it just the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.contract import HISTORY_CALLBACK
from components.migrations import (
    MigrationError,
    MigrationSet,
    Problem,
    Shard,
    load_released_set,
    pack,
    read_lock,
)
from components.migrations.placeholders import unresolved_placeholders
from components.migrations.statements import pending_refusals
from components.settings import Settings


@dataclass(frozen=True)
class Inputs:
    """The stack's migration set, checked, and the ConfigMap shards it packs into."""

    migrations: MigrationSet
    shards: tuple[Shard, ...]


def check_inputs(settings: Settings, root: Path, stack: str) -> Inputs:
    """The stack's migrations, loaded and checked against its settings; MigrationError with
    every problem otherwise (the settings were checked when they were parsed)."""
    directory = root / settings.migrations_dir
    migrations = load_released_set(directory, out_of_order=settings.flyway.out_of_order)
    problems: list[Problem] = list(
        unresolved_placeholders(migrations, [settings.flyway.given_placeholders(stack)])
    )
    problems.extend(pending_refusals(migrations, read_lock(directory)))
    problems.extend(
        Problem(
            f.path,
            "has the name of a Flyway callback the program adds itself, so Flyway would find two",
            "Rename it (the program's callback keeps Flyway's history the migrator's alone).",
        )
        for f in migrations.callbacks
        if f.name == HISTORY_CALLBACK
    )
    if problems:
        raise MigrationError(problems)
    # Packing refuses a file no ConfigMap can hold; here, before any resource exists.
    return Inputs(migrations, pack(migrations))
