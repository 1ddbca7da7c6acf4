"""The queue's statements on PostgreSQL, as named constants, and the backend's queue side built on them.

A claim is one ``UPDATE ... RETURNING`` whose subquery takes the next due row ``FOR UPDATE SKIP LOCKED``,
inside the write transaction; acknowledging is one ``DELETE``. A lone claim or ack (no other write of the
store in flight) is that one statement in autocommit: it takes no write lock (the counter row), and
``SKIP LOCKED`` keeps concurrent claimers, in this process or others, off each other's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

import psycopg

from ..queue import QueueStatements, SQLQueue

SQL_QUEUE_INSERT: Final = (
    "INSERT INTO kvstore_queue (message_id, namespace, queue, value, content_type, version, enqueued_us, due_us,"
    " backoff, keys_if_undelivered, leased_until_us, attempt, state)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0)"
)
# The subquery walks ix_kvstore_queue_due (its WHERE repeats the index's ``state = 0``) in delivery order,
# passing over rows leased now, and skips a row another transaction holds locked, so claimers never queue
# behind one another on one row. The claim sets no indexed column: the row stays put in the index.
SQL_QUEUE_CLAIM: Final = (
    "UPDATE kvstore_queue SET attempt = attempt + 1, leased_until_us = %s, lease_token = %s WHERE id = ("
    "SELECT id FROM kvstore_queue WHERE namespace = %s AND queue = %s AND state = 0 AND due_us <= %s"
    " AND leased_until_us <= %s ORDER BY due_us, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id, message_id, value, content_type, attempt, enqueued_us, backoff, keys_if_undelivered"
)
SQL_QUEUE_ACK: Final = "DELETE FROM kvstore_queue WHERE id = %s AND lease_token = %s"
SQL_QUEUE_RELEASE: Final = (
    "UPDATE kvstore_queue SET due_us = %s, leased_until_us = 0, lease_token = NULL WHERE id = %s AND lease_token = %s"
)
SQL_QUEUE_RENEW: Final = "UPDATE kvstore_queue SET leased_until_us = %s WHERE id = %s AND lease_token = %s"
SQL_QUEUE_BURY: Final = (
    "UPDATE kvstore_queue SET state = 1, leased_until_us = 0, lease_token = NULL WHERE id = %s AND lease_token = %s"
)
SQL_QUEUE_CLEAR_DEAD: Final = "DELETE FROM kvstore_queue WHERE namespace = %s AND queue = %s AND state = 1"
# Each count walks one of the partial indexes, never the whole table: ready, delayed, in flight, dead.
SQL_QUEUE_COUNTS: Final = (
    "SELECT (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = %s AND queue = %s AND state = 0 AND due_us <= %s"
    " AND leased_until_us <= %s),"
    " (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = %s AND queue = %s AND state = 0 AND due_us > %s"
    " AND leased_until_us <= %s),"
    " (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = %s AND queue = %s AND state = 0"
    " AND leased_until_us > %s),"
    " (SELECT COUNT(*) FROM kvstore_queue WHERE namespace = %s AND queue = %s AND state = 1)"
)
SQL_QUEUE_PEEK: Final = (
    "SELECT message_id, value, content_type, attempt, enqueued_us, due_us FROM kvstore_queue"
    " WHERE namespace = %s AND queue = %s AND state = 0 AND due_us <= %s AND leased_until_us <= %s"
    " ORDER BY due_us, id LIMIT %s"
)
# As SQLite's (see there): the rows up to the first that no lease holds past its due time, not the queue.
SQL_QUEUE_NEXT_DUE: Final = (
    "SELECT MIN(GREATEST(due_us, leased_until_us)) FROM kvstore_queue WHERE namespace = %s AND queue = %s"
    " AND state = 0 AND due_us <= COALESCE((SELECT due_us FROM kvstore_queue WHERE namespace = %s AND queue = %s"
    " AND state = 0 AND leased_until_us <= due_us ORDER BY due_us, id LIMIT 1), 9223372036854775807)"
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


def postgres_queue(
    read_on: Callable[[Callable[[psycopg.Connection[Any]], list[Any]]], list[Any]],
    pooled: Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
) -> SQLQueue:
    """The queue side of a PostgreSQL backend, reading through its pool (``read_on``: the backend's ``_read``)
    and running a lone claim or ack on a pooled connection in autocommit (``pooled``: its ``_conn``)."""

    def read(sql: str, params: Sequence[Any]) -> list[Any]:
        return read_on(lambda conn: conn.execute(sql, params).fetchall())

    def alone(sql: str, params: Sequence[Any], rows: bool) -> Any:
        with pooled() as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if rows else cursor.rowcount

    return SQLQueue(QUEUE_STATEMENTS, read, None, alone)
