"""A WAL deleted under an open store: what a later opener's "disk I/O error" means.

A process that has the database open keeps writing to the WAL it opened, deleted or not; its WAL index
(``-shm``) still counts those frames. A connection opened afterwards creates a new, empty WAL, and reading a
frame the index promises fails short (SQLITE_IOERR_SHORT_READ). Nothing is lost yet: the process that holds
the deleted WAL moves it into the database file when its last connection closes.
"""

from __future__ import annotations

import os
from typing import Final

IOERR_SHORT_READ: Final = 522  # SQLite's extended result code
_WAL_HEADER: Final = 32


def vanished(path: str, exc: BaseException) -> str | None:
    """The explanation for ``exc`` when the WAL of ``path`` is shorter than its index says, else None."""
    if getattr(exc, "sqlite_errorcode", None) != IOERR_SHORT_READ:
        return None
    wal, shm = path + "-wal", path + "-shm"
    try:
        shorter = os.stat(wal).st_size < _WAL_HEADER
    except FileNotFoundError:
        shorter = True
    except OSError:
        return None
    if not shorter or not os.path.exists(shm):
        return None
    return (
        f"database {path!r} cannot be read: its WAL {wal!r} is missing or empty while its index {shm!r} counts"
        " commits in it, so the WAL was deleted (or truncated) while another connection had the database open;"
        " those commits live on only in the process that holds the old WAL: close it (its last connection moves"
        " them into the database file), then open the store again"
    )
