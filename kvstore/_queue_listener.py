"""QueueListener: background threads that take a queue's messages and hand each to a handler.

Each of ``concurrency`` threads claims a message, calls ``handler(value)``, and acknowledges it when the
handler returns or retries it (per its backoff schedule) when the handler raises; a value that cannot be
decoded is dead-lettered at once. While handlers run, one renewal thread holds their leases: every third
of a lease (by the store's clock) it renews each, so a slow handler is not delivered twice. Idle threads
wait as a watch does (``_queue_wait``). Nothing a handler or the database raises ends a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from . import _queue_ops as ops
from ._errors import InvalidOptionsError, KVError, LeaseLostError, StoreClosedError
from ._queue_message import decoded
from ._queue_wait import INTERVAL, QueueWaiter
from ._shared import Shared

if TYPE_CHECKING:
    from logging import Logger

MAX_CONCURRENCY: Final = 256


def _log() -> Logger:
    """The ``kvstore.queue`` logger, with ``logging`` imported only when a listener has something to say."""
    # logging (and what it imports) cost 30.9 million instructions (callgrind, ``import datetime, json,
    # logging`` minus ``import datetime, json``), 3.7 ms under -X importtime, of every ``import kvstore``,
    # though only a listener that meets a failure ever logs.
    import logging

    return logging.getLogger("kvstore.queue")


def check_concurrency(concurrency: object) -> int:
    """How many handlers may run at once: an int from 1 to MAX_CONCURRENCY."""
    if type(concurrency) is not int or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidOptionsError(f"concurrency must be an int from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    return concurrency


class QueueListener:
    """Delivers a queue's messages to a handler on background threads until closed (``with`` closes it too;
    so does closing the store). Delivery is at least once: make the handler idempotent."""

    def __init__(
        self,
        shared: Shared,
        namespace: str,
        handler: Callable[[Any], object],
        queue: str,
        concurrency: int,
        lease_us: int,
    ) -> None:
        if not callable(handler):
            raise InvalidOptionsError(f"handler must be callable, got {handler!r}")
        if shared.backend.closed:
            raise StoreClosedError("the store is closed")
        self._shared = shared
        self._namespace = namespace
        self._handler = handler
        self._queue = queue
        self._lease_us = lease_us
        self._closed = False
        self._lock = threading.Lock()
        self._running: dict[int, tuple[ops.Lease, int]] = {}  # thread id -> (lease, when last renewed, store us)
        self._renewals = 0  # leases renewed so far (tests read it)
        self._stop = threading.Event()  # set by close: take no more messages
        self._done = threading.Event()  # set once every consumer thread has ended: stop renewing
        self._threads = [
            threading.Thread(target=self._consume, name=f"kvstore-queue-{queue}-{i}", daemon=True)
            for i in range(concurrency)
        ]
        self._threads.append(threading.Thread(target=self._renew, name=f"kvstore-queue-{queue}-renew", daemon=True))
        shared.listeners.add(self)
        for thread in self._threads:
            thread.start()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (or the store closed)."""
        return self._closed

    def close(self, timeout: float | None = None) -> None:
        """Stop taking messages and wait (up to ``timeout`` seconds; None: as long as it takes) for running
        handlers to finish; their messages are acknowledged or retried as usual."""
        self._closed = True
        self._stop.set()
        shared = self._shared
        with shared.changed:
            shared.changed.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.current_thread()
        *consumers, renewer = self._threads
        for thread in consumers:
            if thread is not me:  # a handler may close its own listener
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if not any(thread.is_alive() for thread in consumers):
            self._done.set()
            renewer.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        shared.listeners.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the threads -------------------------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self._closed or self._shared.backend.closed

    def _consume(self) -> None:
        shared = self._shared
        try:
            waiter = QueueWaiter(shared, self._namespace, self._queue)
        except KVError:
            return  # the store closed before this thread began
        try:
            while not self._stopped():
                try:
                    waiter.mark()
                    lease = ops.claim(shared, self._namespace, self._queue, self._lease_us)
                    if lease is None:
                        waiter.wait(None, self._stopped)
                        continue
                    self._deliver(lease)
                except StoreClosedError:
                    break
                except KVError:
                    _log().warning("queue %r: the store failed; trying again", self._queue, exc_info=True)
                    self._stop.wait(INTERVAL)  # a failing database is not asked again at once
        finally:
            waiter.close()

    def _deliver(self, lease: ops.Lease) -> None:
        shared = self._shared
        ok, value = decoded(shared, lease)
        if not ok:
            _log().warning("queue %r: message %s cannot be decoded: dead-lettered", self._queue, lease.message_id)
            return
        me = threading.get_ident()
        with self._lock:
            self._running[me] = (lease, shared.now_us())
        try:
            try:
                self._handler(value)
            except Exception:
                _log().info("queue %r: the handler raised for message %s", self._queue, lease.message_id, exc_info=True)
                failed = True
            else:
                failed = False
        finally:
            with self._lock:
                del self._running[me]
        try:
            if failed:
                ops.retry(shared, lease, None)
            else:
                ops.ack(shared, lease)
        except LeaseLostError:
            _log().warning("queue %r: the lease of message %s was lost", self._queue, lease.message_id)

    def _renew(self) -> None:
        shared = self._shared
        every_us = self._lease_us // 3
        # Checked at least a few times per third of a lease, in real time, and at least once per INTERVAL:
        # the store's clock (a test's FakeClock) may run apart from real time.
        tick = min(INTERVAL, every_us / 3_000_000)
        consumers = self._threads[:-1]
        while not self._done.wait(tick):
            if self._stop.is_set() and not any(thread.is_alive() for thread in consumers):
                return  # closed from a handler, whose thread has ended since
            try:
                now_us = shared.now_us()
                with self._lock:
                    due = [(me, lease) for me, (lease, at) in self._running.items() if now_us - at >= every_us]
                for me, lease in due:
                    try:
                        ops.renew(shared, lease, self._lease_us)
                    except LeaseLostError:
                        with self._lock:
                            running = me in self._running and self._running[me][0] is lease
                        if running:  # else the handler ended and its message was acknowledged meanwhile
                            _log().warning("queue %r: the lease of message %s was lost", self._queue, lease.message_id)
                    with self._lock:
                        if me in self._running and self._running[me][0] is lease:
                            self._running[me] = (lease, now_us)
                        self._renewals += 1
            except StoreClosedError:
                return
            except KVError:
                _log().warning("queue %r: renewing a lease failed; trying again", self._queue, exc_info=True)
