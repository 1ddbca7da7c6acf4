"""sqlite3 errors as KVErrors, and which failures certainly wrote nothing."""

from __future__ import annotations

import sqlite3
from typing import Final

from ..._errors import (
    KVError,
    NotADatabaseError,
    ReadOnlyStoreError,
    StorageError,
    StorageFullError,
    StoreBusyError,
    StoreClosedError,
    StoreUnavailableError,
)
from .vanished import vanished

# SQLite primary result codes (the low byte of an extended code).
PERM: Final = 3
BUSY: Final = 5
LOCKED: Final = 6
READONLY: Final = 8
CORRUPT: Final = 11
FULL: Final = 13
CANTOPEN: Final = 14
NOTADB: Final = 26


def primary_code(exc: BaseException) -> int | None:
    """The primary result code of a sqlite3 error, None for anything else."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def rolled_back(exc: BaseException) -> bool:
    """Whether SQLite certainly wrote nothing: the lock was not taken, the database is read-only, or the
    disk was full (SQLite rolls back then). After an I/O error, say, a commit may have reached the WAL."""
    return primary_code(exc) in (BUSY, LOCKED, READONLY, FULL)


def translate(
    exc: sqlite3.Error,
    *,
    where: str,
    busy_timeout: float,
    closed: bool,
    path: str | None = None,
    readonly: str | None = None,
) -> KVError:
    """The KVError for a sqlite3 error on the database ``where`` names (the file ``path``, None in memory, is
    read-only here for the reason ``readonly``, if any); the caller raises it ``from exc``."""
    if closed:
        return StoreClosedError("the store is closed")
    primary = primary_code(exc)
    if primary in (BUSY, LOCKED):
        return StoreBusyError(f"{where} is locked: another writer held it past the busy timeout of {busy_timeout} s")
    if primary == FULL:
        return StorageFullError(f"{where} is full: the disk or the page limit is reached ({exc})")
    if primary in (READONLY, PERM):
        why = f": {readonly}" if readonly else ""
        return ReadOnlyStoreError(f"{where} cannot be written ({exc}){why}")
    if primary in (NOTADB, CORRUPT):
        return NotADatabaseError(f"{where} is not an SQLite database or is corrupt ({exc})")
    if primary == CANTOPEN:
        return StoreUnavailableError(f"{where} cannot be opened ({exc})")
    if path is not None and (explained := vanished(path, exc)) is not None:
        return StorageError(explained)
    return StorageError(f"{where} failed: {exc}")
