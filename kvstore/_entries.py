"""Stored rows become entries: one at a time (``entry_of``, every read of one key) or a page at a time
(``entries_of``, built a column at a time). Each row's checksum is checked first, and a row that fails it,
or holds a column kvstore never writes, raises CorruptEntryError (``_checksum``): its data never comes back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import repeat
from operator import itemgetter
from struct import error as StructError
from typing import Any, Final
from zlib import crc32

from ._backends.base import CHECKSUM, REFRESH, ROW_KEY, Found, Row, Whole
from ._checksum import SEEDS, corrupt, seed_of, verified, verify_rows
from ._codec import _INSTANTS, decode_metadata, decode_value, decode_values, from_epoch_us, instants_of, stamp_bytes
from ._errors import CorruptEntryError, NotADatabaseError
from ._models import Entry, new_tuple

# What building an entry raises on a column kvstore never writes (a str version is a struct.error, a time
# past the year 9999 an OverflowError, a str time a TypeError); ``corrupt`` then says which column it was.
_BAD_COLUMN: Final = (TypeError, ValueError, OverflowError, StructError, NotADatabaseError)
_seed: Final = SEEDS.get
# The content type a row with no metadata last had, with its seed (``seed_of``): one pair, rebound whole, so
# a thread sees the old pair or the new one, never half. The sentinel equals no column a driver returns.
_LAST: tuple[object, int] = (object(), 0)


def entries_of(rows: list[Row]) -> list[Entry]:
    """The Entries of stored rows, each at the key the row holds: what ``entry_of`` makes of each row,
    built a column at a time in C (``map`` and ``zip``), with every value decoded in one scan."""
    if not rows:
        return []
    columns = verify_rows(rows, ROW_KEY)  # the rows' columns too: ``_entries`` builds from them
    try:
        return _entries(columns, len(rows))
    except _BAD_COLUMN as exc:
        for row in rows:
            entry_of(row[ROW_KEY], row[:ROW_KEY])  # raises, naming the row
        raise CorruptEntryError(f"a page of entries cannot be read ({exc})") from exc


def _entries(columns: list[tuple[Any, ...]], count: int) -> list[Entry]:
    # Rows of differing lengths came as no columns: the unpack's ValueError has ``entries_of`` name the row.
    blobs, versions, metadata, content_types, created, updated, expires, _, keys = columns
    created_at = instants_of(created)
    updated_at = created_at if updated == created else instants_of(updated)
    if expires.count(None) == count:
        expires_at: Iterable[datetime | None] = repeat(None, count)
    else:
        expires_at = [None if us is None else from_epoch_us(us) for us in expires]
    # A dict for each entry's metadata, even an empty one: entries must not share a mutable dict.
    metas = map(dict.copy, repeat({}, count)) if metadata.count(None) == count else map(decode_metadata, metadata)
    stamps = map(bytes.hex, map(stamp_bytes, versions))  # format_versionstamp, inlined
    fields = (keys, decode_values(blobs), stamps, metas, content_types, map(len, blobs), created_at, updated_at)
    return list(map(new_tuple, repeat(Entry), zip(*fields, expires_at, strict=True)))


def unfolded(rows: list[Row], read: Callable[[str], Found | None]) -> list[Row]:
    """``rows`` (of ``get_many``) with each that holds ``REFRESH`` for its checksum replaced by ``read(key)``
    (an entry refreshed on access, read whole), or left out if that finds none live."""
    if REFRESH not in map(itemgetter(CHECKSUM), rows):
        return rows
    kept: list[Row] = []
    for row in rows:
        key = row[ROW_KEY]
        fresh = row[:ROW_KEY] if row[CHECKSUM] != REFRESH else read(key)
        if fresh is not None:
            kept.append((*fresh, key))
    return kept


def found_of(whole: Whole) -> Found:
    """A ``Whole`` entry as a point read returns it: its checksum in place of its refresh TTL."""
    value, version, metadata, content_type, created_us, updated_us, expires_us, _, stored = whole
    return value, version, metadata, content_type, created_us, updated_us, expires_us, stored


def entry_of(key: str, found: Found) -> Entry:
    """The Entry at ``key`` of a stored entry. Every read of one key builds its entry here, so the common
    cases are inlined: no metadata, and instants recently built (see ``_codec.from_epoch_us``)."""
    # One unpack (a single bytecode) names every column, and costs less than five indexes.
    value, version, metadata, content_type, created_us, updated_us, expires_us, stored = found
    try:
        # The checksum of the commonest entry (no metadata, the content type of the last such row) inlined: a
        # str comparison finds its seed, where a dict lookup would hash the driver's new str on every read.
        # Anything else (another content type, metadata, no checksum yet) is checked by ``_verified``. Counted
        # with callgrind (instructions a get of a small value from a file store, only the calls counted): 40,200
        # before checksums; 43,200 with them as a dict lookup of the seed (the checksum column costs the driver
        # 1,500, the check 1,500); 42,900 with this comparison, 42,500 with Namespace.get's key check inlined too.
        # Then the refresh TTL folded into the checksum column (``REFRESH``), counted whole-process on a small
        # JSON object: 47,400 before checksums, 50,900 with them, 48,600 folded (+2.6%).
        last = _LAST
        if (metadata is None and content_type == last[0] and crc32(value, last[1]) == stored) or _verified(found):
            created_at = _INSTANTS.get(created_us) or from_epoch_us(created_us)
            return new_tuple(
                Entry,
                (
                    key,
                    decode_value(value),
                    stamp_bytes(version).hex(),  # format_versionstamp, inlined
                    {} if metadata is None else decode_metadata(metadata),
                    content_type,
                    len(value),
                    created_at,
                    created_at if updated_us == created_us else _INSTANTS.get(updated_us) or from_epoch_us(updated_us),
                    None if expires_us is None else from_epoch_us(expires_us),
                ),
            )
    except _BAD_COLUMN:
        pass
    raise corrupt(key, found)


def _verified(found: Found) -> bool:
    """``verified``, after remembering the seed of a row with no metadata for ``entry_of``'s next read."""
    global _LAST
    content_type = found[3]
    if found[2] is None and type(content_type) is str:
        seed = _seed(content_type)
        _LAST = (content_type, seed_of(content_type, None) if seed is None else seed)
    return verified(found)
