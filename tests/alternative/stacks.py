"""Other values, each within what its key allows, in every stack file of a repository copy.

What makes a stack the kind it is (its flavor, who manages the roles, where the passwords
come from, where an external database is) stays; the values around it change: names,
sizes, counts, timeouts, Flyway's and the backup's settings, protection, placeholders on or
off. Each file is read back through the one stack-file reader, so it is one the program
accepts.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from components.settings import CnpgBackupMethod, declared_keys
from components.settings.declarations import PROJECT
from components.settings.stackfile import read_stack_file, stack_names, stack_path
from tests.alternative.history import WORDS, History

Choice = Callable[[random.Random], str]


def _flag(rng: random.Random) -> str:
    return rng.choice(["true", "false"])


def _between(low: int, high: int) -> Choice:
    return lambda rng: str(rng.randint(low, high))


def _one_of(*values: str) -> Choice:
    return lambda rng: rng.choice(values)


EVERY_STACK: dict[str, Choice] = {
    "databaseName": lambda rng: f"{rng.choice(WORDS)}_{rng.randint(1, 99)}",
    "databaseOwner": lambda rng: f"{rng.choice(WORDS)}_owner",
    "protectDatabase": _flag,
    "flywayConnectRetries": _between(0, 120),
    "flywayConnectRetriesInterval": _between(1, 30),
    "flywayLockRetryCount": _between(0, 100),
    "flywayBackoffLimit": _between(0, 3),
    "flywayOutOfOrder": _flag,
    "flywayBaselineOnMigrate": _flag,
    "flywayBaselineVersion": _one_of("0", "1", "2", "5", "1.1"),
    "flywayCpuRequest": _one_of("50m", "100m", "250m"),
    "flywayMemoryRequest": _one_of("128Mi", "256Mi", "300Mi"),
    "flywayCpuLimit": _one_of("500m", "1", "2"),
    "flywayMemoryLimit": _one_of("512Mi", "768Mi", "1Gi"),
    "backupBeforeMigrate": _flag,
    "backupTimeoutSeconds": _between(60, 7200),
    "backupRetainCount": _between(1, 12),
    "backupVolumeSize": _one_of("1Gi", "5Gi", "40Gi"),
    "postgresStorageSize": _one_of("1Gi", "8Gi", "64Gi"),
    "postgresCpuRequest": _one_of("100m", "250m", "1"),
    "postgresMemoryRequest": _one_of("256Mi", "1Gi"),
    "postgresCpuLimit": _one_of("1", "2", "4"),
    "postgresMemoryLimit": _one_of("1Gi", "2Gi", "8Gi"),
    "postgresMetricsEnabled": _flag,
    "postgresNetworkPolicyEnabled": _flag,
    "postgresReleaseTimeoutSeconds": _between(60, 1800),
}
BY_FLAVOR: dict[str, dict[str, Choice]] = {
    "bitnami": {"postgresReleaseName": lambda rng: f"{rng.choice(WORDS)}-pg"},
    "cloudnative-pg": {
        "cnpgInstances": _between(1, 5),
        "cnpgClusterName": lambda rng: f"{rng.choice(WORDS)}-cluster",
        "cnpgBackupRetention": _one_of("7d", "14d", "8w", "3m"),
        "cnpgInstallOperator": _flag,
    },
    "external": {"databaseAccessPort": _between(1024, 65535)},
}


def reads(flavor: str, key: str) -> bool:
    """Whether a stack of `flavor` reads `key` (the program refuses a key only another reads)."""
    readers = declared_keys()[key].spec.flavors
    return readers is None or flavor in {reader.value for reader in readers}


def vary_stacks(root: Path, rng: random.Random, history: History) -> dict[str, dict[str, str]]:
    """Rewrite every stack file of `root`; returns each stack's changed keys. Replacement is
    on in some stacks (with a value for every placeholder of `history`) and off in others."""
    names = stack_names(root)
    replacing = {name: rng.random() < 0.5 for name in names}
    on, off = rng.sample(names, 2)
    replacing[on], replacing[off] = True, False
    changed: dict[str, dict[str, str]] = {}
    for name in names:
        path = stack_path(root, name)
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config: dict[str, Any] = document.setdefault("config", {})
        settings = read_stack_file(root, name).settings
        flavor = settings.database.flavor.value
        choices = {**EVERY_STACK, **BY_FLAVOR.get(flavor, {})}
        values = {key: choose(rng) for key, choose in choices.items() if reads(flavor, key)}
        if settings.backup.cnpg_method is CnpgBackupMethod.BARMAN_CLOUD and reads(
            flavor, "cnpgInstallOperator"
        ):
            # The program installs no Barman Cloud plugin, so no operator without it.
            values["cnpgInstallOperator"] = "false"
        values["namespace"] = f"{rng.choice(WORDS)}-{name}"  # one per stack
        # Protection is off only where the data is declared disposable.
        values["disposable"] = "true" if values["protectDatabase"] == "false" else _flag(rng)
        deadline = rng.randint(60, 3600)
        values["flywayActiveDeadlineSeconds"] = str(deadline)  # and `up` waits longer
        values["flywayJobTimeoutSeconds"] = str(deadline + rng.randint(0, 1200))
        values["flywayPlaceholderReplacement"] = "true" if replacing[name] else "false"
        for key, value in values.items():
            config[f"{PROJECT}:{key}"] = value
        key = f"{PROJECT}:flywayPlaceholders"
        if replacing[name]:
            config[key] = dict(history.values)
            values["flywayPlaceholders"] = json.dumps(history.values, sort_keys=True)
        else:
            config.pop(key, None)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        read_stack_file(root, name)  # accepted as every tool reads it, or this fails loudly
        changed[name] = values
    return changed
