"""What a preview costs as the migration history grows.

For each size, a seeded synthetic migrations directory (mostly small DDL files, a few
repeatables, callbacks and ``.sql.conf`` files, subfolders, large seed-data files and a lock
file) is written to a temporary folder and measured by two fresh Python processes:

- one runs the whole program under Pulumi mocks (``tests.program.run_program``), as a
  preview runs it, and nothing else, so its peak memory (``ru_maxrss``) is the preview's;
- the other times the pure steps alone, ``load_migration_set`` (discover, validate,
  checksum) and ``pack``, against the floor: walking the folder, reading every migration
  file and hashing it with SHA-256.

Run with ``make bench`` or ``.venv/bin/python benchmarks/preview_scaling.py --sizes 10,100``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import itertools
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.migrations import (
    CONFIGMAP_LIMIT,
    DEFAULT_BUDGET,
    LOCK_FILE_NAME,
    Lock,
    efficiency,
    extend_lock,
    load_migration_set,
    pack,
    render_lock,
)

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_SIZES = (10, 100, 1_000, 5_000, 20_000)
SEED = 20_250_101
MIB = 1024 * 1024
RESULT_PREFIX = "RESULT "

# Goals, checked on one run.
PURE_VS_BASELINE_GOAL = 3.0
PURE_VS_BASELINE_AT = 5_000
EFFICIENCY_GOAL = 0.90
GROWTH_FROM = 1_000
GROWTH_EXPONENT_GOAL = 1.15
"""Bound on k in cost ~ size**k between consecutive sizes: 1 is linear, 2 quadratic.

k is the smaller of the exponents against files and against bytes: a step driven by bytes
looks superlinear against files whenever the average file grows, and the other way round.
"""


# --- synthetic migration sets ------------------------------------------------------------------

_WORDS = {
    "tables": "orders fills trades positions accounts instruments venues quotes strategies "
    "signals strategy_specs strategy_performance risk_limits allocations executions "
    "order_events market_data_bars corporate_actions fx_rates settlements margin_calls",
    "columns": "id account_id instrument_id venue_id strategy_id symbol side quantity price "
    "notional currency status created_at updated_at executed_at settled_at trader note source "
    "external_ref fee rebate leverage limit_price stop_price ttl_seconds region",
}
_TABLES = tuple(_WORDS["tables"].split())
_COLUMNS = tuple(_WORDS["columns"].split())
_TYPES = (
    "bigint",
    "integer",
    "numeric(20, 8)",
    "text",
    "varchar(32)",
    "boolean NOT NULL DEFAULT false",
    "timestamptz NOT NULL DEFAULT now()",
    "jsonb",
    "uuid",
)
_VERBS = ("create", "add", "alter", "index", "backfill", "drop", "rename", "extend")
_COMMENTS = (
    "-- Keeps reporting queries off the hot path.\n",
    "-- Währung und Gebühren getrennt (Kundenwunsch).\n",
    "-- Limits in € and ¥ are converted at settlement.\n",
    "-- Nullable first; a later migration backfills and adds NOT NULL.\n",
)
_CALLBACKS = (
    "afterMigrate__grant_read_access.sql",
    "beforeMigrate__set_timeouts.sql",
    "afterMigrate__analyze.sql",
    "afterMigrateError__notify.sql",
    "beforeEachMigrate__search_path.sql",
)


def _ddl(rng: random.Random, target: int) -> str:
    """Plausible DDL of roughly target bytes: tables, indexes, column changes, comments."""
    parts: list[str] = []
    size = 0
    while size < target:
        table = rng.choice(_TABLES)
        roll = rng.random()
        if roll < 0.35:
            columns = ",\n".join(
                f"    {rng.choice(_COLUMNS)}_{i} {rng.choice(_TYPES)}"
                for i in range(rng.randint(3, 12))
            )
            statement = (
                f"CREATE TABLE IF NOT EXISTS {table}_{rng.randint(1, 999)} (\n"
                f"    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n{columns}\n);\n"
            )
        elif roll < 0.6:
            column = rng.choice(_COLUMNS)
            statement = (
                f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx_{rng.randint(1, 9999)}\n"
                f"    ON {table} ({column}, created_at DESC);\n"
            )
        elif roll < 0.85:
            statement = (
                f"ALTER TABLE {table}\n    ADD COLUMN IF NOT EXISTS "
                f"{rng.choice(_COLUMNS)}_{rng.randint(1, 99)} {rng.choice(_TYPES)};\n"
            )
        elif roll < 0.95:
            statement = (
                f"COMMENT ON TABLE {table} IS 'Owned by the trading platform; "
                f"see runbook section {rng.randint(1, 40)}.';\n"
            )
        else:
            statement = rng.choice(_COMMENTS)
        parts.append(statement)
        size += len(statement.encode("utf-8"))
    return "\n".join(parts)


def _seed_data(rng: random.Random, target: int) -> str:
    """Multi-row INSERTs of reference data, roughly target bytes."""
    symbols = ["".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=4)) for _ in range(400)]
    venues = ("XNAS", "XNYS", "XLON", "XETR", "XTKS", "BATS")
    parts = ["-- Reference data, generated from the instrument master.\n"]
    size = len(parts[0])
    row_id = 0
    while size < target:
        rows = []
        for _ in range(500):
            row_id += 1
            rows.append(
                f"    ({row_id}, '{rng.choice(symbols)}', '{rng.choice(venues)}', "
                f"{rng.randint(1, 10_000) / 100:.2f}, {rng.randint(1, 500)}, "
                f"'2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}')"
            )
        statement = (
            "INSERT INTO instruments (id, symbol, venue, tick_size, lot_size, listed_on) "
            "VALUES\n" + ",\n".join(rows) + "\nON CONFLICT (id) DO NOTHING;\n"
        )
        parts.append(statement)
        size += len(statement)
    return "".join(parts)


def _small_size(rng: random.Random) -> int:
    """A small DDL file's size: lognormal around 1.3 KB, within 0.3-4 KB."""
    return int(min(3_900, max(300, rng.lognormvariate(7.2, 0.6))))


def _folder(version: int, count: int) -> str:
    """A few subfolders, as a long history gets archived by year."""
    share = version / max(count, 1)
    if count < 50 or share < 0.4:
        return ""
    if share < 0.6:
        return "archive/2023/"
    if share < 0.8:
        return "archive/2024/"
    return "2025/"


def generate(directory: Path, count: int, seed: int = SEED) -> None:
    """Write count migration files (including .sql.conf files) to directory, deterministically.

    Mostly versioned DDL of 0.3-4 KB; about 3% repeatables; a few callbacks; about 1% of
    migrations run outside a transaction (CREATE INDEX CONCURRENTLY plus a ``.sql.conf``);
    one in 350 files is seed data of 100-900 KB; a few files use CRLF, a BOM or non-ASCII
    text, and from 1,000 files on one is ISO-8859-1 with its encoding declared. A lock file
    records all but the newest 1% of the versioned migrations.
    """
    rng = random.Random(seed * 1_000_003 + count)  # noqa: S311 - reproducible data
    files: dict[str, bytes] = {}
    callbacks = _CALLBACKS[: min(len(_CALLBACKS), max(1, count // 200))]
    repeatables = max(1, count * 3 // 100)
    seeds = count // 350 + (1 if 100 <= count < 350 else 0)
    latin = 1 if count >= 1_000 else 0
    configs = count // 100
    versioned = count - len(callbacks) - repeatables - 2 * latin - 2 * configs
    seed_positions = set(rng.sample(range(versioned), seeds))
    for name in callbacks:
        files[name] = _ddl(rng, _small_size(rng)).encode("utf-8")
    for n in range(repeatables):
        view = f"{rng.choice(_TABLES)}_summary_{n}"
        body = f"CREATE OR REPLACE VIEW {view} AS\n" + _ddl(rng, _small_size(rng) // 2)
        files[f"views/R__{view}.sql"] = body.encode("utf-8")
    version = 0
    for n in range(versioned + configs):
        version += 1
        folder = _folder(version, versioned + configs)
        description = f"{rng.choice(_VERBS)}_{rng.choice(_TABLES)}_{n}"
        if n < configs:
            name = f"{folder}V{version}__{description}_concurrently.sql"
            sql = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{n} ON orders (symbol, id);\n"
            files[name] = sql.encode("utf-8")
            files[name + ".conf"] = b"executeInTransaction=false\n"
            continue
        if n - configs in seed_positions:
            text = _seed_data(rng, rng.randint(100_000, 900_000))
            files[f"seed/V{version}__seed_{description}.sql"] = text.encode("utf-8")
            continue
        text = _ddl(rng, _small_size(rng))
        roll = rng.random()
        if roll < 0.04:
            text = text.replace("\n", "\r\n")
        elif roll < 0.05:
            text = "\ufeff" + text
        version_text = f"{version}.1" if rng.random() < 0.02 else str(version)
        files[f"{folder}V{version_text}__{description}.sql"] = text.encode("utf-8")
    if latin:
        version += 1
        name = f"V{version}__latin1_reference_names.sql"
        text = "INSERT INTO venues (code, name) VALUES ('XPAR', 'Bourse de Paris (réglée)');\n"
        files[name] = text.encode("latin-1")
        files[name + ".conf"] = b"encoding=ISO-8859-1\n"
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    # Released history is locked, as in a real repository; the newest 1% is not released yet.
    released = extend_lock(load_migration_set(directory), None).entries
    lock = Lock(released[: len(released) - len(released) // 100])
    (directory / LOCK_FILE_NAME).write_text(render_lock(lock), encoding="utf-8")


# --- measuring one size, in its own process --------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """Everything measured for one migration set (seconds, bytes)."""

    files: int
    total_bytes: int
    program_cold_seconds: float
    """The first run in a fresh process, imports included, as a preview runs."""
    program_seconds: float
    """The best run after that: the part that grows with the history."""
    harness_seconds: float
    """Of program_seconds, the mocks harness resolving the stack outputs (no preview does)."""
    load_seconds: float
    pack_seconds: float
    baseline_seconds: float
    config_maps: int
    minimal_config_maps: int
    largest_config_map: int
    data_bytes: int
    module_efficiency: float
    peak_rss_bytes: int

    @property
    def pure_seconds(self) -> float:
        return self.load_seconds + self.pack_seconds

    @property
    def efficiency(self) -> float:
        """Data bytes over the capacity of the ConfigMaps used: data / (n x 1 MiB)."""
        return self.data_bytes / (self.config_maps * CONFIGMAP_LIMIT) if self.config_maps else 1.0

    @property
    def efficiency_bound(self) -> float:
        """Data over the capacity of ceil(data / budget) ConfigMaps: no packing does better."""
        if not self.minimal_config_maps:
            return 1.0
        return self.data_bytes / (self.minimal_config_maps * CONFIGMAP_LIMIT)


def read_and_hash(directory: Path) -> int:
    """The floor any preview pays: find every migration file, read it, SHA-256 it."""
    total = 0
    for folder, _, names in os.walk(directory):
        for name in names:
            if name == LOCK_FILE_NAME and folder == str(directory):
                continue
            with open(os.path.join(folder, name), "rb", buffering=0) as stream:
                content = stream.readall()
            hashlib.sha256(content).digest()
            total += len(content)
    return total


def best_of(runs: int, step: Callable[[], object]) -> float:
    """The fastest of several runs: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def run_preview(directory: Path) -> tuple[float, float, int]:
    """The whole program under mocks: (seconds, of which the harness, ConfigMaps declared).

    The harness resolves every stack output after the program, which a real preview does not
    do, so that part is timed on its own.
    """
    from tests import program  # noqa: PLC0415 - pulls in Pulumi only when asked

    resolve = program._resolve
    harness = 0.0

    def timed_resolve(value: object) -> tuple[object, bool]:
        nonlocal harness
        start = time.perf_counter()
        try:
            return resolve(value)
        finally:
            harness += time.perf_counter() - start

    program._resolve = timed_resolve
    try:
        gc.collect()
        start = time.perf_counter()
        run = program.run_program("dev", config={"migrationsDir": str(directory)})
        seconds = time.perf_counter() - start
    finally:
        program._resolve = resolve
    if run.error is not None:
        raise RuntimeError(f"the program failed: {run.error}")
    return seconds, harness, len(run.outputs["migrationConfigMaps"])


def measure_program(directory: Path, program_runs: int) -> dict[str, float | int]:
    """The program's runs, alone in this process, so peak memory is the preview's own."""
    read_and_hash(directory)  # the page cache is warm for every step alike
    runs = [run_preview(directory) for _ in range(max(program_runs, 1))]
    seconds, harness, config_maps = min(runs[1:] or runs)
    return {
        "program_cold_seconds": runs[0][0],
        "program_seconds": seconds,
        "harness_seconds": harness,
        "program_config_maps": config_maps,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def measure_pure(directory: Path, repeats: int) -> dict[str, float | int]:
    """The pure steps and the read-and-hash floor, best of several runs each."""
    total_bytes = read_and_hash(directory)
    baseline = best_of(repeats, lambda: read_and_hash(directory))
    load = best_of(repeats, lambda: load_migration_set(directory))
    migration_set = load_migration_set(directory)
    packing = best_of(repeats, lambda: pack(migration_set))
    shards = pack(migration_set)
    data_bytes = sum(shard.size for shard in shards)
    return {
        "files": len(migration_set),
        "total_bytes": total_bytes,
        "load_seconds": load,
        "pack_seconds": packing,
        "baseline_seconds": baseline,
        "config_maps": len(shards),
        "minimal_config_maps": math.ceil(data_bytes / DEFAULT_BUDGET),
        "largest_config_map": max(
            (_stored_bytes(shard.data, shard.binary_data) for shard in shards), default=0
        ),
        "data_bytes": data_bytes,
        "module_efficiency": efficiency(shards),
    }


def _stored_bytes(data: dict[str, str], binary_data: dict[str, str]) -> int:
    """What Kubernetes counts for a ConfigMap: data values plus decoded binaryData values."""
    return sum(len(value.encode("utf-8")) for value in data.values()) + sum(
        len(base64.b64decode(value)) for value in binary_data.values()
    )


def _in_subprocess(*arguments: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter: imports, caches and peak memory start anew."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return result


def measure(directory: Path, program_runs: int, repeats: int) -> Measurement:
    """Both halves of one size, each in its own process, checked against each other."""
    pure = _in_subprocess("--measure-pure", str(directory), "--repeats", str(repeats))
    program = _in_subprocess(
        "--measure-program", str(directory), "--program-runs", str(program_runs)
    )
    declared = program.pop("program_config_maps")
    if declared != pure["config_maps"]:
        raise RuntimeError(f"the program declared {declared} ConfigMaps, pack made {pure}")
    return Measurement(**pure, **program)


# --- report ----------------------------------------------------------------------------------


def machine() -> str:
    """CPU model, cores, RAM and Python, so numbers from different machines are not mixed."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram:.1f} GiB RAM, "
        f"Python {platform.python_version()} ({platform.system()} {platform.release()})"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _exponent(first: float, last: float, grow: float) -> float:
    """k in cost ~ size**k between two sizes that differ by the factor grow."""
    return math.log(last / first) / math.log(grow) if first > 0 and last > 0 else float("nan")


def report(results: Sequence[Measurement]) -> tuple[list[str], bool]:
    """The tables and the goal checks as Markdown lines; True when every goal is met."""
    lines = [
        f"Machine: {machine()}",
        "",
        f"Budget per ConfigMap: {DEFAULT_BUDGET:,} bytes of {CONFIGMAP_LIMIT:,}.",
        "",
    ]
    rows = []
    for m in results:
        module = f"{m.module_efficiency:.1%}" if m.config_maps > 1 else "-"
        rows.append(
            [
                f"{m.files:,}",
                f"{m.total_bytes / MIB:.1f}",
                f"{m.program_cold_seconds:.2f}",
                f"{m.program_seconds:.2f}",
                f"{m.harness_seconds:.2f}",
                f"{m.load_seconds:.3f}",
                f"{m.pack_seconds:.3f}",
                f"{m.pure_seconds:.3f}",
                f"{m.baseline_seconds:.3f}",
                f"{m.pure_seconds / m.baseline_seconds:.2f}",
                f"{m.config_maps} ({m.minimal_config_maps})",
                f"{m.largest_config_map:,}",
                f"{m.efficiency:.1%}",
                f"{m.efficiency_bound:.1%}",
                module,
                f"{m.peak_rss_bytes / MIB:.0f}",
            ]
        )
    header = [
        "files",
        "MiB",
        "program cold s",
        "program s",
        "of which harness s",
        "load s",
        "pack s",
        "pure s",
        "baseline s",
        "pure/baseline",
        "ConfigMaps (minimum)",
        "largest CM bytes",
        "efficiency",
        "bound at minimum",
        "efficiency() excl. emptiest",
        "peak RSS MiB",
    ]
    lines += _table(header, rows)
    lines += [
        "",
        "- program cold = the whole program under mocks, first run in a fresh process (imports",
        "  included); program = the best later run; of which harness = the mocks harness",
        "  resolving the stack outputs afterwards, which a real preview does not do.",
        "- load = discover + validate + checksum (`load_migration_set`); pure = load + pack;",
        "  baseline = walk, read and SHA-256 every file. Best of several runs each.",
        "- minimum = ceil(data bytes / budget), fewer ConfigMaps than any packing can use;",
        "  efficiency = data bytes / (ConfigMaps x 1 MiB); bound at minimum = the same with",
        "  the minimum number of ConfigMaps, more than any packing can reach.",
        "- largest CM bytes = what Kubernetes counts (values, binaryData decoded).",
        "",
        "Cost per file and per MiB (a quadratic step shows as a column that keeps growing):",
        "",
    ]
    rows = [
        [
            f"{m.files:,}",
            f"{m.program_seconds / m.files * 1e6:.0f}",
            f"{m.program_seconds / (m.total_bytes / MIB) * 1e3:.1f}",
            f"{m.pure_seconds / m.files * 1e6:.0f}",
            f"{m.pure_seconds / (m.total_bytes / MIB) * 1e3:.2f}",
            f"{m.pack_seconds / m.files * 1e6:.1f}",
            f"{m.baseline_seconds / m.files * 1e6:.0f}",
            f"{m.baseline_seconds / (m.total_bytes / MIB) * 1e3:.2f}",
        ]
        for m in results
    ]
    lines += _table(
        [
            "files",
            "program µs/file",
            "program ms/MiB",
            "pure µs/file",
            "pure ms/MiB",
            "pack µs/file",
            "baseline µs/file",
            "baseline ms/MiB",
        ],
        rows,
    )
    goals_met, goal_lines = _goals(results)
    return [*lines, "", *goal_lines], goals_met


def _goals(results: Sequence[Measurement]) -> tuple[bool, list[str]]:
    lines = ["Goals:", ""]
    met = True
    at = next((m for m in results if m.files >= PURE_VS_BASELINE_AT), None)
    if at is not None:
        ratio = at.pure_seconds / at.baseline_seconds
        ok = ratio <= PURE_VS_BASELINE_GOAL
        met &= ok
        lines.append(
            f"- pure steps / read-and-hash at {at.files:,} files: {ratio:.2f} "
            f"(goal <= {PURE_VS_BASELINE_GOAL:g}): {'met' if ok else 'NOT met'}"
        )
    steps = [m for m in results if m.files >= GROWTH_FROM]
    pairs = list(itertools.pairwise(steps))
    costs: dict[str, Callable[[Measurement], float]] = {
        "program": lambda m: m.program_seconds,
        "program without harness": lambda m: m.program_seconds - m.harness_seconds,
        "pure steps": lambda m: m.pure_seconds,
        "load": lambda m: m.load_seconds,
        "pack": lambda m: m.pack_seconds,
        "baseline": lambda m: m.baseline_seconds,
    }
    for label, cost in costs.items() if pairs else ():
        parts = []
        worst = 0.0
        for small, large in pairs:
            k_files = _exponent(cost(small), cost(large), large.files / small.files)
            k_bytes = _exponent(cost(small), cost(large), large.total_bytes / small.total_bytes)
            worst = max(worst, min(k_files, k_bytes))
            parts.append(f"{small.files:,} -> {large.files:,}: {k_files:.2f} / {k_bytes:.2f}")
        ok = worst <= GROWTH_EXPONENT_GOAL
        if label != "baseline":
            met &= ok
        lines.append(
            f"- growth of {label}, k in cost ~ files^k / bytes^k: {'; '.join(parts)} "
            f"(goal: the smaller k <= {GROWTH_EXPONENT_GOAL:g} at every step): "
            f"{'met' if ok else 'NOT met'}"
        )
    for m in results:
        if m.config_maps < 2:
            continue
        ok_count = m.config_maps <= m.minimal_config_maps + 1
        ok = m.efficiency >= EFFICIENCY_GOAL
        reachable = m.efficiency_bound >= EFFICIENCY_GOAL
        if not ok and not reachable:
            verdict = (
                f"below the goal, but no packing reaches it: the minimum of "
                f"{m.minimal_config_maps} ConfigMaps caps it at {m.efficiency_bound:.1%}"
            )
        else:
            verdict = "met" if ok else "NOT met"
            met &= ok
        met &= ok_count
        lines.append(
            f"- efficiency at {m.files:,} files: {m.efficiency:.1%} in {m.config_maps} "
            f"ConfigMaps (minimum {m.minimal_config_maps}{'' if ok_count else ', NOT within one'}; "
            f"goal >= {EFFICIENCY_GOAL:.0%}): {verdict}"
        )
    return met, lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="comma-separated file counts (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timed pure step")
    parser.add_argument(
        "--program-runs", type=int, default=3, help="program runs per size (the first is cold)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a goal is not met"
    )
    parser.add_argument("--measure-pure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure-program", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure_pure is not None:
        print(RESULT_PREFIX + json.dumps(measure_pure(args.measure_pure, args.repeats)))
        return 0
    if args.measure_program is not None:
        print(RESULT_PREFIX + json.dumps(measure_program(args.measure_program, args.program_runs)))
        return 0

    sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    print(f"Measuring {', '.join(f'{size:,}' for size in sizes)} files on {machine()}", flush=True)
    results: list[Measurement] = []
    for size in sizes:
        folder = Path(tempfile.mkdtemp(prefix=f"migrations-{size}-"))
        try:
            start = time.perf_counter()
            generate(folder, size, args.seed)
            generated = time.perf_counter() - start
            result = measure(folder, args.program_runs, args.repeats)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        results.append(result)
        print(
            f"  {size:>6,} files, {result.total_bytes / MIB:6.1f} MiB: generated in "
            f"{generated:.1f} s; program {result.program_seconds:.2f} s, pure "
            f"{result.pure_seconds:.3f} s, baseline {result.baseline_seconds:.3f} s",
            flush=True,
        )
    lines, goals_met = report(results)
    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 1 if args.check and not goals_met else 0


if __name__ == "__main__":
    sys.exit(main())
