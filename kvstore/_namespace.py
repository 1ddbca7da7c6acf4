"""The data API of one namespace.

``KVStore`` is the view of the default namespace; ``kv.namespace(name)`` returns views of others. Views
share the store's backend, clock and limits, and no operation ever crosses from one namespace to another.
Each method validates its input, then hands over to the write path (``_write``), the listing helpers
(``_listing``, ``_iterate``), the transaction builder (``_atomic``) or the watcher (``_watch``); the
mapping protocol is a line each over those, and ``mapping()`` a view of its own (``_mapping``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Final, Literal, overload

from ._atomic import AtomicOperation
from ._backends.base import CHECKSUM, REFRESH, ROW_KEY, Found
from ._checksum import corrupt_whole
from ._codec import JSON, Value
from ._entries import entries_of, entry_of, found_of, unfolded
from ._errors import InvalidOptionsError, ReadOnlyStoreError, StoreBusyError
from ._iterate import DEFAULT_PAGE_SIZE, PAGE_BYTES, ListIterator
from ._listing import Pager, key_range, list_keys_page, list_page
from ._mapping import KVMapping
from ._models import Entry, KeyPage, Page, SetResult
from ._mutations import Check, Delete, build_put
from ._queue_api import QueueAPI
from ._shared import Shared
from ._shown import shown
from ._validation import (
    _VALID_KEYS,  # for get's inlined key check
    MAX_ROWS,
    MAX_TTL_US,
    Milliseconds,
    Seconds,
    check_flag,
    check_key,
    check_keys,
    check_namespace,
    check_versionstamp,
)
from ._watch import Watch
from ._write import commit, delete_range_batch, expected_of, set_entry, set_result

DEFAULT_NAMESPACE: Final = "default"
_REFRESH_ATTEMPTS: Final = 8
_KEY: Final = itemgetter(ROW_KEY)


class Namespace(QueueAPI):
    """The key-value API scoped to one namespace, and its queues (``QueueAPI``)."""

    __slots__ = ("_name", "_shared")

    def __init__(self, shared: Shared, name: str) -> None:
        self._shared = shared
        self._name = name

    @property
    def name(self) -> str:
        """This namespace's name."""
        return self._name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"

    def namespace(self, name: str) -> Namespace:
        """The same API scoped to the namespace ``name`` (1-64 letters, digits, '-' or '_')."""
        return Namespace(self._shared, check_namespace(name))

    def set(
        self,
        key: str,
        value: Value,
        *,
        if_versionstamp: str | None = None,
        if_not_exists: bool = False,
        overwrite: bool = True,
        expire_in: timedelta | Milliseconds | None = None,
        expire_at: datetime | None = None,
        refresh_on_access: bool = False,
        metadata: Mapping[str, JSON] | None = None,
        content_type: str | None = None,
    ) -> SetResult:
        """Write ``value`` at ``key``, replacing the whole entry, and return its versionstamp.

        A failed ``if_versionstamp`` or ``if_not_exists`` condition is a result (``ok=False``), not an error.
        ``expire_in`` is a ``datetime.timedelta`` or a number of **milliseconds** (60 s to 365 days:
        60,000 to 31,536,000,000 ms); ``expire_at`` is an aware datetime.
        """
        shared = self._shared
        # Positional: a call with fourteen keywords costs a set more than the Put it builds.
        put = build_put(
            self._name, key, value, shared.now_us, shared.max_value_size, shared.max_metadata_size, expire_in,
            expire_at, refresh_on_access, metadata, content_type, if_versionstamp, if_not_exists, overwrite,
        )  # fmt: skip
        now_us = shared.now_us()
        written = set_entry(shared.group, put, expected_of(put, if_versionstamp, if_not_exists), now_us)
        if written[1]:
            shared.committed()
        return set_result(key, put, written, now_us)

    def get(self, key: str) -> Entry | None:
        """The live entry at ``key``, or None; reading an entry set with refresh_on_access extends it."""
        # check_key's first test inlined (a key found valid lately): a call fewer, 340 instructions of a
        # 43,000-instruction get under callgrind.
        if type(key) is not str or key not in _VALID_KEYS:
            check_key(key)
        shared = self._shared
        now_us = shared.now_us()
        found = shared.backend.get(self._name, key, now_us)
        if found is None:
            return None
        if found[CHECKSUM] != REFRESH:  # the common case: no refresh on access
            return entry_of(key, found)
        refreshed = self._refresh(key, now_us)
        return None if refreshed is None else entry_of(key, refreshed)

    def get_many(self, keys: Iterable[str]) -> list[Entry | None]:
        """The live entry (or None) for each of ``keys``, in order, read in one snapshot."""
        wanted = check_keys(keys)
        shared = self._shared
        now_us = shared.now_us()
        rows = shared.backend.get_many(self._name, wanted, now_us)
        rows = unfolded(rows, lambda key: self._refresh(key, now_us))
        found = dict(zip(map(_KEY, rows), entries_of(rows), strict=True))
        return list(map(found.get, wanted))

    def delete(self, key: str, *, if_versionstamp: str | None = None) -> bool:
        """Delete the live entry at ``key``; True if one was deleted (and its versionstamp matched)."""
        check_key(key)
        checks = []
        if if_versionstamp is not None:
            checks.append(Check(self._name, key, check_versionstamp(if_versionstamp)))
        shared = self._shared
        outcome = commit(shared.group, checks, [Delete(self._name, key)], shared.now_us())
        deleted = outcome.ok and outcome.applied[0]
        if deleted:
            shared.committed()
        return deleted

    def list(
        self,
        prefix: str = "",
        *,
        start: str | None = None,
        end: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        reverse: bool = False,
        max_bytes: int | None = None,
    ) -> Page:
        """Live entries whose key starts with ``prefix`` and lies in ``[start, end)``, in key order.

        At most ``limit`` of them, and with ``max_bytes`` no more than fit in that many bytes of stored
        values (``size_bytes``; a page always holds one entry, however large); the page's ``cursor``
        continues the listing, or is None when nothing is left. The prefix matches literally: '_' and '%'
        are ordinary characters.
        """
        pager = Pager(prefix, start, end, limit, cursor, reverse, max_bytes)
        return list_page(self._shared.backend, self._name, pager, self._shared.now_us())

    def list_keys(
        self,
        prefix: str = "",
        *,
        start: str | None = None,
        end: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        reverse: bool = False,
    ) -> KeyPage:
        """The keys ``list`` would return, without reading values; its cursors and ``list``'s are the same."""
        pager = Pager(prefix, start, end, limit, cursor, reverse)
        return list_keys_page(self._shared.backend, self._name, pager, self._shared.now_us())

    @overload
    def iterate(
        self, prefix: str = "", *, start: str | None = None, end: str | None = None, reverse: bool = False,
        keys_only: Literal[False] = False, page_size: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
    ) -> ListIterator[Entry]: ...  # fmt: skip

    @overload
    def iterate(
        self, prefix: str = "", *, start: str | None = None, end: str | None = None, reverse: bool = False,
        keys_only: Literal[True], page_size: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
    ) -> ListIterator[str]: ...  # fmt: skip

    @overload
    def iterate(
        self, prefix: str = "", *, start: str | None = None, end: str | None = None, reverse: bool = False,
        keys_only: bool, page_size: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
    ) -> ListIterator[Entry] | ListIterator[str]: ...  # fmt: skip

    def iterate(
        self,
        prefix: str = "",
        *,
        start: str | None = None,
        end: str | None = None,
        reverse: bool = False,
        keys_only: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> ListIterator[Entry] | ListIterator[str]:
        """Every live entry ``list`` would return (with ``keys_only``, every key), in order, as one iterator.

        It pages through the listing by itself, ``page_size`` at a time (entry pages stop at 8 MiB of values
        too), holding one page in memory. Each page is read in its own snapshot; the cursor rules of ``list``
        hold between pages. Its ``cursor`` continues after the last item returned; ``cursor`` resumes one.
        """
        size = ListIterator.check_page_size(page_size)
        pager = Pager(prefix, start, end, size, cursor, reverse, None if keys_only is True else PAGE_BYTES)
        keys = check_flag("keys_only", keys_only)
        return ListIterator(self._shared.backend, self._name, pager, keys, self._shared.now_us, cursor)

    def count(self, prefix: str = "", *, start: str | None = None, end: str | None = None) -> int:
        """How many live entries ``list`` would return for this prefix and range."""
        _, low, high = key_range(prefix, start, end)
        return self._shared.backend.count(self._name, low, high, self._shared.now_us())

    def delete_prefix(self, prefix: str, *, batch_size: int | None = None) -> int:
        """Delete every entry whose key starts with ``prefix``; return how many live ones went.

        Runs in transactions of at most ``batch_size`` rows (default: the store's purge batch size), so
        readers and writers interleave; entries written under the prefix meanwhile may survive.
        """
        shared = self._shared
        size = shared.purge_batch_size if batch_size is None else batch_size
        if type(size) is not int or size < 1:
            raise InvalidOptionsError(f"batch_size must be a positive int, got {shown(batch_size)}")
        size = min(size, MAX_ROWS)
        _, low, high = key_range(prefix)
        deleted = 0
        while True:
            rows, live = delete_range_batch(shared.group, self._name, low, high, size, shared.now_us())
            deleted += live
            if live:
                shared.committed()
            if rows < size:
                return deleted

    def atomic(self) -> AtomicOperation:
        """A transaction builder over this namespace: checks, then set / delete / sum / min / max."""
        return AtomicOperation(self._shared, self._name)

    def watch(self, keys: Iterable[str], *, interval: timedelta | Seconds = 0.05) -> Watch:
        """Iterate over snapshots of ``keys`` (entries or None): now, then whenever one of them changes.

        Writes through this store wake the watcher at once; other processes' commits are noticed within
        ``interval`` (a timedelta, or a number of **seconds**), by one cheap probe per interval (SQLite's
        ``PRAGMA data_version``, PostgreSQL's counter row), not a query per key.
        """
        return Watch(self._shared, self._name, check_keys(keys), interval)

    # The mapping protocol, each one call of the store. ``get`` returns an Entry, so a namespace is no
    # MutableMapping itself: ``mapping()`` is the view that is one.
    def __getitem__(self, key: str) -> Any:
        """The value at ``key``; KeyError if no entry is live there."""
        entry = self.get(key)
        if entry is None:
            raise KeyError(key)
        return entry.value

    def __setitem__(self, key: str, value: Value) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        """Whether an entry is live at ``key``: a probe that reads no value (and refreshes none)."""
        shared = self._shared
        # [key, key + "-") holds ``key`` alone: no key character sorts below "-". With no value read, the probe
        # took 9 us where a get of a 1 MiB value took 483 us on SQLite (0.12 ms and 7.3 ms on PostgreSQL).
        return shared.backend.count(self._name, check_key(key), f"{key}-", shared.now_us()) > 0

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[str]:
        return self.iterate(keys_only=True)

    def __bool__(self) -> bool:
        return True  # a store is true, empty or not: ``if kv:`` must not count its entries (``__len__``)

    def mapping(self) -> KVMapping:
        """This namespace as a ``MutableMapping`` of keys to values, with dict semantics (``KVMapping``)."""
        return KVMapping(self)

    def _refresh(self, key: str, now_us: int) -> Found | None:
        """Read a refresh_on_access entry whole and push its expiry to now + its TTL; re-read if it changed
        meanwhile. None if it is no longer live.

        A read must not fail because its refresh cannot be written (a read-only database, the write lock
        held past the busy timeout): the entry is then returned with the expiry it has.
        """
        backend = self._shared.backend
        current = backend.get_whole(self._name, key, now_us)
        for _ in range(_REFRESH_ATTEMPTS):
            if current is None:
                return None
            value, version, metadata, kind, created_us, updated_us, _, refresh_ttl_us, crc = current
            if refresh_ttl_us is None:
                return found_of(current)
            if type(refresh_ttl_us) is not int or not 0 < refresh_ttl_us <= MAX_TTL_US:  # a row kvstore never wrote
                raise corrupt_whole(key, current)
            expires_us = now_us + refresh_ttl_us
            try:
                refreshed = backend.refresh(self._name, key, version, expires_us, now_us)
            except (ReadOnlyStoreError, StoreBusyError):
                return found_of(current)
            if refreshed:
                return value, version, metadata, kind, created_us, updated_us, expires_us, crc
            current = backend.get_whole(self._name, key, now_us)
        return None if current is None else found_of(current)
