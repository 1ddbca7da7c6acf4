"""Listing one namespace: key ranges from prefix and bounds, pages and keys-only pages."""

from __future__ import annotations

from typing import Final

from ._backends.base import Backend, Row
from ._cursor import Listing, decode_cursor, encode_cursor
from ._entries import entries_of
from ._errors import InvalidOptionsError
from ._models import KeyPage, Page
from ._shown import shown
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

    __slots__ = ("fetch", "high", "limit", "listing", "low", "max_bytes", "resume")

    def __init__(
        self,
        prefix: object,
        start: object,
        end: object,
        limit: object,
        cursor: object,
        reverse: object,
        max_bytes: object = None,
    ) -> None:
        listing, self.low, self.high = key_range(prefix, start, end)
        self.listing = listing._replace(reverse=check_flag("reverse", reverse))
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidOptionsError(f"limit must be a positive int or None, got {shown(limit)}")
        self.limit: int | None = limit
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
            raise InvalidOptionsError(f"max_bytes must be a positive int or None, got {shown(max_bytes)}")
        self.max_bytes: int | None = max_bytes
        # One more row than the limit says whether another page exists.
        self.fetch = None if limit is None else min(limit, MAX_ROWS) + 1
        self.resume = None if cursor is None else decode_cursor(cursor, self.listing)

    def trim(self, count: int) -> bool:
        """Whether ``count`` fetched rows mean there is another page."""
        return self.limit is not None and count > self.limit

    def keep(self, rows: list[Row]) -> int:
        """How many of the fetched ``rows`` make the page: at most ``limit``, and under ``max_bytes`` the
        ones whose values fit in it (at least one)."""
        kept = len(rows) if self.limit is None else min(len(rows), self.limit)
        if self.max_bytes is not None:
            total = 0
            for index in range(kept):
                value = rows[index][0]
                total += len(value) if type(value) is bytes else 0  # else a row ``entries_of`` refuses
                if total > self.max_bytes and index:
                    return index
        return kept

    def cursor_after(self, last_key: str) -> str:
        return encode_cursor(self.listing, last_key)


def list_page(backend: Backend, namespace: str, pager: Pager, now_us: int) -> Page:
    listing = pager.listing
    rows = backend.scan(
        namespace, pager.low, pager.high, pager.resume, listing.reverse, pager.fetch, now_us, pager.max_bytes
    )
    kept = pager.keep(rows)
    more = kept < len(rows)
    if more:
        del rows[kept:]
    entries = entries_of(rows)
    return Page(entries, pager.cursor_after(entries[-1].key) if more else None)


def list_keys_page(backend: Backend, namespace: str, pager: Pager, now_us: int) -> KeyPage:
    listing = pager.listing
    keys = backend.scan_keys(namespace, pager.low, pager.high, pager.resume, listing.reverse, pager.fetch, now_us)
    more = pager.trim(len(keys))
    if more:
        del keys[pager.limit :]
    return KeyPage(keys, pager.cursor_after(keys[-1]) if more else None)
