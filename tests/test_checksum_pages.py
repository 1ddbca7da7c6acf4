"""A listing's page of rows is verified before any entry is built (``verify_rows``): the common page a column at
a time, any other row by row; either way one bad row among a hundred is named, key and column."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from kvstore import CorruptEntryError
from kvstore._backends.base import ROW_KEY
from kvstore._checksum import checksum, verify_rows


def _page(count: int = 100) -> list[tuple[Any, ...]]:
    """A listing's rows (``Row``) as kvstore writes the commonest: no metadata, one content type."""
    kind = "application/msgpack"
    rows = []
    for i in range(count):
        value = msgpack.packb(i)
        rows.append((value, i + 1, None, kind, 1_000_000, 1_000_000, None, checksum(value, kind, None), f"k{i:03d}"))
    return rows


def test_a_page_that_verifies_comes_back_as_its_columns() -> None:
    rows = _page()
    mixed = [*rows[:50], (*rows[50][:2], '{"a": 1}', "text/x", *rows[50][4:7], None, rows[50][8]), *rows[51:]]
    assert verify_rows(rows, ROW_KEY) == list(zip(*rows, strict=True))
    assert verify_rows(mixed, ROW_KEY) == list(zip(*mixed, strict=True))  # metadata, and no checksum yet


@pytest.mark.parametrize(
    ("column", "bad"),
    [
        ("checksum", lambda row: (*row[:7], row[7] ^ 1, row[8])),
        ("value", lambda row: ("not bytes", *row[1:])),
        ("content_type", lambda row: (*row[:3], b"application/msgpack", *row[4:])),
        ("checksum", lambda row: (*row[:2], "{}", *row[3:])),  # metadata the checksum was not written with
    ],
)
def test_one_bad_row_in_a_common_page_is_named(column: str, bad: Callable[[tuple[Any, ...]], tuple[Any, ...]]) -> None:
    rows = _page()
    rows[73] = bad(rows[73])
    with pytest.raises(CorruptEntryError) as caught:
        verify_rows(rows, ROW_KEY)
    assert (caught.value.key, caught.value.column) == ("k073", column)


def test_a_page_with_a_key_that_is_not_text_is_refused() -> None:
    rows = _page()
    rows[10] = (*rows[10][:8], b"k010")
    with pytest.raises(CorruptEntryError) as caught:
        verify_rows(rows, ROW_KEY)
    assert caught.value.column == "key"
