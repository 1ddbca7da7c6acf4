"""``AsyncKVStore.listen_queue``: workers on the event loop handing messages to an async handler, and the
thread that renews their leases off the loop.

Each of ``concurrency`` worker tasks receives a message (waiting on the loop, see ``_aio_queue``), awaits the
handler with its value, then acknowledges it, or asks for a retry if the handler raised. A handler's exception
never ends the listener; a store that closes does (the call returns), and so does cancelling it (the
messages its handlers held are handed back at once). While a handler runs, its lease is renewed by a thread,
every third of the lease, so a handler that keeps the loop busy does not lose its message to another
consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from ._aio_queue import HAND_BACK, AsyncMessage, QueueMethods
from ._codec import Value
from ._errors import KVError, LeaseLostError, StoreClosedError
from ._queue import check_lease, check_queue
from ._queue_listener import check_concurrency
from ._validation import Seconds

if TYPE_CHECKING:
    from ._queue_message import Message

log = logging.getLogger("kvstore.queue")

_RECEIVE_WAIT: Final = 3600.0  # seconds a worker's receive waits before it starts the next wait
_ERROR_PAUSE: Final = 0.5  # seconds a worker waits after a storage error (a busy database) before it goes on


class Renewer:
    """A thread that renews the leases of the messages being handled, every third of ``lease_s``."""

    def __init__(self, lease: timedelta | Seconds, lease_s: float) -> None:
        self._lease = lease
        self._period = max(lease_s / 3, 0.001)
        self._held: set[Message] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, message: Message) -> None:
        with self._lock:
            self._held.add(message)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kvstore-async-queue-renew", daemon=True)
                self._thread.start()

    def discard(self, message: Message) -> None:
        with self._lock:
            self._held.discard(message)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            with self._lock:
                held = list(self._held)
            for message in held:
                try:
                    message.renew(self._lease)
                except LeaseLostError:  # another consumer holds it now; the handler's ack will say so
                    self.discard(message)
                except StoreClosedError:
                    return
                except KVError:  # a busy database: the next period tries again, well within the lease
                    log.warning("could not renew the lease of message %s", message.id, exc_info=True)

    def close(self) -> None:
        """Stop renewing. Not joined: this runs on the loop, and a renewal in progress may wait for the write
        lock; the thread ends after it, with nothing left to renew."""
        self._stop.set()
        with self._lock:
            self._held.clear()


async def listen(
    view: QueueMethods,
    handler: Callable[[Value], Awaitable[object]],
    *,
    queue: str,
    concurrency: int,
    lease: timedelta | Seconds,
) -> None:
    """The body of ``listen_queue``: returns when the store closes; raises CancelledError when cancelled."""
    check_queue(queue)
    workers = check_concurrency(concurrency)
    renewer = Renewer(lease, check_lease(lease) / 1e6)

    async def work() -> None:
        while True:
            try:
                message = await view.receive(queue=queue, timeout=_RECEIVE_WAIT, lease=lease)
            except StoreClosedError:
                raise
            except KVError:
                log.warning("receiving from queue %r failed; trying again", queue, exc_info=True)
                await asyncio.sleep(_ERROR_PAUSE)
                continue
            if message is not None:
                await _handle(view, message, handler, renewer)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(work())
    except* StoreClosedError:
        pass  # the store closed: the listener ends
    finally:
        renewer.close()


async def _handle(
    view: QueueMethods, message: AsyncMessage, handler: Callable[[Value], Awaitable[object]], renewer: Renewer
) -> None:
    sync = message.message
    renewer.add(sync)
    try:
        returned = handler(message.value)
        if inspect.isawaitable(returned):
            await returned
    except asyncio.CancelledError:
        renewer.discard(sync)
        with contextlib.suppress(KVError):
            view._core.write(lambda _store: sync.renew(HAND_BACK))  # due again at once; the listener is going away
        raise
    except Exception:
        renewer.discard(sync)
        log.warning("the handler of queue %r raised on message %s; it will be retried", message.queue, message.id,
                    exc_info=True)  # fmt: skip
        failed = True
    else:
        renewer.discard(sync)
        failed = False
    try:
        await (message.retry() if failed else message.ack())
    except LeaseLostError:  # its lease ran out and another consumer took it: that one acts on it now
        log.warning("the lease of message %s was lost before it was acknowledged", message.id)
    except StoreClosedError:
        raise
    except KVError:  # the lease will run out and the message will be delivered again: at least once
        log.warning("acknowledging message %s failed", message.id, exc_info=True)
