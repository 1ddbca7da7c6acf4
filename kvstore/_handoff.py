"""The write slot of one store object, and the writers queued for it, who get it in the order they came.

The slot is held while a commit is in flight. Taking it when it is free is one uncontended lock; a writer
that finds it held queues, with the body it wants run, and waits holding nothing. Whoever ends a hold hands
the slot to the oldest queued writer, or frees it. A writer interrupted while it waits leaves the queue,
unless its write was already taken into a batch: then it waits for that batch, which runs it whole or not
at all. ``_group.GroupCommit`` builds group commit on this.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final, NoReturn

from ._backends.base import Transaction

QUEUED: Final = 0  # in the queue
LEAD: Final = 1  # at the head of the queue and handed the slot: it leads the next batch
TAKEN: Final = 2  # taken into a batch (or, a write_batch block, holding the slot)
DONE: Final = 3  # its outcome is set, or it left the queue


def block_body(tx: Transaction) -> NoReturn:
    """The body of a waiter that is a ``write_batch`` block waiting for the slot: never run."""
    raise AssertionError("a write_batch block is not a body")


class Waiter:
    """One queued write (or ``write_batch`` block): its body, its state, its outcome, and its wake-up."""

    __slots__ = ("body", "isolated", "ok", "state", "value", "wake")

    def __init__(self, body: Callable[[Transaction], Any], isolated: bool) -> None:
        self.body = body
        self.isolated = isolated
        self.state = QUEUED
        self.ok = False
        self.value: Any = None
        # A locked Lock as a one-shot event: a tenth of a threading.Event's cost (see postgres/pool.py).
        self.wake = threading.Lock()
        self.wake.acquire()

    def wait(self) -> None:
        """Until handed the slot (``LEAD``) or given an outcome (``DONE``)."""
        self.wake.acquire()


class Handoff:
    """The slot and its queue. Invariant: the queue is empty whenever the slot is free."""

    __slots__ = ("__weakref__", "_mutex", "_queue", "_slot")

    def __init__(self) -> None:
        self._slot = threading.Lock()  # held while a commit is in flight
        self._mutex = threading.Lock()  # guards the queue and the waiters' states
        self._queue: deque[Waiter] = deque()  # oldest first
        _HANDOFFS.add(self)

    def _release(self) -> None:
        """End this thread's hold of the slot: hand it to the oldest queued writer, or free it."""
        queue = self._queue
        while True:
            if queue:
                with self._mutex:
                    if queue:
                        head = queue[0]
                        head.state = LEAD
                        head.wake.release()
                        return
            self._slot.release()
            # A writer may have queued after the look above, finding the slot still held: look again, and
            # take the slot back to hand it on (unless a newcomer took it, who will hand it on).
            if not queue or not self._slot.acquire(False):
                return

    def _enqueue(self, body: Callable[[Transaction], Any], isolated: bool) -> Waiter:
        """Queue a write and wait until it is handed the slot or given its outcome."""
        waiter = Waiter(body, isolated)
        with self._mutex:
            self._queue.append(waiter)
        if self._slot.acquire(False):  # let go as this writer queued (see ``_release``): hand it on
            self._release()
        try:
            waiter.wait()
        except BaseException as exc:  # interrupted (KeyboardInterrupt) while waiting
            self._withdraw(waiter, exc)
        return waiter

    def _withdraw(self, waiter: Waiter, exc: BaseException) -> NoReturn:
        """After ``exc`` interrupted the wait: take the write out of the queue if it has not started;
        else wait for its batch, which runs it whole or not at all. ``exc`` says which, in a note."""
        with self._mutex:
            state = waiter.state
            if state in (QUEUED, LEAD):
                self._queue.remove(waiter)
                waiter.state = DONE
        if state == LEAD:
            self._release()  # it was handed the slot: hand it on
        if state in (QUEUED, LEAD):
            exc.add_note("kvstore: the interrupted write was not made")
            raise exc
        waiter.wake.acquire()  # taken into a running batch: it ends soon
        exc.add_note(f"kvstore: the interrupted write {'committed' if waiter.ok else 'was not made'}")
        raise exc

    def _take(self, me: Waiter, cap: int) -> list[Waiter]:
        """For ``me``, handed the slot: take it off the queue with the bodies queued behind it (at most
        ``cap`` in all, and none if ``me`` is a block; a block behind them waits for the next turn)."""
        with self._mutex:
            queue = self._queue
            batch = [queue.popleft()]
            assert batch[0] is me  # only the head is handed the slot, and only its holder takes from the queue
            if me.body is not block_body:
                while queue and len(batch) < cap and queue[0].body is not block_body:
                    batch.append(queue.popleft())
            for waiter in batch:
                waiter.state = TAKEN
        return batch

    def _after_fork_in_child(self) -> None:
        """In a forked child, which has only the thread that forked: the parent's hold of the slot and its
        queued writers are none of the child's (a store the child may use, in memory or on PostgreSQL, would
        otherwise wait for them forever)."""
        self._reset(keep_slot=False)

    def _reset(self, *, keep_slot: bool) -> None:
        if not keep_slot:
            self._slot = threading.Lock()
        self._mutex = threading.Lock()
        self._queue = deque()


_HANDOFFS: weakref.WeakSet[Handoff] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handoff in list(_HANDOFFS):
        handoff._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
