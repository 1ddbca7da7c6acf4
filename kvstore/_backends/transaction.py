"""The statements of one write transaction, for any SQL dialect: one class, the statements passed in.

Both dialects run the same statements with the same parameters in the same order (``Statements`` names
them; ``sqlite/sql.py`` and ``postgres/sql.py`` each build one), so the transaction is written once. A
dialect subclasses it only for what differs: how a version is drawn, how a run of puts is sent, how many
keys are read at once, its driver's error, and what it keeps outside the database that a rollback to a
savepoint must undo too (``_mark`` / ``_restore``: the versions it has reserved).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from .base import Current, PutRow, Transaction, Whole


class Statements(NamedTuple):
    """The SQL of a write transaction, in one dialect."""

    current: str
    read: str
    put: str
    replace_live: str
    put_if_absent: str
    put_if_version: str
    delete: str
    range_batch: str
    delete_through: str
    savepoint: str
    release: str
    rollback_to: str


class Cursor(Protocol):
    """What a transaction reads of a statement's cursor (sqlite3's and psycopg's alike)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What a transaction needs of a connection: ``execute(sql, params)`` (sqlite3's and psycopg's alike)."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Cursor: ...


C = TypeVar("C", bound=Connection)
T = TypeVar("T")


class SQLTransaction(Generic[C]):
    """The statements of one write transaction (see ``base.Transaction``) on a connection of type ``C``,
    which a dialect's subclass names; the write lock is held."""

    __slots__ = ("_conn", "_sql")

    driver_error: ClassVar[type[Exception]]
    """The dialect's driver error: never a body's own (see ``attempt``)."""

    def __init__(self, conn: C, sql: Statements) -> None:
        self._conn = conn
        self._sql = sql

    def execute(self, sql: str, params: Sequence[Any], /) -> Cursor:
        return self._conn.execute(sql, params)

    def current(self, namespace: str, key: str, now_us: int) -> Current | None:
        row: Current | None = self._conn.execute(self._sql.current, (namespace, key, now_us)).fetchone()
        return row

    def next_version(self) -> int:
        raise NotImplementedError  # each dialect draws its own way

    def put(self, row: PutRow) -> None:
        self._conn.execute(self._sql.put, row)

    def replace_live(self, row: PutRow, now_us: int) -> bool:
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh, crc = row
        params = (value, content_type, metadata, version, updated_us, expires_us, ttl_us, refresh, crc, namespace, key)
        return self._changed_one(self._sql.replace_live, (*params, now_us))

    def put_if(self, row: PutRow, expected: int | None, now_us: int) -> bool:
        if expected is None:
            return self._changed_one(self._sql.put_if_absent, (*row, now_us))
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh, crc = row
        params = (value, content_type, metadata, version, updated_us, expires_us, ttl_us, refresh, crc, namespace, key)
        return self._changed_one(self._sql.put_if_version, (*params, expected, now_us))

    def _changed_one(self, sql: str, params: Sequence[Any]) -> bool:
        """Run a write of one row at most: whether it changed one."""
        return self._conn.execute(sql, params).rowcount == 1

    def put_many(self, rows: Sequence[PutRow]) -> None:
        raise NotImplementedError  # each dialect sends a run of puts its own way

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        raise NotImplementedError  # each dialect reads many keys its own way

    def delete(self, namespace: str, key: str) -> None:
        self._conn.execute(self._sql.delete, (namespace, key))

    def read(self, namespace: str, key: str, now_us: int) -> Whole | None:
        row: Whole | None = self._conn.execute(self._sql.read, (namespace, key, now_us)).fetchone()
        return row

    def range_batch(self, namespace: str, start: str, end: str, limit: int, now_us: int) -> list[tuple[str, int]]:
        rows: list[tuple[str, int]] = self._conn.execute(
            self._sql.range_batch, (now_us, namespace, start, end, limit)
        ).fetchall()
        return rows

    def delete_through(self, namespace: str, start: str, last: str) -> None:
        self._conn.execute(self._sql.delete_through, (namespace, start, last))

    def upsert(self, row: PutRow, now_us: int) -> bool:
        # Replace a live entry in place (one statement when the key exists), else put.
        replaced = self.replace_live(row, now_us)
        if not replaced:
            self.put(row)
        return replaced

    def upsert_later(self, row: PutRow, now_us: int) -> Callable[[], bool]:
        replaced = self.upsert(row, now_us)
        return lambda: replaced

    def reserve(self, count: int) -> None:
        """A hint that ``count`` draws follow; a dialect that can draw them at once overrides it."""

    def pipeline(self) -> AbstractContextManager[object]:
        return nullcontext()

    def attempt(self, body: Callable[[Transaction], T], isolated: bool) -> tuple[bool, Any]:
        if not isolated:
            try:
                return True, body(self)
            except self.driver_error:
                raise
            except Exception as exc:
                return False, exc
        execute = self._conn.execute
        sql = self._sql
        execute(sql.savepoint, ())
        mark = self._mark()
        try:
            result = body(self)
        except self.driver_error:
            raise
        except Exception as exc:
            execute(sql.rollback_to, ())
            execute(sql.release, ())  # ROLLBACK TO keeps the savepoint open
            self._restore(mark)
            return False, exc
        execute(sql.release, ())
        return True, result

    def _mark(self) -> object:
        """What a dialect keeps outside the database and a savepoint's rollback must undo (see ``attempt``)."""
        return None

    def _restore(self, mark: object) -> None:
        """Undo, after a rollback to a savepoint, what changed outside the database since ``_mark``."""
