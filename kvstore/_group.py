"""Group commit: the writes that arrive while a commit is in flight share the next transaction.

One ``GroupCommit`` per store object (on ``Shared``); every write of ``_write`` passes through it. A writer
that finds no commit in flight runs at once, exactly as alone (the one-statement write included), having
taken one uncontended lock: the slot. One that finds a commit in flight queues its transaction body and
waits, holding nothing. When the commit in flight ends, its writer hands the slot to the oldest queued
writer, the leader, which runs the queued bodies in order (at most ``CAP``) in one backend transaction,
each in a savepoint of its own when it needs one, then gives every writer its own result or exception and
wakes it. Versions are drawn in the order the bodies run: the order in which the commits take effect.

``write_batch`` holds the slot for a block on one thread: the writes that thread makes through the store
join one open transaction, which commits when the block ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

from ._backends.base import UNCONDITIONAL, Backend, HeldTransaction, Transaction
from ._errors import KVError, StorageError
from ._handoff import DONE, LEAD, Handoff, Waiter, block_body

if TYPE_CHECKING:
    from ._mutations import Put

T = TypeVar("T")

CAP: Final = 256
"""The most writes one batch carries; the rest wait for the next. Bounds how long a batch holds the write
lock (readers on PostgreSQL and in WAL mode never wait for it; other processes' writers do)."""


@runtime_checkable
class _Upserts(Protocol):
    """A held transaction that makes an unconditional put itself (SQLite's ``Held.upsert``)."""

    def upsert(self, put: Put, now_us: int) -> tuple[int, bool]: ...


class Block:
    """A ``write_batch`` block open on one thread: its transaction, begun at its first write."""

    __slots__ = ("failed", "held", "thread", "upsert", "writes")

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.held: HeldTransaction | None = None
        # ``held.upsert`` if ``held`` has one (see ``GroupCommit._put_in_block``), found when ``held`` begins.
        self.upsert: Callable[[Put, int], tuple[int, bool]] | None = None
        self.failed: KVError | None = None  # the transaction failed: the block's writes are void
        self.writes = 0  # writes made in it that committed if it commits (``Shared.committed`` counts them)


class GroupCommit(Handoff):
    """The writes of one store object: run at once when none is in flight, else batched behind it."""

    __slots__ = ("_backend", "_on_block", "batched", "batches", "block")

    def __init__(self, backend: Backend, on_block: Callable[[int], None]) -> None:
        super().__init__()
        self._backend = backend
        self._on_block = on_block  # after a write_batch block commits, with the number of writes it carried
        self.block: Block | None = None  # the write_batch block holding the slot, if one does
        self.batches = 0  # transactions that carried more than one write
        self.batched = 0  # the writes they carried

    def _after_fork_in_child(self) -> None:
        # A write_batch block of the thread that forked stays its own, and holds the slot still.
        block = self.block
        mine = block is not None and block.thread == threading.get_ident()
        if not mine:
            self.block = None
        self._reset(keep_slot=mine)

    # -- the doors of the write path (``_write``) -----------------------------------------------------

    def try_put(self, put: Put, expected: int | None, now_us: int) -> tuple[int, bool] | None:
        """``Backend.try_put`` if no commit is in flight (an unconditional put in this thread's open
        ``write_batch`` block: made in its transaction); else None, having written nothing: the caller queues
        the write as a transaction."""
        slot = self._slot
        if not slot.acquire(False):
            block = self.block
            if expected == UNCONDITIONAL and block is not None and block.thread == threading.get_ident():
                return self._put_in_block(block, put, now_us)
            return None
        try:
            return self._backend.try_put(put, expected, now_us)
        finally:
            # ``_release`` inlined for the case of no writer queued: a set is the hottest write there is.
            # Under callgrind a set on an in-memory store is 93,200 instructions with no group, 96,400
            # through this with ``_release`` called, 94,700 with it inlined.
            if self._queue:
                self._release()
            else:
                slot.release()
                if self._queue and slot.acquire(False):  # a writer queued as the slot was let go
                    self._release()

    def try_alone(self, write: Callable[[], T | None]) -> T | None:
        """``write()`` (a backend's one-statement write, such as an enqueue's) if no commit is in flight; else
        None, having run nothing: the caller queues the write as a transaction."""
        if not self._slot.acquire(False):
            return None
        try:
            return write()
        finally:
            self._release()

    def transact(self, body: Callable[[Transaction], T], isolated: bool) -> T:
        """Run ``body`` in a write transaction: its own if none is in flight, else the next batch's (see
        ``Transaction.attempt`` for ``isolated``), or this thread's open ``write_batch`` block."""
        if self._slot.acquire(False):
            try:
                return self._backend.transact(body)
            finally:
                self._release()
        block = self.block
        if block is not None and block.thread == threading.get_ident():
            return self._in_block(block, body, isolated)
        waiter = self._enqueue(body, isolated)
        if waiter.state == LEAD:
            self._lead(waiter)
        if waiter.ok:
            value: T = waiter.value
            return value
        raise waiter.value

    # -- batches ------------------------------------------------------------------------------------------

    def _lead(self, me: Waiter) -> None:
        """Run the batch that ``me``, handed the slot, heads; then hand the slot on and wake the batch."""
        batch = self._take(me, CAP)
        try:
            self._run(batch)
        except BaseException as exc:  # this thread was interrupted: nobody may wait for its batch
            for waiter in batch:
                if waiter is not me:
                    waiter.ok = False
                    waiter.value = StorageError(
                        f"the thread committing this write's batch was interrupted ({type(exc).__name__}) before"
                        " the batch was known to commit"
                    )
            raise
        finally:
            self._release()  # first: the next batch can begin while this one's writers wake
            for waiter in batch:
                if waiter is not me:
                    waiter.state = DONE
                    waiter.wake.release()

    def _run(self, batch: list[Waiter]) -> None:
        """Run ``batch`` in one transaction and set each writer's outcome."""
        backend = self._backend
        if len(batch) == 1:  # alone after all: as a lone writer, with no savepoint
            (waiter,) = batch
            try:
                waiter.value = backend.transact(waiter.body)
                waiter.ok = True
            except Exception as exc:
                waiter.value = exc
            return
        self.batches += 1
        self.batched += len(batch)

        def run_all(tx: Transaction) -> list[tuple[bool, Any]]:
            tx.reserve(len(batch))
            with tx.pipeline():
                return [tx.attempt(waiter.body, waiter.isolated) for waiter in batch]

        try:
            outcomes = backend.transact(run_all)  # retried whole where the backend retries
        except Exception as exc:  # the transaction failed (its COMMIT, the disk, the connection): all with it
            for waiter in batch:
                waiter.value = _each(exc)
            return
        for waiter, (ok, value) in zip(batch, outcomes, strict=True):
            waiter.ok = ok
            waiter.value = value

    # -- write_batch ------------------------------------------------------------------------------------

    def open_block(self) -> Block | None:
        """Take the slot for a ``write_batch`` block on this thread (None: this thread has one open)."""
        block = self.block
        if block is not None and block.thread == threading.get_ident():
            return None
        if not self._slot.acquire(False):
            waiter = self._enqueue(block_body, False)  # woken only when handed the slot: a block joins no batch
            self._take(waiter, 1)
        block = self.block = Block()
        return block

    def close_block(self, block: Block, commit: bool) -> None:
        """Commit (``commit``) or roll back the block's transaction, and hand the slot on; a failed commit
        raises its KVError, and then none of the block's writes happened."""
        try:
            held = block.held
            if held is not None:
                if commit and block.failed is None:
                    held.commit()
                else:
                    held.rollback()
            if commit and block.failed is not None:
                raise _each(block.failed)
        finally:
            self.block = None
            self._release()
        if commit and held is not None and block.writes:
            self._on_block(block.writes)

    def _put_in_block(self, block: Block, put: Put, now_us: int) -> tuple[int, bool] | None:
        """An unconditional put in this thread's open block, made by the held transaction itself where the
        backend's can (else None: it runs as a body, through ``transact``). Failing, as ``_in_block``."""
        if block.failed is not None:
            return None
        first = block.held is None
        if first:
            self._begin(block)
        upsert = block.upsert
        if upsert is None:
            return None  # the transaction begun stays the block's: the body runs in it
        try:
            return upsert(put, now_us)
        except BaseException as exc:  # the transaction failed, or this thread was interrupted in it
            block.held = None
            if not first:
                block.failed = exc if isinstance(exc, KVError) else StorageError(f"interrupted ({exc!r})")
            raise

    def _begin(self, block: Block) -> HeldTransaction:
        held = block.held = self._backend.begin()
        # Checked once a transaction, not once a write: isinstance of a Protocol is slow.
        block.upsert = held.upsert if isinstance(held, _Upserts) else None
        return held

    def _in_block(self, block: Block, body: Callable[[Transaction], T], isolated: bool) -> T:
        """Run a write of this thread's open block in the block's transaction."""
        if block.failed is not None:
            raise _each(block.failed)  # the transaction is gone, and with it every write made in it
        held = block.held
        first = held is None
        if held is None:
            # The block's first write begins its transaction, alone in it: it needs no savepoint, since a
            # failure rolls the whole transaction back (the next write begins another). So a block of one
            # write costs what the write costs alone, less the one-statement fast path.
            held = self._begin(block)
        try:
            ok, value = held.run(body, isolated and not first)
        except BaseException as exc:  # the transaction failed, or this thread was interrupted in it
            block.held = None
            if not first:
                block.failed = exc if isinstance(exc, KVError) else StorageError(f"interrupted ({exc!r})")
            raise
        if ok:
            result: T = value
            return result
        if first:
            held.rollback()
            block.held = None
        raise value


def _each(exc: Exception) -> Exception:
    """A copy of ``exc`` for one writer (one exception raised in many threads collects all their frames)."""
    copy = type(exc)(str(exc)) if isinstance(exc, KVError) else StorageError(f"the write failed: {exc!r}")
    copy.__cause__ = exc
    return copy


class _HasGroup(Protocol):
    @property
    def group(self) -> GroupCommit: ...


class _Store(Protocol):
    @property
    def _shared(self) -> _HasGroup: ...


class _Batch(AbstractContextManager[None]):
    __slots__ = ("_block", "_group")

    def __init__(self, group: GroupCommit) -> None:
        self._group = group
        self._block: Block | None = None

    def __enter__(self) -> None:
        self._block = self._group.open_block()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        block, self._block = self._block, None
        if block is not None:
            self._group.close_block(block, exc_type is None)


def write_batch(store: _Store) -> AbstractContextManager[None]:
    """Make the writes this thread makes through ``store`` (or any of its namespace views) inside the block
    one transaction, committed when the block ends.

    Each write runs at once, in its own savepoint, and returns its result as if committed; one that raises
    is rolled back alone. If the block ends normally the transaction commits, and if that fails the exit
    raises the KVError: then none of the block's writes happened, and every result returned inside it is
    void. An exception escaping the block rolls them all back. A block nested on the same thread joins the
    outer one. Other threads' writes wait for the block, as for any commit in flight, and are batched
    behind it (on an in-memory store, from the block's first write, their reads wait too: it holds the one
    connection); so do not wait inside the block for another thread's use of the same store.

    Reads made inside the block on this thread see its writes on SQLite (they share its connection); on
    PostgreSQL they read through other connections and see only what is committed. A block of one write
    costs that write as a transaction (the one-statement fast path of a plain set is not taken).
    """
    return _Batch(store._shared.group)
