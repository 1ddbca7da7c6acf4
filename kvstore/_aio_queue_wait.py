"""What an ``AsyncKVStore.receive`` that found nothing waits on: a wake-up on the event loop, and a look taken
on a read thread that never waits.

``Signal`` wakes the store's waiting receivers at once when a message is enqueued (or retried) through the
same ``AsyncKVStore``. ``Look`` tells, without waiting and as cheaply as a watch's poll, whether a claim may
now succeed: a commit through the same store object (its commit counter), a commit by any other connection
or process (the backend's change probe), or the store's clock passing the earliest due time it read (a
delay, a retry's backoff, a lease running out). The due time is read once after each change, not per look.
"""

from __future__ import annotations

import asyncio
import weakref

from ._aio_worker import Core
from ._backends.base import ChangeProbe
from ._shared import Shared


class Signal:
    """The wake-up of one ``AsyncKVStore``'s waiting receivers: each waits on a future of its own loop."""

    __slots__ = ("__weakref__", "_waiters")

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    async def wait(self, seconds: float) -> None:
        """Until ``wake`` or ``seconds`` pass, whichever is first."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        try:
            await asyncio.wait_for(future, seconds)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(future)

    def wake(self) -> None:
        """On a loop: wake every waiter (each looks; those that find nothing wait again)."""
        for future in list(self._waiters):
            if not future.done():
                future.get_loop().call_soon_threadsafe(_settle, future)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_SIGNALS: weakref.WeakKeyDictionary[Core, Signal] = weakref.WeakKeyDictionary()


def signal_of(core: Core) -> Signal:
    """The wake-up of the store that ``core`` serves, made on first use."""
    found = _SIGNALS.get(core)
    if found is None:
        found = _SIGNALS[core] = Signal()
    return found


class Look:
    """On a read thread: whether a claim on one queue may succeed now. Registered with the store like a
    watcher (so its commits count), holding one change probe; ``close`` releases both."""

    __slots__ = ("_closed", "_due", "_known", "_namespace", "_probe", "_queue", "_seen", "_shared", "_token")

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
        self._known = False  # whether ``_due`` was read since the last change

    def may_claim(self) -> bool:
        """True if something changed since the last look, or a message is due by now (a claim follows)."""
        shared = self._shared
        with shared.changed:
            notified, self._seen = shared.commits != self._seen, shared.commits
        token = self._probe()
        if notified or token != self._token:
            self._token = token
            self._known = False  # read again after the claim that follows, if it finds nothing
            return True
        if not self._known:
            self._due = shared.backend.queue.next_due(self._namespace, self._queue)
            self._known = True
        if self._due is not None and self._due <= shared.now_us():
            self._known = False
            return True
        return False

    def close(self) -> None:
        shared = self._shared
        with shared.changed:
            if self._closed:
                return
            self._closed = True
            shared.watchers -= 1
        self._probe.close()
