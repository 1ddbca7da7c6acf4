"""Opening an SQLite database for kvstore: the connection and its pragmas, the file check, WAL, and the
schema migration. The backend (``backend``) calls these; sqlite3 errors come out raw, for it to translate.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable

from ..._errors import KVError, NotADatabaseError, StorageError, StoreUnavailableError
from ..._migrate import HEAD, VERSION_TABLE, needs_upgrade, upgrade
from .block import VersionBlock
from .errors import BUSY, LOCKED, primary_code
from .readonly import URI
from .space import limit_wal
from .sql import SQL_HAS_VERSION_TABLE, SQL_REVISIONS
from .tx import SQLiteConnection


def connect(path: str, busy_timeout: float, synchronous: str) -> SQLiteConnection:
    """A new connection to ``path`` with kvstore's pragmas, lock, versionstamp block and read cursor."""
    # isolation_level=None: the sqlite3 module must not open transactions behind our back; kvstore issues
    # BEGIN IMMEDIATE itself. check_same_thread=False only so close() may close every thread's connection:
    # each connection is still used by one thread at a time.
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=False,
        factory=SQLiteConnection,
        uri=isinstance(path, URI),  # a read-only place's mode=ro or immutable=1 (``readonly``)
    )
    try:
        # NORMAL is durable against application crashes in WAL mode; FULL also survives power loss.
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # After a checkpoint, trim the WAL back to 64 MiB instead of keeping its high-water size; on a small
        # disk, checkpoint sooner, trim further and keep a reserve for deletes (``space.limit_wal``).
        if path == ":memory:" or isinstance(path, URI):
            conn.execute("PRAGMA journal_size_limit = 67108864")
        else:
            limit_wal(conn, path)
    except sqlite3.Error:
        conn.close()
        raise
    assert isinstance(conn, SQLiteConnection)
    conn.lock = threading.RLock()
    conn.block = VersionBlock()
    conn.reader = conn.cursor()
    return conn


def check_header(path: str) -> None:
    """Refuse a one-byte file, the only non-SQLite file SQLite would take for an empty database.

    SQLite's unix layer reports a file of exactly one byte as empty and overwrites it on the first write;
    every other non-SQLite file it rejects itself. The check is a stat, never an open: closing any
    descriptor of a file drops every POSIX lock this process holds on it, SQLite's included, and another
    process could then checkpoint and delete the WAL under a live store.
    """
    try:
        size = os.stat(path).st_size
    except (FileNotFoundError, NotADirectoryError):
        return  # SQLite creates the file, or reports why it cannot
    except OSError as exc:
        raise StoreUnavailableError(f"database {path!r} cannot be examined ({exc})") from exc
    if size == 1:
        raise NotADatabaseError(f"database {path!r} is not an SQLite database; it was left untouched")


def use_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch the file to WAL (readers then never wait for a writer; the mode persists in the file).

    SQLite refuses the switch at once, without calling the busy handler, while another connection holds a
    lock (a concurrent opener migrating a new file, say), so the busy timeout is applied here.
    """
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if primary_code(exc) not in (BUSY, LOCKED) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)  # back off between attempts, as SQLite's own busy handler does
        delay = min(2 * delay, 0.05)


def revisions(conn: sqlite3.Connection) -> list[str]:
    """The schema revisions alembic recorded in the file (none for a new file)."""
    if conn.execute(SQL_HAS_VERSION_TABLE, (VERSION_TABLE,)).fetchone() is None:
        return []
    return [row[0] for row in conn.execute(SQL_REVISIONS)]


def migrate(conn: sqlite3.Connection, translate: Callable[[sqlite3.Error], KVError]) -> None:
    """Run alembic on this connection, inside BEGIN IMMEDIATE so that concurrent openers wait."""
    import sqlalchemy
    from sqlalchemy.pool import StaticPool

    engine = sqlalchemy.create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin(connection: sqlalchemy.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.connect() as connection, connection.begin():
            # Another process may have migrated while this one waited for the lock: look again.
            if needs_upgrade(revisions(conn)):
                upgrade(connection)
    except sqlalchemy.exc.DBAPIError as exc:
        orig = exc.orig
        raise (translate(orig) if isinstance(orig, sqlite3.Error) else StorageError(str(exc))) from exc
    except sqlite3.Error as exc:
        raise translate(exc) from exc
    except KVError:
        raise
    except Exception as exc:  # alembic's and SQLAlchemy's own errors: a broken migration environment
        raise StorageError(f"migrating the schema to revision {HEAD} failed: {exc}") from exc
