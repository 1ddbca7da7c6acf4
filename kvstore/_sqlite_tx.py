"""SQLite connections as kvstore uses them, and the statements of one write transaction on one.

``_sqlite`` opens the connections and runs the transactions; the statements are ``_sqlite_sql``'s constants.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Final

from ._backend import Current, PutRow, Row
from ._errors import KVError
from ._sqlite_sql import (
    SQL_CURRENT,
    SQL_CURRENT_MANY,
    SQL_DATA_VERSION,
    SQL_DELETE,
    SQL_DELETE_THROUGH,
    SQL_GET,
    SQL_NEXT_VERSION,
    SQL_PUT,
    SQL_PUT_IF_ABSENT,
    SQL_PUT_IF_VERSION,
    SQL_RANGE_BATCH,
    SQL_REPLACE_LIVE,
    SQL_STEP_VERSION,
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
    # The versionstamp counter as this connection last drew it (-1: not yet); see SQLiteTx.next_version.
    last_version: int


class SQLiteTx:
    """The statements of one write transaction (see ``_backend.Transaction``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: SQLiteConnection) -> None:
        self._conn = conn

    def current(self, namespace: str, key: str, now_us: int) -> Current | None:
        row: Current | None = self._conn.execute(SQL_CURRENT, (namespace, key, now_us)).fetchone()
        return row

    def next_version(self) -> int:
        # Guess that no other connection has drawn since this one did: then the counter steps from the
        # known value with a plain UPDATE. A wrong guess (another writer, a rolled-back transaction)
        # changes nothing, and the counter is read as it is. Either way the version is the counter + 1,
        # written in this transaction, under the write lock.
        conn = self._conn
        known = conn.last_version
        if known >= 0 and conn.execute(SQL_STEP_VERSION, (known + 1, known)).rowcount == 1:
            version = known + 1
        else:
            version = conn.execute(SQL_NEXT_VERSION).fetchone()[0]
        conn.last_version = version
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

    def read(self, namespace: str, key: str, now_us: int) -> Row | None:
        row: Row | None = self._conn.execute(SQL_GET, (namespace, key, now_us)).fetchone()
        return row

    def range_batch(self, namespace: str, start: str, end: str, limit: int, now_us: int) -> list[tuple[str, int]]:
        return self._conn.execute(SQL_RANGE_BATCH, (now_us, namespace, start, end, limit)).fetchall()

    def delete_through(self, namespace: str, start: str, last: str) -> None:
        self._conn.execute(SQL_DELETE_THROUGH, (namespace, start, last))


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
