"""The PostgreSQL connection pool on its own, with stand-in connections: bounds, order, health, closing.

A ``threading.Barrier`` lines threads up; nothing sleeps to wait for a peer.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from psycopg.pq import TransactionStatus

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
