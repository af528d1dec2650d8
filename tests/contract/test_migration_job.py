"""The migration Job the program declares, run for real: Flyway's command line with the Job's
command and environment, the ConfigMaps laid out as the kubelet would, and a PostgreSQL set up
as each stack's flavor sets it up (dev: the Bitnami release; staging and prod: CloudNativePG's
initdb plus the roles and grants the program manages, Flyway logging in as the migrator).
Each scenario checks the schema and flyway_schema_history.

Tests share one server per module and isolate by database: each gets its own database, owner
and (named after the database) managed roles through the `databaseName`/`databaseOwner`
settings, so the Job still connects to the database the program declares.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from components.contract import Purpose
from components.migrations import CONFIGMAP_LIMIT, LOCK_FILE_NAME, load_migration_set
from standins.flyway_cli import FlywayTimeoutError
from standins.postgres import PostgresServer
from tests.contract.harness import (
    INITSCRIPTS_PASSWORD_ENV,
    INITSCRIPTS_USER_ENV,
    RELEASE_TYPE,
    DeclaredJob,
    PreparedDatabase,
    apply_roles,
    declared_job,
    initialise_database,
    job_from_run,
    lay_out_volume,
    program_run,
    run_job,
    schema_history,
    volume_files,
)
from tests.program import STACKS

pytestmark = pytest.mark.contract

MIGRATIONS = Path(__file__).parent / "history"
"""A history of these tests' own, the one the project started with (V1 stands for a table
that predates Flyway): the scenarios below are about it, whatever database/migrations holds."""
PROJECT = load_migration_set(MIGRATIONS)
PROJECT_VERSIONS = [str(f.version) for f in PROJECT.versioned]
"""Every versioned migration of the history, in order: V1 to V4."""
V1_TO_V4 = ["1", "2", "3", "4"]
_NEXT = PROJECT.highest_version.parts[0] + 1 if PROJECT.highest_version else 1
NEXT, AFTER_NEXT = str(_NEXT), str(_NEXT + 1)
"""Versions for migrations the tests add to a copy of the project's set."""
SCHEMA_TABLES = {
    "strategies",
    "strategy_specs",
    "strategy_implementations",
    "strategy_performance",
    "signals",
}
NON_EMPTY_SCHEMA_ERROR = 'Found non-empty schema(s) "public" but no schema history table'
UP_TO_DATE = 'Schema "public" is up to date. No migration necessary.'
CONNECTION_REFUSED = "Connection refused"

_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I
)
_TRIGGER = re.compile(r"CREATE\s+TRIGGER\s+(\w+)", re.I)
_FUNCTION = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)", re.I)


# -- helpers ------------------------------------------------------------------------------------


def isolated(tag: str, **config: str) -> dict[str, str | None]:
    """Config overrides giving a test its own database and owner role on the shared server,
    and the history of these tests (unless `config` names another)."""
    return {
        "databaseName": f"ts_{tag}",
        "databaseOwner": f"ts_{tag}_owner",
        "migrationsDir": str(MIGRATIONS),
        **config,
    }


HISTORY_ONLY = {"migrationsDir": str(MIGRATIONS)}


@dataclass
class Deployment:
    """A database prepared as the stack declares it, plus a way to run the declared Job on it."""

    server: PostgresServer
    job: DeclaredJob
    prepared: PreparedDatabase
    workdir: Path

    def migrate(
        self,
        job: DeclaredJob | None = None,
        *,
        timeout: float = 300.0,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[str, int]:
        """Lay out `job`'s volume afresh (default: the deployment's Job) and run it.

        The timeout only stops a hung Flyway; no outcome depends on how fast it runs.
        """
        job = job or self.job
        mount = Path(tempfile.mkdtemp(prefix="sql-", dir=self.workdir))
        lay_out_volume(job, mount)
        proc = run_job(
            job,
            self.server,
            mount,
            password=self.prepared.password,
            timeout=timeout,
            on_line=on_line,
        )
        return proc.stdout + proc.stderr, proc.returncode

    def history(self) -> list[dict[str, Any]] | None:
        return schema_history(self.server, self.job.database)

    def query(self, statement: str, params: tuple[Any, ...] | None = None) -> list[Any]:
        return self.server.query(statement, params, dbname=self.job.database)

    def connect(self, role: str) -> psycopg.Connection[Any]:
        """A connection as `role` (any role the set-up gave a password) to the app database."""
        return self.server.connect(
            self.job.database, user=role, password=self.prepared.passwords[role]
        )

    @property
    def owner(self) -> str:
        owner = self.job.setup.owner
        assert owner is not None, "these stacks run the database in-cluster"
        return owner


def deploy(
    server: PostgresServer, workdir: Path, job: DeclaredJob, *, restored: str | None = None
) -> Deployment:
    """The database as declared. `restored` runs as the owner before any role is managed, as a
    restored database's schema exists before Pulumi can reach the cluster to manage roles."""
    workdir.mkdir(parents=True, exist_ok=True)
    prepared = initialise_database(server, job)
    if restored is not None:
        owner = job.setup.owner or job.setup.admin
        password = prepared.passwords[owner]
        with (
            server.connect(job.database, user=owner, password=password) as conn,
            conn.transaction(),
        ):
            conn.execute(restored)
    return Deployment(server, job, apply_roles(server, job, prepared), workdir)


def tables(deployment: Deployment) -> set[str]:
    rows = deployment.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {name for (name,) in rows}


def table_owners(deployment: Deployment) -> dict[str, str]:
    rows = deployment.query(
        "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
    )
    return dict(rows)


def applied_versions(history: list[dict[str, Any]] | None) -> list[str]:
    assert history is not None, "flyway_schema_history does not exist"
    return [row["version"] for row in history if row["type"] == "SQL" and row["success"]]


def names_in_sql(pattern: re.Pattern[str], directory: Path = MIGRATIONS) -> set[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(directory.glob("V*.sql")))
    return {name.lower() for name in pattern.findall(text)}


def copy_migrations(target: Path, *, lock: bool) -> Path:
    shutil.copytree(MIGRATIONS, target)
    if not lock:
        (target / LOCK_FILE_NAME).unlink()
    return target


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "work"


Fresh = Callable[[str], tuple[Deployment, str, int]]


@pytest.fixture(scope="module")
def fresh(shared_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Fresh:
    """A stack's Job run once on a fresh database, when a test first asks for that stack.

    dev as committed but for the migrations; staging and prod also with their own database
    name, since the roles they manage are per server and named after it.
    """
    runs: dict[str, tuple[Deployment, str, int]] = {}

    def run(stack: str) -> tuple[Deployment, str, int]:
        if stack not in runs:
            job = declared_job(
                stack, HISTORY_ONLY if stack == "dev" else isolated(f"fresh_{stack}")
            )
            deployment = deploy(shared_postgres, tmp_path_factory.mktemp(f"fresh-{stack}"), job)
            output, code = deployment.migrate()
            runs[stack] = (deployment, output, code)
        return runs[stack]

    return run


@pytest.fixture
def start_in_background() -> Iterator[Callable[[PostgresServer], None]]:
    """Start a stopped server from a thread, once; joined (and its errors raised) at the end."""
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def start(server: PostgresServer) -> None:
        if threads:
            return

        def run() -> None:
            try:
                server.start()
            except BaseException as error:  # reported by the fixture, not lost in the thread
                errors.append(error)

        thread = threading.Thread(target=run, name="start-postgres", daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    for thread in threads:
        thread.join(timeout=300)
    if errors:
        raise errors[0]


# -- scenarios ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_a_fresh_database_applies_v1_to_v4(stack: str, fresh: Fresh) -> None:
    # On an empty schema the baseline of staging and prod does nothing (database/README.md).
    deployment, output, code = fresh(stack)

    assert code == 0, output
    assert f"Successfully applied {len(PROJECT_VERSIONS)} migrations" in output
    history = deployment.history()
    assert history is not None
    assert PROJECT_VERSIONS[:4] == V1_TO_V4
    assert [(r["version"], r["type"], r["success"]) for r in history] == [
        (version, "SQL", True) for version in PROJECT_VERSIONS
    ]
    assert [r["script"] for r in history] == [f.path for f in PROJECT.versioned]
    assert tables(deployment) >= SCHEMA_TABLES | {"flyway_schema_history"}

    indexes = {name for (name,) in deployment.query("SELECT indexname FROM pg_indexes")}
    expected_indexes = names_in_sql(_INDEX)
    assert {"idx_strategies_symbol", "idx_strategy_specs_tags", "idx_signals_outcome"} <= (
        expected_indexes
    )
    assert expected_indexes <= indexes, expected_indexes - indexes
    triggers = dict(
        deployment.query(
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal"
        )
    )
    assert names_in_sql(_TRIGGER) <= set(triggers)
    assert triggers["strategies_set_updated_at"] == "strategies"
    assert triggers["strategy_specs_set_updated_at"] == "strategy_specs"


def test_b_a_second_run_applies_nothing(shared_postgres: PostgresServer, workdir: Path) -> None:
    deployment = deploy(shared_postgres, workdir, declared_job("dev", isolated("b")))
    output, code = deployment.migrate()
    assert code == 0, output
    before = deployment.history()

    output, code = deployment.migrate()

    assert code == 0, output
    assert UP_TO_DATE in output
    assert "Successfully applied" not in output
    assert deployment.history() == before
    assert applied_versions(before) == PROJECT_VERSIONS


@pytest.mark.parametrize("stack", STACKS)
def test_c_a_database_that_predates_flyway_is_baselined_as_the_stack_says(
    stack: str, shared_postgres: PostgresServer, workdir: Path
) -> None:
    # The legacy schema is V1's table, so the baseline is version 1; whether the stack
    # baselines at all is its file's choice.
    job = declared_job(stack, isolated(f"c_{stack}", flywayBaselineVersion="1"))
    on_migrate = job.env_value("FLYWAY_BASELINE_ON_MIGRATE")

    # The legacy table, created without Flyway by the database's owner, as a restored
    # pre-Flyway database has it.
    v1 = (MIGRATIONS / "V1__baseline_strategies_table.sql").read_text(encoding="utf-8")
    deployment = deploy(shared_postgres, workdir, job, restored=v1)
    legacy_tables = tables(deployment)
    assert legacy_tables == {"strategies"}

    output, code = deployment.migrate()

    if on_migrate == "false":
        assert code != 0, output
        assert NON_EMPTY_SCHEMA_ERROR in output
        assert deployment.history() is None
        assert tables(deployment) == legacy_tables
        # The documented one-time adoption: the same stack with baselining on, once.
        adopting = declared_job(
            stack,
            isolated(f"c_{stack}", flywayBaselineVersion="1", flywayBaselineOnMigrate="true"),
        )
        output, code = deployment.migrate(adopting)
    assert code == 0, output
    history = deployment.history()
    assert history is not None
    assert [(r["version"], r["type"], r["success"]) for r in history] == [
        ("1", "BASELINE", True),
        *[(version, "SQL", True) for version in PROJECT_VERSIONS[1:]],
    ]
    assert PROJECT_VERSIONS[1:4] == ["2", "3", "4"]
    assert "V1__baseline_strategies_table.sql" not in {r["script"] for r in history}
    assert tables(deployment) >= SCHEMA_TABLES | {"flyway_schema_history"}
    # V2 attached the updated_at trigger to the table that predates Flyway.
    assert deployment.query(
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'strategies_set_updated_at'"
    ) == [(1,)]
    model = job.setup.model
    if model is None:
        return
    # The migrator attached V2's trigger as a member of the owner; the table stays the owner's.
    migrator, app = model.role(Purpose.MIGRATOR).name, model.role(Purpose.APP).name
    assert job.env_value("FLYWAY_USER") == migrator
    assert {r["installed_by"] for r in history} == {migrator}
    owners = table_owners(deployment)
    assert owners.pop("strategies") == deployment.owner
    assert set(owners.values()) == {migrator}
    assert deployment.query(
        "SELECT pg_has_role(%s, %s, 'USAGE')", (migrator, deployment.owner)
    ) == [(True,)]
    # The grants on tables that existed when the roles were set up cover the restored one.
    with deployment.connect(app) as conn:
        conn.execute(
            "INSERT INTO strategies (symbol, strategy_type, parameters, current_score,"
            " strategy_hash) VALUES ('BTCUSD', 'ema_cross', '{}', 1, 'restored-1')"
        )
        conn.execute("UPDATE strategies SET current_score = 2 WHERE strategy_hash = 'restored-1'")
        [(score,)] = conn.execute(
            "SELECT current_score FROM strategies WHERE strategy_hash = 'restored-1'"
        ).fetchall()
    assert score == 2


FAILING_MIGRATION = """\
-- Trade fills; the second statement fails, after the first created a table.
CREATE TABLE trade_fills (
    id       bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quantity numeric NOT NULL
);
INSERT INTO trade_fills (quantity) VALUES (1 / 0);
"""
FIXED_MIGRATION = FAILING_MIGRATION.replace("(1 / 0)", "(1)")


def test_d_a_failing_migration_is_rolled_back_and_retried_after_the_fix(
    shared_postgres: PostgresServer, workdir: Path, tmp_path: Path
) -> None:
    directory = copy_migrations(tmp_path / "migrations", lock=True)
    deployment = deploy(shared_postgres, workdir, declared_job("dev", isolated("d")))
    output, code = deployment.migrate()
    assert code == 0, output
    before = deployment.history()

    added = directory / f"V{NEXT}__add_trade_fills.sql"
    added.write_text(FAILING_MIGRATION, encoding="utf-8")
    failing = declared_job("dev", isolated("d", migrationsDir=str(directory)))
    output, code = deployment.migrate(failing)

    assert code != 0, output
    assert "division by zero" in output
    assert "trade_fills" not in tables(deployment)
    assert deployment.history() == before

    added.write_text(FIXED_MIGRATION, encoding="utf-8")
    fixed = declared_job("dev", isolated("d", migrationsDir=str(directory)))
    output, code = deployment.migrate(fixed)

    assert code == 0, output
    assert applied_versions(deployment.history()) == [*PROJECT_VERSIONS, NEXT]
    assert deployment.query("SELECT quantity FROM trade_fills") == [(1,)]


def test_e_an_edited_applied_migration_is_refused_at_preview_and_by_flyway(
    shared_postgres: PostgresServer, workdir: Path, tmp_path: Path
) -> None:
    edit = "\nCREATE TABLE sneaky_edit (id bigint);\n"
    locked = copy_migrations(tmp_path / "locked", lock=True)
    with (locked / "V2__add_strategy_specs.sql").open("a", encoding="utf-8") as sql_file:
        sql_file.write(edit)
    refused = program_run("dev", isolated("e", migrationsDir=str(locked)))
    assert refused.error is not None
    assert "V2__add_strategy_specs.sql" in str(refused.error)

    deployment = deploy(shared_postgres, workdir, declared_job("dev", isolated("e")))
    output, code = deployment.migrate()
    assert code == 0, output
    history, schema = deployment.history(), tables(deployment)

    unlocked = copy_migrations(tmp_path / "unlocked", lock=False)
    with (unlocked / "V2__add_strategy_specs.sql").open("a", encoding="utf-8") as sql_file:
        sql_file.write(edit)
    edited = declared_job("dev", isolated("e", migrationsDir=str(unlocked)))
    output, code = deployment.migrate(edited)

    assert code != 0, output
    assert "Migration checksum mismatch for migration version 2" in output
    assert deployment.history() == history
    assert tables(deployment) == schema


def test_f_two_runs_at_the_same_moment_apply_each_migration_once(
    shared_postgres: PostgresServer, workdir: Path
) -> None:
    deployment = deploy(shared_postgres, workdir, declared_job("dev", isolated("f")))
    barrier = threading.Barrier(2)

    def run() -> tuple[str, int]:
        barrier.wait()
        return deployment.migrate()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: run(), range(2)))

    for output, code in results:
        assert code == 0, output
    history = deployment.history()
    assert history is not None
    assert [r["version"] for r in history if r["type"] == "SQL"] == PROJECT_VERSIONS
    assert all(r["success"] for r in history)
    # Flyway's lock serialises them: one applies everything, the other then finds nothing to do.
    assert sorted(UP_TO_DATE in output for output, _ in results) == [False, True]
    assert sum("Successfully applied" in output for output, _ in results) == 1


def test_g_connect_retries_bridge_a_database_that_starts_late(
    postgres: PostgresServer,
    workdir: Path,
    start_in_background: Callable[[PostgresServer], None],
) -> None:
    job = declared_job("dev", {**HISTORY_ONLY, "flywayConnectRetries": "30"})
    assert int(job.env_value("FLYWAY_CONNECT_RETRIES")) > 0
    deployment = deploy(postgres, workdir, job)
    postgres.stop()
    refused: list[str] = []

    def start_once_refused(line: str) -> None:
        # The server stays down until Flyway has demonstrably failed to connect: no sleeps,
        # so a loaded machine changes how long this takes, never what it shows.
        if CONNECTION_REFUSED in line:
            refused.append(line)
            start_in_background(postgres)

    output, code = deployment.migrate(on_line=start_once_refused)

    assert refused, output
    assert code == 0, output
    assert "Retrying" in output
    assert applied_versions(deployment.history()) == PROJECT_VERSIONS


def test_h_project_checksums_equal_the_checksums_flyway_records(fresh: Fresh) -> None:
    deployment, output, code = fresh("dev")
    assert code == 0, output
    history = deployment.history()
    assert history is not None
    recorded = {r["script"]: r["checksum"] for r in history}

    project = {f.path: f.checksum for f in load_migration_set(MIGRATIONS).versioned}
    stack_output = {m["script"]: m["checksum"] for m in deployment.job.packaged}

    assert len(recorded) == len(PROJECT_VERSIONS) >= 4
    assert project == recorded
    assert stack_output == recorded


SEED_FILES = {
    "seed/V2__seed_prices_part_1.sql": 6_000,
    "seed/V3__seed_prices_part_2.sql": 6_000,
    "seed/archive/V4__seed_prices_part_3.sql": 6_000,
    "V5__seed prices part 4.sql": 6_000,
    "seed/V6__seed_prices_part_5.sql": 6_000,
}


def _seed_sql(version: int, rows: int) -> str:
    lines = [f"-- V{version}: seed prices, {rows} rows."]
    for start in range(0, rows, 500):
        values = ",\n".join(
            f"    ({version * 1_000_000 + i}, 'SYM{i % 997:04d}', {i * 7 % 100_000}.{i % 97:02d},"
            f" '2026-01-01T00:00:00Z'::timestamptz + interval '{i} minutes')"
            for i in range(start, min(start + 500, rows))
        )
        lines.append(f"INSERT INTO seed_prices (id, symbol, price, observed_at) VALUES\n{values};")
    return "\n".join(lines) + "\n"


def write_large_set(directory: Path) -> int:
    """About 3 MB of migrations: seed data in subfolders, small DDL around it, a spaced name,
    and two files whose bytes must survive as they are (ISO-8859-1; a BOM with CRLF)."""
    files = {
        "V1__create_seed_tables.sql": b"CREATE TABLE seed_prices (\n"
        b"    id bigint PRIMARY KEY, symbol text NOT NULL, price numeric NOT NULL,\n"
        b"    observed_at timestamptz NOT NULL\n);\n",
        "V7__index_seed_prices_symbol.sql": b"CREATE INDEX idx_seed_prices_symbol"
        b" ON seed_prices (symbol);\n",
        "ddl/V8__add_seed_notes.sql": b"CREATE TABLE seed_notes (id bigint PRIMARY KEY,"
        b" note text NOT NULL);\n",
        "ddl/V9__add_latin1_note.sql": "-- Written in ISO-8859-1, declared in the .conf file.\n"
        "INSERT INTO seed_notes VALUES (1, 'café');\n".encode("iso-8859-1"),
        "ddl/V9__add_latin1_note.sql.conf": b"encoding=ISO-8859-1\n",
        "V10__add_crlf_note.sql": "\ufeff-- A BOM and CRLF line endings.\r\n"
        "INSERT INTO seed_notes VALUES (2, 'crlf');\r\n".encode(),
    }
    for path, rows in SEED_FILES.items():
        version = int(re.search(r"V(\d+)__", path).group(1))  # type: ignore[union-attr]
        files[path] = _seed_sql(version, rows).encode()
    for path, content in files.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(content)
    return sum(len(content) for content in files.values())


def test_i_a_set_over_one_mib_is_split_across_configmaps_and_applied(
    shared_postgres: PostgresServer, workdir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "large"
    total = write_large_set(directory)
    assert total > 2_500_000
    job = declared_job("dev", isolated("i", migrationsDir=str(directory)))

    assert len(job.config_maps) >= 3
    assert {s.config_map for s in job.sources} == set(job.config_maps)
    for name, content in job.config_maps.items():
        size = sum(len(k) + len(v.encode()) for k, v in content.data.items())
        assert size + sum(len(k) + len(v) for k, v in content.binary_data.items()) < (
            CONFIGMAP_LIMIT
        ), name
    assert any(content.binary_data for content in job.config_maps.values())
    assert {path: data for path, (data, _) in volume_files(job).items()} == {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in directory.rglob("*")
        if p.is_file()
    }

    deployment = deploy(shared_postgres, workdir, job)
    output, code = deployment.migrate()

    assert code == 0, output
    history = deployment.history()
    assert applied_versions(history) == [str(v) for v in range(1, 11)]
    assert deployment.query("SELECT count(*) FROM seed_prices") == [(sum(SEED_FILES.values()),)]
    assert deployment.query("SELECT note FROM seed_notes ORDER BY id") == [("café",), ("crlf",)]
    recorded = {r["script"]: r["checksum"] for r in history or []}
    assert recorded["V5__seed prices part 4.sql"] is not None
    assert recorded == {f.path: f.checksum for f in load_migration_set(directory).versioned}, (
        "Flyway's checksums differ from the project's"
    )


CONCURRENT_INDEX = """\
-- squawk-disable-assume-in-transaction
-- Index signals by timeframe without blocking writes.
SET lock_timeout = '10s';
SET statement_timeout = '30min';

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_signals_timeframe ON signals (timeframe);

RESET statement_timeout;
RESET lock_timeout;
"""
SIGNAL_ROWS = """\
-- Sample signals, so the concurrent index has rows to build over.
SET LOCAL lock_timeout = '10s';
INSERT INTO signals (instrument, signal_type, price, timeframe)
SELECT 'SYM' || (n % 50), 'BUY', n, (ARRAY['1m', '5m', '1h'])[1 + n % 3]
FROM generate_series(1, 20000) AS n;
"""


def test_j_create_index_concurrently_applies_without_hanging(
    shared_postgres: PostgresServer, workdir: Path, tmp_path: Path
) -> None:
    directory = copy_migrations(tmp_path / "migrations", lock=True)
    (directory / f"V{NEXT}__add_sample_signals.sql").write_text(SIGNAL_ROWS, encoding="utf-8")
    index = directory / f"V{AFTER_NEXT}__index_signals_timeframe.sql"
    index.write_text(CONCURRENT_INDEX, encoding="utf-8")
    index.with_name(f"{index.name}.conf").write_text(
        "executeInTransaction=false\n", encoding="utf-8"
    )
    job = declared_job("dev", isolated("j", migrationsDir=str(directory)))
    deployment = deploy(shared_postgres, workdir, job)

    try:
        output, code = deployment.migrate()
    except FlywayTimeoutError as error:
        pytest.fail(f"Flyway hung on CREATE INDEX CONCURRENTLY:\n{error}")

    assert code == 0, output
    assert applied_versions(deployment.history()) == [*PROJECT_VERSIONS, NEXT, AFTER_NEXT]
    assert deployment.query(
        "SELECT i.indisvalid, i.indisready FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'idx_signals_timeframe'"
    ) == [(True, True)]
    assert deployment.query("SELECT count(*) FROM signals") == [(20000,)]


ROLE_ATTRIBUTES = (
    "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
    " FROM pg_roles WHERE rolname = %s"
)


@pytest.mark.parametrize("stack", STACKS)
def test_k_migrations_run_as_a_login_that_cannot_create_roles_or_databases(
    stack: str, fresh: Fresh
) -> None:
    deployment, output, code = fresh(stack)
    assert code == 0, output
    setup = deployment.job.setup
    login = deployment.job.env_value("FLYWAY_USER")
    if stack == "dev":
        # Bitnami without managed roles: the owner, stripped of CREATEDB by the init script.
        assert setup.model is None
        assert login == deployment.owner
    else:
        assert setup.model is not None
        assert login == setup.model.role(Purpose.MIGRATOR).name == f"{setup.database}_migrator"
    assert deployment.prepared.init_errors == ()

    [installed_by] = {r["installed_by"] for r in deployment.history() or []}
    assert installed_by == login
    # Neither the login nor the owner it may act as has any right beyond the database.
    for role in {login, deployment.owner}:
        assert deployment.query(ROLE_ATTRIBUTES, (role,)) == [(False,) * 5], role
    owners = deployment.query(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
    )
    assert owners == [(login,)]
    functions = names_in_sql(_FUNCTION)
    assert deployment.query(
        "SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = ANY(%s)",
        (sorted(functions),),
    ) == [(login,)]

    acts_as = {
        name
        for (name,) in deployment.query(
            "SELECT rolname FROM pg_roles WHERE pg_has_role(%s, oid, 'MEMBER')", (login,)
        )
    }
    # The database's owner is implicitly pg_database_owner; the migrator, its member, too.
    assert acts_as == {login, deployment.owner, "pg_database_owner"}
    with deployment.connect(login) as conn:
        for role in sorted(acts_as):
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="create role"):
                conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(f"{role}_intruder")))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="create database"):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"{role}_copy")))


def test_k_the_init_scripts_user_decides_whether_the_owner_keeps_createdb(
    shared_postgres: PostgresServer,
) -> None:
    """The image runs init scripts as the owner unless told otherwise, and ignores their errors;
    the owner cannot take CREATEDB from itself. So without the chart's init-scripts user the
    owner would keep CREATEDB, and test k would fail."""
    run = program_run("dev", isolated("k_init"))
    assert run.error is None
    release = next(r for r in run.of_type(RELEASE_TYPE) if "auth" in r.inputs["values"])
    values = release.inputs["values"]
    declared = {e["name"] for e in values["primary"]["extraEnvVars"]}
    assert {INITSCRIPTS_USER_ENV, INITSCRIPTS_PASSWORD_ENV} <= declared
    assert job_from_run(run).setup.init_user == "postgres"

    primary = {
        **values["primary"],
        "extraEnvVars": [
            e
            for e in values["primary"]["extraEnvVars"]
            if e["name"] not in {INITSCRIPTS_USER_ENV, INITSCRIPTS_PASSWORD_ENV}
        ],
    }
    edited = dataclasses.replace(
        release, inputs={**release.inputs, "values": {**values, "primary": primary}}
    )
    without = dataclasses.replace(
        run, resources=[edited if r is release else r for r in run.resources]
    )
    job = job_from_run(without)
    owner = job.setup.owner
    assert job.setup.init_user == owner

    prepared = initialise_database(shared_postgres, job)

    [error] = prepared.init_errors
    assert f'ALTER ROLE "{owner}" NOSUPERUSER NOCREATEDB' in error
    [(createdb,)] = shared_postgres.query(
        "SELECT rolcreatedb FROM pg_roles WHERE rolname = %s", (owner,)
    )
    assert createdb is True
