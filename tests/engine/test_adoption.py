"""Adopting a database the program did not build, as a team switching to it would: the README's
commands, as a black box, in a copy of the repository whose migrations are another team's
history (placeholders, subfolders, repeatables, callbacks, SQL squawk flags but a database
applied long ago), on the local stack with the real engine, Flyway and PostgreSQL.

- built by hand, no Flyway history: `make migrations-adopt` locks the files and sets the
  baseline; the rehearsal and the next `make up` apply only what is new;
- migrated by another Flyway runner: taken over, nothing applied again;
- that runner applied another copy of a file: the deploy is refused before any migration runs,
  naming the file and the ways on, and one of them (put back what was applied, relock) works.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.settings.stackfile import read_stack_file, stack_names, stack_path
from standins.localstack import STATE_ENV
from standins.postgres import PostgresServer
from tests.alternative.history import History, write_history
from tests.engine.checkout import PREFIX, Checkout, make_checkout

pytestmark = pytest.mark.engine

MIGRATIONS = "database/migrations"
NEW = (
    "-- Fills of the adopted orders, the first migration written after the adoption.\n"
    "SET LOCAL lock_timeout = '10s';\n"
    "SET LOCAL statement_timeout = '5min';\n\n"
    "CREATE TABLE fills (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, qty numeric);\n"
)


_COUNT = itertools.count()


@pytest.fixture
def checkout(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkout]:
    """A checkout of its own per test: its database, its stack, its namespace; every stack as
    before any adoption, whatever the committed files say."""
    made = make_checkout(kubeconfig, tmp_path_factory, f"adopt-{next(_COUNT)}")
    found = next(made)
    before_adoption(found.stack_file)
    found.set()
    for stack in stack_names(found.root):
        if stack != "local":
            path = stack_path(found.root, stack)
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            before_adoption(document)
            path.write_text(yaml.safe_dump(document), encoding="utf-8")
    yield found
    next(made, None)  # destroy the stack, remove its database


def before_adoption(document: dict[str, Any]) -> None:
    """A stack file's Flyway settings as before an adoption: no baseline, strict order,
    replacement on and no placeholder values."""
    config = document["config"]
    config.pop(PREFIX + "flywayPlaceholders", None)
    config.update(
        {
            PREFIX + "flywayBaselineOnMigrate": "false",
            PREFIX + "flywayBaselineVersion": "1",
            PREFIX + "flywayOutOfOrder": "false",
            PREFIX + "flywayPlaceholderReplacement": "true",
        }
    )


def foreign(checkout: Checkout, versioned: int) -> History:
    """Another team's history in place of the repository's, no lock yet."""
    directory = checkout.root / MIGRATIONS
    shutil.rmtree(directory)
    return write_history(directory, seed=versioned, versioned=versioned, placeholders=8)


def give_values(checkout: Checkout, values: dict[str, str]) -> None:
    """Every stack gets the placeholders' values, as the report's commands would set them."""
    for stack in stack_names(checkout.root):
        if stack == "local":
            checkout.set(flywayPlaceholders=dict(values))
            continue
        path = stack_path(checkout.root, stack)
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document["config"][PREFIX + "flywayPlaceholders"] = dict(values)
        path.write_text(yaml.safe_dump(document), encoding="utf-8")


def new_migration(checkout: Checkout) -> str:
    """`make migrations-new`, its SQL written, `make migrations-lock`: the file's path."""
    code, out = checkout.make("migrations-new", "DESC=add fills")
    assert code == 0, out
    path = out.strip().splitlines()[-1]
    checkout.write(path, NEW)
    code, out = checkout.make("migrations-lock")
    assert code == 0, out
    return path.removeprefix(f"{MIGRATIONS}/")


def database(checkout: Checkout) -> tuple[PostgresServer, str]:
    settings = read_stack_file(checkout.root, "local").settings.database
    base = Path(checkout.env[STATE_ENV]) / "postgres"
    return PostgresServer(base_dir=base, port=settings.access_port), settings.name


def query(checkout: Checkout, statement: str) -> list[tuple[Any, ...]]:
    server, name = database(checkout)
    return server.query(statement, dbname=name)


def history_rows(checkout: Checkout) -> list[tuple[Any, ...]]:
    return query(
        checkout,
        "SELECT installed_rank, version, type, script, checksum, installed_on"
        " FROM flyway_schema_history ORDER BY installed_rank",
    )


def test_a_database_built_by_hand_is_adopted_and_up_applies_only_what_is_new(
    checkout: Checkout,
) -> None:
    history = foreign(checkout, versioned=40)
    # Before any value is given, one line per placeholder and the sum of them.
    code, out = checkout.make("migrations-lint")
    assert code != 0
    assert f"{len(history.values)} placeholders without a value in " in out
    assert "pulumi config set --type string --path 'flywayPlaceholders." in out
    give_values(checkout, history.values)
    checkout.write("hand-built.sql", history.hand_built_sql())
    code, out = checkout.run(
        ".venv/bin/python", "-m", "standins.localstack", "seed", "hand-built.sql"
    )
    assert code == 0, out

    code, out = checkout.make("migrations-adopt", "STACK=local")
    assert code == 0, out
    highest = history.highest
    assert f"baseline at version {highest} (the highest of the files)" in out
    assert "pulumi config set flywayBaselineOnMigrate true --stack local" in out
    assert f"pulumi config set flywayBaselineVersion {highest} --stack local" in out
    assert "(set in stacks/Pulumi.local.yaml by the Pulumi CLI)" in out
    flyway = read_stack_file(checkout.root, "local").settings.flyway
    assert flyway.baseline_on_migrate
    assert flyway.baseline_version == highest
    # Released history: squawk does not judge it again, though it would flag plenty.
    code, out = checkout.make("migrations-check")
    assert code == 0, out
    assert "squawk read the 0 not yet released" in out

    script = new_migration(checkout)
    new_version = script.partition("__")[0].removeprefix("V")
    code, out = checkout.make("migrations-rehearse", "STACK=local")
    assert code == 0, out
    assert f"Successfully baselined schema with version: {highest}" in out
    assert f'to version "{new_version} - add fills"' in out
    assert f"rehearsal passed: local baselines at {highest}" in out

    code, out = checkout.make("up", "STACK=local")
    assert code == 0, out
    rows = history_rows(checkout)
    versioned = [(row[1], row[2]) for row in rows if row[1] is not None]
    assert versioned == [(highest, "BASELINE"), (new_version, "SQL")], rows
    repeatables = sorted(row[3] for row in rows if row[1] is None)
    assert repeatables == sorted(history.repeatables)  # once each, as Flyway has no record
    assert query(checkout, "SELECT count(*) FROM fills") == [(0,)]
    # The rows built by hand are still there: one per placeholder of the seed row script.
    seeded = [name for name in history.values if name != "tablePrefix"]
    assert query(checkout, "SELECT count(*) FROM app_settings") == [(len(seeded),)]


def test_a_history_from_another_runner_is_taken_over_and_nothing_runs_again(
    checkout: Checkout,
) -> None:
    history = foreign(checkout, versioned=12)
    give_values(checkout, history.values)
    placeholders = [f"--placeholder={name}={value}" for name, value in history.values.items()]
    code, out = checkout.run(
        ".venv/bin/python", "-m", "standins.localstack", "seed-flyway", MIGRATIONS, *placeholders
    )
    assert code == 0, out
    before = history_rows(checkout)

    code, out = checkout.make("migrations-adopt", "STACK=local", "HISTORY=flyway")
    assert code == 0, out
    assert "no baseline is set" in out
    assert not read_stack_file(checkout.root, "local").settings.flyway.baseline_on_migrate
    script = new_migration(checkout)

    code, out = checkout.make("up", "STACK=local")
    assert code == 0, out
    after = history_rows(checkout)
    assert after[: len(before)] == before, "a migration ran again"
    assert [row[3] for row in after[len(before) :]] == [script]


def test_a_history_that_differs_from_the_files_is_refused_before_any_migration(
    checkout: Checkout, tmp_path: Path
) -> None:
    history = foreign(checkout, versioned=12)
    give_values(checkout, history.values)
    # The other runner deployed its own copy of the files (a chart's hand-kept ConfigMap),
    # and one of them differs from the repository's.
    applied = shutil.copytree(checkout.root / MIGRATIONS, tmp_path / "applied")
    changed = history.versioned[3]
    (applied / changed).write_text((applied / changed).read_text() + "-- pasted by hand\n")
    placeholders = [f"--placeholder={name}={value}" for name, value in history.values.items()]
    code, out = checkout.run(
        ".venv/bin/python", "-m", "standins.localstack", "seed-flyway", str(applied), *placeholders
    )
    assert code == 0, out
    before = history_rows(checkout)
    code, out = checkout.make("migrations-adopt", "STACK=local", "HISTORY=flyway")
    assert code == 0, out
    script = new_migration(checkout)

    # The preview cannot see the database's history; Flyway's validate, run by migrate
    # before it applies anything, refuses it, and the hint names the file and the ways on.
    code, out = checkout.make("up", "STACK=local")
    assert code != 0, out
    assert "Migration checksum mismatch for migration version" in out
    assert f"{MIGRATIONS}/{changed} is not what the database applied" in out
    assert f"make migrations-relock FILE={MIGRATIONS}/{changed}" in out
    assert "make migrations-repair STACK=local" in out
    assert "Traceback" not in out
    assert history_rows(checkout) == before
    assert query(checkout, "SELECT to_regclass('public.fills') IS NULL") == [(True,)]

    # One way on: put back what the database applied, release it again, deploy.
    shutil.copyfile(applied / changed, checkout.root / MIGRATIONS / changed)
    code, out = checkout.make("migrations-relock", f"FILE={changed}")
    assert code == 0, out
    code, out = checkout.make("up", "STACK=local")
    assert code == 0, out
    after = history_rows(checkout)
    assert after[: len(before)] == before
    assert [row[3] for row in after[len(before) :]] == [script]
