"""The pull model: ``receive`` takes the next due message under a lease; a ``Message`` is acknowledged,
retried or renewed by its consumer."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from . import _queue_ops as ops
from ._codec import decode_value, from_epoch_us
from ._errors import InvalidOptionsError, KVError
from ._queue import MAX_DELAY_MS, check_lease, duration_us
from ._queue_wait import QueueWaiter
from ._shared import Shared
from ._validation import Milliseconds, Seconds


class Message:
    """A message received from a queue, leased to this consumer until it acts on it or the lease runs out.

    ``attempt`` is 1 on its first delivery. ``ack()`` when it was handled; ``retry()`` to have it delivered
    again (after the next interval of its backoff schedule, or ``delay``), which past the schedule's last
    interval makes it a dead letter; ``renew()`` to hold it longer. Each raises ``LeaseLostError``, having
    changed nothing, if the lease ran out and another consumer took the message.
    """

    __slots__ = ("_lease", "_lease_us", "_shared", "attempt", "content_type", "id", "queue", "value")

    def __init__(self, shared: Shared, lease: ops.Lease, value: Any, lease_us: int) -> None:
        self._shared = shared
        self._lease = lease
        self._lease_us = lease_us
        self.id: str = lease.message_id
        self.value: Any = value
        self.attempt: int = lease.attempt
        self.queue: str = lease.queue
        self.content_type: str = lease.content_type

    @property
    def enqueued_at(self) -> datetime:
        """When the message was enqueued (UTC). Made when asked: a datetime took 0.3 us of every receive."""
        return from_epoch_us(self._lease.enqueued_us)

    def __repr__(self) -> str:
        return f"Message(id={self.id!r}, queue={self.queue!r}, attempt={self.attempt})"

    def ack(self) -> None:
        """Acknowledge: the message is deleted."""
        ops.ack(self._shared, self._lease)

    def retry(self, delay: timedelta | Milliseconds | None = None) -> None:
        """Have the message delivered again, after ``delay`` (a timedelta or milliseconds; None: its backoff
        schedule's next interval); past its schedule's last retry it becomes a dead letter instead, its
        value set at each of its ``keys_if_undelivered``."""
        delay_us = None if delay is None else duration_us(delay, "delay", MAX_DELAY_MS)
        ops.retry(self._shared, self._lease, delay_us)

    def renew(self, lease: timedelta | Seconds | None = None) -> None:
        """Hold the message for ``lease`` more (None: the lease it was received with), from now."""
        if lease is not None:
            self._lease_us = check_lease(lease)
        ops.renew(self._shared, self._lease, self._lease_us)


def decoded(shared: Shared, lease: ops.Lease) -> tuple[bool, Any]:
    """(True, the message's value), or (False, None) once a value that cannot be decoded is dead-lettered
    (retrying it could never succeed; its keys_if_undelivered are left alone, as no entry may hold it)."""
    try:
        return True, decode_value(lease.raw)
    except KVError:
        ops.dead_letter(shared, lease, write_keys=False)
        return False, None


def wait_seconds(timeout: object) -> float:
    """``receive``'s timeout in seconds: None or 0 for no wait, else a timedelta or seconds, up to an hour."""
    if timeout is None:
        return 0.0
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
        raise InvalidOptionsError(f"timeout must be None, or a timedelta or seconds from 0 to 3600, got {timeout!r}")
    return float(seconds)


def receive(shared: Shared, namespace: str, queue: str, timeout: object, lease: object) -> Message | None:
    """The next due message of ``queue`` under a lease, waiting up to ``timeout`` for one; None if none came."""
    lease_us = check_lease(lease)
    wait = wait_seconds(timeout)
    waiter: QueueWaiter | None = None
    deadline = time.monotonic() + wait
    try:
        while True:
            if waiter is not None:
                waiter.mark()
            taken = ops.claim(shared, namespace, queue, lease_us)
            if taken is not None:
                ok, value = decoded(shared, taken)
                if ok:
                    return Message(shared, taken, value, lease_us)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if waiter is None:  # made only once a wait is needed: it holds a probe (a connection)
                waiter = QueueWaiter(shared, namespace, queue)
                continue  # claim again: something may have come while the waiter was made
            waiter.wait(left, lambda: shared.backend.closed)
            if shared.backend.closed:
                return None
    finally:
        if waiter is not None:
            waiter.close()
