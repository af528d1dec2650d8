"""Packing into ConfigMap shards: complete, exact, within limits, deterministic, stable."""

import base64
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.migrations.model import (
    MigrationError,
)
from components.migrations.packing import (
    CONFIGMAP_LIMIT,
    DEFAULT_BUDGET,
    MAX_KEY_LENGTH,
    Shard,
    _first_fit,
    assign_keys,
    efficiency,
    is_valid_key,
    pack,
    unpack,
)
from components.migrations.scan import (
    load_migration_set,
)
from tests.components.migrations import write_tree

Files = list[tuple[str, bytes]]

name_characters = st.sampled_from("abcVR_-. 1é日")
names = st.text(name_characters, min_size=1, max_size=20).map(lambda name: f"{name}.sql")
paths = st.tuples(st.sampled_from(["", "d0/", "d1/", "d1/e/", "my dir/"]), names).map("".join)
contents = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"", b"\xef\xbb\xbfx\r\n", b"caf\xe9\r", b"\x00\xff"]),
)
file_lists = st.one_of(
    st.lists(st.tuples(paths, contents), max_size=60, unique_by=lambda pair: pair[0]),
    st.lists(st.tuples(paths, contents), min_size=20, max_size=80, unique_by=lambda pair: pair[0]),
)
budgets = st.integers(min_value=900, max_value=4000)


def item_costs(shards: tuple[Shard, ...]) -> list[int]:
    return [
        len(key) + len((shard.data | shard.binary_data)[key].encode("utf-8"))
        for shard in shards
        for key, _ in shard.items
    ]


@settings(max_examples=150)
@given(file_lists, budgets)
def test_pack_invariants(files: Files, budget: int) -> None:
    shards = pack(files, budget)
    expected = dict(files)

    paths_in_shards = [path for shard in shards for _, path in shard.items]
    assert Counter(paths_in_shards) == Counter(path for path, _ in files)
    assert unpack(shards) == expected

    keys = [key for shard in shards for key, _ in shard.items]
    assert len(keys) == len(set(keys))
    assert all(is_valid_key(key) and "/" not in key for key in keys)
    for index, shard in enumerate(shards):
        assert shard.index == index
        assert shard.items
        assert set(shard.data).isdisjoint(shard.binary_data)
        assert {key for key, _ in shard.items} == set(shard.data) | set(shard.binary_data)
        stored = sum(len(k) + len(v.encode()) for k, v in (shard.data | shard.binary_data).items())
        assert shard.size == stored <= budget

    assert pack(files, budget) == shards
    costs = item_costs(shards)
    if len(shards) > 1 and max(costs) * 10 <= budget:
        assert efficiency(shards, capacity=budget) >= 0.9


@given(st.lists(st.integers(0, 60), min_size=10, max_size=300), st.integers(1000, 5000))
def test_small_files_fill_every_shard_but_one(sizes: list[int], budget: int) -> None:
    files = [(f"V{n}__m.sql", b"x" * size) for n, size in enumerate(sizes, 1)]
    shards = pack(files, budget)
    assert max(item_costs(shards)) * 10 <= budget
    assert efficiency(shards, capacity=budget) >= 0.9
    assert sum(shard.size < 0.9 * budget for shard in shards) <= 1


@settings(max_examples=100)
@given(file_lists, st.tuples(paths, contents), budgets)
def test_appending_a_file_changes_at_most_one_shard(
    files: Files, extra: tuple[str, bytes], budget: int
) -> None:
    if any(path == extra[0] for path, _ in files):
        return
    before = pack(files, budget)
    after = pack([*files, extra], budget)
    changed = [shard for shard in after if shard not in before]
    assert len(changed) == 1
    assert len(after) - len(before) in (0, 1)


def test_byte_exact_round_trip() -> None:
    files = {
        "V1__crlf.sql": b"SELECT 1;\r\nSELECT 2;\r\n",
        "V2__cr.sql": b"SELECT 1;\rSELECT 2;\r",
        "V3__bom.sql": b"\xef\xbb\xbfSELECT 1;\n",
        "V4__trailing.sql": b"SELECT 1;   \t\n\n\n   ",
        "V5__unicode.sql": "SELECT 'caf\u00e9 \u65e5\u672c \U0001f600 \u2028';\n".encode(),
        "V6__latin1.sql": b"SELECT 'caf\xe9';\n",
        "V6__latin1.sql.conf": b"encoding=ISO-8859-1\n",
        "sub dir/V7__nested.sql": b"SELECT 7;",
    }
    shards = pack(list(files.items()))
    assert len(shards) == 1
    (shard,) = shards
    assert shard.data["V1__crlf.sql"] == "SELECT 1;\r\nSELECT 2;\r\n"
    assert shard.data["V2__cr.sql"] == "SELECT 1;\rSELECT 2;\r"
    assert shard.data["V3__bom.sql"] == "\ufeffSELECT 1;\n"
    assert shard.data["V4__trailing.sql"] == "SELECT 1;   \t\n\n\n   "
    assert "V6__latin1.sql" not in shard.data
    assert base64.b64decode(shard.binary_data["V6__latin1.sql"]) == b"SELECT 'caf\xe9';\n"
    assert unpack(shards) == files
    keys = {path: key for key, path in shard.items}
    assert keys["V1__crlf.sql"] == "V1__crlf.sql"
    assert keys["sub dir/V7__nested.sql"].startswith("sub_dir_V7__nested.sql-")


def test_keys_keep_valid_top_level_names_and_map_the_rest() -> None:
    long_name = "V1__" + "x" * 300 + ".sql"
    keys = assign_keys(["V1__a.sql", "sub/V2__b.sql", "V3__a b.sql", "V3__a_b.sql", long_name])
    assert keys["V1__a.sql"] == "V1__a.sql"
    assert keys["V3__a_b.sql"] == "V3__a_b.sql"
    assert keys["sub/V2__b.sql"].startswith("sub_V2__b.sql-")
    assert keys["V3__a b.sql"].startswith("V3__a_b.sql-")
    assert len(keys[long_name]) == MAX_KEY_LENGTH
    assert len(set(keys.values())) == len(keys)
    assert all(is_valid_key(key) for key in keys.values())
    assert assign_keys(reversed(list(keys))) == keys


def test_keys_never_collide_with_a_name_that_looks_mapped() -> None:
    mapped = assign_keys(["sub/x.sql"])["sub/x.sql"]
    keys = assign_keys(["sub/x.sql", mapped])
    assert keys[mapped] == mapped
    assert keys["sub/x.sql"] != mapped
    assert is_valid_key(keys["sub/x.sql"])


@pytest.mark.parametrize("key", ["", ".", "..", "..x", "a/b", "a b", "é", "x" * 254])
def test_invalid_keys(key: str) -> None:
    assert not is_valid_key(key)


def test_items_lay_out_subfolders(tmp_path: Path) -> None:
    write_tree(tmp_path, {"V1__a.sql": "SELECT 1;", "2024/q1/V2__b.sql": "SELECT 2;"})
    (shard,) = pack(load_migration_set(tmp_path))
    assert [path for _, path in shard.items] == ["V1__a.sql", "2024/q1/V2__b.sql"]


def test_migration_set_packs_in_flyway_order(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"V{n}__m.sql": "SELECT 1;" * 30 for n in (10, 9, 1, 2)})
    shards = pack(load_migration_set(tmp_path), budget=600)
    assert [[path for _, path in shard.items] for shard in shards] == [
        ["V1__m.sql", "V2__m.sql"],
        ["V9__m.sql", "V10__m.sql"],
    ]


def test_too_large_file_names_file_size_and_fix() -> None:
    big = b"x" * DEFAULT_BUDGET
    with pytest.raises(MigrationError) as caught:
        pack([("V1__ok.sql", b"SELECT 1;"), ("V2__seed_data.sql", big)])
    message = str(caught.value)
    assert message.startswith(f"V2__seed_data.sql: takes {DEFAULT_BUDGET + 17:,} bytes")
    assert "1,048,576" in message
    assert "Split it" in message
    assert "load bulk data another way" in message


def test_binary_files_are_counted_as_base64() -> None:
    (shard,) = pack([("x.sql", b"\xff" * 300)])
    assert shard.size == len("x.sql") + 400


@pytest.mark.parametrize(
    "bad",
    [
        [("../x.sql", b"")],
        [("/abs.sql", b"")],
        [("a//b.sql", b"")],
        [("a/./b.sql", b"")],
        [("", b"")],
        [("a.sql", b""), ("a.sql", b"x")],
        [("a", b""), ("a/b.sql", b"")],
    ],
)
def test_paths_that_cannot_be_laid_out(bad: Files) -> None:
    with pytest.raises(ValueError, match=r"path|more than once|directory"):
        pack(bad)


@pytest.mark.parametrize("budget", [0, -1, CONFIGMAP_LIMIT + 1])
def test_budget_must_fit_a_configmap(budget: int) -> None:
    with pytest.raises(ValueError, match="budget"):
        pack([], budget)


def test_empty_input_packs_to_no_shards() -> None:
    assert pack([]) == ()
    assert unpack(()) == {}


def test_shard_digest_follows_content() -> None:
    (first,) = pack([("V1__a.sql", b"SELECT 1;")])
    (same,) = pack([("V1__a.sql", b"SELECT 1;")])
    (edited,) = pack([("V1__a.sql", b"SELECT 2;")])
    (renamed,) = pack([("sub/V1__a.sql", b"SELECT 1;")])
    assert first.digest == same.digest
    assert len({first.digest, edited.digest, renamed.digest}) == 3


def test_realistic_mix_is_at_least_ninety_percent_efficient() -> None:
    """Thousands of small DDL files with a few files of several hundred KB among them."""
    rng = random.Random(20240101)
    sizes = [int(min(20_000, max(100, rng.lognormvariate(7.3, 0.9)))) for _ in range(4000)]
    for _ in range(8):
        sizes.insert(rng.randrange(len(sizes)), rng.randint(100_000, 800_000))
    files = [(f"V{n}__migration_{n}.sql", b"x" * size) for n, size in enumerate(sizes, 1)]
    shards = pack(files)
    assert len(shards) > 5
    assert efficiency(shards) >= 0.9
    assert all(shard.size <= DEFAULT_BUDGET for shard in shards)
    assert unpack(shards) == dict(files)


def reference_first_fit(sizes: list[int], budget: int) -> list[int]:
    """First-fit by scanning every shard: slow, obviously right."""
    free: list[int] = []
    placement = []
    for size in sizes:
        index = next((i for i, room in enumerate(free) if room >= size), len(free))
        if index == len(free):
            free.append(budget)
        free[index] -= size
        placement.append(index)
    return placement


@given(st.lists(st.integers(1, 100), max_size=300), st.integers(100, 300))
def test_first_fit_tree_places_like_a_scan(sizes: list[int], budget: int) -> None:
    assert _first_fit(sizes, budget) == reference_first_fit(sizes, budget)
