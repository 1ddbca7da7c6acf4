"""The queue's side of a backend, for any SQL dialect: one class, the statements passed in (see
``base.QueueSide``). ``sqlite/queue.py`` and ``postgres/queue.py`` hold the statements and build one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .base import Claimed, Peeked, QueueRow, Transaction

Read = Callable[[str, Sequence[Any]], list[Any]]
"""Run a read-only statement on a connection of the backend's and return its rows."""

TryInsert = Callable[[Callable[[int], QueueRow]], int | None]
"""A dialect's one-statement enqueue (see ``base.QueueSide.try_enqueue``)."""

Alone = Callable[[str, Sequence[Any], bool], Any]
"""Run one writing statement outside a transaction: its rows if asked (True), else how many rows it changed."""


class QueueStatements(NamedTuple):
    """The queue's SQL, in one dialect."""

    insert: str
    claim: str
    ack: str
    release: str
    renew: str
    bury: str
    clear_dead: str
    counts: str
    peek: str
    next_due: str


class SQLQueue:
    """``base.QueueSide`` over one dialect's statements and its way to read."""

    __slots__ = ("_alone", "_read", "_sql", "_try_insert")

    def __init__(
        self, sql: QueueStatements, read: Read, try_insert: TryInsert | None = None, alone: Alone | None = None
    ) -> None:
        self._sql = sql
        self._read = read
        self._try_insert = try_insert
        self._alone = alone

    def try_enqueue(self, row_for: Callable[[int], QueueRow]) -> int | None:
        return None if self._try_insert is None else self._try_insert(row_for)

    def claim_alone(
        self, namespace: str, queue: str, now_us: int, until_us: int, token: str
    ) -> tuple[Claimed | None] | None:
        if self._alone is None:
            return None
        rows = self._alone(self._sql.claim, (until_us, token, namespace, queue, now_us, now_us), True)
        return (rows[0] if rows else None,)

    def ack_alone(self, row_id: int, token: str) -> bool | None:
        if self._alone is None:
            return None
        return bool(self._alone(self._sql.ack, (row_id, token), False))

    def enqueue(self, tx: Transaction, rows: Sequence[QueueRow]) -> None:
        for row in rows:
            tx.execute(self._sql.insert, row)

    def claim(
        self, tx: Transaction, namespace: str, queue: str, now_us: int, until_us: int, token: str
    ) -> Claimed | None:
        params = (until_us, token, namespace, queue, now_us, now_us)
        row: Claimed | None = tx.execute(self._sql.claim, params).fetchone()
        return row

    def ack(self, tx: Transaction, row_id: int, token: str) -> bool:
        return bool(tx.execute(self._sql.ack, (row_id, token)).rowcount == 1)

    def release(self, tx: Transaction, row_id: int, token: str, due_us: int) -> bool:
        return bool(tx.execute(self._sql.release, (due_us, row_id, token)).rowcount == 1)

    def renew(self, tx: Transaction, row_id: int, token: str, until_us: int) -> bool:
        return bool(tx.execute(self._sql.renew, (until_us, row_id, token)).rowcount == 1)

    def bury(self, tx: Transaction, row_id: int, token: str) -> bool:
        return bool(tx.execute(self._sql.bury, (row_id, token)).rowcount == 1)

    def clear_dead(self, tx: Transaction, namespace: str, queue: str) -> int:
        return int(tx.execute(self._sql.clear_dead, (namespace, queue)).rowcount)

    def counts(self, namespace: str, queue: str, now_us: int) -> tuple[int, int, int, int]:
        params = (*(namespace, queue, now_us, now_us) * 2, namespace, queue, now_us, namespace, queue)
        ready, delayed, in_flight, dead = self._read(self._sql.counts, params)[0]
        return int(ready), int(delayed), int(in_flight), int(dead)

    def peek(self, namespace: str, queue: str, now_us: int, limit: int) -> list[Peeked]:
        return self._read(self._sql.peek, (namespace, queue, now_us, now_us, limit))

    def next_due(self, namespace: str, queue: str) -> int | None:
        due = self._read(self._sql.next_due, (namespace, queue, namespace, queue))[0][0]
        return None if due is None else int(due)
