"""SQLite write transactions on one connection: BEGIN IMMEDIATE, the body, COMMIT, with the connection's
versionstamp block kept in step; run whole (``transact``) or held open across calls (``Held``).

The caller holds no lock; each holds the connection's lock for the transaction's whole life. sqlite3 errors
come out translated by the ``translate`` the backend passes in.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from ..._errors import KVError, StorageError
from ..._mutations import Put
from ..base import Transaction
from .errors import rolled_back
from .sql import SQL_PUT, SQL_REPLACE_LIVE
from .tx import SQLiteConnection, SQLiteTx

T = TypeVar("T")
Translate = Callable[[sqlite3.Error], KVError]


def _begin(conn: SQLiteConnection, translate: Translate) -> None:
    try:
        # IMMEDIATE takes the write lock now, waiting up to the busy timeout, instead of failing at the
        # first write when a read transaction cannot be upgraded.
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    conn.block.begin()


def _undo(conn: SQLiteConnection, exc: BaseException | None, committing: bool) -> None:
    """Roll back after ``exc`` (also a KeyboardInterrupt or a cancelled task: never leave a half-applied
    transaction open) and undo the transaction's draws from the block; but if COMMIT failed in a way that
    leaves it uncertain whether the transaction committed, give the block up."""
    with contextlib.suppress(sqlite3.Error):  # the original error says more
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    conn.block.rollback()
    if committing and (exc is None or not rolled_back(exc)):
        conn.block.forfeit()


def transact(conn: SQLiteConnection, body: Callable[[SQLiteConnection], T], translate: Translate) -> T:
    """Run ``body`` in one write transaction on ``conn`` and commit."""
    with conn.lock:
        _begin(conn, translate)
        committing = False
        try:
            result = body(conn)
            committing = True
            conn.execute("COMMIT")
        except BaseException as exc:
            _undo(conn, exc, committing)
            if isinstance(exc, sqlite3.Error):
                raise translate(exc) from exc
            raise
    return result


class Held:
    """A write transaction on ``conn`` held open across calls (``Backend.begin``): the connection's lock and
    the database's write lock are held from here to ``commit`` or ``rollback``."""

    __slots__ = ("_conn", "_open", "_translate", "_tx")

    def __init__(self, conn: SQLiteConnection, translate: Translate) -> None:
        conn.lock.acquire()
        try:
            _begin(conn, translate)
        except BaseException:
            conn.lock.release()
            raise
        self._conn = conn
        self._translate = translate
        self._tx = SQLiteTx(conn)
        self._open = True

    def run(self, body: Callable[[Transaction], T], isolated: bool) -> tuple[bool, Any]:
        if not self._open:
            raise StorageError("the write transaction was rolled back already")
        try:
            return self._tx.attempt(body, isolated)
        except BaseException as exc:
            self._end(exc, committing=False)
            if isinstance(exc, sqlite3.Error):
                raise self._translate(exc) from exc
            raise

    def upsert(self, put: Put, now_us: int) -> tuple[int, bool]:
        """An unconditional ``put`` in this transaction, as ``run`` of ``_write``'s body for it would make
        it: (its version, whether it replaced a live entry). A failure ends the transaction, as in ``run``."""
        # The statements themselves, not a body run through ``attempt``: a set batched by 64 AsyncKVStore
        # tasks cost 121,900 instructions under callgrind through the body, 114,200 so.
        if not self._open:
            raise StorageError("the write transaction was rolled back already")
        try:
            version = self._tx.next_version()
            execute = self._conn.execute
            value, content_type, metadata, crc = put.value, put.content_type, put.metadata, put.checksum
            expires_us, ttl_us, refresh = put.expires_us(now_us), put.ttl_us, put.refresh_on_access
            params = (value, content_type, metadata, version, now_us, expires_us, ttl_us, refresh, crc)
            replaced = execute(SQL_REPLACE_LIVE, (*params, put.namespace, put.key, now_us)).rowcount == 1
            if not replaced:
                row = (put.namespace, put.key, value, content_type, metadata, version, now_us, now_us, expires_us)
                execute(SQL_PUT, (*row, ttl_us, refresh, crc))
        except BaseException as exc:
            self._end(exc, committing=False)
            if isinstance(exc, sqlite3.Error):
                raise self._translate(exc) from exc
            raise
        return version, replaced

    def commit(self) -> None:
        if not self._open:
            raise StorageError("the write transaction was rolled back already")
        try:
            self._conn.execute("COMMIT")
        except BaseException as exc:
            self._end(exc, committing=True)
            if isinstance(exc, sqlite3.Error):
                raise self._translate(exc) from exc
            raise
        self._open = False
        self._conn.lock.release()

    def rollback(self) -> None:
        if self._open:
            self._end(None, committing=False)

    def _end(self, exc: BaseException | None, *, committing: bool) -> None:
        self._open = False
        try:
            _undo(self._conn, exc, committing)
        finally:
            self._conn.lock.release()
