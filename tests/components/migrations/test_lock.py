"""The lock file: released migrations stay as they were released."""

import json
from pathlib import Path

import pytest

from components.migrations.lock import (
    Lock,
    check_lock,
    extend_lock,
    load_released_set,
    lock_path,
    parse_lock,
    read_lock,
    relock,
    render_lock,
    unlock,
    unreleased,
    update_lock,
)
from components.migrations.model import (
    LOCK_FILE_NAME,
    Kind,
    MigrationError,
)
from components.migrations.scan import (
    load_migration_set,
)
from tests.components.migrations import write_tree

SQL = "CREATE TABLE t (id bigint);\n"


@pytest.fixture
def released(tmp_path: Path) -> Path:
    """A directory whose V1, V2, V5 and B3 are locked; R__views is not lockable."""
    write_tree(
        tmp_path,
        {
            "V1__one.sql": "SELECT 1;\n",
            "V2__two.sql": "SELECT 2;\n",
            "sub/V5__five.sql": "SELECT 5;\n",
            "B3__base.sql": "SELECT 3;\n",
            "R__views.sql": "SELECT 'v';\n",
        },
    )
    update_lock(tmp_path)
    return tmp_path


def problems_of(directory: Path, out_of_order: bool = False) -> list[str]:
    lock = read_lock(directory)
    return [str(p) for p in check_lock(load_migration_set(directory), lock, out_of_order)]


def test_lock_records_versioned_and_baseline_only(released: Path) -> None:
    document = json.loads(lock_path(released).read_text())
    assert [(entry["script"], entry["type"]) for entry in document["migrations"]] == [
        ("V1__one.sql", "versioned"),
        ("V2__two.sql", "versioned"),
        ("B3__base.sql", "baseline"),
        ("sub/V5__five.sql", "versioned"),
    ]
    first = document["migrations"][0]
    assert first == {
        "script": "V1__one.sql",
        "type": "versioned",
        "version": "1",
        "description": "one",
        "checksum": load_migration_set(released).by_path["V1__one.sql"].checksum,
    }


def test_lock_formatting_is_stable(released: Path) -> None:
    text = lock_path(released).read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert render_lock(parse_lock(text)) == text


def test_clean_directory_passes(released: Path) -> None:
    assert problems_of(released) == []


def test_no_lock_file_is_a_new_history(tmp_path: Path) -> None:
    write_tree(tmp_path, {"V1__a.sql": SQL, "V7__b.sql": SQL})
    assert read_lock(tmp_path) is None
    assert check_lock(load_migration_set(tmp_path), None, out_of_order=False) == ()
    added = update_lock(tmp_path)
    assert [entry.script for entry in added] == ["V1__a.sql", "V7__b.sql"]
    assert (tmp_path / LOCK_FILE_NAME).is_file()


def test_changed_content_fails(released: Path) -> None:
    before = load_migration_set(released).by_path["V2__two.sql"].checksum
    (released / "V2__two.sql").write_text("SELECT 22;\n")
    after = load_migration_set(released).by_path["V2__two.sql"].checksum
    (problem,) = problems_of(released)
    assert problem.startswith("V2__two.sql: changed after it was released")
    assert f"checksum {before}" in problem
    assert f"now {after}" in problem
    assert "new migration" in problem


def test_line_endings_and_bom_are_not_changes(released: Path) -> None:
    (released / "V2__two.sql").write_bytes(b"\xef\xbb\xbfSELECT 2;\r\n")
    assert problems_of(released) == []


def test_removed_migration_fails(released: Path) -> None:
    (released / "sub" / "V5__five.sql").unlink()
    (problem,) = problems_of(released)
    assert problem.startswith("sub/V5__five.sql: was released but is missing")
    assert "git checkout HEAD -- sub/V5__five.sql" in problem


def test_renamed_migration_is_reported_as_renamed(released: Path) -> None:
    (released / "V2__two.sql").rename(released / "V2__deux.sql")
    (problem,) = problems_of(released)
    assert problem.startswith("V2__two.sql: was released but has been renamed to V2__deux.sql")
    assert "Rename it back to V2__two.sql" in problem


def test_moved_to_another_version_with_same_content_is_renamed(released: Path) -> None:
    (released / "V1__one.sql").rename(released / "V9__one.sql")
    (problem,) = problems_of(released)
    assert "renamed to V9__one.sql" in problem


def test_lower_new_version_needs_out_of_order(released: Path) -> None:
    write_tree(released, {"V4__late.sql": SQL, "V6__next.sql": SQL})
    (problem,) = problems_of(released)
    assert problem.startswith("V4__late.sql: has version 4, lower than the highest released")
    assert "version 5" in problem
    assert "Rename it to V7__late.sql" in problem
    assert "--out-of-order" in problem
    assert problems_of(released, out_of_order=True) == []


def test_new_baseline_below_released_versions_is_fine(released: Path) -> None:
    write_tree(released, {"B2__older_base.sql": SQL})
    assert problems_of(released) == []


def test_repeatables_may_change(released: Path) -> None:
    (released / "R__views.sql").write_text("SELECT 'changed';\n")
    assert problems_of(released) == []


def test_update_adds_new_entries_and_never_rewrites(released: Path) -> None:
    before = lock_path(released).read_text()
    assert update_lock(released) == ()
    assert lock_path(released).read_text() == before
    write_tree(released, {"V6__six.sql": SQL, "V4__four.sql": SQL})
    with pytest.raises(MigrationError, match="lower than the highest released"):
        update_lock(released)
    assert lock_path(released).read_text() == before
    added = update_lock(released, out_of_order=True)
    assert [entry.script for entry in added] == ["V4__four.sql", "V6__six.sql"]
    old = parse_lock(before).entries
    new = parse_lock(lock_path(released).read_text()).entries
    assert set(old) <= set(new)
    assert len(new) == len(old) + 2


def test_update_refuses_a_changed_release(released: Path) -> None:
    before = lock_path(released).read_text()
    (released / "V1__one.sql").write_text("SELECT 11;\n")
    write_tree(released, {"V6__six.sql": SQL})
    with pytest.raises(MigrationError, match="changed after it was released"):
        update_lock(released)
    assert lock_path(released).read_text() == before


def test_extend_lock_is_pure_and_keeps_existing_entries(released: Path) -> None:
    lock = read_lock(released)
    assert lock is not None
    write_tree(released, {"V9__nine.sql": SQL})
    extended = extend_lock(load_migration_set(released), lock)
    assert set(lock.entries) < set(extended.entries)
    assert extended.entries[-1].script == "V9__nine.sql"
    assert extended.entries[-1].kind is Kind.VERSIONED
    assert extend_lock(load_migration_set(released), None).entries == extended.entries


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"format": 2, "migrations": []}',
        '{"format": 1}',
        '{"format": 1, "migrations": [{"script": "V1__a.sql"}]}',
        '{"format": 1, "migrations": [{"script": "V1__a.sql", "type": "repeatable", '
        '"version": "1", "description": "a", "checksum": 1}]}',
        '{"format": 1, "migrations": [{"script": "V1__a.sql", "type": "versioned", '
        '"version": "x", "description": "a", "checksum": 1}]}',
        '{"format": 1, "migrations": [{"script": "V1__a.sql", "type": "versioned", '
        '"version": "1", "description": "a", "checksum": "1"}]}',
    ],
)
def test_damaged_lock_is_an_error(text: str) -> None:
    with pytest.raises(MigrationError) as caught:
        parse_lock(text)
    assert str(caught.value).startswith(f"{LOCK_FILE_NAME}: is not a valid lock file")
    assert "git checkout" in str(caught.value)


def test_duplicate_lock_entries_are_an_error(released: Path) -> None:
    lock = read_lock(released)
    assert lock is not None
    doubled = render_lock(Lock((*lock.entries, lock.entries[0])))
    with pytest.raises(MigrationError, match="more than once"):
        parse_lock(doubled)


def test_unreleased_lists_what_the_lock_lacks(released: Path) -> None:
    write_tree(released, {"V9__new.sql": "CREATE TABLE n (id int);\n"})
    problems = unreleased(load_migration_set(released), read_lock(released))
    assert [(p.path, p.fix) for p in problems] == [
        ("V9__new.sql", "Release it: make migrations-lock, and commit the lock file with it.")
    ]
    update_lock(released)
    assert unreleased(load_migration_set(released), read_lock(released)) == ()


def test_a_failed_newest_release_can_be_unlocked_fixed_and_locked(released: Path) -> None:
    newest = max(read_lock(released).entries, key=lambda e: e.version)  # type: ignore[union-attr]
    (released / newest.script).write_text("CREATE TABLE fixed (id int);\n")
    [problem] = problems_of(released)
    assert f"make migrations-unlock FILE={newest.script}" in problem
    assert unlock(released, newest.script) == newest
    assert update_lock(released) != ()
    assert problems_of(released) == []


def test_only_the_newest_release_can_be_unlocked(released: Path) -> None:
    oldest = min(read_lock(released).entries, key=lambda e: e.version)  # type: ignore[union-attr]
    with pytest.raises(MigrationError, match="not the newest released migration") as caught:
        unlock(released, oldest.script)
    assert "put the change in a new migration" in str(caught.value)
    with pytest.raises(MigrationError, match=r"is not in migrations\.lock\.json"):
        unlock(released, "V404__missing.sql")


def test_the_repeatables_released_content_is_kept_apart(released: Path) -> None:
    document = json.loads(lock_path(released).read_text())
    checksum = load_migration_set(released).by_path["R__views.sql"].checksum
    assert document["repeatables"] == [{"script": "R__views.sql", "checksum": checksum}]
    lock = read_lock(released)
    assert lock is not None
    assert render_lock(lock) == lock_path(released).read_text()
    files = load_migration_set(released).by_path
    assert lock.released(files["R__views.sql"])
    # A repeatable may change (Flyway re-runs it): the lock does not refuse it, it only no
    # longer counts as released until the next lock records it.
    (released / "R__views.sql").write_text("SELECT 'w';\n")
    changed = load_migration_set(released)
    assert check_lock(changed, lock, out_of_order=False) == ()
    assert not lock.released(changed.by_path["R__views.sql"])
    assert update_lock(released) == ()
    relocked = read_lock(released)
    assert relocked is not None
    assert relocked.released(load_migration_set(released).by_path["R__views.sql"])


def test_a_lock_without_repeatables_reads_and_writes_as_before(tmp_path: Path) -> None:
    write_tree(tmp_path, {"V1__one.sql": SQL})
    update_lock(tmp_path)
    assert "repeatables" not in json.loads(lock_path(tmp_path).read_text())


def test_a_released_file_of_comments_alone_is_history_a_new_one_is_refused(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path, {"V1__one.sql": SQL, "V2__noop.sql": "-- nothing to do\n"})
    with pytest.raises(MigrationError, match=r"V2__noop\.sql: holds no SQL statement"):
        update_lock(tmp_path)
    # Adopted as history: applied somewhere already, so it is released as it is.
    assert [entry.script for entry in update_lock(tmp_path, history=True)] == [
        "V1__one.sql",
        "V2__noop.sql",
    ]
    assert [f.path for f in load_released_set(tmp_path, out_of_order=False)] == [
        "V1__one.sql",
        "V2__noop.sql",
    ]
    write_tree(tmp_path, {"V3__later.sql": "-- still empty\n"})
    with pytest.raises(MigrationError, match=r"V3__later\.sql: holds no SQL statement"):
        load_released_set(tmp_path, out_of_order=False)


def test_relock_records_a_released_file_put_back_to_what_a_database_applied(
    released: Path,
) -> None:
    (released / "V1__one.sql").write_text("SELECT 1; -- as the old runner applied it\n")
    assert "V1__one.sql: changed after it was released" in problems_of(released)[0]
    entry = relock(released, "V1__one.sql")
    assert entry.checksum == load_migration_set(released).by_path["V1__one.sql"].checksum
    assert problems_of(released) == []
    lock = read_lock(released)
    assert lock is not None
    assert [e.script for e in lock.entries][:2] == ["V1__one.sql", "V2__two.sql"]
    assert lock.repeatables  # kept
    with pytest.raises(MigrationError, match="is not a released migration"):
        relock(released, "V9__nine.sql")
