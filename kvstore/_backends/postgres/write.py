"""PostgreSQL write transactions: run whole and retried when PostgreSQL asks (``retrying``), or held open
across calls (``Held``, for ``write_batch``), never retried: the results of the bodies it ran are out.

Either way the transaction takes the counter row's lock (the write lock) first.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Final, NoReturn, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from ..._errors import KVError, StorageError, StoreBusyError
from ..base import Transaction
from .sql import SQL_LOCK
from .tx import PostgresTx

T = TypeVar("T")

# Serialization failures and deadlocks say "try again": the transaction body is a pure function of what
# it reads, so it is rerun whole, a bounded number of times, with jittered backoff.
_ATTEMPTS: Final = 10
RETRY: Final = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

# Versions reserved at a time: a held transaction's writes draw one each, and a reservation is a round trip.
# Up to this many numbers go unused at the end of a block (versionstamps increase; they need not be dense).
_CHUNK: Final = 16


def retrying(
    borrow: Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
    body: Callable[[psycopg.Connection[Any]], T],
    *,
    lock: bool,
) -> T:
    """Run ``body`` in a transaction on a connection from ``borrow`` (which translates driver errors), after
    taking the write lock if ``lock``; retry what PostgreSQL asks to be retried."""
    delay = 0.001
    for attempt in range(_ATTEMPTS):
        try:
            with borrow() as conn, conn.transaction():
                if lock:
                    conn.execute(SQL_LOCK)
                return body(conn)
        except StoreBusyError as exc:
            if not isinstance(exc.__cause__, RETRY) or attempt == _ATTEMPTS - 1:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))  # jittered backoff between attempts
        delay = min(2 * delay, 0.1)
    raise AssertionError("unreachable")  # pragma: no cover


class Held:
    """``base.HeldTransaction`` on ``conn``, which goes back through ``give_back`` when it ends."""

    __slots__ = ("_conn", "_give_back", "_open", "_translate", "_tx")

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        give_back: Callable[[psycopg.Connection[Any]], None],
        translate: Callable[[psycopg.Error], KVError],
    ) -> None:
        self._conn = conn
        self._give_back = give_back
        self._translate = translate
        self._open = True
        try:
            conn.execute("BEGIN")  # the connection is in autocommit: this transaction is ours to end
            conn.execute(SQL_LOCK)
        except BaseException as exc:
            self._fail(exc)
        self._tx = PostgresTx(conn, _CHUNK)

    def run(self, body: Callable[[Transaction], T], isolated: bool) -> tuple[bool, Any]:
        if not self._open:
            raise StorageError("the write transaction was rolled back already")
        try:
            return self._tx.attempt(body, isolated)
        except BaseException as exc:
            self._fail(exc)

    def commit(self) -> None:
        if not self._open:
            raise StorageError("the write transaction was rolled back already")
        try:
            self._conn.execute("COMMIT")
        except BaseException as exc:
            self._fail(exc)
        self._open = False
        self._give_back(self._conn)

    def rollback(self) -> None:
        if self._open:
            self._end()

    def _fail(self, exc: BaseException) -> NoReturn:
        """Roll back after ``exc`` and raise it, a driver error as its KVError."""
        self._end()
        if isinstance(exc, psycopg.Error):
            raise self._translate(exc) from exc
        raise exc

    def _end(self) -> None:
        self._open = False
        conn = self._conn
        try:
            with contextlib.suppress(psycopg.Error):  # a broken connection: the pool closes it
                if not conn.closed and conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
        finally:
            self._give_back(conn)
