"""WAL checkpoints: on request (``kv.checkpoint``), and once when a write finds the disk full.

A store under SQLite's automatic checkpoint threshold lives in its WAL, and the WAL file keeps its high-water
size after a checkpoint (up to ``journal_size_limit``). On a disk that is full, a TRUNCATE checkpoint moves the
WAL's pages into the database file (which reuses its free pages) and empties the WAL file, giving its space
back, and the connection's page limit is renewed for the space free now (``space``); if either gave room, a
write that failed with SQLITE_FULL is tried once more (``relieve``, ``when_full``). Measured on a 4 MiB ext4:
384 KiB freed beside a full store took 94 more values of 3000 bytes at once; without the renewal, none.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Final, TypeVar

from ..._errors import KVError, StorageFullError
from .errors import FULL, primary_code
from .space import renew_limit
from .tx import SQLiteConnection

T = TypeVar("T")
Translate = Callable[[sqlite3.Error], KVError]

SQL_CHECKPOINT: Final = {
    "passive": "PRAGMA wal_checkpoint(PASSIVE)",
    "full": "PRAGMA wal_checkpoint(FULL)",
    "restart": "PRAGMA wal_checkpoint(RESTART)",
    "truncate": "PRAGMA wal_checkpoint(TRUNCATE)",
}
"""SQLite's checkpoint modes, by the name ``kv.checkpoint(mode=...)`` takes."""

MODES: Final = tuple(SQL_CHECKPOINT)


def _run(conn: SQLiteConnection, mode: str) -> tuple[bool, int, int]:
    busy, log, done = conn.execute(SQL_CHECKPOINT[mode]).fetchone()
    return bool(busy), max(log, 0), max(done, 0)


def checkpoint(conn: SQLiteConnection, mode: str, translate: Translate) -> tuple[bool, int, int]:
    """A checkpoint of ``mode`` on ``conn``: SQLite's (busy, frames in the WAL, frames checkpointed); a
    database without a WAL (in memory) reports (False, 0, 0). Inside a write_batch block it cannot run."""
    with conn.lock:
        try:
            return _run(conn, mode)
        except sqlite3.Error as exc:
            raise translate(exc) from exc


def relieve(conn: SQLiteConnection) -> bool:
    """After SQLITE_FULL: a TRUNCATE checkpoint, to give the WAL's space back, and a new page limit; whether
    either freed anything (then a write is worth one more try). Never raises: the write's StorageFullError
    says more."""
    if conn.in_transaction:
        return False  # a write_batch block's open transaction: a checkpoint cannot run inside it
    freed = False
    with conn.lock:
        with contextlib.suppress(sqlite3.Error):  # the checkpoint may itself find the disk full
            busy, log, done = _run(conn, "truncate")
            freed = not busy and log == done and log > 0
        with contextlib.suppress(sqlite3.Error):
            # The page limit the disk allows now (``space``): higher if space was freed meanwhile.
            freed = renew_limit(conn) or freed
    return freed


def when_full(conn: SQLiteConnection, write: Callable[[], T]) -> T:
    """``write()``; if it raises StorageFullError (SQLite rolled it back) and ``relieve`` gives space back,
    ``write()`` once more. A transaction's body may run twice, as a PostgreSQL retry runs it."""
    try:
        return write()
    except StorageFullError:
        if not relieve(conn):
            raise
    return write()


def relieving(conn: SQLiteConnection, translate: Translate) -> Translate:
    """``translate``, which first runs ``relieve`` on ``conn`` after SQLITE_FULL: for a write transaction held
    open across calls (``write_batch``), whose bodies cannot run again, so that the next one finds the space.
    ``Held`` translates only after its rollback, when a checkpoint can run."""

    def translated(exc: sqlite3.Error) -> KVError:
        if primary_code(exc) == FULL:
            relieve(conn)
        return translate(exc)

    return translated
