"""Apply a migration set to a throwaway PostgreSQL before it reaches a real one.

    python -m deploy.rehearse [--stack prod] [--dir database/migrations]

The set is checked and packed exactly as a preview does it, laid out as the Job's volume,
and applied by Flyway's real command line with the stack's Flyway settings, logged in as
the migrator of the privilege model, as on a stack whose roles are managed. It catches
what no lint can: a foreign key to a column that does not exist, a type that does not
cast, a statement PostgreSQL refuses. The first failing file is named with Flyway's
message, and the exit code is 1.

A stack that baselines (flywayBaselineOnMigrate, as after `make migrations-adopt`) is
rehearsed against what it adopts: the history up to flywayBaselineVersion is applied first
and Flyway's history table dropped, as a schema built without Flyway; then Flyway runs with
the stack's settings and shows what the next deploy does: the baseline, and what it applies.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from psycopg import sql

from components.contract import HISTORY_TABLE, DatabaseEndpoint, ServerAddress
from components.inputs import Inputs, check_inputs
from components.jobs import flyway
from components.migrations import MigrationError
from components.settings import FLYWAY_VERSION, Settings, SettingsError
from components.settings.stackfile import read_stack_file, stack_names
from deploy.engine import ROOT
from deploy.lint import project_root
from standins.flyway_cli import FlywayNotInstalledError, run_flyway
from standins.localstack import provision
from standins.postgres import PostgresError, PostgresServer

_FAILED_SCRIPT = re.compile(r"Failed to execute script (\S+)")
_MESSAGE = re.compile(r"^Message\s*:\s*(.+)$", re.M)
_APPLIED = re.compile(r"^Successfully applied .*$", re.M)


STAND_IN = "rehearsal"


def prepare(root: Path, stack: str, directory: Path) -> tuple[Settings, Inputs]:
    """The committed stack's settings (as every tool reads them; secret values are stood in
    for) with `directory` as its migrations, and what a preview of it would deploy, checked
    by the preview's own function, or the error the preview would give."""
    committed = read_stack_file(root, stack).settings
    settings = dataclasses.replace(committed, migrations_dir=str(directory.resolve()))
    return settings, check_inputs(settings, root, stack)


def lay_out(inputs: Inputs, target: Path) -> int:
    """The volume the Job would mount, from the same shards; returns the file count."""
    count = 0
    for shard in inputs.shards:
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


def rehearse(stack: str, directory: Path, root: Path | None = None) -> int:
    settings, inputs = prepare(root or project_root(directory), stack, directory)
    database = settings.database.name
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as scratch:
        files = lay_out(inputs, Path(scratch))
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
            if settings.flyway.baseline_on_migrate and not _adopted_schema(
                server, database, settings.flyway.baseline_version, env
            ):
                return 1
            result = run_flyway(FLYWAY_VERSION, list(flyway.COMMAND[1:]), env)
    output = result.stdout + result.stderr
    print(output.rstrip())
    if result.returncode != 0:
        print(f"rehearsal FAILED: {first_failure(output)}", file=sys.stderr)
        return 1
    if settings.flyway.baseline_on_migrate:
        version = settings.flyway.baseline_version
        print(f"rehearsal passed: {stack} baselines at {version} and applies what is above it")
    else:
        print(f"rehearsal passed: {stack} applies every migration of {directory}")
    return 0


def _adopted_schema(
    server: PostgresServer, database: str, version: str, env: dict[str, str]
) -> bool:
    """A stand-in for the schema a baselining stack adopts: the history up to `version`
    applied, then Flyway's record of it dropped, as if built by hand."""
    print(
        f"rehearsal: flywayBaselineOnMigrate is on, so the database is taken to hold the "
        f"schema of version {version} without Flyway's history; standing in for it: the "
        f"migrations up to {version} applied, then {HISTORY_TABLE} dropped"
    )
    built = run_flyway(
        FLYWAY_VERSION,
        list(flyway.COMMAND[1:]),
        {**env, "FLYWAY_TARGET": version, "FLYWAY_BASELINE_ON_MIGRATE": "false"},
    )
    output = built.stdout + built.stderr
    if built.returncode != 0:
        print(output.rstrip())
        print(
            f"rehearsal FAILED building the schema of version {version}: {first_failure(output)}",
            file=sys.stderr,
        )
        return False
    applied = _APPLIED.search(output)
    print(f"rehearsal: stand-in schema: {applied.group(0) if applied else output.strip()}")
    with server.connect(database) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(HISTORY_TABLE)))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.rehearse", description=__doc__)
    parser.add_argument("--stack", default="prod", help="whose Flyway settings (default prod)")
    parser.add_argument("--dir", type=Path, default=ROOT / "database" / "migrations")
    args = parser.parse_args(argv)
    root = project_root(args.dir)
    if args.stack not in stack_names(root):
        print(f"rehearsal: no stack file stacks/Pulumi.{args.stack}.yaml", file=sys.stderr)
        return 2
    try:
        return rehearse(args.stack, args.dir, root)
    except SettingsError as error:
        print(f"rehearsal refused the stack: {error}", file=sys.stderr)
        return 1
    except MigrationError as error:
        print(f"rehearsal refused the set:\n{error}", file=sys.stderr)
        return 1
    except (FlywayNotInstalledError, PostgresError) as error:
        print(f"rehearsal could not start: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
