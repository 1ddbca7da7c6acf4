"""watch(): snapshots of some keys, now and whenever one of them changes, from any process.

How a change is noticed, cheaply:
- a write through the same store object notifies a condition variable: the watcher wakes at once;
- a commit by any other connection, in this process or another, changes the backend's change probe
  (SQLite: ``PRAGMA data_version`` on the watcher's own connection; PostgreSQL: the counter row): one
  probe per ``interval`` per watcher, never a query per key;
- an entry whose expiry passes is gone, with no commit to announce it: the watcher compares the earliest
  expiry it holds with the store's clock at each interval.
Only then are the keys read, in one snapshot, and a snapshot is yielded only if a versionstamp (or an
entry's presence) differs from the last one yielded.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Self

from ._backends.base import Found
from ._entries import entries_of, found_of, unfolded
from ._errors import StoreClosedError
from ._models import Entry
from ._shared import Shared
from ._validation import check_interval


class Watch(Iterator[list[Entry | None]]):
    """An iterator of snapshots (one ``Entry`` or None per watched key, in order).

    The first snapshot comes at once; each later one when a watched key's versionstamp changes, it is
    deleted, or it expires. Close it (or use ``with``) to release its connection; closing the store ends it.
    """

    def __init__(self, shared: Shared, namespace: str, keys: list[str], interval: object) -> None:
        self._interval = check_interval(interval)
        self._shared = shared
        self._namespace = namespace
        self._keys = keys
        self._probe = shared.backend.change_probe()
        self._closed = False
        self._stamps: tuple[int | None, ...] | None = None
        self._expiry: int | None = None
        with shared.changed:
            shared.watchers += 1
            self._seen = shared.commits
        self._token = self._probe()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> list[Entry | None]:
        while not self._closed:
            try:
                snapshot = self.poll()
            except StoreClosedError:
                break
            if snapshot is not None:
                return snapshot
            shared = self._shared
            with shared.changed:
                if shared.commits == self._seen and not self._closed:
                    shared.changed.wait(self._interval)
        self.close()
        raise StopIteration

    def poll(self) -> list[Entry | None] | None:
        """Check once, without waiting: the first snapshot, a new one if a watched key changed, else None.

        For callers that wait their own way (an event loop); raises StoreClosedError once closed.
        """
        if self._closed:
            raise StoreClosedError("the watch is closed")
        shared = self._shared
        with shared.changed:
            notified, self._seen = shared.commits != self._seen, shared.commits
        token = self._probe()
        now_us = shared.now_us()
        expired = self._expiry is not None and self._expiry <= now_us
        if self._stamps is not None and token == self._token and not notified and not expired:
            return None
        self._token = token
        return self._read(now_us)

    def _read(self, now_us: int) -> list[Entry | None] | None:
        """The watched entries, if they differ from the last snapshot yielded."""
        found = self._shared.backend.get_many(self._namespace, self._keys, now_us)
        found = unfolded(found, lambda key: self._whole(key, now_us))
        versions: dict[str, int] = {}
        expiries: list[int] = []
        for _, version, _, _, _, _, expires_us, _, key in found:
            versions[key] = version
            if expires_us is not None:
                expiries.append(expires_us)
        stamps = tuple(map(versions.get, self._keys))
        self._expiry = min(expiries) if expiries else None
        if stamps == self._stamps:
            return None
        self._stamps = stamps
        entries = {entry.key: entry for entry in entries_of(found)}
        return [entries.get(key) for key in self._keys]

    def _whole(self, key: str, now_us: int) -> Found | None:
        """An entry refreshed on access read again whole, for its checksum (a watch refreshes nothing): such
        entries are read after the others, not in their snapshot."""
        whole = self._shared.backend.get_whole(self._namespace, key, now_us)
        return None if whole is None else found_of(whole)

    def close(self) -> None:
        """Stop watching and release the watcher's connection; a waiting iteration ends."""
        shared = self._shared
        with shared.changed:
            if self._closed:
                return
            self._closed = True
            shared.watchers -= 1
            shared.changed.notify_all()
        self._probe.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
