"""The statements of one write transaction on PostgreSQL (see ``_backend.Transaction``).

``_postgres`` borrows the connection, takes the write lock and retries; the statements are
``_postgres_sql``'s constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ..._errors import StorageError
from ..base import Current, Found, PutRow
from .sql import (
    SQL_CURRENT,
    SQL_CURRENT_MANY,
    SQL_DELETE,
    SQL_DELETE_THROUGH,
    SQL_GET,
    SQL_NEXT_VERSION,
    SQL_PUT,
    SQL_PUT_IF_ABSENT,
    SQL_PUT_IF_VERSION,
    SQL_RANGE_BATCH,
    SQL_REPLACE_LIVE,
)


def one(conn: psycopg.Connection[Any], sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...]:
    """The one row an aggregate or the counter row yields."""
    row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
    if row is None:
        raise StorageError(f"the statement {sql!r} returned no row: kvstore's tables are damaged")
    return row


class PostgresTx:
    """The statements of one write transaction (see ``_backend.Transaction``); the write lock is held."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def current(self, namespace: str, key: str, now_us: int) -> Current | None:
        row: Current | None = self._conn.execute(SQL_CURRENT, (namespace, key, now_us)).fetchone()
        return row

    def next_version(self) -> int:
        version: int = one(self._conn, SQL_NEXT_VERSION)[0]
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
            (namespace, key, value, content_type, metadata, version, created_us, updated_us, expires_us, ttl_us,
             refresh_on_access),
        )  # fmt: skip

    def replace_live(self, row: PutRow, now_us: int) -> bool:
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh = row
        params = (value, content_type, metadata, version, updated_us, expires_us, ttl_us, refresh, namespace, key)
        return self._conn.execute(SQL_REPLACE_LIVE, (*params, now_us)).rowcount == 1

    def put_if(self, row: PutRow, expected: int | None, now_us: int) -> bool:
        if expected is None:
            return self._conn.execute(SQL_PUT_IF_ABSENT, (*row, now_us)).rowcount == 1
        namespace, key, value, content_type, metadata, version, _, updated_us, expires_us, ttl_us, refresh = row
        params = (value, content_type, metadata, version, updated_us, expires_us, ttl_us, refresh, namespace, key)
        return self._conn.execute(SQL_PUT_IF_VERSION, (*params, expected, now_us)).rowcount == 1

    def put_many(self, rows: Sequence[PutRow]) -> None:
        # psycopg sends an executemany in pipeline mode: one round trip for the batch, not one per row.
        with self._conn.cursor() as cursor:
            cursor.executemany(SQL_PUT, rows)

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        rows = self._conn.execute(SQL_CURRENT_MANY, (namespace, list(keys), now_us)).fetchall()
        return {key: (version, created_us) for key, version, created_us in rows}

    def delete(self, namespace: str, key: str) -> None:
        self._conn.execute(SQL_DELETE, (namespace, key))

    def read(self, namespace: str, key: str, now_us: int) -> Found | None:
        row: Found | None = self._conn.execute(SQL_GET, (namespace, key, now_us)).fetchone()
        return row

    def range_batch(self, namespace: str, start: str, end: str, limit: int, now_us: int) -> list[tuple[str, int]]:
        return self._conn.execute(SQL_RANGE_BATCH, (now_us, namespace, start, end, limit)).fetchall()

    def delete_through(self, namespace: str, start: str, last: str) -> None:
        self._conn.execute(SQL_DELETE_THROUGH, (namespace, start, last))
