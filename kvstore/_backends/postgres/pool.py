"""A small, fast pool of PostgreSQL connections for one store.

psycopg_pool is built for long-lived services with background maintenance; a key-value read is one
round trip, and borrowing from that pool cost about as much again. This pool is a semaphore and a stack:
``take`` gives the most recently returned connection (warm, its statements prepared) or opens one, and a
connection comes back only if it is idle and healthy. A connection the server dropped while it sat idle
is noticed on its next use: ``take(fresh=True)`` lets a caller retry a read on a new one.

The semaphore is a ``queue.SimpleQueue`` of tokens, one per connection that may be out: it is written in
C, where ``threading.Semaphore`` is Python code around a Condition, and a read paid a microsecond for it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
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
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(size):
            self._tokens.put(None)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self, *, fresh: bool = False) -> Connection:
        """A connection to hand back with ``give_back``: the warmest idle one, or a new one if ``fresh``."""
        if self._closed:
            raise PoolClosedError
        try:
            self._tokens.get(timeout=self._timeout)
        except queue.Empty:
            raise PoolTimeoutError from None
        try:
            if not fresh:
                try:
                    return self._idle.pop()  # atomic under the GIL; the newest connection is the warmest
                except IndexError:
                    pass
            return self._connect()
        except BaseException:
            self._tokens.put(None)
            raise

    def give_back(self, conn: Connection) -> None:
        """Return a connection ``take`` gave."""
        try:
            self._give_back(conn)
        finally:
            self._tokens.put(None)

    def _give_back(self, conn: Connection) -> None:
        # A connection left in a transaction (an interrupted caller) or broken is closed, never reused.
        # (pgconn's status is a plain int: conn.info builds an object and an enum member on every read.)
        healthy = not conn.closed and not conn.broken and conn.pgconn.transaction_status == TransactionStatus.IDLE
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
