"""Fork safety for the SQLite backend.

SQLite forbids using a connection in a child process, and even freeing one there runs sqlite3_close on
the parent's file. So the child starts with fresh connections and keeps the inherited ones referenced,
unclosed, for its whole life. They are pinned before the fork because the interpreter frees other
threads' state in the child before any after-fork hook runs. The hooks ask each live backend what to pin
(``before_fork``) and tell it to reset (``after_fork_in_child``); what that means is the backend's own.
"""

from __future__ import annotations

import os
import weakref
from typing import Final, Protocol

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


class ForkAware(Protocol):
    """A backend that takes part in the hooks: it says what to pin, and resets itself in the child."""

    def before_fork(self) -> tuple[list[object], tuple[int, int] | None]:
        """The connections a child must keep referenced, unclosed, and the identity of their file."""

    def after_fork_in_child(self) -> None:
        """Forget the inherited connections: the child opens its own, or refuses an inherited file."""


BACKENDS: weakref.WeakSet[ForkAware] = weakref.WeakSet()
"""Every live backend, for the hooks (``SQLiteBackend`` adds itself)."""


def identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _pin() -> None:
    for backend in list(BACKENDS):
        conns, file = backend.before_fork()
        _PINNED.extend(conns)
        if conns:
            _PINNED_FILES.add(file)


def _unpin() -> None:
    _PINNED.clear()
    _PINNED_FILES.clear()


def _reset_in_child() -> None:
    _INHERITED.extend(_PINNED)
    _PINNED.clear()
    INHERITED_FILES.update(_PINNED_FILES - {None})
    _PINNED_FILES.clear()
    for backend in list(BACKENDS):
        backend.after_fork_in_child()


os.register_at_fork(before=_pin, after_in_parent=_unpin, after_in_child=_reset_in_child)
