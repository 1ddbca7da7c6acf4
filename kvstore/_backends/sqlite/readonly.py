"""Opening a database that cannot be written here: a read-only file, directory or mount.

SQLite in WAL mode writes beside the database even to read it: the ``-shm`` WAL index (and a ``-wal`` it
creates). Where that is not allowed, a store opens read-only instead (``mode=ro``), so that reads work
wherever the bytes can be read; where not even the WAL index can be created (a read-only directory or mount
with no ``-shm`` in it), it opens the file ``immutable=1``, which SQLite reads without locks or WAL index.
That is only right when nothing else changes the file meanwhile, and when no WAL holds commits (SQLite would
ignore them): a WAL with commits in it is refused instead, naming what is missing. Writes raise
ReadOnlyStoreError with the reason (``Place.reason``).
"""

from __future__ import annotations

import os
import sqlite3
from typing import Final, NamedTuple
from urllib.parse import quote

from ..._errors import ReadOnlyStoreError
from .space import check_room
from .sql import SQL_HAS_VERSION_TABLE


class URI(str):
    """A database location that is an SQLite URI (``file:...?mode=ro``), not a path: ``connect`` passes
    ``uri=True`` for it. A type of its own, so that a file whose name starts with ``file:`` stays a path. Its
    repr is the file's path, so that a message naming the database names the file."""

    path: str

    def __new__(cls, uri: str, path: str) -> URI:
        made = super().__new__(cls, uri)
        made.path = path
        return made

    def __repr__(self) -> str:
        return repr(self.path)


class Place(NamedTuple):
    """How to open a database file: ``target`` (its path, or a read-only URI), and why it is read-only (None if
    it is not)."""

    target: str
    reason: str | None


_EFFECTIVE: Final = os.access in os.supports_effective_ids


def _writable(path: str) -> bool:
    # effective ids: what the kernel checks on open (a process that gave up its privileges is held to them)
    return os.access(path, os.W_OK, effective_ids=_EFFECTIVE)


def _read_only_mount(directory: str) -> bool:
    statvfs = getattr(os, "statvfs", None)  # POSIX only
    try:
        return statvfs is not None and bool(statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _why(path: str, directory: str) -> str | None:
    """What keeps kvstore from writing the database at ``path``, or None when nothing does."""
    if _read_only_mount(directory):
        return f"its directory {directory!r} is on a file system mounted read-only"
    missing = []
    if os.path.exists(path) and not _writable(path):
        missing.append("no write permission on the file")
    if not _writable(directory):
        missing.append(
            f"no write permission on its directory {directory!r}, where SQLite creates the -wal and -shm files"
        )
    return " and ".join(missing) or None


def _uri(path: str, query: str) -> URI:
    return URI(f"file:{quote(os.path.abspath(path))}?{query}", path)


def _readable(target: URI) -> bool:
    """Whether SQLite can read the schema through ``target`` (mode=ro fails on first read, not on open)."""
    try:
        conn = sqlite3.connect(target, uri=True, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        conn.execute(SQL_HAS_VERSION_TABLE, ("",)).fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return True


def _has_commits(wal: str) -> bool:
    try:
        return os.stat(wal).st_size > 0
    except OSError:
        return False


def place(path: str) -> Place:
    """How to open the database file ``path``: read-write, ``mode=ro``, or ``immutable=1`` (see the module).

    Unless nothing is mapped (``immutable=1``), ``space.check_room`` first: a full disk must not kill us."""
    directory = os.path.dirname(path) or "."
    reason = _why(path, directory)
    if reason is None:
        check_room(path)
        return Place(path, None)
    if not os.path.exists(path):
        raise ReadOnlyStoreError(f"database {path!r} does not exist and cannot be created: {reason}")
    if _writable(directory):
        check_room(path)  # SQLite still creates the WAL index beside the file and maps it read-write
    target = _uri(path, "mode=ro")
    if _readable(target):
        return Place(target, reason)
    wal = path + "-wal"
    if _has_commits(wal):
        raise ReadOnlyStoreError(
            f"database {path!r} cannot be read here: {reason}, and its WAL {wal!r} holds commits that SQLite"
            f" reads only through the WAL index {path + '-shm'!r}, which it cannot create; open it once where"
            " it can be written (closing it moves the WAL into the database file)"
        )
    return Place(_uri(path, "immutable=1"), reason)
