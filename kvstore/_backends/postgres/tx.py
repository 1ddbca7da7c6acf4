"""The statements of one write transaction on PostgreSQL (see ``base.Transaction``).

``backend`` borrows the connection, takes the write lock and retries; the statements are ``sql``'s
constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ..._errors import StorageError
from ..base import Current, PutRow
from ..transaction import SQLTransaction
from .sql import SQL_CURRENT_MANY, SQL_NEXT_VERSION, SQL_PUT, TX_STATEMENTS


def one(conn: psycopg.Connection[Any], sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...]:
    """The one row an aggregate or the counter row yields."""
    row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
    if row is None:
        raise StorageError(f"the statement {sql!r} returned no row: kvstore's tables are damaged")
    return row


class PostgresTx(SQLTransaction[psycopg.Connection[Any]]):
    """The statements of one write transaction on PostgreSQL (see ``base.Transaction``)."""

    __slots__ = ()

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        super().__init__(conn, TX_STATEMENTS)

    def next_version(self) -> int:
        # The counter row is locked already (the backend's SQL_LOCK): every commit writes it once.
        version: int = one(self._conn, SQL_NEXT_VERSION)[0]
        return version

    def put_many(self, rows: Sequence[PutRow]) -> None:
        # psycopg sends an executemany in pipeline mode: one round trip for the batch, not one per row.
        with self._conn.cursor() as cursor:
            cursor.executemany(SQL_PUT, rows)

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        rows = self._conn.execute(SQL_CURRENT_MANY, (namespace, list(keys), now_us)).fetchall()
        return {key: (version, created_us) for key, version, created_us in rows}
