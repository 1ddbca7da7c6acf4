"""Copies out of an SQLite database, each in one snapshot while writers go on: a backup (SQLite's online
backup API), a dump of the rows (export), and a new database written from rows (a backup of PostgreSQL).

Each copy reads on a connection of its own, inside one read transaction. In WAL mode a reader holds its
snapshot while writers commit beside it, so the copy is consistent and nobody waits for it. That read
transaction is also what keeps the backup API from starting over: a step finds the source changed by
another connection, and restarts, only when no transaction pins the snapshot between steps. (The price is
the WAL's: it cannot be checkpointed past the snapshot until the copy ends, so it grows meanwhile.)
A copy is written to a temporary file beside the target and renamed to it at the end, so a half-written
copy never carries the target's name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Final

from ..._errors import KVError, StorageError, StorageFullError
from ..base import Dump, Progress, PutRow
from .errors import translate
from .open import connect, migrate
from .readonly import URI
from .sql import (
    SQL_COUNT_ALL,
    SQL_COUNT_ALL_LIVE,
    SQL_DUMP,
    SQL_DUMP_LIVE,
    SQL_INTEGRITY_CHECK,
    SQL_PUT,
    SQL_QUICK_CHECK,
    SQL_READ_VERSION,
    SQL_RESERVE,
)
from .tx import SQLiteConnection

# Pages per backup step (4 MiB at the default page size), for progress reports between steps: the step size
# does not set the speed (a 29 MB file took 69 ms at 100 pages a step, 79 ms at 1,024, 65 ms in one step).
STEP_PAGES: Final = 1024
# Rows per executemany when writing a database from rows (and the value bytes a batch may hold): 20,000 rows
# from PostgreSQL took 208 ms at 100 a batch, 156 ms at 1,000, 209 ms at 5,000.
WRITE_ROWS: Final = 1000
WRITE_BYTES: Final = 8 * 1024 * 1024


@contextmanager
def _private(source: SQLiteConnection, path: str, busy_timeout: float, where: str) -> Iterator[sqlite3.Connection]:
    """A connection no other caller uses, for a long read: a new one to the file; for an in-memory database
    (whose one connection is shared) a private in-memory copy, made under that connection's lock."""
    try:
        if path == ":memory:":
            conn = sqlite3.connect(":memory:", isolation_level=None)
            with source.lock:
                source.backup(conn)
        else:
            # A read-only place's URI (``readonly``) is opened as the store opened it.
            conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, uri=isinstance(path, URI))
    except sqlite3.Error as exc:
        raise translate(exc, where=where, busy_timeout=busy_timeout, closed=False) from exc
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def new_file(target: str) -> Iterator[str]:
    """A temporary file beside ``target`` for a copy: renamed to ``target`` when the block ends cleanly (and
    the rename made durable), removed when it raises."""
    directory = os.path.dirname(target) or "."
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".partial", dir=directory)
        os.close(handle)  # an empty file, which SQLite takes for a new database
    except OSError as exc:
        raise _os_error(exc, target) from exc
    try:
        yield partial
        os.replace(partial, target)
        if hasattr(os, "O_DIRECTORY"):  # POSIX: the rename survives a crash once its directory is synced
            directory_handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory_handle)
            finally:
                os.close(directory_handle)
    except OSError as exc:
        raise _os_error(exc, target) from exc
    finally:
        for leftover in (partial, f"{partial}-journal", f"{partial}-wal", f"{partial}-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)


def _os_error(exc: OSError, target: str) -> KVError:
    if exc.errno == errno.ENOSPC:
        return StorageFullError(f"the copy {target!r} cannot be written: the disk is full ({exc})")
    return StorageError(f"the copy {target!r} cannot be written ({exc})")


def backup(source: SQLiteConnection, path: str, target: str, busy_timeout: float, progress: Progress | None) -> None:
    """Copy the database at ``path`` (``source`` is its connection) into the new file ``target``, page by
    page in steps of ``STEP_PAGES``, reporting (pages copied, pages in all) after each step."""
    where = f"the backup of {path!r} into {target!r}"
    report: Callable[[int, int, int], object] | None = None
    if progress is not None:

        def report(_status: int, remaining: int, total: int) -> None:
            progress(total - remaining, total)

    with _private(source, path, busy_timeout, where) as conn, new_file(target) as partial:
        try:
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                conn.execute("BEGIN")
                conn.execute(SQL_READ_VERSION).fetchone()  # the first read takes the snapshot: held to the end
                conn.backup(copy, pages=STEP_PAGES, progress=report)
                conn.execute("COMMIT")
            finally:
                copy.close()
        except sqlite3.Error as exc:
            raise translate(exc, where=where, busy_timeout=busy_timeout, closed=False) from exc


@contextmanager
def dump(source: SQLiteConnection, path: str, busy_timeout: float, live_at: int | None) -> Iterator[Dump]:
    """The rows of the database at ``path`` (only those live at ``live_at``, if given), read in one snapshot
    on a connection of their own, a row at a time, with their count."""
    where = "in-memory database" if path == ":memory:" else f"database {path!r}"
    with _private(source, path, busy_timeout, where) as conn:
        try:
            conn.execute("BEGIN")
            if live_at is None:
                count: int = conn.execute(SQL_COUNT_ALL).fetchone()[0]
                cursor = conn.execute(SQL_DUMP)
            else:
                count = conn.execute(SQL_COUNT_ALL_LIVE, (live_at,)).fetchone()[0]
                cursor = conn.execute(SQL_DUMP_LIVE, (live_at,))
        except sqlite3.Error as exc:
            raise translate(exc, where=where, busy_timeout=busy_timeout, closed=False) from exc
        rows = _rows(cursor, where, busy_timeout)
        try:
            yield count, rows
        finally:
            rows.close()  # now, while its connection is open: closing it later would close the cursor too late


def integrity(source: SQLiteConnection, path: str, busy_timeout: float, quick: bool) -> str:
    """SQLite's own check of the database at ``path`` on a connection of its own: "ok", or what it found wrong
    (a line each). A file too damaged to check raises NotADatabaseError."""
    where = "in-memory database" if path == ":memory:" else f"database {path!r}"
    with _private(source, path, busy_timeout, where) as conn:
        try:
            found = conn.execute(SQL_QUICK_CHECK if quick else SQL_INTEGRITY_CHECK).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, where=where, busy_timeout=busy_timeout, closed=False) from exc
    return "\n".join(str(line) for (line,) in found)


def _rows(cursor: sqlite3.Cursor, where: str, busy_timeout: float) -> Generator[PutRow, None, None]:
    try:
        yield from cursor  # sqlite3 steps the statement as rows are taken: one row in memory at a time
    except sqlite3.Error as exc:
        raise translate(exc, where=where, busy_timeout=busy_timeout, closed=False) from exc


def write_database(
    target: str, rows: Iterator[PutRow], version: int, total: int, busy_timeout: float, progress: Progress | None
) -> None:
    """A new kvstore database at ``target`` (the schema at head) holding ``rows``, with ``version`` as the
    last versionstamp drawn, so that writes to it go on above every versionstamp it holds."""
    where = f"the copy {target!r}"

    def translated(exc: sqlite3.Error) -> KVError:
        return translate(exc, where=where, busy_timeout=busy_timeout, closed=False)

    with new_file(target) as partial:
        try:
            conn = connect(partial, busy_timeout, "NORMAL")
        except sqlite3.Error as exc:
            raise translated(exc) from exc
        try:
            migrate(conn, translated)
            conn.execute("BEGIN IMMEDIATE")
            done = 0
            while batch := _batch(rows):
                conn.executemany(SQL_PUT, batch)
                done += len(batch)
                if progress is not None:
                    progress(done, total)
            conn.execute(SQL_RESERVE, (version,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise translated(exc) from exc
        finally:
            conn.close()


def _batch(rows: Iterator[PutRow]) -> list[PutRow]:
    """The next rows, at most ``WRITE_ROWS`` of them and (past the first) ``WRITE_BYTES`` of values."""
    batch: list[PutRow] = []
    size = 0
    for row in islice(rows, WRITE_ROWS):
        batch.append(row)
        size += len(row[2])
        if size >= WRITE_BYTES:
            break
    return batch
