"""The SQLite backend: connections per thread, reads, transactions, and its side of fork safety.

Its statements are ``sql``'s constants; opening a database is ``open``, errors are translated by ``errors``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..._errors import ForkedStoreError, KVError, StoreClosedError
from ..._migrate import needs_upgrade
from ..._mutations import Put
from ..base import Dump, Found, Progress, Row, Transaction, Whole, rows_within
from .checkpoint import checkpoint, relieve, relieving, when_full
from .errors import FULL, primary_code, rolled_back, translate
from .fork import BACKENDS, FORKED, INHERITED_FILES, identity
from .open import check_header, connect, migrate, revisions, use_wal
from .queue import sqlite_queue
from .readonly import Place, place
from .sql import (
    SQL_COUNT,
    SQL_GET,
    SQL_GET_MANY,
    SQL_GET_WHOLE,
    SQL_PURGE,
    SQL_REFRESH,
    SQL_SCAN,
    SQL_SCAN_AFTER,
    SQL_SCAN_KEYS,
    SQL_SCAN_KEYS_AFTER,
    SQL_SCAN_KEYS_REVERSE,
    SQL_SCAN_REVERSE,
)
from .tx import IN_CHUNK, DataVersionProbe, SQLiteConnection, SQLiteTx, put_one
from .write import Held, transact

if TYPE_CHECKING:
    from .loopread import LoopReader

T = TypeVar("T")

_NO_LIMIT: Final = -1  # SQLite's LIMIT for "all rows"


class SQLiteBackend:
    """kvstore's tables in one SQLite file (or one in-memory database).

    Each thread gets its own connection; an in-memory database has a single connection behind a lock,
    because every connection to ``:memory:`` would open a different, empty database.
    """

    def __init__(self, path: str, *, busy_timeout: float, synchronous: str) -> None:
        self._path = path
        self._memory = path == ":memory:"
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._closed = False
        self._local = threading.local()
        self._conns: weakref.WeakSet[SQLiteConnection] = weakref.WeakSet()
        self._shared: SQLiteConnection | None = None  # the one connection of an in-memory database
        self._registry = threading.Lock()
        self._forked = False
        self._place = Place(path, None)  # how its connections open it: read-write, or read-only and why
        self.queue = sqlite_queue(self._conn, self._translate)
        BACKENDS.add(self)
        try:
            if not self._memory and identity(path) in INHERITED_FILES:
                raise ForkedStoreError(FORKED)
            if not self._memory:
                check_header(self._path)
                self._place = place(self._path)
            self._prepare(self._conn())
        except BaseException:
            self.close()
            raise

    # -- connections -------------------------------------------------------------------------------------

    def _conn(self) -> SQLiteConnection:
        try:
            conn: SQLiteConnection = self._local.conn
        except AttributeError:
            conn = self._open()
        return conn

    def _open(self) -> SQLiteConnection:
        with self._registry:
            if self._closed:
                raise StoreClosedError("the store is closed")
            if self._forked:
                raise ForkedStoreError(FORKED)
            if self._shared is not None:
                conn = self._shared
            else:
                conn = self._connect()
                self._conns.add(conn)
                if self._memory:
                    self._shared = conn
        self._local.conn = conn
        return conn

    def _connect(self) -> SQLiteConnection:
        try:
            return connect(self._place.target, self._busy_timeout, self._synchronous)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check the schema revision, turn on WAL, and migrate if the schema is missing or older.

        The revision is read before anything is written, so a file that is not SQLite, or whose schema
        is newer than this library, is refused untouched.
        """
        try:
            stale = needs_upgrade(revisions(conn))
            if not self._memory and self._place.reason is None:
                use_wal(conn, self._busy_timeout)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        if stale:
            migrate(conn, self._translate)

    def close(self) -> None:
        with self._registry:
            self._closed = True
            conns = list(self._conns)
            self._conns = weakref.WeakSet()
            self._shared = None
        for conn in conns:
            with conn.lock, contextlib.suppress(sqlite3.Error):  # waits for a use in flight on another thread
                conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- fork safety (see ``fork``) ---------------------------------------------------------------------

    def before_fork(self) -> tuple[list[object], tuple[int, int] | None]:
        if self._memory:
            return [], None  # the child owns a private copy of an in-memory database
        return list(self._conns), identity(self._path)

    def after_fork_in_child(self) -> None:
        self._registry = threading.Lock()
        if self._memory:
            # The child keeps using the one connection of its copy, behind a lock of its own.
            if self._shared is not None:
                self._shared.lock = threading.RLock()
            return
        self._local = threading.local()
        self._conns = weakref.WeakSet()
        self._forked = True

    # -- errors ------------------------------------------------------------------------------------------

    def _translate(self, exc: sqlite3.Error) -> KVError:
        """The KVError for a sqlite3 error; the caller raises it ``from exc``."""
        where = "in-memory database" if self._memory else f"database {self._path!r}"
        path, readonly = None if self._memory else self._path, self._place.reason
        return translate(
            exc, where=where, busy_timeout=self._busy_timeout, closed=self._closed, path=path, readonly=readonly
        )

    # -- reads -------------------------------------------------------------------------------------------

    def get(self, namespace: str, key: str, now_us: int) -> Found | None:
        try:
            conn: SQLiteConnection = self._local.conn
        except AttributeError:
            conn = self._open()
        lock = conn.lock
        lock.acquire()  # not ``with``, which costs twice as much, on the busiest path of all
        try:
            row: Found | None = conn.reader.execute(SQL_GET, (namespace, key, now_us)).fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        finally:
            lock.release()
        return row

    def get_whole(self, namespace: str, key: str, now_us: int) -> Whole | None:
        conn = self._conn()
        with conn.lock:
            try:
                row: Whole | None = conn.reader.execute(SQL_GET_WHOLE, (namespace, key, now_us)).fetchone()
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
        return row

    def get_many(self, namespace: str, keys: Sequence[str], now_us: int) -> list[Row]:
        unique = list(dict.fromkeys(keys))
        chunks = [unique[i : i + IN_CHUNK] for i in range(0, len(unique), IN_CHUNK)]
        rows: list[Row] = []
        conn = self._conn()
        with conn.lock:
            # One snapshot across the chunks; a write_batch block's open transaction is one already.
            began = len(chunks) > 1 and not conn.in_transaction
            try:
                if began:
                    conn.execute("BEGIN")
                for chunk in chunks:
                    sql = SQL_GET_MANY + "(" + ", ".join("?" * len(chunk)) + ")"
                    rows.extend(conn.reader.execute(sql, (namespace, now_us, *chunk)))
                if began:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):  # the original error says more
                    if began and conn.in_transaction:
                        conn.execute("ROLLBACK")
                raise self._translate(exc) from exc
        return rows

    def scan(
        self,
        namespace: str,
        start: str,
        end: str,
        resume: str | None,
        reverse: bool,
        limit: int | None,
        now_us: int,
        max_bytes: int | None = None,
    ) -> list[Row]:
        sqls = (SQL_SCAN, SQL_SCAN_AFTER, SQL_SCAN_REVERSE)
        return self._range(sqls, namespace, start, end, resume, reverse, limit, now_us, max_bytes)

    def scan_keys(
        self,
        namespace: str,
        start: str,
        end: str,
        resume: str | None,
        reverse: bool,
        limit: int | None,
        now_us: int,
    ) -> list[str]:
        sqls = (SQL_SCAN_KEYS, SQL_SCAN_KEYS_AFTER, SQL_SCAN_KEYS_REVERSE)
        keys: list[str] = [row[0] for row in self._range(sqls, namespace, start, end, resume, reverse, limit, now_us)]
        return keys

    def _range(
        self,
        sqls: tuple[str, str, str],
        namespace: str,
        start: str,
        end: str,
        resume: str | None,
        reverse: bool,
        limit: int | None,
        now_us: int,
        max_bytes: int | None = None,
    ) -> list[Any]:
        """Run a range statement (from, after, reverse) with one bound on each side of the key.

        Past the resume key means below it in reverse, above it otherwise; the tighter of the range's
        bound and the resume key is the one SQLite seeks on. (A cursor is checked to belong to its listing,
        but its key may still lie outside the range: then the range's own bound is the tighter.)
        """
        sql = sqls[0]
        if resume is not None:
            if reverse:
                sql, end = sqls[2], min(end, resume)
            elif resume >= start:
                sql, start = sqls[1], resume
        elif reverse:
            sql = sqls[2]
        params = (namespace, start, end, now_us, _NO_LIMIT if limit is None else limit)
        conn = self._conn()
        with conn.lock:
            try:
                cursor = conn.reader.execute(sql, params)
                # Row by row under max_bytes: a page of large values stops reading where it is full.
                return cursor.fetchall() if max_bytes is None else rows_within(cursor, max_bytes)
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def count(self, namespace: str, start: str, end: str, now_us: int) -> int:
        conn = self._conn()
        with conn.lock:
            try:
                found: int = conn.execute(SQL_COUNT, (namespace, start, end, now_us)).fetchone()[0]
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
        return found

    def loop_reader(self) -> LoopReader:
        """Reads for an event loop's thread, which never wait (``loopread``): on an in-memory database on its
        one connection, taken only when free; on a file on a connection of their own, closed with the others."""
        # Imported here, as figures in stats: only the async API and info() need them, and at module level
        # they cost 1.6 million instructions (callgrind) of every ``import kvstore``.
        from .loopread import LoopReader, loop_connection

        with self._registry:
            if self._closed:
                raise StoreClosedError("the store is closed")
            conn = self._shared or loop_connection(self._place.target, self._synchronous, self._translate)
            self._conns.add(conn)
        return LoopReader(conn, self._translate)

    def change_probe(self) -> DataVersionProbe:
        if self._memory:
            return DataVersionProbe(None, self._translate)
        with self._registry:
            if self._closed:
                raise StoreClosedError("the store is closed")
            # A connection of its own: data_version ignores commits made on the connection that asks.
            conn = self._connect()
            self._conns.add(conn)
        return DataVersionProbe(conn, self._translate)

    def refresh(self, namespace: str, key: str, version: int, expires_us: int, now_us: int) -> bool:
        conn = self._conn()
        with conn.lock:
            try:
                cursor = conn.execute(SQL_REFRESH, (expires_us, namespace, key, version, now_us))
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
        return cursor.rowcount == 1

    def dump(self, live_at: int | None) -> AbstractContextManager[Dump]:
        # On first use: with tempfile, which it needs, it would add 5 ms to every import of kvstore.
        from . import backup as copies

        return copies.dump(self._source(), self._place.target, self._busy_timeout, live_at)

    def backup(self, target: str, progress: Progress | None) -> None:
        from . import backup as copies

        copies.backup(self._source(), self._place.target, target, self._busy_timeout, progress)

    def integrity(self, quick: bool) -> str:
        """SQLite's integrity_check (or quick_check) of the database: "ok", or what is wrong (``kv.verify``)."""
        from . import backup as copies

        return copies.integrity(self._source(), self._place.target, self._busy_timeout, quick)

    def _source(self) -> SQLiteConnection:
        """What a copy starts from (``backup``): this thread's connection, an in-memory database's only one."""
        if self._closed:  # a copy reads on a new connection, which a closed store must not open
            raise StoreClosedError("the store is closed")
        return self._conn()

    def stats(self, now_us: int) -> tuple[int, int, int, int, str, int | None, str]:
        """(rows, expired rows, namespaces, last version, schema revision, file bytes, journal mode)."""
        from .stats import figures  # on first use, as loopread's in loop_reader

        conn = self._conn()
        try:
            return figures(conn, now_us, memory=self._memory)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    # -- writes ------------------------------------------------------------------------------------------

    def _write(self, body: Callable[[SQLiteConnection], T]) -> T:
        try:
            conn: SQLiteConnection = self._local.conn
        except AttributeError:
            conn = self._open()
        return when_full(conn, lambda: transact(conn, body, self._translate))  # one more try if space comes back

    def try_put(self, put: Put, expected: int | None, now_us: int) -> tuple[int, bool] | None:
        try:
            conn: SQLiteConnection = self._local.conn
        except AttributeError:
            conn = self._open()
        with conn.lock:
            try:
                return put_one(conn, put, expected, now_us)
            except sqlite3.Error as exc:
                if not rolled_back(exc):
                    conn.block.forfeit()  # as for a failed COMMIT
                elif primary_code(exc) == FULL and relieve(conn):
                    return None  # the space is back: the caller runs the write through transact
                raise self._translate(exc) from exc

    def transact(self, body: Callable[[Transaction], T]) -> T:
        return self._write(lambda conn: body(SQLiteTx(conn)))

    def checkpoint(self, mode: str) -> tuple[bool, int, int]:
        return checkpoint(self._conn(), mode, self._translate)

    def begin(self) -> Held:
        return Held(conn := self._conn(), relieving(conn, self._translate))  # a full disk: relieved for the next

    def purge_batch(self, now_us: int, limit: int) -> int:
        return self._write(lambda conn: conn.execute(SQL_PURGE, (now_us, limit)).rowcount)
