"""Copies out of PostgreSQL, each in one REPEATABLE READ snapshot while writers go on: a dump of the rows
(export), and a backup into a new SQLite file that ``KVStore`` opens like any other.

The rows stream through a server-side cursor, a batch of them per round trip, so memory holds one batch
whatever the size of the table; a batch is sized by the bytes of the rows before it, so large values come
a few at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final

import psycopg

from ..._errors import KVError
from ..base import Dump, Progress, PutRow
from ..sqlite.backup import write_database
from .sql import SQL_COUNT_ALL, SQL_COUNT_ALL_LIVE, SQL_DUMP, SQL_DUMP_LIVE, SQL_LAST_VERSION
from .tx import one

Connection = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
"""The backend's pooled connection for a ``with`` block, driver errors translated."""

# A fetch brings about this many bytes of values, and between 1 and FETCH_ROWS rows: a round trip a fetch, so
# 20,000 rows streamed at 3.27 us a row with at most 100 a fetch, 2.74 us with 1,000, 2.97 us with 5,000.
FETCH_BYTES: Final = 8 * 1024 * 1024
FETCH_ROWS: Final = 1000
_ROW_OVERHEAD: Final = 200  # bytes of a row besides its value: key, times, metadata, Python objects


@contextmanager
def _snapshot(
    connection: Connection, live_at: int | None, translate: Callable[[psycopg.Error], KVError]
) -> Iterator[tuple[int, int, Iterator[PutRow]]]:
    """(rows, the last version drawn, the rows) of one snapshot, held until the block ends."""
    with connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot for all
        if live_at is None:
            (count,) = one(conn, SQL_COUNT_ALL)
        else:
            (count,) = one(conn, SQL_COUNT_ALL_LIVE, (live_at,))
        (version,) = one(conn, SQL_LAST_VERSION)
        with conn.cursor(name="kvstore_dump") as cursor:  # server-side: rows come as they are fetched
            if live_at is None:
                cursor.execute(SQL_DUMP)
            else:
                cursor.execute(SQL_DUMP_LIVE, (live_at,))
            rows = _rows(cursor, translate)
            try:
                yield count, version, rows
            finally:
                rows.close()  # now, inside the transaction, rather than whenever it is collected


def _rows(
    cursor: psycopg.ServerCursor[Any], translate: Callable[[psycopg.Error], KVError]
) -> Generator[PutRow, None, None]:
    size = 100
    try:
        while batch := cursor.fetchmany(size):
            yield from batch
            average = sum(len(row[2]) for row in batch) / len(batch) + _ROW_OVERHEAD
            size = max(1, min(FETCH_ROWS, int(FETCH_BYTES / average)))
    except psycopg.Error as exc:
        raise translate(exc) from exc


@contextmanager
def dump(connection: Connection, live_at: int | None, translate: Callable[[psycopg.Error], KVError]) -> Iterator[Dump]:
    """The rows (only those live at ``live_at``, if given) of one snapshot, with their count."""
    with _snapshot(connection, live_at, translate) as (count, _, rows):
        yield count, rows


def backup(
    connection: Connection,
    target: str,
    busy_timeout: float,
    progress: Progress | None,
    translate: Callable[[psycopg.Error], KVError],
) -> None:
    """Copy every row, expired ones too, and the versionstamp counter into the new SQLite file ``target``,
    reporting (rows copied, rows in all) as it goes."""
    with _snapshot(connection, None, translate) as (count, version, rows):
        write_database(target, rows, version, count, busy_timeout, progress)
