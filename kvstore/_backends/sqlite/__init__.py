"""The SQLite backend: ``backend`` (connections per thread, reads, transactions, errors, fork safety),
``open`` (a connection's pragmas, the file check, WAL, migration), ``tx`` (the connection type and the
statements of one write), ``fork`` (what a forked child may not touch) and ``sql`` (every statement)."""

from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
