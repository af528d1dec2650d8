"""How long a deploy of a stack may take at worst, from the waits its settings configure,
and the CI job timeout that fits it (pure).

A deploy job killed by its runner's timeout leaves the stack locked and the update half-done;
a timeout shorter than the stack's own waits would do exactly that on a slow day. So each
deploy job's timeout is derived here from its stack's waits, and a stack whose worst case
passes what a hosted runner allows is refused before it is deployed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from components import database
from components.settings import Settings

RUNNER_CAP_MINUTES: Final = 360
"""GitHub-hosted runners stop any job after 360 minutes."""
SETUP_MINUTES: Final = 15
"""Checkout, Python dependencies, the CLI and provider, the engine's own work, the logs."""
GRANTS_MARGIN_SECONDS: Final = 60
BACKUP_MARGIN_SECONDS: Final = 120


@dataclass(frozen=True)
class Waits:
    """The waits of one deploy, in seconds, in the order they happen."""

    parts: tuple[tuple[str, int], ...]

    @property
    def seconds(self) -> int:
        return sum(seconds for _, seconds in self.parts)

    @property
    def job_minutes(self) -> int:
        """The CI job's timeout: every wait at its worst, and the set-up around them."""
        return math.ceil(self.seconds / 60) + SETUP_MINUTES

    def describe(self) -> str:
        return ", ".join(f"{name} {seconds // 60} min" for name, seconds in self.parts)


def waits(settings: Settings) -> Waits:
    """What `pulumi up` may wait for, at most, one after the other."""
    parts = list(database.traits(settings).waits)
    if settings.database.roles_in_cluster:
        timeout = settings.postgres.release_timeout_seconds
        parts.append(("the grants Job", timeout + GRANTS_MARGIN_SECONDS))
    if settings.backup.before_migrate:
        backup = settings.backup.timeout_seconds + BACKUP_MARGIN_SECONDS
        parts.append(("the backup (backupTimeoutSeconds)", backup))
    parts.append(("Flyway (flywayJobTimeoutSeconds)", settings.flyway.job_timeout_seconds))
    return Waits(tuple(parts))


def too_long(stack: str, found: Waits) -> str | None:
    """Why `stack` cannot be deployed by a hosted runner, or None."""
    if found.job_minutes <= RUNNER_CAP_MINUTES:
        return None
    return (
        f"{stack}: a deploy may wait {found.seconds // 60} minutes ({found.describe()}), and "
        f"with {SETUP_MINUTES} minutes of set-up its CI job would need {found.job_minutes}, "
        f"more than the {RUNNER_CAP_MINUTES} a hosted runner allows: a runner would stop it "
        "half-way and leave the stack locked. Lower the waits named above."
    )
