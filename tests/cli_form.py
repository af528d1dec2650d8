"""A stack file in exactly the form the Pulumi CLI writes it, for tests of every reader.

Numbers and booleans are quoted (`pulumi config set` stores every top-level value as a
string), an object is set key by key with `--path` (`--type string` keeps "7" a string), a
secret is stored `secure:`, and comments sit where the CLI keeps them. The engine test
tests/engine/test_stack_files.py proves that the real CLI leaves this file as it is, and hands
each value to the program as `components.settings.stackfile.cli_value` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from components.settings.declarations import STACK_CONFIG_DIR

STACK: Final = "team"

TEXT: Final = """\
# team: a stack as the CLI writes it, quoted values, objects and a secret.
config:
  tradestream-database:namespace: team
  # Disposable: nothing here is the database of record.
  tradestream-database:protectDatabase: "false"
  tradestream-database:disposable: "true"
  tradestream-database:databaseFlavor: external
  tradestream-database:databaseRolesManagedBy: dba
  tradestream-database:databaseAccessHost: 127.0.0.1
  tradestream-database:databaseAccessPort: "55433"
  tradestream-database:databaseSslMode: disable
  tradestream-database:flywayConnectRetries: "30"
  tradestream-database:flywayBaselineOnMigrate: "false"
  tradestream-database:flywayBaselineVersion: "1"
  tradestream-database:flywayOutOfOrder: "true"
  tradestream-database:backupBeforeMigrate: "true"
  tradestream-database:backupRetainCount: "3"
  tradestream-database:flywayPlaceholders:
    region: eu-west
    shard: "7"
  tradestream-database:flywaySecretPlaceholders:
    api_key:
      secure: v1:ENmp4xmap/nVFg8J:AXnfAwHHWzsB3atCkfG+PaU=
  kubernetes:context: team-context
"""

HANDED_OVER: Final = {
    "tradestream-database:namespace": "team",
    "tradestream-database:protectDatabase": "false",
    "tradestream-database:disposable": "true",
    "tradestream-database:databaseAccessPort": "55433",
    "tradestream-database:flywayConnectRetries": "30",
    "tradestream-database:flywayBaselineOnMigrate": "false",
    "tradestream-database:flywayOutOfOrder": "true",
    "tradestream-database:backupRetainCount": "3",
    "tradestream-database:flywayPlaceholders": '{"region":"eu-west","shard":"7"}',
    "kubernetes:context": "team-context",
}
"""Values as the CLI hands them to the program (`pulumi config --json`), for assertions."""


def write_project(root: Path, stack: str = STACK, *, migrations: bool = False) -> Path:
    """A project at `root` (Pulumi.yaml, stacks/Pulumi.<stack>.yaml holding TEXT), and an
    empty migrations folder where the stack's default migrationsDir points when asked."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text("name: tradestream-database\n", encoding="utf-8")
    (root / STACK_CONFIG_DIR).mkdir(exist_ok=True)
    (root / STACK_CONFIG_DIR / f"Pulumi.{stack}.yaml").write_text(TEXT, encoding="utf-8")
    if migrations:
        (root / "database" / "migrations").mkdir(parents=True, exist_ok=True)
    return root
