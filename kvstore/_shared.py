"""What every namespace view of one store shares: the backend, its group commit, the clock, the limits, and
the signal that a write committed (for watchers in this process, and the purge schedule)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from ._backends.base import Backend
from ._errors import ConfigurationError, StorageError
from ._group import GroupCommit
from ._shown import shown
from ._validation import MAX_TTL_US


def _system_now_us() -> int:
    return time.time_ns() // 1000


# Now + the longest TTL must still be a datetime (year <= 9999).
_LATEST_NOW_US: Final = 253_402_300_799_000_000 - MAX_TTL_US


class Shared:
    """What every namespace view of one store shares: backend, group commit, clock, limits, the commit signal."""

    __slots__ = (
        "auto_purge_every", "backend", "changed", "clock", "commits", "group", "listeners", "max_checks",
        "max_commit_size", "max_metadata_size", "max_mutations", "max_value_size", "now_us", "purge_batch_size",
        "watchers", "writes",
    )  # fmt: skip

    def __init__(
        self,
        backend: Backend,
        *,
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
        self.group = GroupCommit(backend, self._block_committed)  # every write goes through it (``_write``)
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
        self.watchers = 0  # watches and queue waiters: a commit notifies ``changed`` only if there are some
        self.listeners: set[Any] = set()  # open QueueListeners (``_queue_listener``), closed with the store
        # The system clock needs none of the checks a caller's clock gets, nor float rounding: read it in
        # integer nanoseconds. (Chosen once: the clock of a store never changes.)
        self.now_us: Callable[[], int] = _system_now_us if clock is time.time else self._checked_now_us

    def _checked_now_us(self) -> int:
        """Now from the caller's clock, checked to be an instant that kvstore can store."""
        now = self.clock()
        if type(now) is not float and type(now) is not int:
            raise ConfigurationError(f"the store's clock must return epoch seconds as a number, not {shown(now)}")
        try:
            now_us = round(now * 1_000_000)
        except (ValueError, OverflowError) as exc:  # nan, inf
            raise ConfigurationError(f"the store's clock returned {shown(now)}, which is no instant") from exc
        if not 0 <= now_us <= _LATEST_NOW_US:
            raise ConfigurationError(f"the store's clock says {shown(now)} s: not an instant from 1970 to 9998")
        return now_us

    def committed(self, purge: Callable[[], object] | None = None) -> None:
        """After every committed write: wake this process's watchers, and now and then purge a batch (or call
        ``purge`` instead, which a write on the event loop passes to have a thread purge).

        A write inside this thread's ``write_batch`` block has not committed yet: it is counted, and the block
        signals for all of them at once when it commits (``_block_committed``).
        """
        block = self.group.block
        if block is not None and block.thread == threading.get_ident():
            block.writes += 1
            return
        if self.watchers:
            with self.changed:
                self.commits += 1
                self.changed.notify_all()
        self.writes += 1  # unlocked: an approximate count is all a purge schedule needs
        if self.auto_purge_every and self.writes % self.auto_purge_every == 0:
            (self._purge if purge is None else purge)()

    def _block_committed(self, writes: int) -> None:
        """A ``write_batch`` block committed ``writes`` writes: one signal for them all."""
        if self.watchers:
            with self.changed:
                self.commits += 1
                self.changed.notify_all()
        before = self.writes
        self.writes += writes
        if self.auto_purge_every and self.writes // self.auto_purge_every != before // self.auto_purge_every:
            self._purge()

    def _purge(self) -> None:
        # Best effort: the write has already committed, so a failing purge (the lock is busy, say) must not
        # turn its success into an error; the next round, or purge_expired, catches up.
        with contextlib.suppress(StorageError):
            self.backend.purge_batch(self.now_us(), self.purge_batch_size)
