"""Waiting for a queue to have a message due, as cheaply as a watch waits (see ``_watch``).

A consumer with nothing to take waits until one of these says a claim may now succeed: a commit through
the same store object (the store's condition: at once), the backend's change probe (another connection
committed: checked once per ``INTERVAL``), or the store's clock passing the earliest due time it read (a
delayed message, a retry's backoff, a lease running out). After a commit or a change of the probe it reads
the earliest due time again, and returns only if a message is due. No claim, and no query but the probe,
is made while nothing happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from ._backends.base import ChangeProbe
from ._shared import Shared

INTERVAL: Final = 0.05
"""Seconds between two probes: a watch's default interval."""


class QueueWaiter:
    """Waits on one queue for the signs that a claim may succeed; ``mark`` before each claim, ``wait`` after
    a claim found nothing. Registered with the store like a watcher, so commits notify it."""

    __slots__ = ("_closed", "_due", "_namespace", "_probe", "_queue", "_seen", "_shared", "_token")

    def __init__(self, shared: Shared, namespace: str, queue: str) -> None:
        self._shared = shared
        self._namespace = namespace
        self._queue = queue
        self._probe: ChangeProbe = shared.backend.change_probe()
        self._closed = False
        with shared.changed:
            shared.watchers += 1
            self._seen = shared.commits
        self._token = self._probe()
        self._due: int | None = None

    def mark(self) -> None:
        """Note what has been seen so far: a claim follows, and any commit after this wakes ``wait``."""
        shared = self._shared
        with shared.changed:
            self._seen = shared.commits
        self._token = self._probe()
        self._due = None

    def wait(self, timeout: float | None, stop: Callable[[], bool] | None = None) -> None:
        """Return when a claim may succeed, after ``timeout`` seconds (None: no bound), or once ``stop()``
        is true. The earliest due time is read at the start and again after each sign of a change: a commit
        that enqueued nothing here (a set, another queue's message) costs a read, never a claim."""
        shared = self._shared
        deadline = None if timeout is None else time.monotonic() + timeout
        self._due = self._next_due()
        while True:
            if self._due is not None and self._due <= shared.now_us():
                return
            with shared.changed:
                if stop is not None and stop():
                    return
                changed = shared.commits != self._seen
                if not changed:
                    left = INTERVAL if deadline is None else min(INTERVAL, deadline - time.monotonic())
                    if left <= 0:
                        return
                    shared.changed.wait(left)
                    if stop is not None and stop():
                        return
                    changed = shared.commits != self._seen
                self._seen = shared.commits
            if changed:  # a commit of this process: the probe is asked again by the next ``mark``
                self._due = self._next_due()
            else:
                token = self._probe()
                if token != self._token:
                    self._token = token
                    self._due = self._next_due()
            if deadline is not None and time.monotonic() >= deadline:
                return

    def _next_due(self) -> int | None:
        return self._shared.backend.queue.next_due(self._namespace, self._queue)

    def close(self) -> None:
        """Stop being notified and release the probe's connection."""
        shared = self._shared
        with shared.changed:
            if self._closed:
                return
            self._closed = True
            shared.watchers -= 1
        self._probe.close()
