"""The statements of one write transaction, for any SQL dialect: one class, the statements passed in.

Both dialects run the same statements with the same parameters in the same order (``Statements`` names
them; ``sqlite/sql.py`` and ``postgres/sql.py`` each build one), so the transaction is written once. A
dialect subclasses it only for what differs: how a version is drawn, how a run of puts is sent, and how
many keys are read at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from .base import Current, Found, PutRow


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


class SQLTransaction(Generic[C]):
    """The statements of one write transaction (see ``base.Transaction``) on a connection of type ``C``,
    which a dialect's subclass names; the write lock is held."""

    __slots__ = ("_conn", "_sql")

    def __init__(self, conn: C, sql: Statements) -> None:
        self._conn = conn
        self._sql = sql

    def current(self, namespace: str, key: str, now_us: int) -> Current | None:
        row: Current | None = self._conn.execute(self._sql.current, (namespace, key, now_us)).fetchone()
        return row

    def next_version(self) -> int:
        raise NotImplementedError  # each dialect draws its own way

    def put(self, row: PutRow) -> None:
        self._conn.execute(self._sql.put, row)

    def replace_live(self, row: PutRow, now_us: int) -> bool:
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh = row
        params = (value, content_type, metadata, version, updated_us, expires_us, ttl_us, refresh, namespace, key)
        return self._conn.execute(self._sql.replace_live, (*params, now_us)).rowcount == 1

    def put_if(self, row: PutRow, expected: int | None, now_us: int) -> bool:
        if expected is None:
            return self._conn.execute(self._sql.put_if_absent, (*row, now_us)).rowcount == 1
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh = row
        params = (value, content_type, metadata, version, updated_us, expires_us, ttl_us, refresh, namespace, key)
        return self._conn.execute(self._sql.put_if_version, (*params, expected, now_us)).rowcount == 1

    def put_many(self, rows: Sequence[PutRow]) -> None:
        raise NotImplementedError  # each dialect sends a run of puts its own way

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        raise NotImplementedError  # each dialect reads many keys its own way

    def delete(self, namespace: str, key: str) -> None:
        self._conn.execute(self._sql.delete, (namespace, key))

    def read(self, namespace: str, key: str, now_us: int) -> Found | None:
        row: Found | None = self._conn.execute(self._sql.read, (namespace, key, now_us)).fetchone()
        return row

    def range_batch(self, namespace: str, start: str, end: str, limit: int, now_us: int) -> list[tuple[str, int]]:
        rows: list[tuple[str, int]] = self._conn.execute(
            self._sql.range_batch, (now_us, namespace, start, end, limit)
        ).fetchall()
        return rows

    def delete_through(self, namespace: str, start: str, last: str) -> None:
        self._conn.execute(self._sql.delete_through, (namespace, start, last))
