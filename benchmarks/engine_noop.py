"""What the real engine costs when nothing changed, as the migration history grows.

For each size, a folder of that many small versioned migrations is deployed once to a
local cluster of the benchmark's own (an external database on a PostgreSQL in the cluster,
as the local stack deploys), then timed: a no-op `preview`, a no-op `up`, and the same
program under Pulumi mocks (`tests.program.run_program`, what the unit tests and a preview's
program part cost). The ratio says how much of a preview is the engine and the provider
rather than the program.

Run with ``make bench-engine`` or
``.venv/bin/python benchmarks/engine_noop.py --sizes 10,1000,5000``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pulumi import automation as auto

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.engine import Backend, find_engine, open_stack, prepare_workspace  # noqa: E402
from standins import localstack as local  # noqa: E402
from standins.cluster.api import Client  # noqa: E402
from standins.cluster.layout import Layout  # noqa: E402
from standins.clusterdb import ClusterPostgres, Location  # noqa: E402
from tests.program import run_program  # noqa: E402

DEFAULT_SIZES = (10, 1_000, 5_000)


def write_migrations(directory: Path, count: int) -> None:
    """`count` versioned migrations, each one statement, spread over subfolders."""
    for version in range(1, count + 1):
        folder = directory / f"batch_{(version - 1) // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"V{version}__step_{version}.sql").write_text(
            f"-- step {version}\nSELECT {version};\n", encoding="utf-8"
        )


def best_of(runs: int, step: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        timings.append(time.perf_counter() - started)
    return min(timings)


def measure(count: int, server: ClusterPostgres, kubeconfig: Path, scratch: Path) -> list[str]:
    directory = scratch / f"migrations-{count}"
    write_migrations(directory, count)
    database = f"bench_{count}"
    password = local.provision(server, database, scratch / f"dba-{count}")
    config = {
        "namespace": f"bench-{count}",
        "databaseName": database,
        "databaseAccessHost": server.location.host,
        "databaseAccessPort": str(server.location.port),
        "migrationsDir": str(directory),
        "flywayActiveDeadlineSeconds": "3600",
        "flywayJobTimeoutSeconds": "3600",
    }
    workspace = prepare_workspace(scratch / f"workspace-{count}", local.STACK, config)
    backend = Backend.local_folder(scratch / f"state-{count}", local.STACK)
    stack = open_stack(
        local.STACK, workspace, backend, find_engine(local_provider=True), kubeconfig=kubeconfig
    )
    stack.set_config("migratorPassword", auto.ConfigValue(password, secret=True))
    first_up = best_of(1, lambda: stack.up(color="never"))
    preview = best_of(2, lambda: stack.preview(color="never", expect_no_changes=True))
    noop_up = best_of(2, lambda: stack.up(color="never"))
    mocks = best_of(2, lambda: run_program(local.STACK, config=config))
    stack.destroy(color="never")
    return [
        f"{count:,}",
        f"{first_up:.1f}",
        f"{preview:.1f}",
        f"{noop_up:.1f}",
        f"{mocks:.2f}",
        f"{preview / mocks:.1f}x",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="comma-separated migration counts",
    )
    sizes = [int(size) for size in parser.parse_args(argv).sizes.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    # A cluster of the benchmark's own, stopped at the end.
    os.environ["LOCALCLUSTER_STATE"] = str(scratch / "local-cluster")
    kubeconfig = local.start_cluster()
    header = ["files", "first up s", "no-op preview s", "no-op up s", "mocks s", "preview/mocks"]
    rows: list[list[str]] = []
    try:
        server = ClusterPostgres(
            Layout(scratch / "local-cluster"),
            Client.from_kubeconfig(kubeconfig),
            Location("postgres", "bench-database"),
            local.stack_settings().backup.image,
        )
        server.start()
        for count in sizes:
            rows.append(measure(count, server, kubeconfig, scratch))
            print(" | ".join(rows[-1]), flush=True)
    finally:
        local.stop_cluster()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in itertools.chain([header], [["-" * w for w in widths]], rows):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
