"""`python -m deploy.lint`: the migrations' checks against the stacks that run them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.migrations.__main__ import main
from deploy.lint import main as lint_main
from tests.components.migrations import write_tree

TABLE = "CREATE TABLE t (id bigint);\n"
INDEX = "\nCREATE INDEX idx ON t (c);\n"


def test_lint_passes_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"V1__a.sql": TABLE, "V2__b.sql": TABLE, "R__v.sql": "SELECT 1;\n"})
    assert lint_main([str(tmp_path), "--no-squawk"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{tmp_path.as_posix()}: OK (2 versioned, 1 repeatable; highest version 2)"
    ]


def test_lint_prints_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(tmp_path, {"notes.txt": "x", "v1__a.sql": TABLE, "sub/V2__b.sql": INDEX})
    assert lint_main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"{tmp_path.as_posix()}/notes.txt: is not a migration")
    assert lines[1].startswith(f"{tmp_path.as_posix()}/v1__a.sql: has a lower-case prefix")
    assert any(
        line.startswith(f"{tmp_path.as_posix()}/sub/V2__b.sql:2: require-concurrent-index")
        for line in lines
    )
    assert f"{len(lines)} problem(s)" in captured.err


def test_lint_github_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path, {"notes, 100%.txt": "x", "V2__b.sql": INDEX})
    assert lint_main([str(tmp_path), "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("::error file=") for line in lines)
    assert lines[0].startswith(
        f"::error file={tmp_path.as_posix()}/notes%2C 100%25.txt,title=migrations::"
        "is not a migration"
    )
    assert any(
        line.startswith(
            f"::error file={tmp_path.as_posix()}/V2__b.sql,line=2,"
            "title=require-concurrent-index-creation::"
        )
        for line in lines
    )


def test_lint_released_fails_on_an_unlocked_migration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tree(tmp_path, {"V1__a.sql": TABLE})
    assert lint_main([str(tmp_path), "--no-squawk"]) == 0
    assert lint_main([str(tmp_path), "--no-squawk", "--released"]) == 1
    assert "V1__a.sql: is not in migrations.lock.json" in capsys.readouterr().out
    assert main(["lock", str(tmp_path)]) == 0
    assert lint_main([str(tmp_path), "--no-squawk", "--released"]) == 0


GIVES_BOTH = """config:
  tradestream-database:namespace: x
  tradestream-database:flywayPlaceholders:
    region: eu
  tradestream-database:flywaySecretPlaceholders:
    api_key:
      secure: v1:abc
"""
GIVES_NONE = "config:\n  tradestream-database:namespace: x\n"
TURNS_OFF = (
    "config:\n  tradestream-database:namespace: x\n"
    "  tradestream-database:flywayPlaceholderReplacement: false\n"
)


def project(tmp_path: Path, stacks: dict[str, str]) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: tradestream-database\n", encoding="utf-8")
    (tmp_path / "stacks").mkdir()
    for stack, config in stacks.items():
        (tmp_path / "stacks" / f"Pulumi.{stack}.yaml").write_text(config, encoding="utf-8")
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "V1__a.sql").write_text("SELECT '${region}', '${api_key}';\n", encoding="utf-8")
    return directory


def test_lint_reads_the_stack_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, {"dev": GIVES_BOTH, "off": TURNS_OFF, "prod": GIVES_NONE})
    assert lint_main([str(directory), "--no-squawk", "--stack", "dev"]) == 0
    assert lint_main([str(directory), "--no-squawk", "--stack", "off"]) == 0
    assert lint_main([str(directory), "--no-squawk"]) == 1
    out = capsys.readouterr().out
    assert "V1__a.sql:1: uses the placeholder ${region}, which has no value in stack prod" in out
    assert "${api_key}, which has no value in stack prod" in out


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("config:\n  tradestream-database:namespace: x\n  bad: [unclosed\n", "line 3"),
        (GIVES_NONE + "  tradestream-database:namespace: y\n", "set twice"),
    ],
    ids=["yaml-syntax", "duplicated-key"],
)
def test_lint_names_a_stack_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, expected: str
) -> None:
    directory = project(tmp_path, {"dev": GIVES_BOTH, "broken": config})
    assert lint_main([str(directory), "--no-squawk"]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if expected in line]
    assert lines, "the broken stack file is not reported"
    broken = (tmp_path / "stacks" / "Pulumi.broken.yaml").as_posix()
    assert all(line.startswith(f"{broken}: ") for line in lines), lines


def test_lint_refuses_a_secret_placeholder_in_plain_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = GIVES_BOTH.replace("    api_key:\n      secure: v1:abc\n", "    api_key: oops\n")
    directory = project(tmp_path, {"dev": plain})
    assert lint_main([str(directory), "--no-squawk", "--stack", "dev"]) == 1
    out = capsys.readouterr().out
    assert "flywaySecretPlaceholders.api_key: is stored in plain text" in out
    assert "pulumi config set --secret --path 'flywaySecretPlaceholders.api_key'" in out


def test_a_stack_file_that_cannot_be_read_is_named_from_the_project_and_adds_no_guess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    number = (
        "config:\n  tradestream-database:namespace: dev\n"
        "  tradestream-database:flywayPlaceholders:\n    region: 20\n"
    )
    directory = project(tmp_path, {"dev": number})
    monkeypatch.chdir(tmp_path)
    assert lint_main(["migrations", "--no-squawk", "--stack", "dev"]) == 1
    lines = capsys.readouterr().out.splitlines()
    # One problem, the stack file's, at its path from here; no guess at the placeholders
    # of a stack whose values could not be read.
    assert lines == [
        "stacks/Pulumi.dev.yaml: tradestream-database:flywayPlaceholders.region = 20: must be "
        "a string: quote it in the stack file, or set it with `pulumi config set --type string "
        "--path 'flywayPlaceholders.region' 20`."
    ]
    assert directory.name == "migrations"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_since_squawks_what_a_change_adds_to_the_lock_of_its_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: tradestream-database\n", encoding="utf-8")
    directory = write_tree(tmp_path / "migrations", {"V1__idx.sql": INDEX})
    assert main(["lock", str(directory)]) == 0
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    # The change adds V2 and locks it: released in its own lock, new to its base.
    write_tree(directory, {"V2__idx.sql": INDEX.replace("idx", "idx2")})
    assert main(["lock", str(directory)]) == 0
    capsys.readouterr()
    assert lint_main([str(directory), "--released"]) == 0
    assert "squawk read the 0 not yet released" in capsys.readouterr().out
    assert lint_main([str(directory), "--released", "--since", "HEAD"]) == 1
    out = capsys.readouterr().out
    assert "V2__idx.sql:2: require-concurrent-index-creation" in out
    assert "V1__idx.sql" not in out
    assert lint_main([str(directory), "--since", "no-such-ref"]) == 2
    assert "--since no-such-ref: git" in capsys.readouterr().err


def test_a_deleted_lock_does_not_let_an_edited_release_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Version control still knows the lock: the lint names the edit and the restore command,
    and never advises locking it in."""
    directory = write_tree(tmp_path / "migrations", {"V1__a.sql": TABLE})
    assert main(["lock", str(directory)]) == 0
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "add", "."], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "release"], check=True)
    (directory / "migrations.lock.json").unlink()
    (directory / "V1__a.sql").write_text(TABLE + "-- edited\n", encoding="utf-8")
    capsys.readouterr()
    assert lint_main([str(directory), "--no-squawk", "--released"]) == 1
    out = capsys.readouterr().out
    assert "migrations.lock.json: is missing, but commit" in out
    assert "git checkout" in out
    assert "V1__a.sql" in out
    assert "changed after it was released" in out
    assert "Release it: make migrations-lock" not in out
