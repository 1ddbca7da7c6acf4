"""The SQLite backend: ``backend`` (connections per thread, reads, transactions), ``open`` (a connection's
pragmas, the file check, WAL, migration), ``tx`` (the connection type, the statements of one write, the
one-statement write), ``write`` (write transactions, whole or held open), ``block`` (reserved versionstamps),
``errors`` (sqlite3 errors as KVErrors), ``fork`` (what a forked child may not touch), ``loopread`` (gets on
an event loop's thread, which never wait) and ``sql`` (every statement)."""

from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
