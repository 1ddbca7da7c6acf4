"""Every statement kvstore runs on SQLite, as named constants.

Constants rather than SQLAlchemy constructs compiled per call: SQLAlchemy's import alone costs a quarter
of a second and its per-statement overhead exceeds a primary-key lookup. ``_schema`` stays the one
definition of the tables; tests/test_schema.py prepares every constant here against a database that
alembic built from it, and checks the query plans use the indexes.
"""

from __future__ import annotations

from typing import Final

from ..._migrate import VERSION_TABLE
from ..transaction import Statements


def with_literal(sql: str, bound: str, literal: str) -> str:
    """``sql`` with its parameters ``bound`` written as ``literal`` (a statement for values that are always the
    same: sqlite3 passes None, bools and bytes through an adapter lookup that costs more than the statement's
    own binding); an error, at import, if ``sql`` no longer holds ``bound``."""
    if bound not in sql:  # pragma: no cover - a change to ``sql`` that its derived statement must follow
        raise AssertionError(f"{bound!r} is not in {sql!r}")
    return sql.replace(bound, literal)


# A point read's last column is the checksum, or -1 (``REFRESH``) for an entry refreshed on access, which its
# reader then reads whole (SQL_GET_WHOLE): one column rather than a TTL beside the checksum, because each
# column a read returns costs the driver a conversion on every row (2,300 of a get's 50,900 instructions
# under callgrind). The one-letter names are for the sqlite3 module, which builds cursor.description anew on
# every execute: CPython keeps every one-character str ready-made, so those names cost no allocation (a tenth
# of a microsecond per read). A read of one key the caller named returns no key column: one fewer conversion
# on the busiest read. A scan refreshes nothing, so it returns every checksum as stored.
_ENTRY: Final = (
    "value AS v, version AS n, metadata AS m, content_type AS c, created_us AS a, updated_us AS u, expires_us AS e"
)
_FOUND_COLUMNS: Final = f"{_ENTRY}, CASE WHEN refresh_on_access THEN -1 ELSE checksum END AS s"
_COLUMNS: Final = f"{_ENTRY}, checksum AS s, key AS k"
_LIVE: Final = "(expires_us IS NULL OR expires_us > ?)"

SQL_GET: Final = f"SELECT {_FOUND_COLUMNS} FROM kvstore_entries WHERE namespace = ? AND key = ? AND {_LIVE}"
SQL_GET_WHOLE: Final = (
    f"SELECT {_ENTRY}, CASE WHEN refresh_on_access THEN ttl_us END AS r, checksum AS s"
    f" FROM kvstore_entries WHERE namespace = ? AND key = ? AND {_LIVE}"
)
SQL_GET_MANY: Final = (
    f"SELECT {_FOUND_COLUMNS}, key AS k FROM kvstore_entries WHERE namespace = ? AND {_LIVE} AND key IN "
)
# Each range statement bounds the key once from each side, so SQLite seeks straight to the first row of a
# page: a second lower bound (the resume key beside the range's start) would only filter, row by row, making
# every page rescan the whole listing before it. A forward page resumes strictly after its cursor's key, so it
# has a statement of its own (key > ?); a reverse page's two upper bounds are both strict, and the caller
# passes the smaller.
SQL_SCAN: Final = (
    f"SELECT {_COLUMNS} FROM kvstore_entries"
    f" WHERE namespace = ? AND key >= ? AND key < ? AND {_LIVE} ORDER BY key LIMIT ?"
)
SQL_SCAN_AFTER: Final = (
    f"SELECT {_COLUMNS} FROM kvstore_entries"
    f" WHERE namespace = ? AND key > ? AND key < ? AND {_LIVE} ORDER BY key LIMIT ?"
)
SQL_SCAN_REVERSE: Final = (
    f"SELECT {_COLUMNS} FROM kvstore_entries"
    f" WHERE namespace = ? AND key >= ? AND key < ? AND {_LIVE} ORDER BY key DESC LIMIT ?"
)
# A read on an event loop's thread (``loopread``): SQL_GET, but the value comes back only when it is at most the
# bound (the first parameter), else NULL, and the reader goes to a thread. length() of a blob reads only the
# record header, so a large value is not copied out here (1,100 instructions more than SQL_GET under callgrind;
# bounding value and metadata together cost 2,800).
SQL_LOOP_GET: Final = (
    "SELECT CASE WHEN length(value) <= ? THEN value END AS v, version AS n, metadata AS m, content_type AS c,"
    " created_us AS a, updated_us AS u, expires_us AS e, CASE WHEN refresh_on_access THEN -1 ELSE checksum END AS s"
    f" FROM kvstore_entries WHERE namespace = ? AND key = ? AND {_LIVE}"
)
SQL_REFRESH: Final = (
    "UPDATE kvstore_entries SET expires_us = ? WHERE namespace = ? AND key = ? AND version = ? AND expires_us > ?"
)
SQL_CURRENT: Final = f"SELECT version, created_us FROM kvstore_entries WHERE namespace = ? AND key = ? AND {_LIVE}"
# Versionstamps come from blocks: a connection that finds the counter row as it last left it draws the
# next number of its block without writing the row (a second page per commit, the largest cost of a small
# write); otherwise it reserves a new block, from the counter + 1, by writing the block's end there. Every
# reservation raises the counter, so a connection whose block end is still the counter's value knows that
# nobody has reserved since: its numbers are still above every committed versionstamp. Versionstamps
# therefore increase in commit order, with a gap where one writer takes over from another.
SQL_READ_VERSION: Final = "SELECT version FROM kvstore_versionstamp WHERE id = 1"
SQL_RESERVE: Final = "UPDATE kvstore_versionstamp SET version = ? WHERE id = 1"
_BLOCK_HELD: Final = "(SELECT version FROM kvstore_versionstamp WHERE id = 1) = ?"
# An entry written whole. Replacing a live entry keeps its creation time (a write's updated_us is its
# "now"), so a batch can write keys it never read: it need not know whether an entry was there.
SQL_PUT: Final = (
    "INSERT INTO kvstore_entries (namespace, key, value, content_type, metadata, version, created_us, updated_us,"
    " expires_us, ttl_us, refresh_on_access, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,"
    " metadata = excluded.metadata, version = excluded.version, created_us = CASE WHEN"
    " kvstore_entries.expires_us IS NULL OR kvstore_entries.expires_us > excluded.updated_us"
    " THEN kvstore_entries.created_us ELSE excluded.created_us END, updated_us = excluded.updated_us,"
    " expires_us = excluded.expires_us, ttl_us = excluded.ttl_us, refresh_on_access = excluded.refresh_on_access,"
    " checksum = excluded.checksum"
)
# A write that needs no check replaces a live entry in place (created_us stays); no row changed means
# there was none, and SQL_PUT then inserts (or replaces an expired row). So a set of an existing key is
# one statement, not a read and then a write.
SQL_REPLACE_LIVE: Final = (
    "UPDATE kvstore_entries SET value = ?, content_type = ?, metadata = ?, version = ?, updated_us = ?,"
    f" expires_us = ?, ttl_us = ?, refresh_on_access = ?, checksum = ? WHERE namespace = ? AND key = ? AND {_LIVE}"
)
# A conditional set checks and writes in one statement: replace only the live entry of that version, or
# insert only where no entry is live (an expired one is replaced). No row changed means the check failed.
SQL_PUT_IF_VERSION: Final = (
    "UPDATE kvstore_entries SET value = ?, content_type = ?, metadata = ?, version = ?, updated_us = ?,"
    " expires_us = ?, ttl_us = ?, refresh_on_access = ?, checksum = ?"
    f" WHERE namespace = ? AND key = ? AND version = ? AND {_LIVE}"
)
SQL_PUT_IF_ABSENT: Final = SQL_PUT + " WHERE kvstore_entries.expires_us IS NOT NULL AND kvstore_entries.expires_us <= ?"
# One write as one statement in autocommit, outside any transaction, for a connection that holds a block:
# each also checks that the counter is still the block's end, inside the statement (which holds the write
# lock), and changes nothing otherwise. No row changed is then ambiguous (the check, or the block), and the
# caller runs the write as a transaction instead.
SQL_ONE_REPLACE_LIVE: Final = f"{SQL_REPLACE_LIVE} AND {_BLOCK_HELD}"
SQL_ONE_PUT_IF_VERSION: Final = f"{SQL_PUT_IF_VERSION} AND {_BLOCK_HELD}"
SQL_ONE_PUT_IF_ABSENT: Final = (
    "INSERT INTO kvstore_entries (namespace, key, value, content_type, metadata, version, created_us, updated_us,"
    f" expires_us, ttl_us, refresh_on_access, checksum) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE {_BLOCK_HELD}"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,"
    " metadata = excluded.metadata, version = excluded.version, created_us = excluded.created_us,"
    " updated_us = excluded.updated_us, expires_us = excluded.expires_us, ttl_us = excluded.ttl_us,"
    " refresh_on_access = excluded.refresh_on_access, checksum = excluded.checksum"
    " WHERE kvstore_entries.expires_us IS NOT NULL AND kvstore_entries.expires_us <= ?"
)
SQL_CURRENT_MANY: Final = (
    f"SELECT key, version, created_us FROM kvstore_entries WHERE namespace = ? AND {_LIVE} AND key IN "
)
SQL_DELETE: Final = "DELETE FROM kvstore_entries WHERE namespace = ? AND key = ?"
# The subquery walks the partial index on expires_us, so a purge never scans permanent entries.
SQL_PURGE: Final = (
    "DELETE FROM kvstore_entries WHERE id IN"
    " (SELECT id FROM kvstore_entries WHERE expires_us <= ? ORDER BY expires_us LIMIT ?)"
)
SQL_STATS: Final = (
    "SELECT COUNT(*), COALESCE(SUM(expires_us IS NOT NULL AND expires_us <= ?), 0), COUNT(DISTINCT namespace),"
    " COALESCE(MAX(version), 0) FROM kvstore_entries"
)
SQL_HAS_VERSION_TABLE: Final = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
SQL_REVISIONS: Final = f"SELECT version_num FROM {VERSION_TABLE}"
SQL_SCAN_KEYS: Final = (
    f"SELECT key FROM kvstore_entries WHERE namespace = ? AND key >= ? AND key < ? AND {_LIVE} ORDER BY key LIMIT ?"
)
SQL_SCAN_KEYS_AFTER: Final = (
    f"SELECT key FROM kvstore_entries WHERE namespace = ? AND key > ? AND key < ? AND {_LIVE} ORDER BY key LIMIT ?"
)
SQL_SCAN_KEYS_REVERSE: Final = (
    "SELECT key FROM kvstore_entries"
    f" WHERE namespace = ? AND key >= ? AND key < ? AND {_LIVE} ORDER BY key DESC LIMIT ?"
)
SQL_COUNT: Final = f"SELECT COUNT(*) FROM kvstore_entries WHERE namespace = ? AND key >= ? AND key < ? AND {_LIVE}"
# One batch of a range delete: the next keys in order, and whether each is live (only live ones count).
SQL_RANGE_BATCH: Final = (
    f"SELECT key, {_LIVE} FROM kvstore_entries WHERE namespace = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?"
)
SQL_DELETE_THROUGH: Final = "DELETE FROM kvstore_entries WHERE namespace = ? AND key >= ? AND key <= ?"
# Changes whenever another connection, in any process, commits to the database.
SQL_DATA_VERSION: Final = "PRAGMA data_version"
# ``kv.verify()``: every page, record and index of the file (``_verify`` says why not quick_check by default).
SQL_INTEGRITY_CHECK: Final = "PRAGMA integrity_check"
SQL_QUICK_CHECK: Final = "PRAGMA quick_check"
# A dump (export, and what a backup of PostgreSQL writes): whole rows in the order of the unique index, as
# PutRows, every row or only the live ones; and how many, counted in the same snapshot.
_DUMP: Final = (
    "SELECT namespace, key, value, content_type, metadata, version, created_us, updated_us, expires_us, ttl_us,"
    " refresh_on_access, checksum FROM kvstore_entries"
)
SQL_DUMP: Final = f"{_DUMP} ORDER BY namespace, key"
SQL_DUMP_LIVE: Final = f"{_DUMP} WHERE {_LIVE} ORDER BY namespace, key"
SQL_COUNT_ALL: Final = "SELECT COUNT(*) FROM kvstore_entries"
SQL_COUNT_ALL_LIVE: Final = f"SELECT COUNT(*) FROM kvstore_entries WHERE {_LIVE}"

# Transaction control around each body of a batch (``SQLTransaction.attempt``). Not ``SQL_`` constants: those
# are planned with EXPLAIN against the schema, which PostgreSQL cannot do for these; tests/test_group_commit.py
# runs them. One name serves every body: a body's savepoint is released (or rolled back to and released)
# before the next one is taken.
SAVEPOINT: Final = "SAVEPOINT kvstore_body"
RELEASE_SAVEPOINT: Final = "RELEASE SAVEPOINT kvstore_body"
ROLLBACK_TO_SAVEPOINT: Final = "ROLLBACK TO SAVEPOINT kvstore_body"

TX_STATEMENTS: Final = Statements(
    current=SQL_CURRENT,
    read=SQL_GET_WHOLE,
    put=SQL_PUT,
    replace_live=SQL_REPLACE_LIVE,
    put_if_absent=SQL_PUT_IF_ABSENT,
    put_if_version=SQL_PUT_IF_VERSION,
    delete=SQL_DELETE,
    range_batch=SQL_RANGE_BATCH,
    delete_through=SQL_DELETE_THROUGH,
    savepoint=SAVEPOINT,
    release=RELEASE_SAVEPOINT,
    rollback_to=ROLLBACK_TO_SAVEPOINT,
)
