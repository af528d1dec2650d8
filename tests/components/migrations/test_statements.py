"""Scripts read as Flyway's PostgreSQL parser reads them, to find what it refuses at deploy."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.migrations import extend_lock, load_migration_set
from components.migrations.statements import flyway_refusals, pending_refusals, statements
from tests.components.migrations import write_tree


@pytest.mark.parametrize(
    ("sql", "transactional"),
    [
        ("VACUUM t", False),
        ("vacuum analyze t", False),
        ("CREATE INDEX CONCURRENTLY i ON t (c)", False),
        ("CREATE UNIQUE INDEX CONCURRENTLY i ON t (c)", False),
        ("DROP INDEX CONCURRENTLY i", False),
        ("REINDEX DATABASE app", False),
        ("CREATE DATABASE other", False),
        ("ALTER SYSTEM SET work_mem = '4MB'", False),
        ("DISCARD ALL", False),
        ("CREATE INDEX i ON t (c)", True),
        ("REINDEX TABLE t", True),
        ("ALTER TYPE mood ADD VALUE 'meh'", True),
        ("UPDATE vacuum_log SET done = true", True),
        ("SELECT 'VACUUM'", True),
    ],
)
def test_statements_are_classified_by_their_leading_keywords(sql: str, transactional: bool) -> None:
    (statement,) = statements(sql + ";")
    assert statement.transactional is transactional


def test_splitting_respects_quotes_comments_and_dollar_quotes() -> None:
    text = (
        "SELECT 'a;b', \"x;y\", E'it\\'s;';  -- VACUUM;\n"
        "/* VACUUM; /* nested; */ still */ CREATE FUNCTION f() RETURNS int AS $body$\n"
        "  SELECT 1; $body$ LANGUAGE sql;\n"
        "\\set x 1\n"
        "VACUUM;"
    )
    found = statements(text)
    assert [s.line for s in found] == [1, 2, 4, 5]
    assert found[2].meta_command == "\\set"
    assert not found[3].transactional
    assert [s.transactional for s in found[:2]] == [True, True]


def script(tmp_path: Path, files: dict[str, str]) -> list[str]:
    write_tree(tmp_path, dict(files))
    return [str(p) for f in load_migration_set(tmp_path).files for p in flyway_refusals(f)]


def test_a_script_mixing_both_kinds_is_refused_naming_the_line_and_the_way_out(
    tmp_path: Path,
) -> None:
    (problem,) = script(tmp_path, {"V1__a.sql": "UPDATE t SET a = 1;\n\nVACUUM t;\n"})
    assert problem.startswith("V1__a.sql:3: mixes VACUUM T (line 3)")
    assert "executeInTransaction=false" in problem
    assert "migration of its own" in problem


def test_only_non_transactional_statements_or_a_conf_saying_so_pass(tmp_path: Path) -> None:
    assert script(tmp_path / "a", {"V1__a.sql": "CREATE INDEX CONCURRENTLY i ON t (c);\n"}) == []
    files = {
        "V1__a.sql": "UPDATE t SET a = 1;\nVACUUM t;\n",
        "V1__a.sql.conf": "executeInTransaction=false\n",
    }
    assert script(tmp_path / "b", files) == []


def test_a_psql_meta_command_is_refused(tmp_path: Path) -> None:
    (problem,) = script(tmp_path, {"V1__a.sql": "SELECT 1;\n\\i other.sql\n"})
    assert problem.startswith("V1__a.sql:2: holds the psql meta-command \\i")


def test_released_history_is_not_judged_again(tmp_path: Path) -> None:
    write_tree(tmp_path, {"V1__a.sql": "UPDATE t SET a = 1;\nVACUUM t;\n"})
    migrations = load_migration_set(tmp_path)
    assert len(pending_refusals(migrations, None)) == 1
    assert pending_refusals(migrations, extend_lock(migrations, None)) == []
