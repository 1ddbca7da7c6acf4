"""The PostgreSQL backend (psycopg 3): a connection pool, the write lock, retries and error translation.

The statements it runs are the named constants of ``sql``. Imported only when a store is
opened on a ``postgresql://`` URL, so SQLite users never import psycopg.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

try:
    import psycopg
    from psycopg import errors as pg_errors
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    from ..._errors import ConfigurationError

    raise ConfigurationError(
        'PostgreSQL needs the postgres extra: pip install "stampkv[postgres]"'
        ' (in a checkout: pip install ".[postgres]")'
    ) from exc

from ..._errors import (
    KVError,
    ReadOnlyStoreError,
    StorageError,
    StorageFullError,
    StoreBusyError,
    StoreClosedError,
    StoreUnavailableError,
)
from ..._migrate import HEAD, VERSION_TABLE, needs_upgrade, upgrade
from ..._mutations import Put
from ..base import Dump, Found, Progress, Row, Transaction, Whole, rows_within
from . import backup as copies
from .pool import Pool, PoolClosedError, PoolTimeoutError
from .queue import postgres_queue
from .sql import (
    SQL_COUNT,
    SQL_GET,
    SQL_GET_MANY,
    SQL_GET_WHOLE,
    SQL_HAS_VERSION_TABLE,
    SQL_LAST_VERSION,
    SQL_MIGRATION_LOCK,
    SQL_PURGE,
    SQL_REFRESH,
    SQL_REVISIONS,
    SQL_SCAN,
    SQL_SCAN_KEYS,
    SQL_SCAN_KEYS_REVERSE,
    SQL_SCAN_REVERSE,
    SQL_SIZE,
    SQL_STATS,
)
from .tx import PostgresTx, one
from .urls import conninfo, display_url
from .write import RETRY, Held, retrying

T = TypeVar("T")


class _VersionProbe:
    """The last committed version: it changes whenever any writer, anywhere, commits."""

    __slots__ = ("_backend",)

    def __init__(self, backend: PostgresBackend) -> None:
        self._backend = backend

    def __call__(self) -> int:
        return self._backend.last_version()

    def close(self) -> None:
        """Nothing to release: the probe borrows a pooled connection per call."""


class PostgresBackend:
    """kvstore's tables in one PostgreSQL database (the first schema on the connection's search_path).

    Connections come from a pool (``pool_size`` at most; a caller waits up to ``pool_timeout`` for one).
    Each runs in autocommit, so a read is one statement and one snapshot; a write opens a transaction and
    locks the counter row first. ``busy_timeout`` becomes the server's ``lock_timeout``.
    """

    def __init__(
        self, url: str, *, busy_timeout: float, pool_size: int, pool_timeout: float, connect_timeout: float
    ) -> None:
        self._where = f"PostgreSQL database {display_url(url)!r}"
        self._conninfo = conninfo(url)
        self._busy_ms = max(1, round(busy_timeout * 1000))  # lock_timeout 0 would mean "wait forever"
        self._connect_timeout = max(1, round(connect_timeout))
        self._pool_size = pool_size
        self._pool_timeout = pool_timeout
        self._closed = False
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.queue = postgres_queue(self._read, self._conn)
        self._prepare()
        self._pool = self._new_pool()

    # -- connections -------------------------------------------------------------------------------------

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=autocommit, connect_timeout=self._connect_timeout)
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"cannot connect to {self._where}: {str(exc).strip()}") from exc
        try:
            self._configure(conn)
        except psycopg.Error as exc:
            conn.close()
            raise self._translate(exc) from exc
        return conn

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # A writer waiting for the write lock gives up after the busy timeout, as under SQLite.
        conn.execute(f"SET lock_timeout = {self._busy_ms}")
        if not conn.autocommit:
            conn.commit()

    def _new_pool(self) -> Pool:
        return Pool(lambda: self._connect(autocommit=True), self._pool_size, self._pool_timeout)

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for a ``with`` block, with every driver error translated."""
        conn = self._take(fresh=False)
        try:
            yield conn
        except psycopg.Error as exc:
            raise self._translate(exc) from exc
        finally:
            self._pool.give_back(conn)

    def _take(self, *, fresh: bool) -> psycopg.Connection[Any]:
        if os.getpid() != self._pid:
            self._after_fork()
        try:
            return self._pool.take(fresh=fresh)
        except PoolTimeoutError as exc:
            raise StoreBusyError(
                f"no connection to {self._where} came free within the pool timeout of {self._pool_timeout} s"
            ) from exc
        except PoolClosedError as exc:
            raise StoreClosedError("the store is closed") from exc
        except psycopg.Error as exc:
            raise self._translate(exc) from exc

    def _read(self, fetch: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run a read; once more on a new connection if the pooled one had died (the server restarted, or
        dropped it while idle). Reads change nothing, so a second try is always safe. (``_conn`` spelled
        out: a generator context manager costs a read a microsecond.)"""
        for fresh in (False, True):
            conn = self._take(fresh=fresh)
            try:
                return fetch(conn)
            except psycopg.Error as exc:
                error = self._translate(exc)
                if fresh or type(error) is not StoreUnavailableError:  # only a lost connection is tried again
                    raise error from exc
                self._pool.discard_idle()
            finally:
                self._pool.give_back(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _after_fork(self) -> None:
        """In a forked child: a fresh pool (see the note on fork safety below)."""
        with self._lock:
            if os.getpid() != self._pid:
                _INHERITED.append(self._pool)
                self._pool = self._new_pool()
                self._pid = os.getpid()

    def _prepare(self) -> None:
        """Refuse a schema newer than this library; create or upgrade an older one."""
        conn = self._connect(autocommit=True)
        try:
            stale = needs_upgrade(self._revisions(conn))
        except psycopg.Error as exc:
            raise self._translate(exc) from exc
        finally:
            conn.close()
        if stale:
            self._migrate()

    def _revisions(self, conn: psycopg.Connection[Any]) -> list[str]:
        row = conn.execute(SQL_HAS_VERSION_TABLE, (VERSION_TABLE,)).fetchone()
        if row is None or not row[0]:
            return []
        return [found[0] for found in conn.execute(SQL_REVISIONS)]

    def _migrate(self) -> None:
        """Run alembic in one transaction under an advisory lock, so concurrent openers migrate once."""
        import sqlalchemy
        from sqlalchemy.pool import StaticPool

        conn = self._connect(autocommit=False)
        engine = sqlalchemy.create_engine("postgresql+psycopg://", creator=lambda: conn, poolclass=StaticPool)
        try:
            with engine.connect() as connection, connection.begin():
                connection.exec_driver_sql(SQL_MIGRATION_LOCK)
                # Another process may have migrated while this one waited for the lock: look again.
                if needs_upgrade(self._revisions(conn)):
                    upgrade(connection)
        except sqlalchemy.exc.DBAPIError as exc:
            orig = exc.orig
            raise (self._translate(orig) if isinstance(orig, psycopg.Error) else StorageError(str(exc))) from exc
        except psycopg.Error as exc:
            raise self._translate(exc) from exc
        except KVError:
            raise
        except Exception as exc:  # alembic's and SQLAlchemy's own errors: a broken migration environment
            raise StorageError(f"migrating the schema to revision {HEAD} failed: {exc}") from exc
        finally:
            engine.dispose()
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if os.getpid() == self._pid:
                self._pool.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- errors ------------------------------------------------------------------------------------------

    def _translate(self, exc: psycopg.Error) -> KVError:
        """The KVError for a psycopg error; the caller raises it ``from exc``."""
        if self._closed:
            return StoreClosedError("the store is closed")
        detail = str(exc).strip()
        if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.QueryCanceled, *RETRY)):
            return StoreBusyError(f"{self._where} is busy: the write lock or a row lock was not obtained ({detail})")
        if isinstance(exc, pg_errors.DiskFull | pg_errors.OutOfMemory):
            return StorageFullError(f"{self._where} is full ({detail})")
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction | pg_errors.InsufficientPrivilege):
            return ReadOnlyStoreError(f"{self._where} cannot be written ({detail})")
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailableError(f"{self._where} cannot be reached ({detail})")
        return StorageError(f"{self._where} failed: {detail}")

    # -- reads -------------------------------------------------------------------------------------------

    def get(self, namespace: str, key: str, now_us: int) -> Found | None:
        params = (namespace, key, now_us)
        row: Found | None = self._read(lambda conn: conn.execute(SQL_GET, params).fetchone())
        return row

    def get_whole(self, namespace: str, key: str, now_us: int) -> Whole | None:
        params = (namespace, key, now_us)
        row: Whole | None = self._read(lambda conn: conn.execute(SQL_GET_WHOLE, params).fetchone())
        return row

    def get_many(self, namespace: str, keys: Sequence[str], now_us: int) -> list[Row]:
        params = (namespace, list(dict.fromkeys(keys)), now_us)
        rows: list[Row] = self._read(lambda conn: conn.execute(SQL_GET_MANY, params).fetchall())
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
        sql = SQL_SCAN_REVERSE if reverse else SQL_SCAN
        return self._range(sql, namespace, start, end, resume, reverse, limit, now_us, max_bytes)

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
        sql = SQL_SCAN_KEYS_REVERSE if reverse else SQL_SCAN_KEYS
        keys: list[str] = [row[0] for row in self._range(sql, namespace, start, end, resume, reverse, limit, now_us)]
        return keys

    def _range(
        self,
        sql: str,
        namespace: str,
        start: str,
        end: str,
        resume: str | None,
        reverse: bool,
        limit: int | None,
        now_us: int,
        max_bytes: int | None = None,
    ) -> list[Any]:
        past = resume if resume is not None else end if reverse else ""
        params = (namespace, start, end, past, now_us, limit)
        if max_bytes is not None:
            rows: list[Any] = self._read(lambda conn: _streamed(conn, sql, params, max_bytes))
            return rows
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())  # Row, or (key,)
        return rows

    def count(self, namespace: str, start: str, end: str, now_us: int) -> int:
        found: int = self._read(lambda conn: one(conn, SQL_COUNT, (namespace, start, end, now_us)))[0]
        return found

    def last_version(self) -> int:
        version: int = self._read(lambda conn: one(conn, SQL_LAST_VERSION))[0]
        return version

    def change_probe(self) -> _VersionProbe:
        if self._closed:
            raise StoreClosedError("the store is closed")
        return _VersionProbe(self)

    def refresh(self, namespace: str, key: str, version: int, expires_us: int, now_us: int) -> bool:
        # Conditional on the version, so running it twice is harmless: it may retry like a read.
        params = (expires_us, namespace, key, version, now_us)
        return self._read(lambda conn: conn.execute(SQL_REFRESH, params).rowcount == 1)

    def dump(self, live_at: int | None) -> AbstractContextManager[Dump]:
        return copies.dump(self._conn, live_at, self._translate)

    def backup(self, target: str, progress: Progress | None) -> None:
        copies.backup(self._conn, target, self._busy_ms / 1000, progress, self._translate)

    def checkpoint(self, mode: str) -> tuple[bool, int, int]:
        return False, 0, 0  # PostgreSQL checkpoints its own WAL (CHECKPOINT needs privileges): nothing to do

    def stats(self, now_us: int) -> tuple[int, int, int, int, str, int | None, str]:
        def snapshot(conn: psycopg.Connection[Any]) -> tuple[int, int, int, int, str, int | None, str]:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot
                rows, expired, namespaces, version = one(conn, SQL_STATS, (now_us,))
                (size,) = one(conn, SQL_SIZE)
                revision = ",".join(self._revisions(conn))
            return rows - expired, expired, namespaces, version, revision, size, "postgresql"

        return self._read(snapshot)

    # -- writes ------------------------------------------------------------------------------------------

    def try_put(self, put: Put, expected: int | None, now_us: int) -> None:
        """Declined: every write takes the counter row's lock, which is the transaction ``transact`` runs."""
        return None

    def transact(self, body: Callable[[Transaction], T]) -> T:
        return retrying(self._conn, lambda conn: body(PostgresTx(conn)), lock=True)

    def begin(self) -> Held:
        return Held(self._take(fresh=False), self._pool.give_back, self._translate)

    def purge_batch(self, now_us: int, limit: int) -> int:
        return retrying(self._conn, lambda conn: conn.execute(SQL_PURGE, (now_us, limit, now_us)).rowcount, lock=False)


# -- fork safety -------------------------------------------------------------------------------------------
# A forked child must not use or close the parent's connections: closing one sends "terminate" on the socket
# the parent still uses. A child gets a fresh pool on first use, and the inherited pool stays referenced for
# the child's whole life, so nothing ever closes it there (psycopg itself never closes a connection that
# is garbage-collected in a process other than the one that opened it).
_INHERITED: list[object] = []


def _streamed(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...], max_bytes: int) -> list[Row]:
    """A scan read row by row (psycopg's single-row mode), stopped by ``rows_within``: a client-side
    cursor would receive every row of the statement's LIMIT before the first is looked at."""
    with conn.cursor() as cursor:
        stream = cursor.stream(sql, params)
        try:
            return rows_within(stream, max_bytes)
        finally:
            close = getattr(stream, "close", None)  # a generator: closing it cancels the rest of the query
            if close is not None:
                close()
