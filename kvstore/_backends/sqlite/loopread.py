"""Reads on an event loop's own thread, which must never wait: ``AsyncKVStore``'s short gets.

A loop-side read takes its connection only if it is free, never waits for a lock (its connection has a busy
timeout of 0, and in WAL mode a reader needs none of the writer's locks), and brings back a value only when
it is small enough to decode on the loop. Every other case answers an ``OffLoop``: the caller reads on a thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from enum import Enum
from typing import Final

from ..._errors import KVError
from ..base import Found
from .errors import BUSY, LOCKED, primary_code
from .open import connect
from .sql import SQL_LOOP_GET
from .tx import SQLiteConnection

LOOP_VALUE_MAX: Final = 4096
"""The most bytes of value, and of metadata, decoded on the loop. A value of about a page (4 KiB) needs at most
one overflow page beside the b-tree pages every get reads, and decoding it holds the loop briefly (measured:
24 us for 4 KiB of flat data, 100-215 us for a 4 KiB JSON document, 1.9 ms for the worst case, 4,090 empty
lists). Larger values go to a thread, where SQLite reads their pages with the GIL released and large ones
decode in pieces (``_pieces``)."""

# Keys (of any namespace) last found too large for the loop go to a thread at once next time: even a value not
# copied out costs the loop a walk of its overflow pages (to the columns stored after it): 3.2 ms at 16 MiB,
# 7.8 ms at 40 MiB.
_LARGE_KEYS: Final = 1024


class OffLoop(Enum):
    """Why a read must run on a thread instead."""

    BUSY = 1
    """The connection was in use by another thread, or the database busy: a short wait, on a thread."""
    LARGE = 2
    """The value or the metadata is too large to decode on the loop (or was, the last time it was read)."""


def loop_connection(path: str, synchronous: str, translate: Callable[[sqlite3.Error], KVError]) -> SQLiteConnection:
    """A connection for loop-side reads: a busy timeout of 0 makes a busy database an answer, not a wait."""
    try:
        return connect(path, 0.0, synchronous)
    except sqlite3.Error as exc:
        raise translate(exc) from exc


class LoopReader:
    """Point reads for an event loop's thread, on a connection of their own (a file's) or an in-memory
    database's one connection, which they take only when no other thread holds it."""

    __slots__ = ("_cursor", "_large", "_limit", "_lock", "_translate")

    def __init__(
        self, conn: SQLiteConnection, translate: Callable[[sqlite3.Error], KVError], limit: int = LOOP_VALUE_MAX
    ) -> None:
        self._lock = conn.lock
        self._cursor = conn.cursor()
        self._translate = translate
        self._limit = limit
        self._large: dict[str, None] = {}  # used on the loop's thread only, like the rest of a reader

    def get(self, namespace: str, key: str, now_us: int) -> Found | OffLoop | None:
        """The live entry at ``key``, None, or why this read must run on a thread instead."""
        large = self._large
        if large and key in large:
            return OffLoop.LARGE
        lock = self._lock
        if not lock.acquire(False):  # another thread uses the connection (a write, or close): never wait
            return OffLoop.BUSY
        try:
            # fetchone steps the statement to its end, which resets it: no read transaction stays open, so
            # the next read sees every commit made before it starts.
            row: Found | None = self._cursor.execute(SQL_LOOP_GET, (self._limit, namespace, key, now_us)).fetchone()
        except sqlite3.Error as exc:
            if primary_code(exc) in (BUSY, LOCKED):
                return OffLoop.BUSY  # WAL recovery, say: a thread waits for it with the busy timeout
            raise self._translate(exc) from exc
        finally:
            lock.release()
        # Metadata that is not text (a row kvstore never wrote) goes to a thread too, whose reader refuses it.
        if row is not None and (
            row[0] is None or (row[2] is not None and (type(row[2]) is not str or len(row[2]) > self._limit))
        ):
            if len(large) >= _LARGE_KEYS:
                large.clear()
            large[key] = None
            return OffLoop.LARGE  # too large to decode here (the value was not even copied out)
        return row

    def small(self, key: str) -> None:
        """A thread found ``key`` small again (or gone): read it here next time."""
        self._large.pop(key, None)
