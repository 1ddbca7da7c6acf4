"""A small, fast pool of PostgreSQL connections for one store.

psycopg_pool is built for long-lived services with background maintenance; a key-value read is one
round trip, and borrowing from that pool cost about as much again. This pool is a semaphore and a stack:
a borrow takes the most recently returned connection (warm, its statements prepared) or opens one, and a
connection comes back only if it is idle and healthy. A connection the server dropped while it sat idle
is noticed on its next use: ``borrow(fresh=True)`` lets a caller retry a read on a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

Connection = psycopg.Connection[Any]


class PoolTimeoutError(Exception):
    """No connection came free within the pool timeout."""


class PoolClosedError(Exception):
    """The pool was closed."""


class Pool:
    """At most ``size`` connections, opened by ``connect`` when needed; a borrower waits up to ``timeout``."""

    def __init__(self, connect: Callable[[], Connection], size: int, timeout: float) -> None:
        self._connect = connect
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def borrow(self, *, fresh: bool = False) -> Iterator[Connection]:
        """A connection for the ``with`` block, returned afterwards; a new one if ``fresh``."""
        if self._closed:
            raise PoolClosedError
        if not self._slots.acquire(timeout=self._timeout):
            raise PoolTimeoutError
        try:
            # list.pop is atomic under the GIL; the newest connection is the warmest.
            conn = self._idle.pop() if self._idle and not fresh else None
            if conn is None:
                conn = self._connect()
            try:
                yield conn
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def _give_back(self, conn: Connection) -> None:
        # A connection left in a transaction (an interrupted caller) or broken is closed, never reused.
        healthy = not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def discard_idle(self) -> None:
        """Close every idle connection: after one was found dead (a server restart), the rest likely are."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        """Close the idle connections now; borrowed ones are closed as they come back."""
        with self._lock:
            self._closed = True
        self.discard_idle()
