"""Flyway version semantics: '_' is '.', digits only, numeric order, trailing zeros ignored."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.migrations.model import (
    Version,
)

numbers = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=6)


@st.composite
def spellings(draw: st.DrawFn, parts: list[int]) -> str:
    """One of the many file-name spellings of the same version."""
    padded = [str(part).zfill(draw(st.integers(0, 4)) + len(str(part))) for part in parts]
    padded += ["0" * draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 3)))]
    separators = [draw(st.sampled_from("._")) for _ in padded[1:]]
    return padded[0] + "".join(sep + part for sep, part in zip(separators, padded[1:], strict=True))


def stripped(parts: list[int]) -> tuple[int, ...]:
    values = list(parts)
    while len(values) > 1 and values[-1] == 0:
        values.pop()
    return tuple(values)


def padded_compare(left: list[int], right: list[int]) -> int:
    """Flyway's MigrationVersion.compareTo: missing parts count as zero."""
    for a, b in itertools.zip_longest(left, right, fillvalue=0):
        if a != b:
            return -1 if a < b else 1
    return 0


@given(st.data(), numbers)
def test_parse_of_str_round_trips(data: st.DataObject, parts: list[int]) -> None:
    version = Version.parse(data.draw(spellings(parts)))
    again = Version.parse(str(version))
    assert again == version
    assert str(again) == str(version)


@given(st.data(), numbers)
def test_equal_spellings_are_equal_and_hash_equal(data: st.DataObject, parts: list[int]) -> None:
    first = Version.parse(data.draw(spellings(parts)))
    second = Version.parse(data.draw(spellings(parts)))
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@given(st.data(), numbers, numbers)
def test_order_matches_numeric_parts(
    data: st.DataObject, left: list[int], right: list[int]
) -> None:
    a = Version.parse(data.draw(spellings(left)))
    b = Version.parse(data.draw(spellings(right)))
    flyway = padded_compare(left, right)
    assert (a < b) == (flyway < 0) == (stripped(left) < stripped(right))
    assert (a == b) == (flyway == 0)
    assert (a > b) == (flyway > 0)


@given(st.text(alphabet="0123456789._a-+ ٣", max_size=12))
def test_anything_but_digit_groups_is_rejected(raw: str) -> None:
    pieces = raw.replace("_", ".").split(".")
    valid = all(piece and all(c in "0123456789" for c in piece) for piece in pieces)
    if valid:
        assert Version.parse(raw).text == raw.replace("_", ".")
    else:
        with pytest.raises(ValueError, match="non-digit version"):
            Version.parse(raw)


@pytest.mark.parametrize(
    ("raw", "text", "parts"),
    [
        ("1", "1", (1,)),
        ("01", "01", (1,)),
        ("1_0", "1.0", (1,)),
        ("1.0.0", "1.0.0", (1,)),
        ("001.002_0", "001.002.0", (1, 2)),
        ("0", "0", (0,)),
        ("0.0", "0.0", (0,)),
        ("2024_01_15_1", "2024.01.15.1", (2024, 1, 15, 1)),
    ],
)
def test_display_text_is_flyways_and_parts_are_normalised(
    raw: str, text: str, parts: tuple[int, ...]
) -> None:
    version = Version.parse(raw)
    assert version.text == text == str(version)
    assert version.parts == parts


def test_examples_of_flyway_ordering() -> None:
    ordered = [Version.parse(raw) for raw in ("0", "1", "1.0.1", "1.2", "1.10", "2", "10")]
    assert all(a < b for a, b in itertools.pairwise(ordered))
    assert Version.parse("1") == Version.parse("1.0") == Version.parse("01") == Version.parse("1_0")


@pytest.mark.parametrize("raw", ["", "1a", "1..2", ".1", "1.", "-1", "+1", "1 ", "٣"])
def test_invalid_versions(raw: str) -> None:
    with pytest.raises(ValueError, match="non-digit version"):
        Version.parse(raw)
