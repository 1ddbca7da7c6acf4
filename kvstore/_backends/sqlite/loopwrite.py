"""Writes on an event loop's own thread, which must never wait: ``AsyncKVStore``'s lone sets on a file.

The connection is the loop's own and has a busy timeout of 0: a write lock held elsewhere is an answer
(``OffLoop.BUSY``), not a wait. It never checkpoints (``wal_autocheckpoint = 0``): SQLite runs an automatic
checkpoint inside the commit that crosses its threshold, and a checkpoint syncs the database file. The caller
counts the commits made here and has a thread checkpoint (``CHECKPOINT_EVERY``). In WAL mode with
``synchronous = NORMAL`` (or OFF) a commit does not sync either; so a writer is made only there.

A put is ``tx.put_one``'s one statement in autocommit, drawing from this connection's block; with no block
left, an unconditional put reserves one in a short transaction of its own. Whatever SQLite certainly did not
write (busy, locked, read-only, disk full) answers ``OffLoop.BUSY`` and the caller writes on a thread, which
waits, relieves a full disk, and raises what it must; anything that may have written raises.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..._errors import KVError
from ..._mutations import Put
from ..base import UNCONDITIONAL
from .errors import rolled_back
from .loopread import OffLoop, loop_connection
from .readonly import URI
from .tx import SQLiteConnection, put_one
from .write import Held

if TYPE_CHECKING:
    from .backend import SQLiteBackend

CHECKPOINT_EVERY: Final = 250
"""Loop commits between two checkpoints on a thread: SQLite's automatic one comes at 1,000 WAL pages, and a
set of a value of at most ``LOOP_VALUE_MAX`` bytes adds at most four."""
_SQLITE_THRESHOLD: Final = 1000  # SQLite's wal_autocheckpoint, which ``space.limit_wal`` keeps on a big disk

Translate = Callable[[sqlite3.Error], KVError]


class _NotWritten(KVError):
    """SQLite certainly wrote nothing (raised by ``_translate`` inside a held transaction)."""


class LoopWriter:
    """Puts for an event loop's thread, on a connection of its own (the backend closes it with the others),
    taken only when no other thread holds it (``close``)."""

    __slots__ = ("_conn", "_translate")

    def __init__(self, conn: SQLiteConnection, translate: Translate) -> None:
        self._conn = conn
        self._translate = translate

    def put(self, put: Put, expected: int | None, now_us: int) -> tuple[int, bool] | OffLoop | None:
        """``Backend.try_put`` on the loop: (version, whether a live entry was replaced); None if the write
        must run as a transaction (its condition did not hold, say); ``OffLoop.BUSY`` to write on a thread."""
        conn = self._conn
        lock = conn.lock
        if not lock.acquire(False):
            return OffLoop.BUSY
        try:
            if conn.block.available() is None:
                if expected != UNCONDITIONAL:
                    return None
                return self._reserving(put, now_us)
            done = put_one(conn, put, expected, now_us)
            if done is None and expected == UNCONDITIONAL:
                # Not written, and no condition to fail: the block is another connection's now.
                conn.block.forfeit()
                return self._reserving(put, now_us)
            return done
        except sqlite3.Error as exc:
            if rolled_back(exc):
                return OffLoop.BUSY
            conn.block.forfeit()  # as for a failed COMMIT: it may have committed
            raise self._translate(exc) from exc
        finally:
            lock.release()

    def _reserving(self, put: Put, now_us: int) -> tuple[int, bool] | OffLoop:
        # BEGIN IMMEDIATE (not waiting: the busy timeout is 0), the block's reservation, the put, COMMIT.
        try:
            held = Held(self._conn, self._marked)
            done = held.upsert(put, now_us)
            held.commit()
        except _NotWritten:
            return OffLoop.BUSY
        return done

    def _marked(self, exc: sqlite3.Error) -> KVError:
        return _NotWritten(str(exc)) if rolled_back(exc) else self._translate(exc)


def loop_writer(backend: SQLiteBackend) -> LoopWriter | None:
    """A writer for the loop on ``backend``'s store file, or None where it would not pay or a commit would
    sync: in memory, read-only, not in WAL mode, on a small disk, or ``synchronous`` FULL or EXTRA (or its
    connection failed)."""
    # The backend's own settings, read here: a ``loop_writer`` method beside ``loop_reader`` belongs in
    # backend.py, which another change holds.
    target = backend._place.target
    if backend._memory or isinstance(target, URI) or backend._synchronous.upper() not in ("NORMAL", "OFF", "0", "1"):
        return None
    translate = backend._translate
    try:
        conn = loop_connection(target, backend._synchronous, translate)
    except KVError:
        return None  # the store's own connections opened: its writes go to the thread
    try:
        wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # Below SQLite's threshold, ``space.limit_wal`` found a small disk and bounds the WAL by it; there
        # the thread's commits, which checkpoint at that bound, keep the room deletes need (tests/reliability/
        # test_disk_faults.py: with loop commits, a 4 MiB disk filled and every delete failed).
        wal = wal and conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] >= _SQLITE_THRESHOLD
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    except sqlite3.Error:
        wal = False
    with backend._registry:  # closed with the store's other connections, and kept unclosed in a forked child
        if not wal or backend._closed:
            conn.close()
            return None
        backend._conns.add(conn)
    return LoopWriter(conn, translate)
