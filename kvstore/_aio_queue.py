"""The queue API of ``AsyncKVStore``: enqueue, the pull model (``receive`` and ``AsyncMessage``), inspection, and
``listen_queue`` (``_aio_queue_listen``), as coroutines over the sync queue API.

Enqueues, claims, acknowledgements, retries and renewals are writes: they run on the write thread, with the
other writes (a claim's lease is committed before the message is handed over). Waiting never holds a thread:
a ``receive`` that found nothing waits on the event loop, woken at once by an enqueue through the same
``AsyncKVStore`` and, for anything else (another process, a delay running out, a lease expiring), taking a
look every ``WAIT_INTERVAL`` seconds on a read thread, as cheap as a watch's (``_aio_queue_wait``), before
it tries a claim again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from ._aio_queue_wait import Look, signal_of
from ._aio_worker import Core
from ._codec import Value
from ._errors import KVError
from ._queue import check_lease, check_queue
from ._queue_message import Message, wait_seconds
from ._queue_models import EnqueueResult, QueuedMessage, QueueInfo
from ._validation import Milliseconds, Seconds

if TYPE_CHECKING:
    from ._atomic import AtomicOperation
    from ._namespace import Namespace
    from ._store import KVStore

R = TypeVar("R")

WAIT_INTERVAL: Final = 0.05
"""Seconds between two looks of a waiting ``receive``: a watch's default interval."""
DEFAULT_LEASE: Final = timedelta(seconds=30)
HAND_BACK: Final = timedelta(microseconds=1)
"""The lease a message is renewed to when its receiver was cancelled: it is due again at once."""


class AsyncMessage:
    """A message received by ``AsyncKVStore.receive``: ``Message``'s fields, and its actions as coroutines.

    Acting on it after its lease ran out and another consumer took it raises ``LeaseLostError`` and changes
    nothing.
    """

    __slots__ = ("_core", "_message")

    def __init__(self, core: Core, message: Message) -> None:
        self._core = core
        self._message = message

    @property
    def id(self) -> str:
        """The message's id (a ULID)."""
        return self._message.id

    @property
    def value(self) -> Value:
        """The value enqueued."""
        value: Value = self._message.value
        return value

    @property
    def attempt(self) -> int:
        """Which delivery this is: 1 the first time."""
        return self._message.attempt

    @property
    def queue(self) -> str:
        """The queue it came from."""
        return self._message.queue

    @property
    def enqueued_at(self) -> datetime:
        """When it was enqueued (UTC)."""
        return self._message.enqueued_at

    @property
    def content_type(self) -> str:
        """The value's content type."""
        return self._message.content_type

    async def _act(self, action: Callable[[], R]) -> R:
        result: R = await self._core.write(lambda _store: action())
        return result

    async def ack(self) -> None:
        """Acknowledge it: it is deleted, never delivered again."""
        await self._act(self._message.ack)

    async def retry(self, delay: timedelta | Milliseconds | None = None) -> None:
        """Hand it back for a later delivery: after ``delay``, or the next interval of its backoff schedule;
        past the schedule's last it becomes a dead letter (its value set at its keys_if_undelivered)."""
        message = self._message
        await self._act(lambda: message.retry(delay))
        signal_of(self._core).wake()  # a retry due at once is ready now: a waiting receiver may take it

    async def renew(self, lease: timedelta | Seconds | None = None) -> None:
        """Extend its lease from now (by the lease it was received with, or ``lease``)."""
        message = self._message
        await self._act(lambda: message.renew(lease))

    @property
    def message(self) -> Message:
        """The sync ``Message`` behind it (its actions block: call them off the loop)."""
        return self._message

    def __repr__(self) -> str:
        return f"AsyncMessage(id={self.id!r}, queue={self.queue!r}, attempt={self.attempt})"


class QueueMethods:
    """The queue coroutines of ``AsyncNamespace`` (mixed into it): each runs one call of ``Namespace``'s queue API
    on the store's threads."""

    __slots__ = ()

    _core: Core
    _resolve: Callable[[KVStore], Namespace]
    _name: str

    async def _queue_write(self, call: Callable[[Namespace], R]) -> R:
        resolve = self._resolve
        result: R = await self._core.write(lambda store: call(resolve(store)))
        return result

    async def _queue_read(self, call: Callable[[Namespace], R]) -> R:
        resolve = self._resolve
        result: R = await self._core.read(lambda store: call(resolve(store)))
        return result

    async def enqueue(
        self,
        value: Value,
        *,
        delay: timedelta | Milliseconds | None = None,
        keys_if_undelivered: Iterable[str] = (),
        backoff_schedule: Iterable[timedelta | Milliseconds] | None = None,
        queue: str = "default",
        content_type: str | None = None,
    ) -> EnqueueResult:
        """As ``KVStore.enqueue``: the message is committed when the await returns."""
        result = await self._queue_write(
            lambda target: target.enqueue(
                value,
                delay=delay,
                keys_if_undelivered=keys_if_undelivered,
                backoff_schedule=backoff_schedule,
                queue=queue,
                content_type=content_type,
            )
        )
        signal_of(self._core).wake()
        return result

    async def receive(
        self,
        *,
        queue: str = "default",
        timeout: timedelta | Seconds | None = None,
        lease: timedelta | Seconds = DEFAULT_LEASE,
    ) -> AsyncMessage | None:
        """As ``KVStore.receive``: the next due message of ``queue``, leased to the caller for ``lease``, or None
        once ``timeout`` (seconds or a timedelta; None or 0: do not wait) passed. Waits on the loop, holding
        no thread: woken by an enqueue through this store, else looking every 0.05 s (see ``_aio_queue_wait``)."""
        name = check_queue(queue)
        check_lease(lease)
        seconds = wait_seconds(timeout)
        core = self._core
        message = await self._claim(name, lease)
        if message is not None or seconds == 0:
            return None if message is None else AsyncMessage(core, message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        namespace = self._name
        look: Look = await self._queue_read(lambda target: Look(target._shared, namespace, name))
        signal = signal_of(core)
        try:
            message = await self._claim(name, lease)  # something may have come while the look was made
            while message is None:
                left = deadline - loop.time()
                if left <= 0:
                    return None
                await signal.wait(min(left, WAIT_INTERVAL))
                if await self._queue_read(lambda _target: look.may_claim()):
                    message = await self._claim(name, lease)
        finally:
            with contextlib.suppress(KVError):  # a closed store released the look's connection already
                core.read(lambda _store: look.close())
        return AsyncMessage(core, message)

    async def _claim(self, queue: str, lease: timedelta | Seconds) -> Message | None:
        """One claim on the write thread. If the caller stops waiting (it was cancelled) after the claim ran,
        the message it took is handed back at once (its lease cut to nothing), so it waits for no lease."""
        resolve = self._resolve
        future = self._core.write(lambda store: resolve(store).receive(queue=queue, timeout=None, lease=lease))
        try:
            message: Message | None = await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._hand_back)
            raise
        return message

    def _hand_back(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        message: Message | None = future.result()
        if message is not None:
            with contextlib.suppress(KVError):
                self._core.write(lambda _store: message.renew(HAND_BACK))

    async def queue_info(self, queue: str = "default") -> QueueInfo:
        """As ``KVStore.queue_info``."""
        return await self._queue_read(lambda target: target.queue_info(queue))

    async def peek_queue(self, queue: str = "default", *, limit: int = 10) -> list[QueuedMessage]:
        """As ``KVStore.peek_queue``: the next ready messages in delivery order, not taken."""
        return await self._queue_read(lambda target: target.peek_queue(queue, limit=limit))

    async def clear_dead_letters(self, queue: str = "default") -> int:
        """As ``KVStore.clear_dead_letters``."""
        return await self._queue_write(lambda target: target.clear_dead_letters(queue))

    async def listen_queue(
        self,
        handler: Callable[[Value], Awaitable[object]],
        *,
        queue: str = "default",
        concurrency: int = 1,
        lease: timedelta | Seconds = DEFAULT_LEASE,
    ) -> None:
        """Deliver ``queue``'s messages to ``handler`` (a coroutine function) until cancelled or the store closes.

        ``concurrency`` handlers run at once, as tasks on this loop; returning acknowledges, raising retries
        per the message's backoff schedule (the listener goes on). Leases are renewed off the loop while a
        handler runs, so a handler that blocks the loop does not lose its message.
        """
        from ._aio_queue_listen import listen

        await listen(self, handler, queue=queue, concurrency=concurrency, lease=lease)


class AtomicEnqueue:
    """``enqueue`` of ``AsyncAtomicOperation`` (mixed into it): recorded, replayed on the write thread at commit."""

    __slots__ = ()

    _calls: list[Callable[[AtomicOperation], object]]

    def enqueue(
        self,
        value: Value,
        *,
        delay: timedelta | Milliseconds | None = None,
        keys_if_undelivered: Iterable[str] = (),
        backoff_schedule: Iterable[timedelta | Milliseconds] | None = None,
        queue: str = "default",
        content_type: str | None = None,
    ) -> Self:
        """As ``AtomicOperation.enqueue``: the message exists if and only if the commit succeeds."""
        self._calls.append(
            lambda op: op.enqueue(
                value,
                delay=delay,
                keys_if_undelivered=keys_if_undelivered,
                backoff_schedule=backoff_schedule,
                queue=queue,
                content_type=content_type,
            )
        )
        return self
