"""The data API of one namespace.

``KVStore`` is the view of the default namespace; ``kv.namespace(name)`` returns views of others. Views
share the store's backend, clock and limits, and no operation ever crosses from one namespace to another.
Each method validates its input, then hands over to the write path (``_write``), the listing helpers
(``_listing``), the transaction builder (``_atomic``) or the watcher (``_watch``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

from ._atomic import AtomicOperation
from ._backends.base import UNCONDITIONAL, Backend, Found, Row
from ._codec import decode_value, default_content_type, encode_value, from_epoch_us, parse_versionstamp, stamp_bytes
from ._errors import ConfigurationError, InvalidOptionsError, ReadOnlyStoreError, StorageError, StoreBusyError
from ._listing import Pager, delete_range_batch, entries_of, entry_of, key_range, list_keys_page, list_page
from ._models import Entry, KeyPage, Page, SetResult, new_tuple
from ._mutations import Check, Delete, Put, is_plain, prepare_put
from ._validation import (
    MAX_ROWS,
    MAX_TTL_US,
    check_key,
    check_keys,
    check_namespace,
    check_set_options,
    check_versionstamp,
)
from ._watch import Watch
from ._write import commit

DEFAULT_NAMESPACE: Final = "default"
_REFRESH_ATTEMPTS: Final = 8
_REFRESH_TTL: Final = itemgetter(7)  # of a Found or Row
_KEY: Final = itemgetter(8)  # of a Row

# Now + the longest TTL must still be a datetime (year <= 9999).
_LATEST_NOW_US: Final = 253_402_300_799_000_000 - MAX_TTL_US


def _system_now_us() -> int:
    return time.time_ns() // 1000


class _Shared:
    """What every namespace view of one store shares: backend, clock, limits, and the commit signal."""

    __slots__ = (
        "auto_purge_every", "backend", "changed", "clock", "commits", "max_checks", "max_commit_size",
        "max_metadata_size", "max_mutations", "max_value_size", "now_us", "purge_batch_size", "watchers", "writes",
    )  # fmt: skip

    def __init__(
        self,
        backend: Backend,
        clock: Callable[[], float],
        max_value_size: int,
        max_metadata_size: int,
        max_checks: int,
        max_mutations: int,
        max_commit_size: int,
        purge_batch_size: int,
        auto_purge_every: int,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.max_value_size = max_value_size
        self.max_metadata_size = max_metadata_size
        self.max_checks = max_checks
        self.max_mutations = max_mutations
        self.max_commit_size = max_commit_size
        self.purge_batch_size = purge_batch_size
        self.auto_purge_every = auto_purge_every
        self.writes = 0
        # Watchers in this process wait on ``changed``; ``commits`` counts the writes they were told about.
        self.changed = threading.Condition()
        self.commits = 0
        self.watchers = 0
        # The system clock needs none of the checks a caller's clock gets, nor float rounding: read it in
        # integer nanoseconds. (Chosen once: the clock of a store never changes.)
        self.now_us: Callable[[], int] = _system_now_us if clock is time.time else self._checked_now_us

    def _checked_now_us(self) -> int:
        """Now from the caller's clock, checked to be an instant that kvstore can store."""
        now = self.clock()
        if type(now) is not float and type(now) is not int:
            raise ConfigurationError(f"the store's clock must return epoch seconds as a number, not {now!r}")
        try:
            now_us = round(now * 1_000_000)
        except (ValueError, OverflowError) as exc:  # nan, inf
            raise ConfigurationError(f"the store's clock returned {now!r}, which is no instant") from exc
        if not 0 <= now_us <= _LATEST_NOW_US:
            raise ConfigurationError(f"the store's clock says {now_us / 1e6} s: not an instant from 1970 to 9998")
        return now_us

    def committed(self) -> None:
        """After every committed write: wake this process's watchers, and now and then purge a batch."""
        if self.watchers:
            with self.changed:
                self.commits += 1
                self.changed.notify_all()
        self.writes += 1  # unlocked: an approximate count is all a purge schedule needs
        if self.auto_purge_every and self.writes % self.auto_purge_every == 0:
            # Best effort: the write has already committed, so a failing purge (the lock is busy, say) must
            # not turn its success into an error; the next round, or purge_expired, catches up.
            with contextlib.suppress(StorageError):
                self.backend.purge_batch(self.now_us(), self.purge_batch_size)


class Namespace:
    """The key-value API scoped to one namespace."""

    __slots__ = ("_name", "_shared")

    def __init__(self, shared: _Shared, name: str) -> None:
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
        value: object,
        *,
        if_versionstamp: str | None = None,
        if_not_exists: bool = False,
        overwrite: bool = True,
        expire_in: float | None = None,
        expire_at: datetime | None = None,
        refresh_on_access: bool = False,
        metadata: dict[str, Any] | None = None,
        content_type: str | None = None,
    ) -> SetResult:
        """Write ``value`` at ``key``, replacing the whole entry, and return its versionstamp.

        A failed ``if_versionstamp`` or ``if_not_exists`` condition is a result (``ok=False``), not an error.
        ``expire_in`` is in milliseconds (60,000 to 31,536,000,000); ``expire_at`` is an aware datetime.
        """
        shared = self._shared
        if is_plain(expire_in, expire_at, refresh_on_access, metadata, content_type):
            # No expiry, metadata or content type (the common sets, conditional or not): only the flags,
            # the key and the value need checking. (Errors come in the order of the general path.)
            if if_versionstamp is not None or if_not_exists is not False or overwrite is not True:
                check_set_options(
                    if_versionstamp=if_versionstamp,
                    if_not_exists=if_not_exists,
                    overwrite=overwrite,
                    expire_in=None,
                    expire_at=None,
                    refresh_on_access=False,
                )
            now_us = shared.now_us()
            check_key(key)
            data = encode_value(value, shared.max_value_size)
            kind = default_content_type(value)
            # Straight to the backend's one-statement write when it can: no mutation, commit or outcome
            # objects for the commonest writes of all. Anything it cannot settle goes the general way.
            if if_versionstamp is not None:
                expected: int | None = parse_versionstamp(if_versionstamp)
            else:
                expected = None if if_not_exists or not overwrite else UNCONDITIONAL
            done = shared.backend.try_put(self._name, key, data, kind, None, None, None, False, expected, now_us)
            if done is not None:
                shared.committed()
                stamp = stamp_bytes(done[0]).hex()  # format_versionstamp, inlined
                return new_tuple(SetResult, (True, True, stamp, not done[1], key, None, kind, len(data)))
            tried = True  # declined: the transaction below need not offer it again
            put = Put(self._name, key, data, kind, None, None, None, False, overwrite)
        else:
            tried = False
            check_set_options(
                if_versionstamp=if_versionstamp,
                if_not_exists=if_not_exists,
                overwrite=overwrite,
                expire_in=expire_in,
                expire_at=expire_at,
                refresh_on_access=refresh_on_access,
            )
            now_us = shared.now_us()
            put = prepare_put(
                self._name,
                key,
                value,
                now_us=now_us,
                max_value_size=shared.max_value_size,
                max_metadata_size=shared.max_metadata_size,
                expire_in=expire_in,
                expire_at=expire_at,
                refresh_on_access=refresh_on_access,
                metadata=metadata,
                content_type=content_type,
                overwrite=overwrite,
            )
        if if_versionstamp is not None:
            checks = [Check(self._name, key, if_versionstamp)]
        elif if_not_exists:
            checks = [Check(self._name, key, None)]
        else:
            checks = []
        outcome = commit(shared.backend, checks, [put], now_us, tried=tried)

        if not outcome.ok:
            ok, committed, versionstamp, created = False, False, outcome.failed[0][1], False
        elif not outcome.applied[0]:
            ok, committed, versionstamp, created = True, False, outcome.kept[0], False
        else:
            ok, committed, versionstamp, created = True, True, outcome.versionstamp, not outcome.found[0]
            shared.committed()
        expires_us = put.expires_us(now_us)
        return SetResult(
            ok,
            committed,
            versionstamp,
            created,
            key,
            None if expires_us is None else from_epoch_us(expires_us),
            put.content_type,
            len(put.value),
        )

    def get(self, key: str) -> Entry | None:
        """The live entry at ``key``, or None; reading an entry set with refresh_on_access extends it."""
        check_key(key)
        shared = self._shared
        now_us = shared.now_us()
        row = shared.backend.get(self._name, key, now_us)
        if row is None:
            return None
        if row[7] is None:
            return entry_of(key, row, decode_value(row[0]))
        refreshed = self._refresh(key, row, now_us)
        return None if refreshed is None else entry_of(key, refreshed, decode_value(refreshed[0]))

    def get_many(self, keys: Iterable[str]) -> list[Entry | None]:
        """The live entry (or None) for each of ``keys``, in order, read in one snapshot."""
        wanted = check_keys(keys)
        shared = self._shared
        now_us = shared.now_us()
        rows = shared.backend.get_many(self._name, wanted, now_us)
        if any(map(_REFRESH_TTL, rows)):  # a refresh TTL is never 0: at least the shortest TTL
            kept: list[Row] = []
            for row in rows:
                fresh = row if row[7] is None else self._refresh(row[8], row, now_us)
                if fresh is not None:
                    kept.append((*fresh[:8], row[8]))  # a re-read row (a Found) does not hold its key
            rows = kept
        found = dict(zip(map(_KEY, rows), entries_of(rows), strict=True))
        return list(map(found.get, wanted))

    def delete(self, key: str, *, if_versionstamp: str | None = None) -> bool:
        """Delete the live entry at ``key``; True if one was deleted (and its versionstamp matched)."""
        check_key(key)
        checks = []
        if if_versionstamp is not None:
            checks.append(Check(self._name, key, check_versionstamp(if_versionstamp)))
        shared = self._shared
        outcome = commit(shared.backend, checks, [Delete(self._name, key)], shared.now_us())
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
    ) -> Page:
        """Live entries whose key starts with ``prefix`` and lies in ``[start, end)``, in key order.

        At most ``limit`` of them; the page's ``cursor`` continues the listing, or is None when nothing is
        left. The prefix matches literally: '_' and '%' are ordinary characters.
        """
        pager = Pager(prefix, start, end, limit, cursor, reverse)
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
            raise InvalidOptionsError(f"batch_size must be a positive int, got {batch_size!r}")
        size = min(size, MAX_ROWS)
        _, low, high = key_range(prefix)
        deleted = 0
        while True:
            rows, live = delete_range_batch(shared.backend, self._name, low, high, size, shared.now_us())
            deleted += live
            if live:
                shared.committed()
            if rows < size:
                return deleted

    def atomic(self) -> AtomicOperation:
        """A transaction builder over this namespace: checks, then set / delete / sum / min / max."""
        return AtomicOperation(self._shared, self._name)

    def watch(self, keys: Iterable[str], *, interval: float = 0.05) -> Watch:
        """Iterate over snapshots of ``keys`` (entries or None): now, then whenever one of them changes.

        Writes through this store wake the watcher at once; other processes' commits are noticed within
        ``interval`` seconds, by one cheap probe per interval (SQLite's ``PRAGMA data_version``, PostgreSQL's
        counter row), not a query per key.
        """
        return Watch(self._shared, self._name, check_keys(keys), interval)

    def _refresh(self, key: str, row: Found | Row, now_us: int) -> Found | Row | None:
        """Push a refresh_on_access entry's expiry to now + its TTL; re-read if it changed meanwhile.

        A read must not fail because its refresh cannot be written (a read-only database, the write lock
        held past the busy timeout): the entry is then returned with the expiry it has.
        """
        backend = self._shared.backend
        current: Found | Row | None = row
        for _ in range(_REFRESH_ATTEMPTS):
            if current is None or current[7] is None:
                return current
            expires_us = now_us + current[7]
            try:
                refreshed = backend.refresh(self._name, key, current[1], expires_us, now_us)
            except (ReadOnlyStoreError, StoreBusyError):
                return current
            if refreshed:
                return (*current[:6], expires_us, *current[7:])
            current = backend.get(self._name, key, now_us)
        return current
