"""The statements of one write transaction on PostgreSQL (see ``base.Transaction``).

``write`` borrows the connection, takes the write lock and retries (or holds the transaction open); the
statements are ``sql``'s constants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from ..._errors import StorageError
from ..base import Current, PutRow
from ..transaction import SQLTransaction
from .sql import SQL_CURRENT_MANY, SQL_NEXT_VERSION, SQL_PUT, SQL_RESERVE_VERSIONS, SQL_UPSERT, TX_STATEMENTS


def one(
    conn: psycopg.Connection[Any] | psycopg.Cursor[Any], sql: str, params: tuple[object, ...] = ()
) -> tuple[Any, ...]:
    """The one row an aggregate or the counter row yields."""
    row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
    if row is None:
        raise StorageError(f"the statement {sql!r} returned no row: kvstore's tables are damaged")
    return row


def _first(cursor: psycopg.Cursor[Any]) -> Any:
    row: tuple[Any, ...] | None = cursor.fetchone()
    if row is None:
        raise StorageError("an upsert returned no row: kvstore's tables are damaged")
    return row[0]


class PostgresTx(SQLTransaction[psycopg.Cursor[Any]]):
    """The statements of one write transaction on PostgreSQL (see ``base.Transaction``).

    A lone commit draws its one version with SQL_NEXT_VERSION. A batch (a held transaction, which reserves
    ``chunk`` versions at a time, or a group's batch, which reserves all of them at once with ``reserve``)
    puts with one statement each: a batch's cost is its round trips, its flush being shared.
    """

    __slots__ = ("_batch", "_chunk", "_end", "_next", "_pipe")

    driver_error = psycopg.Error

    def __init__(self, conn: psycopg.Connection[Any], chunk: int = 1) -> None:
        # One cursor for every statement of the transaction: ``conn.execute`` makes a cursor per call, and
        # reusing one took the client's CPU for a SQL_UPSERT from 57-72 us to 39-57 us (1,000 a run, four
        # runs each). Every statement's rows are fetched before the next runs.
        super().__init__(conn.cursor(), TX_STATEMENTS)
        self._batch = chunk > 1
        self._chunk = chunk
        self._next = 1
        self._end = 0  # the last version reserved: none yet
        self._pipe: psycopg.Pipeline | None = None  # inside ``pipeline``

    def next_version(self) -> int:
        # The counter row is locked already (``write``'s SQL_LOCK), so whatever is reserved is this
        # transaction's alone: versions increase in draw order, and a lone commit writes the row once.
        version = self._next
        if version > self._end:
            if self._chunk == 1:
                version = self._end = one(self._conn, SQL_NEXT_VERSION)[0]
            else:
                self._reserve(self._chunk)
                version = self._next
        self._next = version + 1
        return version

    def reserve(self, count: int) -> None:
        # At once, before any body's savepoint: no body's rollback can undo it.
        if count > 1:
            self._batch = True
            self._reserve(count)

    def _reserve(self, count: int) -> None:
        end: int = one(self._conn, SQL_RESERVE_VERSIONS, (count,))[0]
        self._next, self._end = end - count + 1, end

    def _mark(self) -> tuple[int, int]:
        return self._next, self._end

    def _restore(self, mark: object) -> None:
        # A reservation made inside the savepoint was rolled back with it: forget it too.
        assert isinstance(mark, tuple)
        self._next, self._end = mark

    def upsert_later(self, row: PutRow, now_us: int) -> Callable[[], bool]:
        if self._pipe is None:
            return super().upsert_later(row, now_us)
        # A cursor of its own, read after the batch: in its pipeline the statement waits for no answer.
        cursor = self._conn.connection.cursor()
        cursor.execute(SQL_UPSERT, (row[0], row[1], now_us, *row))
        return lambda: bool(_first(cursor))

    @contextmanager
    def pipeline(self) -> Iterator[object]:
        # A batch of sets then waits for the database once, not once a set. Measured, 100 SQL_UPSERTs in a
        # transaction, six runs each: 108-404 us a statement one by one, 64-89 us pipelined. End to end on
        # the 2-core test machine, where the client's CPU rather than the round trips bounds a batch, less:
        # 64 threads x 50 sets, six alternating runs, 3,330-4,447/s (median 3,932) pipelined, 3,386-4,251/s
        # (median 3,695) not. Over a network each round trip saved is worth more.
        with self._conn.connection.pipeline() as pipe:
            self._pipe = pipe
            try:
                yield pipe
            finally:
                self._pipe = None

    def _changed_one(self, sql: str, params: Sequence[Any]) -> bool:
        cursor = self._conn.execute(sql, params)
        if self._pipe is not None:
            self._pipe.sync()  # in a pipeline the row count is known only once its answer is in
        return cursor.rowcount == 1

    def upsert(self, row: PutRow, now_us: int) -> bool:
        if not self._batch:
            # SQL_REPLACE_LIVE is the lighter statement for an existing key (measured inside a transaction,
            # 1,000 statements a run, four runs: 99-215 us against SQL_UPSERT's 128-271 us); for a new key
            # it takes SQL_PUT after it, a second round trip (180-393 us against 115-194 us).
            return super().upsert(row, now_us)
        replaced: bool = one(self._conn, SQL_UPSERT, (row[0], row[1], now_us, *row))[0]
        return replaced

    def put_many(self, rows: Sequence[PutRow]) -> None:
        # psycopg sends an executemany in pipeline mode: one round trip for the batch, not one per row.
        self._conn.executemany(SQL_PUT, rows)

    def current_many(self, namespace: str, keys: Sequence[str], now_us: int) -> dict[str, Current]:
        rows = self._conn.execute(SQL_CURRENT_MANY, (namespace, list(keys), now_us)).fetchall()
        return {key: (version, created_us) for key, version, created_us in rows}
