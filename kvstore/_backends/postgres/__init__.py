"""The PostgreSQL backend (psycopg 3): ``backend`` (pool use, errors, fork), ``write`` (write transactions:
the write lock, retries, and one held open for write_batch), ``pool`` (a small connection pool), ``tx`` (the
statements of one write) and ``sql`` (every statement).

Imported only for a PostgreSQL target: importing it without the ``postgres`` extra is a ConfigurationError.
"""

from .backend import PostgresBackend
from .urls import display_url

__all__ = ["PostgresBackend", "display_url"]
