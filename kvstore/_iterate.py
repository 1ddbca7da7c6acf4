"""``iterate()``: a listing as one iterator, which pages through ``list`` (or ``list_keys``) by itself.

One page is held at a time, so memory stays flat however long the listing; each page is read in its own
snapshot, with the cursor rules of ``list`` between pages (a key present throughout is neither skipped nor
repeated). Entry pages are bounded by bytes as well as by count, so that large values come a few at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar

from ._backends.base import Backend
from ._errors import InvalidOptionsError
from ._listing import Pager, list_keys_page, list_page
from ._shown import shown

T = TypeVar("T")

# 500 a page: over 100,000 entries (2 cores, PostgreSQL on loopback) a page of 500 cost 2.74 us an entry on
# SQLite (2.95 at 100, 3.93 at 2,000) and 4.32 us on PostgreSQL (4.58 at 100, 5.02 at 2,000); keys alone,
# 0.83 us a key on SQLite and 1.23 on PostgreSQL (1.51 and 3.52 at 100): a round trip a page dominates below.
DEFAULT_PAGE_SIZE: Final = 500
# An entry page stops once its values pass this many bytes (it always holds one entry).
PAGE_BYTES: Final = 8 * 1024 * 1024


class ListIterator(Iterator[T]):
    """The entries (or keys) of a listing, in its order, fetched a page at a time.

    ``cursor`` continues the listing after the last item returned, as a page's cursor does (pass it to
    ``list``, ``list_keys`` or ``iterate``); it is None once the listing is exhausted.
    """

    __slots__ = ("_backend", "_cursor", "_index", "_keys_only", "_more", "_namespace", "_now_us", "_page", "_pager")

    def __init__(
        self,
        backend: Backend,
        namespace: str,
        pager: Pager,
        keys_only: bool,
        now_us: Callable[[], int],
        cursor: str | None,
    ) -> None:
        self._backend = backend
        self._namespace = namespace
        self._pager = pager
        self._keys_only = keys_only
        self._now_us = now_us
        self._page: list[Any] = []  # entries, or keys
        self._index = 0
        self._more = True
        self._cursor = cursor

    @staticmethod
    def check_page_size(page_size: object) -> int:
        if type(page_size) is not int or page_size < 1:
            raise InvalidOptionsError(f"page_size must be a positive int, got {shown(page_size)}")
        return page_size

    def __iter__(self) -> ListIterator[T]:
        return self

    def __next__(self) -> T:
        if self._index == len(self._page):
            if not self._more:
                raise StopIteration
            self._fetch()
            if not self._page:
                raise StopIteration
        item: T = self._page[self._index]
        self._index += 1
        return item

    def _fetch(self) -> None:
        pager = self._pager
        now_us = self._now_us()
        if self._keys_only:
            keys = list_keys_page(self._backend, self._namespace, pager, now_us)
            self._page, cursor = keys.keys, keys.cursor
            last = keys.keys[-1] if keys.keys else None
        else:
            entries = list_page(self._backend, self._namespace, pager, now_us)
            self._page, cursor = entries.entries, entries.cursor
            last = entries.entries[-1].key if entries.entries else None
        self._index = 0
        self._more = cursor is not None
        if last is not None:
            pager.resume = last  # the next page starts past it, as its cursor would say

    @property
    def cursor(self) -> str | None:
        """The cursor after the last item returned; None once nothing is left (or none was returned from
        an exhausted listing). Before the first item, the cursor the iteration started from."""
        if self._index == len(self._page) and not self._more:
            return None
        if self._index == 0:
            return self._cursor
        last = self._page[self._index - 1]
        return self._pager.cursor_after(last if self._keys_only else last.key)
