"""Apply a migration set to a throwaway PostgreSQL before it reaches a real one.

    python -m deploy.rehearse [--stack prod] [--dir database/migrations]

The set is checked and packed exactly as a preview does it, laid out as the Job's volume,
and applied by Flyway's real command line with the stack's Flyway settings, logged in as
the migrator of the privilege model, as on a stack whose roles are managed. It catches
what no lint can: a foreign key to a column that does not exist, a type that does not
cast, a statement PostgreSQL refuses. The first failing file is named with Flyway's
message, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from components.contract import DatabaseEndpoint, ServerAddress
from components.jobs import flyway
from components.migrations import MigrationError, load_migration_set, load_released_set, pack
from components.migrations.placeholders import unresolved_placeholders
from components.settings import FLYWAY_VERSION, Settings
from components.settings.stackfile import read_stack_file
from deploy.engine import ROOT
from standins.flyway_cli import FlywayNotInstalledError, run_flyway
from standins.localstack import provision
from standins.postgres import PostgresError, PostgresServer

_FAILED_SCRIPT = re.compile(r"Failed to execute script (\S+)")
_MESSAGE = re.compile(r"^Message\s*:\s*(.+)$", re.M)


STAND_IN = "rehearsal"


def stack_settings(stack: str) -> Settings:
    """The committed stack's settings, as every tool reads them; secret values are stood in
    for (secret placeholders keep their names), as none is used."""
    return read_stack_file(ROOT, stack).settings


def lay_out(directory: Path, out_of_order: bool, target: Path) -> int:
    """The volume the Job would mount, from the same shards; returns the file count."""
    count = 0
    for shard in pack(load_released_set(directory, out_of_order=out_of_order)):
        for key, path in shard.items:
            content = (
                shard.data[key].encode("utf-8")
                if key in shard.data
                else base64.b64decode(shard.binary_data[key])
            )
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_bytes(content)
            count += 1
    return count


def first_failure(output: str) -> str:
    """`<file>: <PostgreSQL's message>` from Flyway's output, or its last line."""
    script = _FAILED_SCRIPT.search(output)
    message = _MESSAGE.search(output)
    if script and message:
        return f"{script.group(1)}: {message.group(1).strip()}"
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "Flyway failed without output"


def rehearse(stack: str, directory: Path) -> int:
    settings = stack_settings(stack)
    database = settings.database.name
    unresolved = unresolved_placeholders(
        load_migration_set(directory), [settings.flyway.given_placeholders(stack)]
    )
    if unresolved:
        raise MigrationError(unresolved)
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as scratch:
        files = lay_out(directory, settings.flyway.out_of_order, Path(scratch))
        print(f"rehearsal: {files} files of {directory} with {stack}'s Flyway settings")
        with PostgresServer() as server:
            password = provision(server, database, Path(scratch) / "dba")
            login = DatabaseEndpoint(
                ServerAddress(server.host, server.port, database), f"{database}_migrator", "", ""
            )
            env = {
                var.name: password
                if var.name == "FLYWAY_PASSWORD"
                else STAND_IN
                if var.secret_key is not None
                else str(var.value)
                for var in flyway.flyway_environment(settings.flyway, login)
            }
            env["FLYWAY_LOCATIONS"] = f"filesystem:{scratch}"
            env.pop("HOME")
            result = run_flyway(FLYWAY_VERSION, list(flyway.COMMAND[1:]), env)
    output = result.stdout + result.stderr
    print(output.rstrip())
    if result.returncode != 0:
        print(f"rehearsal FAILED: {first_failure(output)}", file=sys.stderr)
        return 1
    print(f"rehearsal passed: {stack} applies every migration of {directory}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.rehearse", description=__doc__)
    parser.add_argument("--stack", default="prod", help="whose Flyway settings (default prod)")
    parser.add_argument("--dir", type=Path, default=ROOT / "database" / "migrations")
    args = parser.parse_args(argv)
    try:
        return rehearse(args.stack, args.dir)
    except MigrationError as error:
        print(f"rehearsal refused the set:\n{error}", file=sys.stderr)
        return 1
    except (FlywayNotInstalledError, PostgresError) as error:
        print(f"rehearsal could not start: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
