"""python -m tests.contract.harness --stack STACK --migrations DIR"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from standins.postgres import PostgresServer
from tests.contract.harness.database import prepare_database
from tests.contract.harness.declared import declared_job
from tests.contract.harness.flyway import format_history, lay_out_volume, run_job, schema_history
from tests.contract.harness.model import HarnessError

# -- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Deploy nothing, run everything: a throwaway PostgreSQL, the declared Job, the result."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.contract.harness",
        description="Run the stack's Flyway Job, as the program declares it, against a "
        "throwaway PostgreSQL and print Flyway's output and flyway_schema_history.",
    )
    parser.add_argument("--stack", default="dev", help="stack file to run (default: dev)")
    parser.add_argument(
        "--migrations", type=Path, help="migrations directory (default: the stack's)"
    )
    args = parser.parse_args(argv)
    config: dict[str, str | None] = {}
    if args.migrations is not None:
        config["migrationsDir"] = str(args.migrations.resolve())
    try:
        job = declared_job(args.stack, config)
    except HarnessError as error:
        print(f"harness: {error}", file=sys.stderr)
        return 2
    sources = ", ".join(f"{s.config_map} ({len(s.items)} files)" for s in job.sources)
    print(f"job: {job.image} {' '.join(job.command)}")
    print(f"volume: {sources}")
    with PostgresServer() as server:
        prepared = prepare_database(server, job)
        # Under /tmp: the directory must not be a 0700 one another user cannot enter.
        mount_root = Path(tempfile.mkdtemp(prefix="flyway-sql-", dir="/tmp"))
        try:
            lay_out_volume(job, mount_root / "sql")
            print(
                f"database: {job.setup.flavor.value} {job.database} on "
                f"{server.host}:{server.port} as {prepared.login}"
            )
            for problem in prepared.init_errors:
                print(f"init script error (the image ignores it): {problem}", file=sys.stderr)
            proc = run_job(job, server, mount_root / "sql", password=prepared.password)
            print("--- flyway ---")
            print(proc.stdout.rstrip())
            if proc.stderr.strip():
                print(proc.stderr.rstrip(), file=sys.stderr)
            print(f"--- flyway exit code {proc.returncode}; flyway_schema_history ---")
            print(format_history(schema_history(server, job.database)))
        finally:
            shutil.rmtree(mount_root, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
