"""Fork safety for the SQLite backend.

SQLite forbids using a connection in a child process, and even freeing one there runs sqlite3_close on
the parent's file. So the child starts with fresh connections and keeps the inherited ones referenced,
unclosed, for its whole life. They are pinned before the fork because the interpreter frees other
threads' state in the child before any after-fork hook runs. The hooks reach into each live backend's
connection registry: this module is part of ``_sqlite``, split out to keep that one readable.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .backend import SQLiteBackend

BACKENDS: weakref.WeakSet[SQLiteBackend] = weakref.WeakSet()
_PINNED: list[object] = []
_INHERITED: list[object] = []
# Files open in the parent at the fork. SQLite's lock bookkeeping is per file and per process, and the child
# inherits the parent's (the pinned connections keep it alive): a new connection to such a file in the
# child would believe its locks held and take none, so the parent could delete the WAL under it.
_PINNED_FILES: set[tuple[int, int] | None] = set()
INHERITED_FILES: set[tuple[int, int] | None] = set()
FORKED: Final = (
    "this database file was open in the parent process when it forked, and SQLite cannot be used on it "
    "safely in the child: open stores after fork(), or start workers with multiprocessing's 'spawn' or "
    "'forkserver'"
)


def identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _pin() -> None:
    for backend in list(BACKENDS):
        if not backend._memory:
            _PINNED.extend(backend._conns)
            if backend._conns:
                _PINNED_FILES.add(identity(backend._path))


def _unpin() -> None:
    _PINNED.clear()
    _PINNED_FILES.clear()


def _reset_in_child() -> None:
    _INHERITED.extend(_PINNED)
    _PINNED.clear()
    INHERITED_FILES.update(_PINNED_FILES - {None})
    _PINNED_FILES.clear()
    for backend in list(BACKENDS):
        backend._registry = threading.Lock()
        if backend._memory:
            # The child owns a private copy of an in-memory database: keep using its one connection.
            if backend._shared is not None:
                backend._shared.lock = threading.RLock()
            continue
        backend._local = threading.local()
        backend._conns = weakref.WeakSet()
        backend._forked = True


os.register_at_fork(before=_pin, after_in_parent=_unpin, after_in_child=_reset_in_child)
