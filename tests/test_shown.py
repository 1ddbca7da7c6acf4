"""shown(): a caller's object in an error message, bounded and without running the caller's code."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore._shown import LIMIT, shown


class Loud(str):
    """A str whose every method a message might call raises."""

    def _boom(self, *args: object) -> Any:
        raise AssertionError("shown() ran a caller's method")

    __repr__ = __str__ = __format__ = __len__ = __iter__ = __getitem__ = __eq__ = __hash__ = _boom


class LoudList(list[Any]):
    __repr__ = __len__ = __iter__ = Loud._boom


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        (None, "None"),
        (True, "True"),
        (1.5, "1.5"),
        (float("nan"), "nan"),
        (2**63, "9223372036854775808"),
        (10**5000, "a 16,610-bit int"),
        (-(10**5000), "a negative 16,610-bit int"),
        ("k/a", "'k/a'"),
        (b"\x00", "b'\\x00'"),
        ([1, [2, [3, [4]]]], "[1, [2, [...]]]"),
        ({"a": 1}, "{'a': 1}"),
        ((1,), "(1,)"),
        (set(), "set()"),
        (timedelta(seconds=1), "datetime.timedelta(seconds=1)"),
        (Fraction(10**5000, 3), "<a Fraction>"),
        (object(), "<a object>"),
        (Loud("k/a"), "Loud('k/a')"),
        (LoudList([1]), "LoudList([1])"),
    ],
    ids=lambda x: type(x).__name__,
)
def test_objects_are_shown_by_their_base_types_only(obj: object, text: str) -> None:
    assert shown(obj) == text


def test_deep_nesting_and_long_objects_are_cut() -> None:
    assert shown(_deep(10_000)) == "[[[...]]]"
    assert len(shown("x" * 1_000_000)) == LIMIT
    assert len(shown([["y" * 500] * 50] * 50)) <= LIMIT
    assert shown("x" * 1_000, limit=10) == "'xxxxxx..."


@given(st.recursive(st.none() | st.integers() | st.floats() | st.text() | st.binary(), st.lists, max_leaves=30))
def test_anything_is_shown_within_the_limit(obj: object) -> None:
    assert len(shown(obj)) <= LIMIT
