"""Flyway placeholders, pure: where Flyway sees them, which would fail, and checksums."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.migrations import MigrationFile, flyway_checksum, load_migration_set
from components.migrations.placeholders import (
    BUILT_INS,
    StackPlaceholders,
    env_name,
    find_placeholders,
    name_problem,
    recorded_checksum,
    replace_placeholders,
    unresolved_placeholders,
)


def migrations(tmp_path: Path, files: dict[str, str]) -> dict[str, MigrationFile]:
    directory = tmp_path / "migrations"
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8", newline="")
    return {f.path: f for f in load_migration_set(directory)}


def report_of(tmp_path: Path, files: dict[str, str], *stacks: StackPlaceholders) -> list[str]:
    """Every line of the report, the summary included."""
    found = migrations(tmp_path, files).values()
    return [str(p) for p in unresolved_placeholders(found, stacks or (StackPlaceholders(),))]


def problems_of(tmp_path: Path, files: dict[str, str], *stacks: StackPlaceholders) -> list[str]:
    """The report's lines without its summary."""
    return [
        line
        for line in report_of(tmp_path, files, *stacks)
        if " without a value in " not in line.partition(".")[0]
    ]


# -- Flyway's reader --------------------------------------------------------------------------


def test_placeholders_are_found_in_comments_strings_and_across_lines() -> None:
    text = "-- ${a}\nSELECT '${b}';\n/* ${c\nd} */ SELECT $q$${e}$q$;\n"
    assert [(o.name, o.line) for o in find_placeholders(text)] == [
        ("a", 1),
        ("b", 2),
        ("c\nd", 3),
    ]


def test_a_dollar_before_the_prefix_hides_it_as_in_flyways_reader() -> None:
    # Flyway's reader takes "$$" as a pair, so "$${x}" stays; "$$${x}" is replaced.
    assert [o.name for o in find_placeholders("'$${x}'")] == []
    assert [o.name for o in find_placeholders("'$$${x}'")] == ["x"]
    assert [o.name for o in find_placeholders("a${x}b${y}")] == ["x", "y"]


def test_line_numbers_count_crlf_once_and_lone_cr() -> None:
    assert [o.line for o in find_placeholders("a\r\nb\rc\n${x}")] == [4]


def test_an_unclosed_placeholder_is_found() -> None:
    (found,) = find_placeholders("SELECT 1;\n-- ${x")
    assert not found.closed
    assert found.line == 2


def test_replacement_is_case_insensitive_and_empty_values_vanish() -> None:
    assert replace_placeholders("${Region}|${e}|$${x}", {"REGION": "eu", "e": ""}) == "eu||$${x}"
    with pytest.raises(KeyError):
        replace_placeholders("${missing}", {})


@pytest.mark.parametrize("name", ["region", "API_KEY", "_9", "9a"])
def test_names_flyway_can_receive(name: str) -> None:
    assert name_problem(name) is None
    assert env_name(name) == "FLYWAY_PLACEHOLDERS_" + name.upper()


@pytest.mark.parametrize("name", ["a.b", "a-b", "", " x", "flyway:user", "é"])
def test_names_that_cannot_be_environment_variables(name: str) -> None:
    assert name_problem(name) is not None


# -- the check ----------------------------------------------------------------------------------


def test_a_placeholder_without_a_value_is_named_with_file_line_and_both_fixes(
    tmp_path: Path,
) -> None:
    (problem,) = problems_of(
        tmp_path,
        {"V1__a.sql": "CREATE TABLE t (v text);\nINSERT INTO t VALUES ('${region}');\n"},
        StackPlaceholders(True, (), "prod"),
    )
    assert problem.startswith("V1__a.sql:2: uses the placeholder ${region}")
    assert "in stack prod" in problem
    assert "after applying the migrations before it" in problem
    assert (
        "pulumi config set --type string --path 'flywayPlaceholders.region' <value> --stack prod"
    ) in problem
    assert "pulumi config set --secret --path 'flywaySecretPlaceholders.region'" in problem


def test_a_placeholder_in_a_comment_counts_too(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, {"R__a.sql": "SELECT 1;\n-- ${note}\n"})
    assert problem.startswith("R__a.sql:2: uses the placeholder ${note}")


def test_built_ins_are_exempt_in_any_case(tmp_path: Path) -> None:
    text = "SELECT 1;\n" + "\n".join(f"-- ${{{name}}} ${{{name.upper()}}}" for name in BUILT_INS)
    assert problems_of(tmp_path, {"V1__a.sql": text}) == []


def test_an_unknown_flyway_name_is_refused(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, {"V1__a.sql": "SELECT '${flyway:nope}';\n"})
    assert "not one of Flyway's built-in placeholders" in problem


def test_replacement_off_accepts_everything(tmp_path: Path) -> None:
    files = {"V1__a.sql": "SELECT '${x}', '${y';\n"}
    assert problems_of(tmp_path, files, StackPlaceholders(replacement=False)) == []


def test_a_value_given_plain_or_secret_accepts_it_case_insensitively(tmp_path: Path) -> None:
    files = {"V1__a.sql": "SELECT '${Region}', '${API_KEY}';\n"}
    assert problems_of(tmp_path, files, StackPlaceholders(True, ["region", "api_key"])) == []


def test_the_scripts_conf_overrides_the_global_setting(tmp_path: Path) -> None:
    off = {"V1__a.sql": "SELECT '${x}';\n", "V1__a.sql.conf": "placeholderReplacement=false\n"}
    assert problems_of(tmp_path / "off", off) == []
    on = {"V1__a.sql": "SELECT '${x}';\n", "V1__a.sql.conf": "placeholderReplacement=true\n"}
    (problem,) = problems_of(tmp_path / "on", on, StackPlaceholders(replacement=False))
    assert "remove placeholderReplacement=true from V1__a.sql.conf" in problem


def test_scripts_in_a_declared_encoding_are_read_in_it(tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "V1__a.sql").write_bytes("SELECT 'é', '${x}';\n".encode("latin-1"))
    (directory / "V1__a.sql.conf").write_text("encoding=ISO-8859-1\n", encoding="utf-8")
    found = unresolved_placeholders(load_migration_set(directory), [StackPlaceholders()])
    assert [(p.path, p.line) for p in found] == [("V1__a.sql", 1), (".", None)]


def test_an_unclosed_placeholder_and_an_inexpressible_name_get_their_own_fix(
    tmp_path: Path,
) -> None:
    dotted, unclosed = problems_of(
        tmp_path, {"V1__a.sql": "SELECT '${a.b}';\n", "V2__b.sql": "SELECT 1;\n-- ${x\n"}
    )
    assert dotted.startswith("V1__a.sql:1: uses the placeholder ${a.b}")
    assert "Rename it to ASCII letters, digits and '_'" in dotted
    assert unclosed.startswith("V2__b.sql:2: opens a placeholder ${ that no } closes")
    assert "flywayPlaceholderReplacement: false" in unclosed


def test_a_problem_names_every_stack_it_fails_in(tmp_path: Path) -> None:
    (problem,) = problems_of(
        tmp_path,
        {"V1__a.sql": "SELECT '${x}';\n"},
        StackPlaceholders(True, ["x"], "dev"),
        StackPlaceholders(True, [], "staging"),
        StackPlaceholders(True, [], "prod"),
    )
    assert "in stack staging, prod" in problem
    assert "--stack <stack>" in problem


def test_one_line_per_placeholder_with_its_uses_and_a_summary(tmp_path: Path) -> None:
    files = {
        f"V{n}__uses.sql": "SELECT 1;\n"
        + "".join(f"-- ${{p{k}}}\n" for k in range(n))
        + "-- ${P0}\n"
        for n in range(1, 8)
    }
    files["R__view.sql"] = "CREATE OR REPLACE VIEW v AS SELECT ${p0} AS a;\n"
    lines = report_of(tmp_path, files, StackPlaceholders(True, ["p6"], "prod"))
    assert len(lines) == 7  # p0 to p5, and the summary
    first = lines[0]
    assert first.startswith("V1__uses.sql:2: uses the placeholder ${p0}, which has no value in")
    # Uses in Flyway's order, ${P0} the same placeholder as ${p0}: 2 per versioned file, 1 in
    # the repeatable; the first few places are named, the rest counted.
    assert (
        "(15 uses in 8 files; also V1__uses.sql:3, V2__uses.sql:2, V2__uses.sql:4 and 11 more)"
        in first
    )
    assert "--type string --path 'flywayPlaceholders.p0' <value> --stack prod" in first
    assert lines[1].startswith("V2__uses.sql:3: uses the placeholder ${p1}")
    assert (
        "(6 uses in 6 files; also V3__uses.sql:3, V4__uses.sql:3, V5__uses.sql:3 and 2 more)"
        in lines[1]
    )
    assert lines[-1].startswith("6 placeholders without a value in 8 files.")
    assert "pulumi config set flywayPlaceholderReplacement false --stack <stack>" in lines[-1]
    assert "placeholderReplacement=false in its .sql.conf" in lines[-1]


def test_no_summary_when_every_placeholder_has_a_value(tmp_path: Path) -> None:
    files = {"V1__a.sql": "SELECT '${x}', '${Y}';\n"}
    assert report_of(tmp_path, files, StackPlaceholders(True, ["x", "y"])) == []


# -- checksums ----------------------------------------------------------------------------------

SCRIPTS = {
    "V1__a.sql": "CREATE TABLE t (v text);\nINSERT INTO t VALUES ('${x}');\n",
    "R__view.sql": "CREATE OR REPLACE VIEW v AS SELECT '${x}' AS x, '${flyway:filename}' AS f;\n",
    "R__plain.sql": "CREATE OR REPLACE VIEW p AS SELECT 1 AS one;\n",
    "R__secret.sql": "CREATE OR REPLACE VIEW s AS SELECT '${key}' AS k;\n",
    "R__timestamp.sql": "CREATE OR REPLACE VIEW w AS SELECT '${flyway:timestamp}' AS t;\n",
}


def test_versioned_checksums_are_of_the_file_as_written(tmp_path: Path) -> None:
    file = migrations(tmp_path, SCRIPTS)["V1__a.sql"]
    got = recorded_checksum(file, replacement=True, values={"x": "eu"})
    assert got.value == file.checksum == flyway_checksum(SCRIPTS["V1__a.sql"])


def test_repeatable_checksums_are_of_the_replaced_text(tmp_path: Path) -> None:
    files = migrations(tmp_path, SCRIPTS)
    view = recorded_checksum(files["R__view.sql"], replacement=True, values={"X": "eu"})
    expected = "CREATE OR REPLACE VIEW v AS SELECT 'eu' AS x, 'R__view.sql' AS f;\n"
    assert view.value == flyway_checksum(expected) != files["R__view.sql"].checksum
    plain = files["R__plain.sql"]
    assert recorded_checksum(plain, replacement=True, values={}).value == plain.checksum
    off = recorded_checksum(files["R__view.sql"], replacement=False, values={"x": "eu"})
    assert off.value == files["R__view.sql"].checksum


def test_a_repeatables_checksum_is_withheld_when_a_secret_or_run_time_value_decides_it(
    tmp_path: Path,
) -> None:
    files = migrations(tmp_path, SCRIPTS)
    secret = recorded_checksum(
        files["R__secret.sql"], replacement=True, values={}, secret_names=["KEY"]
    )
    assert secret.value is None
    assert secret.withheld is not None
    assert "secret placeholder(s) ${key}" in secret.withheld
    stamp = recorded_checksum(files["R__timestamp.sql"], replacement=True, values={})
    assert stamp.value is None
    assert "${flyway:timestamp}" in (stamp.withheld or "")


def test_an_unclosed_placeholder_takes_the_rest_but_its_last_character_as_flyway_does(
    tmp_path: Path,
) -> None:
    # Flyway reads "${x\n" to the end, drops the last character, and looks up "x".
    files = {"V1__a.sql": "SELECT 1;\n-- ${x\n"}
    assert problems_of(tmp_path / "given", files, StackPlaceholders(True, ["x"])) == []
    bare = {"V1__a.sql": "SELECT 1;\n-- ${"}
    (problem,) = problems_of(tmp_path / "bare", bare, StackPlaceholders(True, ["x"]))
    assert "that no } closes" in problem
    assert replace_placeholders("-- ${x\n", {"x": "v"}) == "-- v"
