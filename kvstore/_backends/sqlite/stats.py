"""The figures of ``info()`` on SQLite, read in one snapshot."""

from __future__ import annotations

from .open import revisions
from .sql import SQL_STATS
from .tx import SQLiteConnection

__all__ = ["figures"]


def figures(conn: SQLiteConnection, now_us: int, *, memory: bool) -> tuple[int, int, int, int, str, int | None, str]:
    """(live rows, expired rows, namespaces, last version, schema revision, file bytes or None in memory,
    journal mode); sqlite3 errors are the caller's to translate."""
    with conn.lock:
        began = not conn.in_transaction  # a write_batch block's open transaction is one snapshot
        if began:
            conn.execute("BEGIN")  # one snapshot for every figure
        try:
            rows, expired, namespaces, version = conn.execute(SQL_STATS, (now_us,)).fetchone()
            revision = ",".join(revisions(conn))
            pages: int = conn.execute("PRAGMA page_count").fetchone()[0]
            page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
            journal: str = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            if began:
                conn.execute("COMMIT")
    return rows - expired, expired, namespaces, version, revision, None if memory else pages * page_size, journal
