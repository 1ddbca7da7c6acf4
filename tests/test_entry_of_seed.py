"""entry_of's inlined checksum check (the seed of the content type last read with no metadata) accepts
exactly the rows whose checksum matches, whatever was read before them."""

from __future__ import annotations

from zlib import crc32

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvstore import CorruptEntryError
from kvstore._backends.base import Found
from kvstore._checksum import checksum
from kvstore._codec import encode_value
from kvstore._entries import entry_of

_KINDS = ("text/plain; charset=utf-8", "application/json", "application/x-other")


def _found(value: object, kind: str, metadata: str | None, damaged: bool) -> Found:
    blob = encode_value(value, 1 << 20)
    stored = checksum(blob, kind, metadata)
    if damaged:
        blob = blob[:-1] + bytes([blob[-1] ^ 0x01])
    return blob, 1, metadata, kind, 1_700_000_000_000_000, 1_700_000_000_000_000, None, stored


@given(
    st.lists(
        st.tuples(st.text(max_size=20), st.sampled_from(_KINDS), st.sampled_from([None, '{"a": 1}']), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_a_row_is_read_if_and_only_if_its_checksum_matches(reads: list[tuple[str, str, str | None, bool]]) -> None:
    for i, (value, kind, metadata, damaged) in enumerate(reads):
        key = f"k{i}"
        found = _found(value, kind, metadata, damaged)
        if damaged:
            with pytest.raises(CorruptEntryError) as caught:
                entry_of(key, found)
            assert repr(key) in caught.value.detail
        else:
            entry = entry_of(key, found)
            assert (entry.key, entry.value, entry.content_type) == (key, value, kind)


@pytest.mark.parametrize("kind", [None, b"text/plain; charset=utf-8", 7])
def test_a_content_type_that_is_not_text_is_refused_after_any_read(kind: object) -> None:
    entry_of("before", _found("x", _KINDS[0], None, damaged=False))  # the last content type is now text/plain
    blob = encode_value("x", 100)
    for stored in (crc32(blob), crc32(blob, 0), checksum(blob, _KINDS[0], None)):
        found = (blob, 1, None, kind, 1_700_000_000_000_000, 1_700_000_000_000_000, None, stored)
        with pytest.raises(CorruptEntryError):
            entry_of("k", found)  # type: ignore[arg-type]


def test_metadata_is_checked_even_when_the_content_type_was_the_last_one_read() -> None:
    entry_of("before", _found("x", _KINDS[0], None, damaged=False))
    blob = encode_value("x", 100)
    # The checksum of the same row without metadata: right for the remembered seed, wrong for this row.
    found = (blob, 1, '{"a": 1}', _KINDS[0], 1, 1, None, checksum(blob, _KINDS[0], None))
    with pytest.raises(CorruptEntryError):
        entry_of("k", found)
