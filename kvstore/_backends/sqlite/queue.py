"""The queue's statements on SQLite, as named constants, and the backend's queue side built on them.

A claim is one ``UPDATE ... RETURNING`` (SQLite 3.35 and later) inside the write transaction, which holds
the database's write lock: two consumers can never lease one message. Acknowledging is one ``DELETE``. A
lone enqueue is one statement in autocommit, drawing its version from the connection's block as a lone set
does (``tx.put_one``); a lone claim and a lone ack are one statement in autocommit too (neither draws a
version), each atomic as any statement is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

from ..._errors import KVError
from ..base import QueueRow
from ..queue import QueueStatements, SQLQueue
from .errors import rolled_back
from .sql import _BLOCK_HELD, with_literal
from .tx import SQLiteConnection

SQL_QUEUE_INSERT: Final = (
    "INSERT INTO kvstore_queue (message_id, namespace, queue, value, content_type, version, enqueued_us, due_us,"
    " backoff, keys_if_undelivered, leased_until_us, attempt, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0)"
)
# The insert of a lone enqueue, outside a transaction: it writes only while the counter row still holds the
# connection's block (see ``block``). Four statements (BEGIN, the counter read, the insert, COMMIT) become
# one: in memory, five alternating runs of 5,000 on a busy machine, the median enqueue took 109 us this way
# against 130 us as a transaction (``atomic().enqueue``).
SQL_ONE_QUEUE_INSERT: Final = (
    "INSERT INTO kvstore_queue (message_id, namespace, queue, value, content_type, version, enqueued_us, due_us,"
    " backoff, keys_if_undelivered, leased_until_us, attempt, state) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0"
    f" WHERE {_BLOCK_HELD}"
)
# SQL_ONE_QUEUE_INSERT for a message with no keys_if_undelivered, whose NULL is a literal: sqlite3 sends every
# parameter that is not exactly an int, float, str or bytearray (None, bytes) through its adapter lookup, which
# builds and clears an AttributeError, ~3,300 instructions each; so the value goes as a bytearray too (the same
# BLOB). Under callgrind (3,000 enqueues minus 1,000, file store) an enqueue took 119,500 instructions binding
# both, 112,100 so.
SQL_ONE_QUEUE_INSERT_BARE: Final = with_literal(
    SQL_ONE_QUEUE_INSERT,
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0",
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, 0, 0",
)
_SMALL: Final = 16384  # values up to this many bytes go as a bytearray: a copy costs less than the lookup

# The subquery walks ix_kvstore_queue_due (its WHERE repeats the index's ``state = 0``) in delivery order,
# passing over rows leased now. The claim sets no column that index holds or filters on, so the row stays
# put in it: under callgrind (3,000 receive + ack minus 1,000, file store) a receive + ack took 204,500
# instructions when the claim moved it (the lease's end kept in due_us, state set to 1), 177,200 so.
SQL_QUEUE_CLAIM: Final = (
    "UPDATE kvstore_queue SET attempt = attempt + 1, leased_until_us = ?, lease_token = ? WHERE id = ("
    "SELECT id FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 0 AND due_us <= ?"
    " AND leased_until_us <= ? ORDER BY due_us, id LIMIT 1)"
    " RETURNING id, message_id, value, content_type, attempt, enqueued_us, backoff, keys_if_undelivered"
)
SQL_QUEUE_ACK: Final = "DELETE FROM kvstore_queue WHERE id = ? AND lease_token = ?"
SQL_QUEUE_RELEASE: Final = (
    "UPDATE kvstore_queue SET due_us = ?, leased_until_us = 0, lease_token = NULL WHERE id = ? AND lease_token = ?"
)
SQL_QUEUE_RENEW: Final = "UPDATE kvstore_queue SET leased_until_us = ? WHERE id = ? AND lease_token = ?"
SQL_QUEUE_BURY: Final = (
    "UPDATE kvstore_queue SET state = 1, leased_until_us = 0, lease_token = NULL WHERE id = ? AND lease_token = ?"
)
SQL_QUEUE_CLEAR_DEAD: Final = "DELETE FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 1"
# Each count walks one of the partial indexes, never the whole table: ready, delayed, in flight, dead.
SQL_QUEUE_COUNTS: Final = (
    "SELECT (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 0 AND due_us <= ?"
    " AND leased_until_us <= ?),"
    " (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 0 AND due_us > ?"
    " AND leased_until_us <= ?),"
    " (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 0 AND leased_until_us > ?),"
    " (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 1)"
)
SQL_QUEUE_PEEK: Final = (
    "SELECT message_id, value, content_type, attempt, enqueued_us, due_us FROM kvstore_queue"
    " WHERE namespace = ? AND queue = ? AND state = 0 AND due_us <= ? AND leased_until_us <= ?"
    " ORDER BY due_us, id LIMIT ?"
)
# When a claim may next succeed: the least of MAX(due_us, leased_until_us) over live rows. The subquery finds
# the first row in delivery order that no lease holds past its due time; every row after it is due no
# earlier, so only the rows up to it (those leased, ahead of it) are read, not the whole queue.
SQL_QUEUE_NEXT_DUE: Final = (
    "SELECT MIN(MAX(due_us, leased_until_us)) FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 0"
    " AND due_us <= COALESCE((SELECT due_us FROM kvstore_queue WHERE namespace = ? AND queue = ? AND state = 0"
    " AND leased_until_us <= due_us ORDER BY due_us, id LIMIT 1), 9223372036854775807)"
)

QUEUE_STATEMENTS: Final = QueueStatements(
    insert=SQL_QUEUE_INSERT,
    claim=SQL_QUEUE_CLAIM,
    ack=SQL_QUEUE_ACK,
    release=SQL_QUEUE_RELEASE,
    renew=SQL_QUEUE_RENEW,
    bury=SQL_QUEUE_BURY,
    clear_dead=SQL_QUEUE_CLEAR_DEAD,
    counts=SQL_QUEUE_COUNTS,
    peek=SQL_QUEUE_PEEK,
    next_due=SQL_QUEUE_NEXT_DUE,
)


def sqlite_queue(conn_of: Callable[[], SQLiteConnection], translate: Callable[[sqlite3.Error], KVError]) -> SQLQueue:
    """The queue side of an SQLite backend, reading on the calling thread's connection (``conn_of``)."""

    def read(sql: str, params: Sequence[Any]) -> list[Any]:
        conn = conn_of()
        with conn.lock:
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc) from exc

    # The one-statement writes run on the connection's one cursor (``SQLiteConnection.reader``; each runs to
    # its end, so none stays open on it): ``conn.execute`` builds a cursor per call, 1.68 us against 1.45 us
    # for a DELETE that matches nothing; three of them make an enqueue, a receive and its ack.
    def try_insert(row_for: Callable[[int], QueueRow]) -> int | None:
        conn = conn_of()
        with conn.lock:
            block = conn.block
            version = block.available()
            if version is None:
                return None  # no block (or used up): reserving one takes a transaction
            row = row_for(version)
            message_id, namespace, queue, value, content_type, _, enqueued_us, due_us, backoff, keys = row
            if keys is None and len(value) <= _SMALL:
                sql = SQL_ONE_QUEUE_INSERT_BARE
                params: tuple[Any, ...] = (
                    message_id, namespace, queue, bytearray(value), content_type, version, enqueued_us, due_us,
                    backoff, block.end,
                )  # fmt: skip
            else:
                sql, params = SQL_ONE_QUEUE_INSERT, (*row, block.end)
            try:
                if conn.reader.execute(sql, params).rowcount != 1:
                    return None
            except sqlite3.Error as exc:
                if not rolled_back(exc):
                    block.forfeit()  # as for a failed COMMIT
                raise translate(exc) from exc
            block.used(version)
            return version

    def alone(sql: str, params: Sequence[Any], rows: bool) -> Any:
        conn = conn_of()
        with conn.lock:
            try:
                cursor = conn.reader.execute(sql, params)
                return cursor.fetchall() if rows else cursor.rowcount
            except sqlite3.Error as exc:
                raise translate(exc) from exc

    return SQLQueue(QUEUE_STATEMENTS, read, try_insert, alone)
