"""Discovery, classification, validation, checksums and the MigrationSet."""

import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.migrations.model import (
    LOCK_FILE_NAME,
    Event,
    Kind,
    MigrationError,
    MigrationSet,
    Version,
    flyway_checksum,
    next_version,
)
from components.migrations.names import (
    parse_name,
    parse_settings,
)
from components.migrations.scan import (
    _is_blank,
    _utf8_checksum,
    has_statement,
    load_migration_set,
)
from tests.components.migrations import write_tree

SQL = "CREATE TABLE t (id bigint);\n"


def signed(crc: int) -> int:
    return crc - 2**32 if crc >= 2**31 else crc


def crc_of_lines(lines: list[str]) -> int:
    """Independent Flyway checksum: CRC32 fed line by line, as Java does."""
    crc = 0
    for line in lines:
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return signed(crc)


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "version", "description", "event"),
    [
        ("V1__create_users.sql", Kind.VERSIONED, "1", "create users", None),
        ("V1_1__x.sql", Kind.VERSIONED, "1.1", "x", None),
        ("V01__x.sql", Kind.VERSIONED, "01", "x", None),
        ("V1.2.3__a_b_c.sql", Kind.VERSIONED, "1.2.3", "a b c", None),
        ("V1___x.sql", Kind.VERSIONED, "1", " x", None),
        ("V2__with__double.sql", Kind.VERSIONED, "2", "with  double", None),
        ("V3__has space.sql", Kind.VERSIONED, "3", "has space", None),
        ("R__views.sql", Kind.REPEATABLE, None, "views", None),
        ("B5__baseline.sql", Kind.BASELINE, "5", "baseline", None),
        ("afterMigrate.sql", Kind.CALLBACK, None, "", Event.AFTER_MIGRATE),
        ("afterMigrate__grants.sql", Kind.CALLBACK, None, "grants", Event.AFTER_MIGRATE),
        ("afterMigrateError.sql", Kind.CALLBACK, None, "", Event.AFTER_MIGRATE_ERROR),
        ("afterMigrateApplied__x.sql", Kind.CALLBACK, None, "x", Event.AFTER_MIGRATE_APPLIED),
        (
            "beforeEachMigrateStatement.sql",
            Kind.CALLBACK,
            None,
            "",
            Event.BEFORE_EACH_MIGRATE_STATEMENT,
        ),
        ("beforeConnect.sql", Kind.CALLBACK, None, "", Event.BEFORE_CONNECT),
        ("createSchema.sql", Kind.CALLBACK, None, "", Event.CREATE_SCHEMA),
        ("V1__x.sql.conf", Kind.CONFIG, None, "", None),
    ],
)
def test_classifies_names_as_flyway_does(
    name: str, kind: Kind, version: str | None, description: str, event: Event | None
) -> None:
    parsed = parse_name(name)
    assert not isinstance(parsed, tuple), parsed
    assert parsed.kind is kind
    assert (parsed.version.text if parsed.version else None) == version
    assert parsed.description == description
    assert parsed.event is event


def test_knows_flyways_callback_events() -> None:
    ids = {event.value for event in Event}
    expected = {
        "beforeMigrate", "beforeEachMigrate", "beforeEachMigrateStatement",
        "afterEachMigrateStatement", "afterEachMigrateStatementError", "afterEachMigrate",
        "afterEachMigrateError", "afterMigrate", "afterMigrateApplied", "afterVersioned",
        "afterMigrateError", "beforeUndo", "beforeClean", "afterClean", "afterCleanError",
        "beforeInfo", "afterInfo", "afterInfoError", "beforeValidate", "afterValidate",
        "afterValidateError", "beforeBaseline", "afterBaseline", "afterBaselineError",
        "beforeRepair", "afterRepair", "afterRepairError", "createSchema", "beforeConnect",
        "afterConnect", "beforeRepeatables",
    }  # fmt: skip
    assert expected <= ids


# --- the corpus of mistakes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT 1", True),
        ("-- a\nSELECT 1", True),
        ("-- a\rSELECT 1", True),
        ("/* a /* b */ c */ SELECT 1", True),
        ("\ufeff;\n$$", True),
        ("'-- not a comment'", True),
        ("-- a\n-- b\n", False),
        ("/* a /* b */ SELECT 1 */", False),
        ("/* never closed SELECT 1", False),
        (" ;\n\t; ", False),
    ],
)
def test_has_statement_skips_comments_as_postgresql_does(text: str, expected: bool) -> None:
    assert has_statement(text) is expected


def case(files: dict[str, bytes | str], culprit: str, *words: str) -> pytest.ParameterSet:
    """Files to write, the file the problem must name, and words its line must contain."""
    return pytest.param(files, culprit, list(words), id=culprit)


BAD = [
    case({"notes.txt": "hi"}, "notes.txt", "not a migration", "move it out"),
    case({"V1__x.SQL": SQL}, "V1__x.SQL", "upper-case suffix", "lower-case '.sql'"),
    case({".V1__x.sql": SQL}, ".V1__x.sql", "hidden", "skip it silently", "rename it"),
    case({".drafts/V1__x.sql": SQL}, ".drafts", "hidden", "skip it silently"),
    case({"readme.sql": SQL}, "readme.sql", "no prefix flyway knows", "v<version>__"),
    case({"v1__x.sql": SQL}, "v1__x.sql", "lower-case prefix", "upper-case 'v'"),
    case({"r__x.sql": SQL}, "r__x.sql", "lower-case prefix", "upper-case 'r'"),
    case({"V1_x.sql": SQL}, "V1_x.sql", "single '_'", "two underscores"),
    case({"V1.sql": SQL}, "V1.sql", "no description", "v1__<description>.sql"),
    case({"V1__.sql": SQL}, "V1__.sql", "no description", "v1__<description>.sql"),
    case({"V1a__x.sql": SQL}, "V1a__x.sql", "non-digit version", "digits separated"),
    case({"V1..2__x.sql": SQL}, "V1..2__x.sql", "non-digit version", "digits separated"),
    case({"V__x.sql": SQL}, "V__x.sql", "non-digit version", "digits separated"),
    case({"R1__x.sql": SQL}, "R1__x.sql", "with a version", "r__<description>.sql"),
    case({"R__.sql": SQL}, "R__.sql", "no description", "r__<description>.sql"),
    case({"U2__undo.sql": SQL}, "U2__undo.sql", "undo", "community", "new versioned migration"),
    case({"AfterMigrate.sql": SQL}, "AfterMigrate.sql", "case-sensitive", "'aftermigrate'"),
    case(
        {"afterMigrateX.sql": SQL}, "afterMigrateX.sql", "callback", "aftermigrate__<description>"
    ),
    case({"V1__x.sql": b""}, "V1__x.sql", "is empty", "write the migration's sql"),
    case({"V1__x.sql": b"\xef\xbb\xbf \n\t\r\n"}, "V1__x.sql", "is empty", "or delete the file"),
    case({"sub/R__x.sql": "  "}, "sub/R__x.sql", "is empty"),
    case(
        {"V1__x.sql": "-- V1: x\n/* outer /* nested */ still */\n;\n"},
        "V1__x.sql",
        "holds no sql statement",
        "write the migration's sql below the comments",
    ),
    case({"R__x.sql": "-- only a comment"}, "R__x.sql", "holds no sql statement"),
    case(
        {"V1__x.sql": b"SELECT 1;\nSELECT '\xe9';\n"},
        "V1__x.sql",
        "invalid byte 0xe9 at line 2, column 9",
    ),
    case(
        {"V1__x.sql": b"SELECT '\xe9';\n"},
        "V1__x.sql",
        "does not decode as utf-8",
        "encoding=iso-8859-1",
    ),
    case(
        {"V9__x.sql.conf": "executeInTransaction=false\n"},
        "V9__x.sql.conf",
        "does not exist",
        "rename it",
    ),
    case(
        {"V1__x.sql": SQL, "V1__x.sql.conf": "foo=bar\n"},
        "V1__x.sql.conf",
        "unknown key 'foo'",
        "fix the setting",
    ),
    case(
        {"V1__x.sql": SQL, "V1__x.sql.conf": "executeInTransaction=maybe\n"},
        "V1__x.sql.conf",
        "must be true or false",
    ),
    case(
        {"V1__x.sql": SQL, "V1__x.sql.conf": "executeInTransaction\n"},
        "V1__x.sql.conf",
        "must be true or false",
    ),
    case(
        {"V1__x.sql": SQL, "V1__x.sql.conf": "shouldExecute=true\n"},
        "V1__x.sql.conf",
        "shouldexecute",
        "community",
    ),
    case(
        {"V1__x.sql": SQL, "V1__x.sql.conf": "encoding=klingon\n"},
        "V1__x.sql.conf",
        "unsupported encoding",
    ),
    case({"V1__x.sql": SQL, "V1__x.sql.conf": ""}, "V1__x.sql.conf", "is empty"),
    case(
        {"V1__x.sql": b"caf\xe9", "V1__x.sql.conf": "encoding=US-ASCII"},
        "V1__x.sql",
        "does not decode as us-ascii",
    ),
    case({"sub/migrations.lock.json": "{}"}, "sub/migrations.lock.json", "not a migration"),
]


@pytest.mark.parametrize(("files", "culprit", "words"), BAD)
def test_rejects_with_the_file_and_the_fix(
    tmp_path: Path, files: dict[str, bytes | str], culprit: str, words: list[str]
) -> None:
    write_tree(tmp_path, files)
    with pytest.raises(MigrationError) as caught:
        load_migration_set(tmp_path)
    lines = [line for line in str(caught.value).splitlines() if line.startswith(f"{culprit}:")]
    assert lines, str(caught.value)
    assert any(all(word in line.lower() for word in words) for line in lines), lines
    assert all(problem.fix for problem in caught.value.problems)


def test_equal_versions_are_duplicates_naming_both_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"V1__a.sql": SQL, "sub/V1_0__b.sql": SQL, "V01__c.sql": SQL})
    with pytest.raises(MigrationError) as caught:
        load_migration_set(tmp_path)
    problems = caught.value.problems
    assert [problem.path for problem in problems] == ["V1__a.sql", "sub/V1_0__b.sql"]
    assert all("V01__c.sql" in problem.message for problem in problems)
    assert all("same version" in problem.message for problem in problems)
    assert "next free version" in str(caught.value)


def test_duplicate_repeatable_descriptions(tmp_path: Path) -> None:
    write_tree(tmp_path, {"R__a_b.sql": SQL, "sub/R__a b.sql": SQL})
    with pytest.raises(MigrationError) as caught:
        load_migration_set(tmp_path)
    assert "R__a_b.sql" in str(caught.value)
    assert "sub/R__a b.sql" in str(caught.value)
    assert "same description" in str(caught.value)


def test_collects_every_problem_one_line_each(tmp_path: Path) -> None:
    write_tree(tmp_path, {"notes.txt": "x", "v1__x.sql": SQL, "V2__x.sql": b"", "V3__ok.sql": SQL})
    with pytest.raises(MigrationError) as caught:
        load_migration_set(tmp_path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) == 3
    assert [line.split(":")[0] for line in lines] == ["V2__x.sql", "notes.txt", "v1__x.sql"]


def test_accepts_names_that_are_not_configmap_keys_and_version_gaps(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "V1__create users.sql": SQL,
            "2024/V5__in_a_subfolder.sql": SQL,
            "2024/q1/V100__deep.sql": SQL,
            "R__views.sql": SQL,
            "afterMigrate.sql": SQL,
            LOCK_FILE_NAME: '{"format": 1, "migrations": []}',
        },
    )
    migration_set = load_migration_set(tmp_path)
    assert [file.path for file in migration_set.versioned] == [
        "V1__create users.sql",
        "2024/V5__in_a_subfolder.sql",
        "2024/q1/V100__deep.sql",
    ]
    assert migration_set.highest_version == Version.parse("100")
    assert LOCK_FILE_NAME not in migration_set.by_path


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="is not a directory"):
        load_migration_set(tmp_path / "nope")


def test_symlinked_directory_is_rejected(tmp_path: Path) -> None:
    write_tree(tmp_path / "real", {"V1__x.sql": SQL})
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "linked").symlink_to(tmp_path / "real")
    with pytest.raises(MigrationError, match="linked: is a symbolic link to a directory"):
        load_migration_set(tmp_path / "migrations")


# --- the set ----------------------------------------------------------------------------------


def test_flyway_order(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "V10__j.sql": SQL,
            "V2__b.sql": SQL,
            "sub/V1.5__a.sql": SQL,
            "V1.5__a.sql.conf": "executeInTransaction=false\n",
            "V1.5__a.sql": SQL.replace("t", "u"),
            "R__zeta.sql": SQL,
            "sub/R__alpha.sql": SQL,
            "afterMigrate.sql": SQL,
            "B3__base.sql": SQL,
        },
    )
    # V1.5 twice (top level and sub/) would be a duplicate: keep one.
    (tmp_path / "sub" / "V1.5__a.sql").unlink()
    migration_set = load_migration_set(tmp_path)
    assert [file.path for file in migration_set] == [
        "V1.5__a.sql",
        "V2__b.sql",
        "V10__j.sql",
        "sub/R__alpha.sql",
        "R__zeta.sql",
        "B3__base.sql",
        "V1.5__a.sql.conf",
        "afterMigrate.sql",
    ]
    assert MigrationSet(tuple(reversed(migration_set.files))).files == migration_set.files
    script = migration_set.by_path["V1.5__a.sql"]
    assert script.settings is not None
    assert script.settings.execute_in_transaction is False
    assert migration_set.by_path["V1.5__a.sql.conf"].checksum is None
    assert [file.path for file in migration_set.baseline] == ["B3__base.sql"]
    assert [file.path for file in migration_set.callbacks] == ["afterMigrate.sql"]


def test_digest_changes_with_any_content_or_name(tmp_path: Path) -> None:
    write_tree(tmp_path, {"V1__a.sql": SQL, "sub/V2__b.sql": SQL})
    first = load_migration_set(tmp_path).digest
    assert load_migration_set(tmp_path).digest == first
    (tmp_path / "sub" / "V2__b.sql").write_text(SQL + " ")
    edited = load_migration_set(tmp_path).digest
    (tmp_path / "sub" / "V2__b.sql").rename(tmp_path / "V2__b.sql")
    moved = load_migration_set(tmp_path).digest
    write_tree(tmp_path, {"R__v.sql": SQL})
    added = load_migration_set(tmp_path).digest
    assert len({first, edited, moved, added}) == 4


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], "1"),
        (["V1__a.sql", "V2_1__b.sql"], "3"),
        (["V007__a.sql"], "008"),
        (["B10__base.sql", "V3__a.sql"], "11"),
        (["V2024.01__a.sql"], "2025"),
    ],
)
def test_next_version(tmp_path: Path, names: list[str], expected: str) -> None:
    write_tree(tmp_path, dict.fromkeys(names, SQL))
    assert next_version(load_migration_set(tmp_path)).text == expected


# --- settings ---------------------------------------------------------------------------------


def test_settings_parse_like_java_properties() -> None:
    settings, errors = parse_settings(
        "# comment\n! other comment\n  encoding = ISO-8859-1 \r\n"
        "executeInTransaction: FALSE\rplaceholderReplacement true\n"
    )
    assert errors == ()
    assert settings.encoding == "ISO-8859-1"
    assert settings.execute_in_transaction is False
    assert settings.placeholder_replacement is True


def test_settings_report_every_error() -> None:
    _, errors = parse_settings("a=1\nexecuteInTransaction=yes\nencoding=UTF-8\nencoding=UTF-8\n")
    assert len(errors) == 3


# --- checksums --------------------------------------------------------------------------------

# Values computed by flyway-core 11.20.3's ChecksumCalculator on these exact bytes (UTF-8
# unless noted), so they also pin this implementation to real Flyway.
FLYWAY_VALUES = [
    (b"SELECT 1;\n", "utf-8", 78787420),
    (b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n", "utf-8", -1665099012),
    (b"SELECT 1;\rSELECT 2;\r", "utf-8", -1665099012),
    (
        b"SELECT 'a\xe2\x80\xa8b';\n\x0bx\x0c\xc2\x85y\n  trailing   \n",
        "utf-8",
        -1844714111,
    ),
    (b"\n\n\n", "utf-8", 0),
    (b"x\r\n\r\ny", "utf-8", -1880741735),
    (b"no newline", "utf-8", 1847234290),
    (b"\xef\xbb\xbf\xef\xbb\xbfdouble bom\n", "utf-8", -130097417),
    (b"a\n\xef\xbb\xbfb\n", "utf-8", -444179588),
    (b"\xf0\x9f\x98\x80 emoji\n", "utf-8", -446945105),
    (b"SELECT 'caf\xe9';\n", "latin-1", 987117724),
]


@pytest.mark.parametrize(("content", "codec", "expected"), FLYWAY_VALUES)
def test_checksum_matches_flyway(content: bytes, codec: str, expected: int) -> None:
    assert flyway_checksum(content.decode(codec)) == expected


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("SELECT 1;\n", ["SELECT 1;"]),
        ("a\r\nb\rc\nd", ["a", "b", "c", "d"]),
        ("\ufeffa\n\ufeffb", ["a", "\ufeffb"]),
        # Only \n, \r and \r\n end a line in Java; all of these stay inside their line.
        (
            "a\u2028b\u2029c\x0bd\x0ce\x1cf\x1dg\x1eh\x85i\nend",
            ["a\u2028b\u2029c\x0bd\x0ce\x1cf\x1dg\x1eh\x85i", "end"],
        ),
        ("  trailing  \t\n\n", ["  trailing  \t", ""]),
        ("", []),
    ],
)
def test_checksum_is_crc32_over_java_lines(text: str, lines: list[str]) -> None:
    assert flyway_checksum(text) == crc_of_lines(lines)


def test_checksum_would_differ_if_unicode_line_breaks_split_lines() -> None:
    text = "SELECT 'a\u2028b';\n"
    assert flyway_checksum(text) != crc_of_lines(text.splitlines())
    assert flyway_checksum(text) == crc_of_lines(["SELECT 'a\u2028b';"])


def test_checksums_of_loaded_files(tmp_path: Path) -> None:
    latin = b"SELECT 'caf\xe9';\n"
    write_tree(
        tmp_path,
        {
            "V1__a.sql": b"SELECT 1;\n",
            "R__r.sql": b"SELECT 1;\r\n",
            "B1__b.sql": b"SELECT 1;\r",
            "afterMigrate.sql": b"\xef\xbb\xbfSELECT 1;",
            "V2__latin.sql": latin,
            "V2__latin.sql.conf": "encoding=ISO-8859-1\n",
        },
    )
    migration_set = load_migration_set(tmp_path)
    for path in ("V1__a.sql", "R__r.sql", "B1__b.sql", "afterMigrate.sql"):
        assert migration_set.by_path[path].checksum == 78787420
    latin_file = migration_set.by_path["V2__latin.sql"]
    assert latin_file.encoding == "latin-1"
    assert latin_file.content == latin
    assert latin_file.checksum == 987117724


@pytest.mark.parametrize(
    ("content", "expected"),
    [(content, expected) for content, codec, expected in FLYWAY_VALUES if codec == "utf-8"],
)
def test_loading_checksums_utf8_bytes_as_flyway_does(
    tmp_path: Path, content: bytes, expected: int
) -> None:
    """UTF-8 files are checksummed from their bytes; the values must stay Flyway's."""
    assert _utf8_checksum(content) == expected
    if content.strip():
        write_tree(tmp_path, {"V1__a.sql": content})
        assert load_migration_set(tmp_path).by_path["V1__a.sql"].checksum == expected


@given(st.text(st.sampled_from(["a", "é", "\r", "\n", "\ufeff", "\u2028", "\U0001f600", " "])))
def test_checksum_from_bytes_equals_checksum_from_text(text: str) -> None:
    assert _utf8_checksum(text.encode("utf-8")) == flyway_checksum(text)


@given(st.text(st.sampled_from(["a", "\ufeff", " ", "\n", "\x1c", "\x85", "\u3000"])))
def test_blank_check_equals_strip(text: str) -> None:
    assert _is_blank(text) == (not text.lstrip("\ufeff").strip())
