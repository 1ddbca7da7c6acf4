"""SQLite connections as kvstore uses them, the statements of one write transaction on one, and the
one-statement write used outside a transaction.

``backend`` opens the connections and runs the transactions; the statements are ``sql``'s constants.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Final

from ..._errors import KVError
from ..._mutations import Put
from ..base import UNCONDITIONAL, Current, PutRow
from ..transaction import SQLTransaction
from .block import VersionBlock
from .sql import (
    SQL_CURRENT_MANY,
    SQL_DATA_VERSION,
    SQL_ONE_PUT_IF_ABSENT,
    SQL_ONE_PUT_IF_VERSION,
    SQL_ONE_REPLACE_LIVE,
    SQL_PUT,
    SQL_READ_VERSION,
    SQL_RESERVE,
    TX_STATEMENTS,
)

IN_CHUNK: Final = 500  # keys per IN (...) list; far below SQLite's bound-parameter limit


class SQLiteConnection(sqlite3.Connection):
    """A connection that can be weakly referenced (a dead thread's connection is freed, and closed) and
    carries the lock its users hold around each use.

    The lock is uncontended in normal use: each thread has its own connection. It is there because
    closing an sqlite3 connection while another thread executes on it crashes the interpreter, so
    ``close()`` takes every connection's lock first. An in-memory store's single connection is shared,
    and its lock then also serialises the threads.
    """

    lock: threading.RLock
    block: VersionBlock  # this connection's reserved versionstamps (see ``block``)
    # One cursor for every read, made once: ``execute`` on the connection builds a cursor per call, which
    # costs more than a third of the driver's work for a primary-key read. The reads run their statements
    # to the end (a unique key has one row; lists are fetched whole), so no statement stays open on it.
    reader: sqlite3.Cursor


class SQLiteTx(SQLTransaction[SQLiteConnection]):
    """The statements of one write transaction on SQLite (see ``base.Transaction``)."""

    __slots__ = ("_drawn",)

    driver_error = sqlite3.Error

    def __init__(self, conn: SQLiteConnection) -> None:
        super().__init__(conn, TX_STATEMENTS)
        self._drawn = False  # this transaction drew a version: the counter row now holds the block's end

    def next_version(self) -> int:
        # Inside the write lock, from the connection's block (see ``block``); the caller (``write``) rolls
        # the block back if the transaction does not commit, ``attempt`` if a body's savepoint rolls back.
        conn = self._conn
        block = conn.block
        # After a draw, the counter row is the block's end, and only this transaction (holding the write
        # lock) can change it: so the batch's later draws skip reading it. Under callgrind a set batched
        # by 64 AsyncKVStore tasks cost 131,700 instructions reading it every time, 121,900 so.
        counter = block.end if self._drawn else conn.execute(SQL_READ_VERSION).fetchone()[0]
        version, reserve = block.draw(counter)
        if reserve is not None:
            conn.execute(SQL_RESERVE, (reserve,))
        self._drawn = True
        return version

    def put_many(self, rows: Sequence[PutRow]) -> None:
        self._conn.executemany(SQL_PUT, rows)

    def _mark(self) -> tuple[int, int]:
        return self._conn.block.mark()

    def _restore(self, mark: object) -> None:
        assert isinstance(mark, tuple)
        self._conn.block.restore(mark)
        self._drawn = False  # the counter row rolled back too: read it again at the next draw

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        found: dict[str, Current] = {}
        for i in range(0, len(keys), IN_CHUNK):
            chunk = keys[i : i + IN_CHUNK]
            sql = SQL_CURRENT_MANY + "(" + ", ".join("?" * len(chunk)) + ")"
            for key, version, created_us in self._conn.execute(sql, (namespace, now_us, *chunk)).fetchall():
                found[key] = (version, created_us)
        return found


def put_one(conn: SQLiteConnection, put: Put, expected: int | None, now_us: int) -> tuple[int, bool] | None:
    """``Backend.try_put`` on ``conn``, whose lock the caller holds: one statement in autocommit (two for a
    write with no condition that finds no live entry), drawing from the connection's block.

    Each statement carries the block's end and writes only while the counter row still holds it, so a
    block another connection took over is never drawn from."""
    block = conn.block
    version = block.available()
    if version is None:
        return None  # no block (or used up): reserving one takes a transaction
    end = block.end
    namespace, key, value, content_type = put.namespace, put.key, put.value, put.content_type
    metadata, ttl_us, refresh, crc = put.metadata, put.ttl_us, put.refresh_on_access, put.checksum
    expires_us = put.expires_us(now_us)
    execute = conn.execute
    if expected is None or expected == UNCONDITIONAL:
        found = False
        if expected is not None:  # replace a live entry first, keeping its created_us
            params = (value, content_type, metadata, version, now_us, expires_us, ttl_us, refresh, crc)
            found = execute(SQL_ONE_REPLACE_LIVE, (*params, namespace, key, now_us, end)).rowcount == 1
        if not found:
            row = (namespace, key, value, content_type, metadata, version, now_us, now_us, expires_us, ttl_us)
            if execute(SQL_ONE_PUT_IF_ABSENT, (*row, refresh, crc, end, now_us)).rowcount != 1:
                return None
    else:
        params = (value, content_type, metadata, version, now_us, expires_us, ttl_us, refresh, crc)
        if execute(SQL_ONE_PUT_IF_VERSION, (*params, namespace, key, expected, now_us, end)).rowcount != 1:
            return None
        found = True
    block.used(version)
    return version, found


class DataVersionProbe:
    """``PRAGMA data_version`` on a connection of its own: it changes when any other connection commits."""

    __slots__ = ("_conn", "_translate")

    def __init__(self, conn: SQLiteConnection | None, translate: Callable[[sqlite3.Error], KVError]) -> None:
        self._conn = conn
        self._translate = translate

    def __call__(self) -> int:
        conn = self._conn
        if conn is None:
            return 0  # an in-memory database has no other connections to hear from
        with conn.lock:
            try:
                version: int = conn.execute(SQL_DATA_VERSION).fetchone()[0]
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
        return version

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            with conn.lock, contextlib.suppress(sqlite3.Error):  # waits for a probe in flight on another thread
                conn.close()
