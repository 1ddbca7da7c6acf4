"""SQLite write transactions on one connection: BEGIN IMMEDIATE, the body, COMMIT, with the connection's
versionstamp block kept in step; run whole (``transact``) or held open across calls (``Held``).

The caller holds no lock; each holds the connection's lock for the transaction's whole life. sqlite3 errors
come out translated by the ``translate`` the backend passes in.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, Final, TypeVar

from ..._errors import KVError, StorageError
from ..._mutations import Put
from ..base import Transaction
from .errors import rolled_back
from .sql import SQL_PUT, SQL_REPLACE_LIVE, with_literal
from .tx import SQLiteConnection, SQLiteTx

T = TypeVar("T")
Translate = Callable[[sqlite3.Error], KVError]


# The statements of ``Held.upsert`` for a plain put (no metadata, no expiry, no refresh), which write those
# columns' values as literals. sqlite3 passes every parameter that is not exactly an int, float, str or
# bytearray (None, a bool, bytes) through its adapter lookup, which fails with an AttributeError it builds and
# clears: ~3,300 instructions each. A batched set bound five such (the value, three NULLs, the flag): under
# callgrind it cost 115,600 instructions so, and 99,800 with these and the value bound as a bytearray.
_PLAIN_REPLACE_LIVE = with_literal(
    with_literal(SQL_REPLACE_LIVE, "metadata = ?", "metadata = NULL"),
    "expires_us = ?, ttl_us = ?, refresh_on_access = ?",
    "expires_us = NULL, ttl_us = NULL, refresh_on_access = 0",
)
_PLAIN_PUT = with_literal(
    SQL_PUT, "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, NULL, NULL, 0, ?)"
)
# Values up to this many bytes are bound as a bytearray: copying 16 KiB takes an AVX memcpy some hundreds of
# instructions, fewer than the adapter lookup it skips; a larger value keeps its bytes and pays the lookup.
_SMALL: Final = 16384


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

    __slots__ = ("_conn", "_cursor", "_open", "_translate", "_tx")

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
        # ``upsert``'s statements run on one cursor, made once a transaction: ``conn.execute`` builds a cursor
        # a statement, 1,300 instructions more an UPDATE under callgrind.
        self._cursor = conn.cursor()
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
            execute = self._cursor.execute
            value, content_type, metadata, crc = put.value, put.content_type, put.metadata, put.checksum
            if metadata is None and put.ttl_us is None and put.deadline_us is None and not put.refresh_on_access:
                blob = bytearray(value) if len(value) <= _SMALL else value  # stored as the same BLOB
                replaced = execute(
                    _PLAIN_REPLACE_LIVE, (blob, content_type, version, now_us, crc, put.namespace, put.key, now_us)
                ).rowcount == 1  # fmt: skip
                if not replaced:
                    execute(_PLAIN_PUT, (put.namespace, put.key, blob, content_type, version, now_us, now_us, crc))
                return version, replaced
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
