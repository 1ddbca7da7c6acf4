"""The database backends behind the seam of ``base``: SQLite (``sqlite/``) and PostgreSQL (``postgres/``).

``open_backend`` is the one door: the store names a kind and a location, and gets a ``Backend``. The
PostgreSQL package is imported only here, and only for a PostgreSQL target, so an SQLite program never
imports psycopg (cold start stays as it was).
"""

from __future__ import annotations

from .base import Backend
from .sqlite import SQLiteBackend


def open_backend(
    kind: str,
    location: str,
    *,
    busy_timeout: float,
    synchronous: str,
    pool_size: int,
    pool_timeout: float,
    connect_timeout: float,
) -> Backend:
    """A backend on ``location``: an SQLite path (or ``:memory:``) when ``kind`` is "sqlite", else a PostgreSQL URL."""
    if kind == "postgresql":
        from .postgres import PostgresBackend

        return PostgresBackend(
            location,
            busy_timeout=busy_timeout,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
            connect_timeout=connect_timeout,
        )
    return SQLiteBackend(location, busy_timeout=busy_timeout, synchronous=synchronous)


__all__ = ["Backend", "open_backend"]
