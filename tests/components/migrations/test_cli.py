"""The command line: exit codes, output formats, new, lock and list."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.migrations.__main__ import default_directory, main
from components.migrations.model import (
    LOCK_FILE_NAME,
    MigrationError,
)
from components.migrations.scan import (
    load_migration_set,
)
from deploy.lint import main as lint_main
from tests.components.migrations import write_tree

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
TABLE = "CREATE TABLE t (id bigint);\n"
INDEX = "\nCREATE INDEX idx ON t (c);\n"


def run(*argv: str, module: str = "components.migrations") -> tuple[int, str, str]:
    """The module run as a user runs it, from the repository root."""
    result = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_new_creates_the_next_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"V1__a.sql": TABLE, "sub/V2_1__b.sql": TABLE})
    assert main(["new", "add trades index", "--dir", str(tmp_path)]) == 0
    created = tmp_path / "V3__add_trades_index.sql"
    assert capsys.readouterr().out == f"{created.as_posix()}\n"
    assert created.read_text().startswith("-- V3: add trades index\n")
    with pytest.raises(MigrationError, match="holds no SQL statement"):
        load_migration_set(tmp_path)
    assert main(["new", "add fills", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "V4__add_fills.sql").is_file()
    created.write_text(created.read_text() + TABLE)
    (tmp_path / "V4__add_fills.sql").write_text(TABLE)
    assert load_migration_set(tmp_path).highest_version is not None
    assert main(["new", "  second   one ", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "V5__second_one.sql").is_file()


def test_new_names_the_double_underscore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "add__x", "--dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "'__'" in error
    assert "'add_x'" in error


def test_new_in_an_empty_directory_starts_at_one(tmp_path: Path) -> None:
    assert main(["new", "init", "--dir", str(tmp_path)]) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["V1__init.sql"]


@pytest.mark.parametrize("description", ["", "   ", "a/b", "drop; table", "x.y", "_x", "a__b", "é"])
def test_new_refuses_descriptions_that_make_bad_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], description: str
) -> None:
    assert main(["new", description, "--dir", str(tmp_path)]) == 2
    assert "cannot name a migration file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_a_broken_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"V1__a.sql": TABLE, "V01__b.sql": TABLE})
    assert main(["new", "next", "--dir", str(tmp_path)]) == 1
    assert "same version" in capsys.readouterr().err


def test_lock_then_a_change_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"V1__a.sql": TABLE, "R__v.sql": "SELECT 1;\n"})
    assert main(["lock", str(tmp_path)]) == 0
    assert "locked 1 migration(s)" in capsys.readouterr().out
    lock = json.loads((tmp_path / LOCK_FILE_NAME).read_text())
    assert [entry["script"] for entry in lock["migrations"]] == ["V1__a.sql"]
    assert main(["lock", str(tmp_path)]) == 0
    assert "is up to date" in capsys.readouterr().out

    (tmp_path / "V1__a.sql").write_text(TABLE + "-- edited\n")
    assert main(["lock", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path.as_posix()}/V1__a.sql: changed after it was released")
    assert lint_main([str(tmp_path), "--no-squawk"]) == 1


def test_list_shows_flyway_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"V10__ten.sql": TABLE, "V2__two.sql": TABLE, "R__views.sql": TABLE})
    assert main(["list", str(tmp_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    checksum = str(load_migration_set(tmp_path).by_path["V2__two.sql"].checksum)
    assert rows[0] == ["TYPE", "VERSION", "DESCRIPTION", "CHECKSUM", "PATH"]
    assert rows[1] == ["versioned", "2", "two", checksum, "V2__two.sql"]
    assert rows[2][:2] == ["versioned", "10"]
    assert rows[3][0] == "repeatable"


def test_module_runs_with_clean_errors(tmp_path: Path) -> None:
    write_tree(tmp_path, {"V1__a.sql": TABLE})
    assert run(str(tmp_path), "--no-squawk", module="deploy.lint")[0] == 0
    code, out, err = run("list", str(tmp_path / "missing"))
    assert code == 1
    assert "is not a directory" in err
    assert "Traceback" not in out + err
    code, _, err = run("--format", "xml", module="deploy.lint")
    assert code == 2
    assert "invalid choice" in err


def test_default_directory_is_the_repositorys() -> None:
    assert default_directory().as_posix().endswith("database/migrations")


def test_unlock_takes_the_path_lint_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(tmp_path, {"V1__a.sql": TABLE, "V2__b.sql": TABLE})
    assert main(["lock", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["unlock", "V1__a.sql", "--dir", str(tmp_path)]) == 1
    assert "not the newest released migration" in capsys.readouterr().err
    assert main(["unlock", str(tmp_path / "V2__b.sql"), "--dir", str(tmp_path)]) == 0
    assert "unlocked V2__b.sql" in capsys.readouterr().out
