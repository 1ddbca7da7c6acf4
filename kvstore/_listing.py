"""Listing one namespace: key ranges from prefix and bounds, pages, keys-only pages, counts, and
range deletes in bounded batches. Rows become entries here too."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import repeat
from typing import Final

from ._backends.base import Backend, Found, Row, Transaction
from ._codec import _INSTANTS, Value, decode_metadata, decode_values, from_epoch_us, instants_of, stamp_bytes
from ._cursor import Listing, decode_cursor, encode_cursor
from ._errors import InvalidOptionsError
from ._models import Entry, KeyPage, Page, new_tuple
from ._validation import MAX_ROWS, check_flag, check_prefix

# Above every character a key may hold, so ``key < _END`` bounds the listing of an empty prefix.
_END: Final = "~"


def _end_of(prefix: str) -> str:
    """The smallest string above every key that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else _END


def key_range(prefix: object, start: object = None, end: object = None) -> tuple[Listing, str, str]:
    """Validate a listing's prefix and bounds; return it with its effective ``[low, high)`` key range."""
    check_prefix(prefix)
    assert isinstance(prefix, str)
    low_bound = None if start is None else check_prefix(start, "start")
    high_bound = None if end is None else check_prefix(end, "end")
    low, high = prefix, _end_of(prefix)
    if low_bound is not None:
        low = max(low, low_bound)
    if high_bound is not None:
        high = min(high, high_bound)
    return Listing(prefix, low_bound, high_bound, False), low, high


class Pager:
    """One page request: the validated range, direction, limit and resume point."""

    __slots__ = ("fetch", "high", "limit", "listing", "low", "resume")

    def __init__(
        self, prefix: object, start: object, end: object, limit: object, cursor: object, reverse: object
    ) -> None:
        listing, self.low, self.high = key_range(prefix, start, end)
        self.listing = listing._replace(reverse=check_flag("reverse", reverse))
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidOptionsError(f"limit must be a positive int or None, got {limit!r}")
        self.limit: int | None = limit
        # One more row than the limit says whether another page exists.
        self.fetch = None if limit is None else min(limit, MAX_ROWS) + 1
        self.resume = None if cursor is None else decode_cursor(cursor, self.listing)

    def trim(self, count: int) -> bool:
        """Whether ``count`` fetched rows mean there is another page."""
        return self.limit is not None and count > self.limit

    def cursor_after(self, last_key: str) -> str:
        return encode_cursor(self.listing, last_key)


def list_page(backend: Backend, namespace: str, pager: Pager, now_us: int) -> Page:
    listing = pager.listing
    rows = backend.scan(namespace, pager.low, pager.high, pager.resume, listing.reverse, pager.fetch, now_us)
    more = pager.trim(len(rows))
    if more:
        del rows[pager.limit :]
    entries = entries_of(rows)
    return Page(entries, pager.cursor_after(entries[-1].key) if more else None)


def list_keys_page(backend: Backend, namespace: str, pager: Pager, now_us: int) -> KeyPage:
    listing = pager.listing
    keys = backend.scan_keys(namespace, pager.low, pager.high, pager.resume, listing.reverse, pager.fetch, now_us)
    more = pager.trim(len(keys))
    if more:
        del keys[pager.limit :]
    return KeyPage(keys, pager.cursor_after(keys[-1]) if more else None)


def delete_range_batch(
    backend: Backend, namespace: str, low: str, high: str, limit: int, now_us: int
) -> tuple[int, int]:
    """Delete the next ``limit`` entries of ``[low, high)`` in one transaction: (rows, live rows) deleted.

    A batch that deletes a live entry is a committed write and draws a versionstamp; expired rows go
    silently, as a purge would take them.
    """

    def body(tx: Transaction) -> tuple[int, int]:
        batch = tx.range_batch(namespace, low, high, limit, now_us)
        if not batch:
            return 0, 0
        live = sum(1 for _, is_live in batch if is_live)
        if live:
            tx.next_version()
        tx.delete_through(namespace, low, batch[-1][0])
        return len(batch), live

    return backend.transact(body)


def entries_of(rows: list[Row]) -> list[Entry]:
    """The Entries of stored rows, each at the key the row holds: what ``entry_of`` makes of each row,
    built a column at a time in C (``map`` and ``zip``), with every value decoded in one scan."""
    if not rows:
        return []
    count = len(rows)
    blobs, versions, metadata, content_types, created, updated, expires, _, keys = zip(*rows, strict=True)
    created_at = instants_of(created)
    updated_at = created_at if updated == created else instants_of(updated)
    if expires.count(None) == count:
        expires_at: Iterable[datetime | None] = repeat(None, count)
    else:
        expires_at = [None if us is None else from_epoch_us(us) for us in expires]
    # A dict for each entry's metadata, even an empty one: entries must not share a mutable dict.
    metas = map(dict.copy, repeat({}, count)) if metadata.count(None) == count else map(decode_metadata, metadata)
    stamps = map(bytes.hex, map(stamp_bytes, versions))  # format_versionstamp, inlined
    columns = (keys, decode_values(blobs), stamps, metas, content_types, map(len, blobs), created_at, updated_at)
    return list(map(new_tuple, repeat(Entry), zip(*columns, expires_at, strict=True)))


def entry_of(key: str, row: Found | Row, decoded: Value) -> Entry:
    """The Entry at ``key`` of a stored row whose value decodes to ``decoded``. Every read of one key builds
    its entry here, so the common cases are inlined: no metadata, and instants recently built (see
    ``_codec.from_epoch_us``)."""
    value = row[0]
    metadata = row[2]
    created_us = row[4]
    updated_us = row[5]
    expires_us = row[6]
    created_at = _INSTANTS.get(created_us) or from_epoch_us(created_us)
    return new_tuple(
        Entry,
        (
            key,
            decoded,
            stamp_bytes(row[1]).hex(),  # format_versionstamp, inlined
            {} if metadata is None else decode_metadata(metadata),
            row[3],
            len(value),
            created_at,
            created_at if updated_us == created_us else _INSTANTS.get(updated_us) or from_epoch_us(updated_us),
            None if expires_us is None else from_epoch_us(expires_us),
        ),
    )
