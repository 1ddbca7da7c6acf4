"""Room for the WAL index: a store on a full disk is refused with StorageFullError before SQLite maps it.

SQLite keeps the WAL index in the ``-shm`` file, mapped into memory. The first connection to a database
truncates that file and extends it again by writing one byte at the end of each 4 KiB page; on a file
system with 1 or 2 KiB blocks that allocates one block of each page, and the first store into another block
of the mapping needs a block the full disk does not have: the kernel answers with SIGBUS and the process
dies (measured on a 4 MiB ext4 with 1 KiB blocks, the whole store in its WAL: killed by SIGBUS in WAL
recovery, with 81 KiB "free" that ext4 keeps in reserve). A stat of the WAL and a statvfs of the directory
(20 us on the development VM, once per store opened) tell beforehand whether the index fits. Preallocating
the -shm would not do: the first connection truncates it before mapping it. SQLite's heap-memory index
(``locking_mode=EXCLUSIVE``) would avoid the mapping, but would shut every other connection out, this
store's own included.

The same file system statistics bound the WAL of each connection and keep a reserve (``limit_wal``), so
that a small disk holds data rather than WAL and a full store can still delete.
"""

from __future__ import annotations

import os
import weakref
from typing import Final

from ..._errors import StorageFullError
from .tx import SQLiteConnection

_WAL_HEADER: Final = 32
_FRAME_HEADER: Final = 24
_REGION: Final = 32768  # bytes of WAL index per region
_FIRST_REGION_FRAMES: Final = 4062  # the first region also holds the index header
_REGION_FRAMES: Final = 4096


def _page_size(wal: str) -> int:
    """The page size a WAL's header records (65536 is stored as 1); 4096 if it cannot be read.

    Opening the WAL is safe, unlike opening the database or the -shm file: SQLite holds no POSIX lock on it,
    so closing this descriptor drops none of this process's locks."""
    try:
        with open(wal, "rb") as file:
            header = file.read(_WAL_HEADER)
    except OSError:
        return 4096
    if len(header) < _WAL_HEADER:
        return 4096
    size = int.from_bytes(header[8:12], "big")
    return 65536 if size == 1 else size if 512 <= size <= 65536 else 4096


def index_bytes(path: str) -> int:
    """The bytes of ``-shm`` SQLite maps to open the database at ``path`` with the WAL it has now."""
    wal = path + "-wal"
    try:
        size = os.stat(wal).st_size
    except OSError:
        return _REGION
    if size <= _WAL_HEADER + _FIRST_REGION_FRAMES * (_FRAME_HEADER + 512):
        return _REGION  # one region whatever the page size: no need to read the header (56 us here)
    frames = (size - _WAL_HEADER) // (_FRAME_HEADER + _page_size(wal))
    beyond = max(0, frames - _FIRST_REGION_FRAMES)
    return _REGION * (1 + -(-beyond // _REGION_FRAMES))


def _free(path: str) -> int | None:
    """The bytes free to unprivileged users on the file system of ``path``'s directory; None where unknown."""
    statvfs = getattr(os, "statvfs", None)  # POSIX only
    if statvfs is None:
        return None
    try:
        fs = statvfs(os.path.dirname(path) or ".")
    except OSError:
        return None
    free: int = fs.f_bavail * fs.f_frsize
    return free


def check_room(path: str) -> None:
    """Raise StorageFullError, naming the file system and what is missing, when the WAL index of ``path``
    would not fit in the space left to unprivileged users (``f_bavail``: ext4 leaves out root's reserve and
    the clusters it keeps for itself; the measured SIGBUS came with 81 KiB "free" in ``f_bfree``, all of them
    ext4's own). Root may be refused with some of its reserve left: a store is not worth a dead process.
    The old -shm's blocks are not counted either: SQLite frees them by truncating the file, but ext4 reuses
    freed blocks only once its journal commits (the SIGBUS came right after that truncation)."""
    directory = os.path.dirname(path) or "."
    free = _free(path)
    if free is None:
        return  # no statvfs (Windows), or the directory cannot be looked at: SQLite reports what it finds
    needed = index_bytes(path)
    if free < needed:
        raise StorageFullError(
            f"database {path!r} cannot be opened: the file system of {directory!r} has {free} bytes free, and"
            f" SQLite needs {needed} for the WAL index {path + '-shm'!r} (on a full disk, mapping it would kill"
            " the process); free some space, then kv.checkpoint('truncate') moves the WAL into the database"
        )


_AUTOCHECKPOINT_PAGES: Final = 1000  # SQLite's default: a checkpoint once the WAL holds this many frames
_JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024  # the WAL is trimmed back to this after a checkpoint
_WAL_SHARE: Final = 16  # on a small disk the WAL may take at most 1/16 of the space that was free
_MIN_AUTOCHECKPOINT_PAGES: Final = 16
_MAX_PAGES: Final = 4294967294  # SQLite's largest max_page_count

# The file and page limit each connection was given here: a limit set by anyone else is theirs.
_LIMITS: Final[weakref.WeakKeyDictionary[SQLiteConnection, tuple[str, int]]] = weakref.WeakKeyDictionary()

# Statements; pragmas take no bound parameters, so the PRAGMA_SET_ templates format an int in (tests/test_schema.py
# prepares every SQL_ constant, which a template is not).
SQL_PAGE_SIZE: Final = "PRAGMA page_size"
SQL_MAX_PAGE_COUNT: Final = "PRAGMA max_page_count"
PRAGMA_SET_MAX_PAGE_COUNT: Final = "PRAGMA max_page_count = {:d}"
PRAGMA_SET_AUTOCHECKPOINT: Final = "PRAGMA wal_autocheckpoint = {:d}"
PRAGMA_SET_JOURNAL_SIZE_LIMIT: Final = "PRAGMA journal_size_limit = {:d}"


def _wal_pages(free: int, page_size: int) -> int:
    return max(_MIN_AUTOCHECKPOINT_PAGES, min(_AUTOCHECKPOINT_PAGES, free // _WAL_SHARE // page_size))


def _page_limit(path: str, free: int, page_size: int) -> int:
    """The pages the database may grow to: what its file has, and the free space but a reserve.

    The reserve (twice the WAL's bound, and two regions of WAL index) is what deletes, a purge and the
    checkpoint that moves them into the file need: without it a full disk stays full, because every write,
    a delete too, needs WAL room that only a checkpoint can give back, and the checkpoint needs the disk to
    take the pages the WAL added (measured with the WAL bounded and no reserve: on a full 2 or 4 MiB ext4,
    every one of 95 or 307 deletes failed)."""
    try:
        pages = os.stat(path).st_size // page_size
    except OSError:
        pages = 0
    reserve = 2 * _wal_pages(free, page_size) * page_size + 2 * _REGION
    return min(_MAX_PAGES, pages + max(0, free - reserve) // page_size)


def limit_wal(conn: SQLiteConnection, path: str) -> None:
    """Set ``conn``'s WAL bounds and page limit for the disk as it is now.

    A store under the automatic checkpoint threshold lives in its WAL, and each commit appends every page it
    changed (the versionstamp counter's page every time), so on a small disk the WAL, not the data, fills it:
    measured on a 4 MiB ext4, SQLite's defaults (a checkpoint at 1000 pages, a 64 MiB trim) held 162 values
    of 3000 bytes, the whole store in a 2.7 MB WAL that no checkpoint could then move into the database file,
    and every delete failed. With the WAL bounded by a sixteenth of the free space, and the page limit's
    reserve, it held 549, and all 275 deletes of half of them worked (2 MiB: 51 -> 138; 8 MiB: 739 -> 1422).
    A big disk keeps SQLite's threshold, kvstore's 64 MiB trim, and a page limit it does not reach soon."""
    page_size: int = conn.execute(SQL_PAGE_SIZE).fetchone()[0]
    free = _free(path)
    if free is None:
        conn.execute(PRAGMA_SET_JOURNAL_SIZE_LIMIT.format(_JOURNAL_SIZE_LIMIT))
        return
    pages = _wal_pages(free, page_size)
    conn.execute(PRAGMA_SET_AUTOCHECKPOINT.format(pages))
    conn.execute(
        PRAGMA_SET_JOURNAL_SIZE_LIMIT.format(min(_JOURNAL_SIZE_LIMIT, max(free // _WAL_SHARE, pages * page_size)))
    )
    limit = _page_limit(path, free, page_size)
    _LIMITS[conn] = path, conn.execute(PRAGMA_SET_MAX_PAGE_COUNT.format(limit)).fetchone()[0]


def renew_limit(conn: SQLiteConnection) -> bool:
    """After SQLITE_FULL: give ``conn`` the page limit the disk allows now; whether it rose (space was freed).
    It falls on a disk that filled since (SQLite keeps it at the pages in use, at least), so that deletes find
    what is left of the reserve. A limit this module did not set (a test's, an application's) is left alone."""
    given = _LIMITS.get(conn)
    current: int = conn.execute(SQL_MAX_PAGE_COUNT).fetchone()[0]
    if given is None or given[1] != current:
        return False
    path = given[0]
    free = _free(path)
    if free is None:
        return False
    limit = _page_limit(path, free, conn.execute(SQL_PAGE_SIZE).fetchone()[0])
    if limit == current:
        return False
    given = _LIMITS[conn] = path, conn.execute(PRAGMA_SET_MAX_PAGE_COUNT.format(limit)).fetchone()[0]
    return given[1] > current
