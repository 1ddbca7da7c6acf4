"""SQLite connections as kvstore uses them, and the statements of one write transaction on one.

``_sqlite`` opens the connections and runs the transactions; the statements are ``_sqlite_sql``'s constants.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Final

from ..._errors import KVError
from ..base import UNCONDITIONAL, Current, Found, PutRow
from .sql import (
    SQL_CURRENT,
    SQL_CURRENT_MANY,
    SQL_DATA_VERSION,
    SQL_DELETE,
    SQL_DELETE_THROUGH,
    SQL_GET,
    SQL_ONE_PUT_IF_ABSENT,
    SQL_ONE_PUT_IF_VERSION,
    SQL_ONE_REPLACE_LIVE,
    SQL_PUT,
    SQL_PUT_IF_ABSENT,
    SQL_PUT_IF_VERSION,
    SQL_RANGE_BATCH,
    SQL_READ_VERSION,
    SQL_REPLACE_LIVE,
    SQL_RESERVE,
)

IN_CHUNK: Final = 500  # keys per IN (...) list; far below SQLite's bound-parameter limit
# Versionstamps per reserved block (see _sqlite_sql.SQL_RESERVE): one counter write per this many commits
# of one connection, and at most this large a gap where another connection takes over.
BLOCK: Final = 1024


class SQLiteConnection(sqlite3.Connection):
    """A connection that can be weakly referenced (a dead thread's connection is freed, and closed) and
    carries the lock its users hold around each use.

    The lock is uncontended in normal use: each thread has its own connection. It is there because
    closing an sqlite3 connection while another thread executes on it crashes the interpreter, so
    ``close()`` takes every connection's lock first. An in-memory store's single connection is shared,
    and its lock then also serialises the threads.
    """

    lock: threading.RLock
    # This connection's block of versionstamps: the next one to draw, and the block's end, which is the
    # counter's value while the block is still this connection's (-1: no block). See SQLiteTx.next_version.
    block_next: int
    block_end: int
    # One cursor for every read, made once: ``execute`` on the connection builds a cursor per call, which
    # costs more than a third of the driver's work for a primary-key read. The reads run their statements
    # to the end (a unique key has one row; lists are fetched whole), so no statement stays open on it.
    reader: sqlite3.Cursor


class SQLiteTx:
    """The statements of one write transaction (see ``_backend.Transaction``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: SQLiteConnection) -> None:
        self._conn = conn

    def current(self, namespace: str, key: str, now_us: int) -> Current | None:
        row: Current | None = self._conn.execute(SQL_CURRENT, (namespace, key, now_us)).fetchone()
        return row

    def next_version(self) -> int:
        # Inside the write lock, the counter row says whether this connection's block is still its own
        # (nobody has reserved since); if not, or it is used up, reserve the next block. The caller
        # (``SQLiteBackend._write``) undoes the draw if the transaction does not commit.
        conn = self._conn
        counter: int = conn.execute(SQL_READ_VERSION).fetchone()[0]
        version = conn.block_next
        if counter != conn.block_end or version > counter:
            version = counter + 1
            conn.block_end = counter + BLOCK
            conn.execute(SQL_RESERVE, (conn.block_end,))
        conn.block_next = version + 1
        return version

    def put(
        self,
        namespace: str,
        key: str,
        value: bytes,
        content_type: str,
        metadata: str | None,
        version: int,
        created_us: int,
        updated_us: int,
        expires_us: int | None,
        ttl_us: int | None,
        refresh_on_access: bool,
    ) -> None:
        self._conn.execute(
            SQL_PUT,
            (
                namespace,
                key,
                value,
                content_type,
                metadata,
                version,
                created_us,
                updated_us,
                expires_us,
                ttl_us,
                refresh_on_access,
            ),
        )

    def replace_live(self, row: PutRow, now_us: int) -> bool:
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh = row
        params = (
            value,
            content_type,
            metadata,
            version,
            updated_us,
            expires_us,
            ttl_us,
            refresh,
            namespace,
            key,
            now_us,
        )
        return self._conn.execute(SQL_REPLACE_LIVE, params).rowcount == 1

    def put_if(self, row: PutRow, expected: int | None, now_us: int) -> bool:
        if expected is None:
            return self._conn.execute(SQL_PUT_IF_ABSENT, (*row, now_us)).rowcount == 1
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh = row
        params = (value, content_type, metadata, version, updated_us, expires_us, ttl_us, refresh, namespace, key)
        return self._conn.execute(SQL_PUT_IF_VERSION, (*params, expected, now_us)).rowcount == 1

    def put_many(self, rows: Sequence[PutRow]) -> None:
        self._conn.executemany(SQL_PUT, rows)

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        found: dict[str, Current] = {}
        for i in range(0, len(keys), IN_CHUNK):
            chunk = keys[i : i + IN_CHUNK]
            sql = SQL_CURRENT_MANY + "(" + ", ".join("?" * len(chunk)) + ")"
            for key, version, created_us in self._conn.execute(sql, (namespace, now_us, *chunk)):
                found[key] = (version, created_us)
        return found

    def delete(self, namespace: str, key: str) -> None:
        self._conn.execute(SQL_DELETE, (namespace, key))

    def read(self, namespace: str, key: str, now_us: int) -> Found | None:
        row: Found | None = self._conn.execute(SQL_GET, (namespace, key, now_us)).fetchone()
        return row

    def range_batch(self, namespace: str, start: str, end: str, limit: int, now_us: int) -> list[tuple[str, int]]:
        return self._conn.execute(SQL_RANGE_BATCH, (now_us, namespace, start, end, limit)).fetchall()

    def delete_through(self, namespace: str, start: str, last: str) -> None:
        self._conn.execute(SQL_DELETE_THROUGH, (namespace, start, last))


def put_one(
    conn: SQLiteConnection,
    namespace: str,
    key: str,
    value: bytes,
    content_type: str,
    metadata: str | None,
    expires_us: int | None,
    ttl_us: int | None,
    refresh_on_access: bool,
    expected: int | None,
    now_us: int,
) -> tuple[int, bool] | None:
    """``Backend.try_put`` on ``conn``, whose lock the caller holds: one statement in autocommit (two for a
    write with no condition that finds no live entry), drawing from the connection's block."""
    version, end = conn.block_next, conn.block_end
    if version > end:
        return None  # no block (or used up): reserving one takes a transaction
    execute = conn.execute
    if expected is None or expected == UNCONDITIONAL:
        found = False
        if expected is not None:  # replace a live entry first, keeping its created_us
            params = (value, content_type, metadata, version, now_us, expires_us, ttl_us, refresh_on_access)
            found = execute(SQL_ONE_REPLACE_LIVE, (*params, namespace, key, now_us, end)).rowcount == 1
        if not found:
            row = (namespace, key, value, content_type, metadata, version, now_us, now_us, expires_us, ttl_us)
            if execute(SQL_ONE_PUT_IF_ABSENT, (*row, refresh_on_access, end, now_us)).rowcount != 1:
                return None
    else:
        params = (value, content_type, metadata, version, now_us, expires_us, ttl_us, refresh_on_access)
        if execute(SQL_ONE_PUT_IF_VERSION, (*params, namespace, key, expected, now_us, end)).rowcount != 1:
            return None
        found = True
    conn.block_next = version + 1
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
