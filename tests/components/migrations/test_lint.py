"""lint(): every check in one list, including squawk on the real executable."""

import sys
from pathlib import Path

import pytest

from components.migrations.lint import find_squawk, find_squawk_config, lint
from components.migrations.lock import Lock, update_lock
from components.migrations.model import (
    Problem,
)
from components.migrations.packing import DEFAULT_BUDGET
from components.migrations.placeholders import StackPlaceholders
from tests.components.migrations import write_tree

TABLE = "CREATE TABLE t (id bigint);\n"
INDEX = "CREATE INDEX idx ON t (c);\n"
ADD_COLUMN = "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 1;\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root (Pulumi.yaml marks it) with an empty migrations directory."""
    (tmp_path / "Pulumi.yaml").write_text("name: test\n")
    migrations = tmp_path / "database" / "migrations"
    migrations.mkdir(parents=True)
    return migrations


def rules(problems: list[Problem], path: str) -> set[str]:
    return {problem.rule for problem in problems if problem.path == path and problem.rule}


def test_clean_directory_has_no_problems(repo: Path) -> None:
    write_tree(repo, {"V1__table.sql": TABLE, "R__view.sql": "SELECT 1;\n"})
    assert lint(repo) == []


def test_reports_structure_lock_and_size_problems_together(repo: Path) -> None:
    write_tree(repo, {"V1__a.sql": TABLE, "V2__b.sql": TABLE})
    update_lock(repo)
    (repo / "V1__a.sql").write_text(TABLE + "-- edited\n")
    write_tree(repo, {"V3__huge.sql": "SELECT 1;\n--" + "x" * DEFAULT_BUDGET + "\n"})
    problems = lint(repo, squawk=False)
    assert [problem.path for problem in problems] == ["V1__a.sql", "V3__huge.sql"]
    assert "changed after it was released" in problems[0].message
    assert f"more than the {DEFAULT_BUDGET:,}-byte budget" in problems[1].message


def test_naming_problems_do_not_stop_squawk(repo: Path) -> None:
    write_tree(repo, {"notes.txt": "x", "V1__idx.sql": INDEX})
    problems = lint(repo)
    assert problems[0].path == "notes.txt"
    assert "require-concurrent-index-creation" in rules(problems, "V1__idx.sql")


def test_squawk_flags_index_without_concurrently_in_a_transaction(repo: Path) -> None:
    write_tree(repo, {"V1__table.sql": TABLE, "V2__idx.sql": "-- index\n\n" + INDEX})
    problems = lint(repo)
    found = rules(problems, "V2__idx.sql")
    assert {"require-concurrent-index-creation", "require-lock-timeout"} <= found
    # Inside Flyway's transaction a failed statement rolls back, so no IF NOT EXISTS advice.
    assert "prefer-robust-stmts" not in found
    index = next(p for p in problems if p.rule == "require-concurrent-index-creation")
    assert index.line == 3
    assert str(index).startswith("V2__idx.sql:3: require-concurrent-index-creation: ")
    assert "concurrently" in index.fix
    assert rules(problems, "V1__table.sql") == set()


def test_non_transactional_scripts_are_linted_as_such(repo: Path) -> None:
    write_tree(
        repo,
        {
            "V1__in_tx.sql": ADD_COLUMN,
            "V2__no_tx.sql": ADD_COLUMN,
            "V2__no_tx.sql.conf": "executeInTransaction=false\n",
        },
    )
    problems = lint(repo)
    assert "prefer-bigint-over-int" in rules(problems, "V1__in_tx.sql")
    assert "prefer-robust-stmts" not in rules(problems, "V1__in_tx.sql")
    assert {"prefer-robust-stmts", "prefer-bigint-over-int"} <= rules(problems, "V2__no_tx.sql")


def test_awkward_names_and_encodings_reach_squawk(repo: Path) -> None:
    write_tree(
        repo,
        {
            "sub dir/V1__a[1].sql": INDEX,
            "V2__latin.sql": b"-- caf\xe9\n" + INDEX.encode(),
            "V2__latin.sql.conf": "encoding=ISO-8859-1\n",
            "R__views.sql": INDEX,
            "afterMigrate.sql": INDEX,
        },
    )
    problems = lint(repo)
    for path in ("sub dir/V1__a[1].sql", "V2__latin.sql", "R__views.sql"):
        assert "require-concurrent-index-creation" in rules(problems, path), path
    assert next(p.line for p in problems if p.path == "V2__latin.sql") == 2
    assert rules(problems, "afterMigrate.sql") == set()


def test_repository_squawk_config_is_used(repo: Path) -> None:
    config = repo.parent.parent / ".squawk.toml"
    config.write_text('excluded_rules = ["require-concurrent-index-creation"]\n')
    assert find_squawk_config(repo) == config
    write_tree(repo, {"V1__idx.sql": INDEX})
    found = rules(lint(repo), "V1__idx.sql")
    assert "require-concurrent-index-creation" not in found
    assert "require-lock-timeout" in found


def test_config_search_stops_at_the_repository_root(repo: Path) -> None:
    assert find_squawk_config(repo) is None


def test_broken_squawk_config_is_a_problem_not_a_pass(repo: Path) -> None:
    (repo.parent.parent / ".squawk.toml").write_text("this is not toml [\n")
    write_tree(repo, {"V1__table.sql": TABLE})
    (problem,) = lint(repo)
    assert problem.message.startswith("squawk failed")


def test_missing_squawk_is_an_error_with_the_install_fix(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "nowhere" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_squawk() is None
    write_tree(repo, {"V1__table.sql": TABLE})
    (problem,) = lint(repo)
    assert "squawk is not installed" in problem.message
    assert "pip install -r requirements-dev.txt" in problem.fix
    assert lint(repo, squawk=False) == []


def test_squawk_is_found_beside_the_interpreter() -> None:
    found = find_squawk()
    assert found is not None
    assert found.parent == Path(sys.executable).parent


def test_config_paths_are_relative_to_the_repository_root(repo: Path) -> None:
    (repo.parent.parent / ".squawk.toml").write_text(
        'excluded_paths = ["database/migrations/V1__*.sql"]\n'
    )
    write_tree(repo, {"V1__idx.sql": INDEX, "V2__idx.sql": INDEX.replace("idx", "idx2")})
    problems = lint(repo)
    assert rules(problems, "V1__idx.sql") == set()
    assert "require-concurrent-index-creation" in rules(problems, "V2__idx.sql")


# -- what squawk judges: only what is not released, as Flyway sends it ---------------------------


def test_released_migrations_are_history_and_not_judged_again(repo: Path) -> None:
    write_tree(repo, {"V1__idx.sql": INDEX, "R__view.sql": "CREATE VIEW v AS SELECT 1;\n"})
    update_lock(repo)  # released as they are, findings and all (an adopted history)
    assert lint(repo) == []
    write_tree(repo, {"V2__idx.sql": INDEX.replace("idx", "idx2")})
    assert {p.path for p in lint(repo)} == {"V2__idx.sql"}
    # A changed repeatable is new SQL: Flyway runs it again, so squawk reads it again.
    (repo / "R__view.sql").write_text("CREATE VIEW v AS SELECT 2;\nCREATE INDEX i ON t (c);\n")
    assert {p.path for p in lint(repo)} == {"V2__idx.sql", "R__view.sql"}
    # Another lock (the base of a change, say) decides what counts as released.
    assert {p.path for p in lint(repo, released=Lock())} == {
        "V1__idx.sql",
        "V2__idx.sql",
        "R__view.sql",
    }


def test_every_file_released_and_excluded_by_the_config_is_a_normal_state(repo: Path) -> None:
    (repo.parent.parent / ".squawk.toml").write_text(
        'excluded_paths = ["database/migrations/*.sql"]\n'
    )
    write_tree(repo, {"V1__idx.sql": INDEX, "V2__x.sql": "SELECT '${x}';\n"})
    stack = StackPlaceholders(True, ["x"], "dev", {"x": "1"})
    assert lint(repo, placeholders=[stack]) == []
    update_lock(repo)
    assert lint(repo, placeholders=[stack]) == []


def test_scripts_are_linted_as_flyway_sends_them(repo: Path) -> None:
    fills = (
        "/* ${note} */\n"
        "SET LOCAL lock_timeout = '${timeout}';\n"
        "CREATE TABLE ${prefix}_fills (id bigint, key text DEFAULT '${api_key}');\n"
        "CREATE INDEX idx_fills ON ${prefix}_orders (id);\n"
    )
    write_tree(repo, {"V1__fills.sql": fills})
    stack = StackPlaceholders(
        True, ["prefix", "api_key", "note", "timeout"], "dev", {"prefix": "t", "note": "a\nb\nc"}
    )
    problems = lint(repo, placeholders=[stack])
    assert "syntax-error" not in rules(problems, "V1__fills.sql"), problems
    # The multi-line value moved the SQL down two lines; the finding is on the file's line.
    index = next(p for p in problems if p.rule == "require-concurrent-index-creation")
    assert index.line == 4
    # As written, squawk could not read it: with replacement off, that is what Flyway sends.
    off = StackPlaceholders(False, (), "dev")
    assert "syntax-error" in rules(lint(repo, placeholders=[off]), "V1__fills.sql")
