"""The PostgreSQL connection pool on its own, with stand-in connections: bounds, order, health, closing,
and fairness among waiters.

A ``threading.Barrier`` lines threads up, and a watched queue of waiters tells a test that a thread is
waiting; nothing sleeps to wait for a peer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import pytest
from psycopg.pq import TransactionStatus

from kvstore._backends.postgres import pool as pool_module
from kvstore._backends.postgres.pool import Pool, PoolClosedError, PoolTimeoutError


class _PgConn:
    def __init__(self) -> None:
        self.transaction_status = TransactionStatus.IDLE


class _Conn:
    """What the pool reads of a psycopg connection."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.broken = False
        self.pgconn = _PgConn()

    def close(self) -> None:
        self.closed = True


class _Opener:
    def __init__(self) -> None:
        self.opened: list[_Conn] = []
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            conn = _Conn(len(self.opened))
            self.opened.append(conn)
        return conn


def test_the_warmest_connection_is_taken_and_no_more_are_opened_than_needed() -> None:
    opener = _Opener()
    pool = Pool(opener, size=4, timeout=1)
    first, second = pool.take(), pool.take()
    pool.give_back(first)
    pool.give_back(second)
    assert pool.take() is second  # the last one returned
    assert pool.take() is first
    assert len(opener.opened) == 2


def test_a_fresh_take_opens_a_new_connection() -> None:
    opener = _Opener()
    pool = Pool(opener, size=2, timeout=1)
    warm = pool.take()
    pool.give_back(warm)
    assert pool.take(fresh=True) is not warm
    assert len(opener.opened) == 2


def test_no_more_than_size_are_out_and_the_next_caller_times_out() -> None:
    pool = Pool(_Opener(), size=2, timeout=0.05)
    taken = [pool.take(), pool.take()]
    with pytest.raises(PoolTimeoutError):
        pool.take()
    pool.give_back(taken.pop())
    assert pool.take() is not None


@pytest.mark.parametrize("spoil", ["closed", "broken", "in a transaction"])
def test_an_unhealthy_connection_is_closed_not_kept(spoil: str) -> None:
    pool = Pool(_Opener(), size=1, timeout=1)
    conn: Any = pool.take()
    if spoil == "closed":
        conn.closed = True
    elif spoil == "broken":
        conn.broken = True
    else:
        conn.pgconn.transaction_status = TransactionStatus.INTRANS
    pool.give_back(conn)
    assert conn.closed
    assert pool.take() is not conn


def test_a_failed_open_gives_its_slot_back() -> None:
    def refuse() -> Any:
        raise OSError("no server")

    pool = Pool(refuse, size=1, timeout=0.05)
    for _ in range(3):  # each failure returns the one slot, so the next caller is not made to wait
        with pytest.raises(OSError, match="no server"):
            pool.take()


def test_closing_closes_idle_connections_and_refuses_takes() -> None:
    pool = Pool(_Opener(), size=2, timeout=1)
    idle, out = pool.take(), pool.take()
    pool.give_back(idle)
    pool.close()
    assert idle.closed
    pool.give_back(out)  # closed as it comes back
    assert out.closed
    with pytest.raises(PoolClosedError):
        pool.take()


def _race(pool: Pool, threads: int) -> tuple[list[Any], list[BaseException]]:
    """``threads`` threads calling ``take`` at once: what they got, and what they raised."""
    start = threading.Barrier(threads)
    taken: list[Any] = []
    errors: list[BaseException] = []

    def take() -> None:
        start.wait()
        try:
            taken.append(pool.take())
        except BaseException as exc:  # the caller's assertion reports it
            errors.append(exc)

    runners = [threading.Thread(target=take) for _ in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    return taken, errors


def test_threads_racing_for_one_idle_connection_each_get_one() -> None:
    """Several takers see the one idle connection at once: one gets it, the others open their own."""
    threads = 8
    opener = _Opener()
    pool = Pool(opener, size=threads, timeout=5)
    for _ in range(50):
        pool.give_back(pool.take())
        taken, errors = _race(pool, threads)
        assert errors == []
        assert len({id(conn) for conn in taken}) == threads  # nobody shares a connection
        for conn in taken:
            pool.give_back(conn)
    assert len(opener.opened) == threads


# -- fairness: waiters are served in order, and a connection given back goes to the oldest one ------------


class _Queue(deque[Any]):
    """A pool's queue of waiters that tells the test whenever a caller joins it, so a test knows a thread
    is waiting (the pool appends a waiter under its lock, then blocks) instead of sleeping and hoping.
    ``joined`` gathers the idents of the threads that joined, for a test to discard as they are served."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()
        self.joined: set[int] = set()

    def append(self, waiter: Any, /) -> None:  # called in the waiting thread, under the pool's lock
        with self.changed:
            super().append(waiter)
            self.joined.add(threading.get_ident())
            self.changed.notify_all()

    def wait_for(self, ready: Callable[[], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(ready, timeout=10), "the pool's queue of waiters never got there"

    def wait_for_waiters(self, count: int) -> None:
        self.wait_for(lambda: len(self) >= count)


def _watch(pool: Pool) -> _Queue:
    pool._waiters = queue = _Queue()
    return queue


class _Borrower(threading.Thread):
    """Takes a connection, notes its turn in ``turns`` and gives the connection back; or keeps the error."""

    def __init__(self, pool: Pool, turns: list[str], label: str, *, fresh: bool = False) -> None:
        super().__init__(daemon=True)
        self.pool, self.turns, self.label, self.fresh = pool, turns, label, fresh
        self.got: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = self.pool.take(fresh=self.fresh)
        except BaseException as exc:  # the test's assertion reports it
            self.error = exc
            return
        self.got = conn
        self.turns.append(self.label)
        self.pool.give_back(conn)


def _queue_up(pool: Pool, queue: _Queue, turns: list[str], labels: str, **options: bool) -> list[_Borrower]:
    """One borrower per label, each started once the one before it is waiting."""
    borrowers = []
    for label in labels:
        borrower = _Borrower(pool, turns, label, **options)
        borrower.start()
        borrowers.append(borrower)
        queue.wait_for_waiters(len(borrowers))
    return borrowers


def _join(borrowers: list[_Borrower]) -> None:
    for borrower in borrowers:
        borrower.join(timeout=20)
        assert not borrower.is_alive()


def test_waiters_are_served_in_the_order_they_came() -> None:
    pool = Pool(_Opener(), size=1, timeout=10)
    queue = _watch(pool)
    held = pool.take()
    turns: list[str] = []
    borrowers = _queue_up(pool, queue, turns, "abcdef")
    pool.give_back(held)
    _join(borrowers)
    assert [b.error for b in borrowers] == [None] * 6
    assert turns == list("abcdef")
    assert {id(b.got) for b in borrowers} == {id(held)}  # handed on from one to the next, never reopened


def test_a_thread_that_gives_back_cannot_retake_past_a_waiter() -> None:
    pool = Pool(_Opener(), size=1, timeout=10)
    queue = _watch(pool)
    held = pool.take()
    turns: list[str] = []
    (waiter,) = _queue_up(pool, queue, turns, "w")
    pool.give_back(held)
    retaken = pool.take()  # queues behind the waiter, which had the connection handed to it
    turns.append("giver")
    pool.give_back(retaken)
    _join([waiter])
    assert waiter.error is None
    assert turns == ["w", "giver"]
    assert waiter.got is held  # handed over, not left for the giver
    assert retaken is held


@pytest.mark.parametrize("size", [1, 2])
def test_threads_sharing_a_small_pool_take_turns(size: int) -> None:
    """The starvation case: more threads than connections. Each holder gives back once it is the oldest
    holder and every other thread waits (as under load): each thread finishes every cycle, and none gets
    a second turn before every other thread had one. The unfair pool gave one thread turn after turn."""
    threads, cycles = 4, 40
    pool = Pool(_Opener(), size=size, timeout=10)
    queue = _watch(pool)
    turns: list[int] = []
    errors: list[BaseException] = []
    running: set[int] = set()  # the idents of the threads not done with their cycles
    holders: deque[int] = deque()  # the idents of the threads holding a connection, oldest first
    waiting = queue.joined  # the idents of the threads in the pool's queue (or handed a slot, not yet back)

    def my_turn_to_give_back(me: int) -> bool:
        every_slot_noted = len(holders) == min(size, len(running))  # none handed to a thread yet to note it
        everyone_waits = all(other in waiting for other in running if other not in holders)
        return holders[0] == me and every_slot_noted and everyone_waits

    def borrow(me: int) -> None:
        ident = threading.get_ident()
        try:
            for _ in range(cycles):
                conn = pool.take()
                with queue.changed:
                    waiting.discard(ident)
                    holders.append(ident)
                    turns.append(me)
                    queue.changed.notify_all()
                queue.wait_for(lambda: my_turn_to_give_back(ident))
                with queue.changed:
                    holders.popleft()
                pool.give_back(conn)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)
        finally:
            with queue.changed:
                running.discard(ident)
                queue.changed.notify_all()

    start = threading.Barrier(threads + 1)

    def run(me: int) -> None:
        with queue.changed:
            running.add(threading.get_ident())
        start.wait()
        borrow(me)

    runners = [threading.Thread(target=run, args=(me,), daemon=True) for me in range(threads)]
    for runner in runners:
        runner.start()
    start.wait()  # every thread is counted as running before any takes
    for runner in runners:
        runner.join(timeout=30)
    assert errors == []
    assert sorted(turns) == sorted(list(range(threads)) * cycles)
    counts = [0] * threads
    for me in turns:
        counts[me] += 1
        assert max(counts) - min(counts) <= 1, turns


def test_a_waiter_whose_time_runs_out_leaves_the_queue() -> None:
    pool = Pool(_Opener(), size=1, timeout=0.05)
    queue = _watch(pool)
    held = pool.take()
    with pytest.raises(PoolTimeoutError):
        pool.take()
    assert len(queue) == 0
    pool.give_back(held)
    assert pool.take() is held  # kept idle: not handed to the waiter that left
    with pytest.raises(PoolTimeoutError):  # and still no more than one out
        pool.take()


class _LateWake:
    """A waiter's wake-up that waits for the hand-off, then runs ``then``, whose answer it returns."""

    def __init__(self, wake: threading.Lock, then: Callable[[], bool]) -> None:
        self._wake, self._then = wake, then

    def acquire(self, timeout: float) -> bool:
        assert self._wake.acquire(timeout=10)
        return self._then()

    def release(self) -> None:
        self._wake.release()


def _make_the_first_waiter_late(monkeypatch: pytest.MonkeyPatch, then: Callable[[], bool]) -> None:
    made: list[object] = []
    make = pool_module._Waiter

    def waiter() -> Any:
        new = make()
        if not made:
            new.wake = cast(Any, _LateWake(new.wake, then))
        made.append(new)
        return new

    monkeypatch.setattr(pool_module, "_Waiter", waiter)


@pytest.mark.parametrize("behind", [False, True], ids=["alone", "with a waiter behind"])
def test_a_connection_handed_as_a_waiters_time_runs_out_is_not_lost(
    monkeypatch: pytest.MonkeyPatch, behind: bool
) -> None:
    _make_the_first_waiter_late(monkeypatch, lambda: False)  # handed the slot, and timed out at that instant
    pool = Pool(_Opener(), size=1, timeout=10)
    queue = _watch(pool)
    held = pool.take()
    turns: list[str] = []
    borrowers = _queue_up(pool, queue, turns, "lb" if behind else "l")
    pool.give_back(held)
    _join(borrowers)
    assert isinstance(borrowers[0].error, PoolTimeoutError)
    if behind:
        assert borrowers[1].got is held  # passed on to the next waiter
    assert len(queue) == 0  # and, either way, the slot and the connection are back in the pool
    assert pool._free == 1
    assert pool._idle == [held]
    assert not held.closed


def test_a_waiter_handed_a_slot_as_the_pool_closes_gives_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = Pool(_Opener(), size=1, timeout=10)

    def close() -> bool:
        pool.close()
        return True

    _make_the_first_waiter_late(monkeypatch, close)
    queue = _watch(pool)
    held = pool.take()
    (late,) = _queue_up(pool, queue, [], "l")
    pool.give_back(held)
    _join([late])
    assert isinstance(late.error, PoolClosedError)
    assert held.closed
    assert pool._free == 1


def test_closing_wakes_every_waiter() -> None:
    pool = Pool(_Opener(), size=1, timeout=10)
    queue = _watch(pool)
    held = pool.take()
    borrowers = _queue_up(pool, queue, [], "abc")
    pool.close()
    _join(borrowers)
    assert [type(b.error) for b in borrowers] == [PoolClosedError] * 3
    assert len(queue) == 0
    pool.give_back(held)
    assert held.closed


def test_an_unhealthy_connection_given_back_hands_its_slot_to_a_waiter() -> None:
    opener = _Opener()
    pool = Pool(opener, size=1, timeout=10)
    queue = _watch(pool)
    held: Any = pool.take()
    (waiter,) = _queue_up(pool, queue, [], "w")
    held.broken = True
    pool.give_back(held)
    _join([waiter])
    assert waiter.error is None
    assert held.closed
    assert waiter.got is opener.opened[1]


def test_a_failed_open_hands_its_slot_to_the_next_waiter() -> None:
    opener = _Opener()
    refusals: list[OSError] = []

    def connect() -> Any:
        if refusals:
            raise refusals.pop()
        return opener()

    pool = Pool(connect, size=1, timeout=10)
    queue = _watch(pool)
    held: Any = pool.take()
    refusals.append(OSError("no server"))  # the next open fails
    borrowers = _queue_up(pool, queue, [], "ab")
    held.broken = True  # closed as it comes back: the first waiter must open a connection, and fails
    pool.give_back(held)
    _join(borrowers)
    assert isinstance(borrowers[0].error, OSError)
    assert borrowers[1].error is None
    assert borrowers[1].got is opener.opened[1]


def test_a_fresh_waiter_handed_a_warm_connection_keeps_it_idle_and_opens_one() -> None:
    opener = _Opener()
    pool = Pool(opener, size=1, timeout=10)
    queue = _watch(pool)
    held = pool.take()
    (waiter,) = _queue_up(pool, queue, [], "f", fresh=True)
    pool.give_back(held)
    _join([waiter])
    assert waiter.error is None
    assert waiter.got is opener.opened[1]
    assert pool._idle == [held, waiter.got]  # the warm one kept, the new one now the warmest
