"""The queue's state changes after enqueue: claim (a lease), acknowledge, retry, renew, dead-letter, clear.

Each is one write transaction through the store's group commit (``Shared.group``), made of the backend's
queue statements (``Backend.queue``); "now" is the store's clock. A lease is named by a random token: a
change asked under a token that a later claim replaced changes nothing, and ``LeaseLostError`` says so.
A retry and a dead letter draw a versionstamp (a dead letter writes entries; a retry changes when the
message is due, which other processes' listeners learn from the change probe); a claim and an ack do not.
"""

from __future__ import annotations

from typing import Final

from ._backends.base import Claimed, Transaction
from ._codec import format_versionstamp
from ._errors import LeaseLostError
from ._ids import lease_token
from ._mutations import Put
from ._queue import backoff_of, keys_of
from ._shared import Shared
from ._write import put_within

LOST: Final = "the message's lease ran out and another consumer took it: nothing was changed"


class Lease:
    """One delivery of a message: which row, under which token, and what a retry or dead letter needs."""

    __slots__ = ("attempt", "content_type", "enqueued_us", "message_id", "namespace", "queue", "raw", "row_id",
                 "stored_backoff", "stored_keys", "token")  # fmt: skip

    def __init__(self, namespace: str, queue: str, token: str, row: Claimed) -> None:
        row_id, message_id, raw, content_type, attempt, enqueued_us, backoff, keys = row
        self.namespace = namespace
        self.queue = queue
        self.token = token
        self.row_id = row_id
        self.message_id = message_id
        self.raw = bytes(raw)
        self.content_type = content_type
        self.attempt = attempt
        self.enqueued_us = enqueued_us
        self.stored_backoff = backoff  # parsed only by a retry or a dead letter: an ack never needs them
        self.stored_keys = keys

    @property
    def backoff(self) -> tuple[int, ...]:
        """The message's backoff schedule, in microseconds."""
        return backoff_of(self.stored_backoff)

    @property
    def keys(self) -> list[str]:
        """The message's ``keys_if_undelivered``."""
        return keys_of(self.stored_keys)


def claim(shared: Shared, namespace: str, queue: str, lease_us: int) -> Lease | None:
    """Lease the next due message of ``queue`` for ``lease_us``; None if none is due."""
    now_us = shared.now_us()
    until_us = now_us + lease_us
    token = lease_token()
    side, group = shared.backend.queue, shared.group
    alone = group.try_alone(lambda: side.claim_alone(namespace, queue, now_us, until_us, token))
    if alone is None:

        def body(tx: Transaction) -> Claimed | None:
            return side.claim(tx, namespace, queue, now_us, until_us, token)

        row = group.transact(body, False)
    else:
        row = alone[0]
    return None if row is None else Lease(namespace, queue, token, row)


def ack(shared: Shared, lease: Lease) -> None:
    """Delete the message: it was handled."""
    side = shared.backend.queue
    done = shared.group.try_alone(lambda: side.ack_alone(lease.row_id, lease.token))
    if done is None:
        done = shared.group.transact(lambda tx: side.ack(tx, lease.row_id, lease.token), False)
    if not done:
        raise LeaseLostError(LOST)


def renew(shared: Shared, lease: Lease, lease_us: int) -> None:
    """Hold the message ``lease_us`` longer, from now."""
    until_us = shared.now_us() + lease_us
    side = shared.backend.queue
    if not shared.group.transact(lambda tx: side.renew(tx, lease.row_id, lease.token, until_us), False):
        raise LeaseLostError(LOST)


def retry(shared: Shared, lease: Lease, delay_us: int | None) -> bool:
    """Deliver the message again after ``delay_us`` (None: its schedule's next interval), unless it has had
    every retry its schedule allows: then dead-letter it. True if it will be delivered again."""
    backoff = lease.backoff
    if lease.attempt > len(backoff):
        dead_letter(shared, lease)
        return False
    wait_us = backoff[lease.attempt - 1] if delay_us is None else delay_us
    due_us = shared.now_us() + wait_us
    side = shared.backend.queue

    def body(tx: Transaction) -> bool:
        if not side.release(tx, lease.row_id, lease.token, due_us):
            return False
        tx.next_version()  # a commit other processes' change probes see
        return True

    if not shared.group.transact(body, False):
        raise LeaseLostError(LOST)
    shared.committed()
    return True


def dead_letter(shared: Shared, lease: Lease, write_keys: bool = True) -> str | None:
    """Make the message a dead letter and set its value at each of its ``keys_if_undelivered`` (unless
    ``write_keys`` is False: a value that cannot be decoded is never written as an entry), in one
    transaction; the commit's versionstamp (None if it wrote no keys)."""
    now_us = shared.now_us()
    side = shared.backend.queue

    def body(tx: Transaction) -> tuple[bool, int | None]:
        if not side.bury(tx, lease.row_id, lease.token):
            return False, None  # nothing written
        keys = lease.keys
        if not keys or not write_keys:
            return True, None
        puts = [Put(lease.namespace, key, lease.raw, lease.content_type, None, None, None, False) for key in keys]
        return True, put_within(tx, puts, now_us)

    buried, version = shared.group.transact(body, False)
    if not buried:
        raise LeaseLostError(LOST)
    if version is None:
        return None
    shared.committed()
    return format_versionstamp(version)


def clear_dead(shared: Shared, namespace: str, queue: str) -> int:
    """Delete ``queue``'s dead letters; how many there were."""
    side = shared.backend.queue
    return shared.group.transact(lambda tx: side.clear_dead(tx, namespace, queue), False)
