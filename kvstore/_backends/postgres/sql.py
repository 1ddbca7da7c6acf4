"""Every statement kvstore runs on PostgreSQL, as named constants (psycopg's ``%s`` placeholders).

They mirror ``sqlite.sql`` statement for statement; only the spelling differs (``= ANY(%s)`` for an IN
list, ``FOR UPDATE`` for the write lock, ``FILTER`` in aggregates). psycopg prepares each on the server
after a few executions, so the hot path neither compiles nor re-plans. tests/test_schema.py runs every
constant against a database that alembic built from ``_schema``.
"""

from __future__ import annotations

from typing import Final

from ..._migrate import VERSION_TABLE
from ..transaction import Statements

# A point read's last column is the checksum, or -1 (``REFRESH``) for an entry refreshed on access, which its
# reader then reads whole (SQL_GET_WHOLE): one column rather than a TTL beside it, because each column a read
# returns costs the driver a conversion on every row. A read of one key the caller named returns no key
# column. A scan refreshes nothing, so it returns every checksum as stored.
_ENTRY: Final = "value, version, metadata, content_type, created_us, updated_us, expires_us"
_FOUND_COLUMNS: Final = f"{_ENTRY}, CASE WHEN refresh_on_access THEN -1 ELSE checksum END"
_COLUMNS: Final = f"{_ENTRY}, checksum, key"
_LIVE: Final = "(expires_us IS NULL OR expires_us > %s)"

SQL_GET: Final = f"SELECT {_FOUND_COLUMNS} FROM kvstore_entries WHERE namespace = %s AND key = %s AND {_LIVE}"
SQL_GET_WHOLE: Final = (
    f"SELECT {_ENTRY}, CASE WHEN refresh_on_access THEN ttl_us END, checksum"
    f" FROM kvstore_entries WHERE namespace = %s AND key = %s AND {_LIVE}"
)
# One statement, so one snapshot, however many keys.
SQL_GET_MANY: Final = (
    f"SELECT {_FOUND_COLUMNS}, key FROM kvstore_entries WHERE namespace = %s AND key = ANY(%s) AND {_LIVE}"
)
# Both lower bounds are passed; PostgreSQL's btree keeps only the tighter one at execution, so each page
# is one index seek. LIMIT NULL means no limit.
SQL_SCAN: Final = (
    f"SELECT {_COLUMNS} FROM kvstore_entries"
    f" WHERE namespace = %s AND key >= %s AND key < %s AND key > %s AND {_LIVE} ORDER BY key LIMIT %s"
)
SQL_SCAN_REVERSE: Final = (
    f"SELECT {_COLUMNS} FROM kvstore_entries"
    f" WHERE namespace = %s AND key >= %s AND key < %s AND key < %s AND {_LIVE} ORDER BY key DESC LIMIT %s"
)
SQL_SCAN_KEYS: Final = (
    "SELECT key FROM kvstore_entries"
    f" WHERE namespace = %s AND key >= %s AND key < %s AND key > %s AND {_LIVE} ORDER BY key LIMIT %s"
)
SQL_SCAN_KEYS_REVERSE: Final = (
    "SELECT key FROM kvstore_entries"
    f" WHERE namespace = %s AND key >= %s AND key < %s AND key < %s AND {_LIVE} ORDER BY key DESC LIMIT %s"
)
SQL_COUNT: Final = f"SELECT COUNT(*) FROM kvstore_entries WHERE namespace = %s AND key >= %s AND key < %s AND {_LIVE}"
SQL_REFRESH: Final = (
    "UPDATE kvstore_entries SET expires_us = %s WHERE namespace = %s AND key = %s AND version = %s AND expires_us > %s"
)

# The write lock: every writing transaction locks the one counter row first, so writers run one at a time
# (as under SQLite's BEGIN IMMEDIATE), each sees every earlier commit, and versionstamps follow commit order.
SQL_LOCK: Final = "SELECT version FROM kvstore_versionstamp WHERE id = 1 FOR UPDATE"
SQL_CURRENT: Final = f"SELECT version, created_us FROM kvstore_entries WHERE namespace = %s AND key = %s AND {_LIVE}"
SQL_NEXT_VERSION: Final = "UPDATE kvstore_versionstamp SET version = version + 1 WHERE id = 1 RETURNING version"
# A batch's versions at once (one round trip, not one per body): reserves the next %s, returns the last.
SQL_RESERVE_VERSIONS: Final = "UPDATE kvstore_versionstamp SET version = version + %s WHERE id = 1 RETURNING version"
# An entry written whole. Replacing a live entry keeps its creation time (a write's updated_us is its
# "now"), so a batch can write keys it never read: it need not know whether an entry was there.
SQL_PUT: Final = (
    "INSERT INTO kvstore_entries (namespace, key, value, content_type, metadata, version, created_us, updated_us,"
    " expires_us, ttl_us, refresh_on_access, checksum) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, content_type = EXCLUDED.content_type,"
    " metadata = EXCLUDED.metadata, version = EXCLUDED.version, created_us = CASE WHEN"
    " kvstore_entries.expires_us IS NULL OR kvstore_entries.expires_us > EXCLUDED.updated_us"
    " THEN kvstore_entries.created_us ELSE EXCLUDED.created_us END, updated_us = EXCLUDED.updated_us,"
    " expires_us = EXCLUDED.expires_us, ttl_us = EXCLUDED.ttl_us, refresh_on_access = EXCLUDED.refresh_on_access,"
    " checksum = EXCLUDED.checksum"
)
# A write that needs no check replaces a live entry in place (created_us stays); no row changed means there
# was none, and SQL_PUT then inserts (or replaces an expired row): a set of an existing key is one statement.
_REPLACE: Final = (
    "UPDATE kvstore_entries SET value = %s, content_type = %s, metadata = %s, version = %s, updated_us = %s,"
    " expires_us = %s, ttl_us = %s, refresh_on_access = %s, checksum = %s WHERE namespace = %s AND key = %s"
)
SQL_REPLACE_LIVE: Final = f"{_REPLACE} AND {_LIVE}"
# A conditional set checks and writes in one statement: replace only the live entry of that version, or
# insert only where no entry is live (an expired one is replaced). No row changed means the check failed.
SQL_PUT_IF_VERSION: Final = f"{_REPLACE} AND version = %s AND {_LIVE}"
SQL_PUT_IF_ABSENT: Final = (
    SQL_PUT + " WHERE kvstore_entries.expires_us IS NOT NULL AND kvstore_entries.expires_us <= %s"
)
# A put that also says whether it replaced a live entry: the CTE reads the row as it stood before the
# statement, so a blind set of a new key is one round trip, where replace_live then put take two. Used in
# batches, whose cost is their round trips; a lone set keeps SQL_REPLACE_LIVE first, the lighter statement
# for an existing key (see ``tx.PostgresTx.upsert``).
SQL_UPSERT: Final = (
    f"WITH live AS (SELECT 1 FROM kvstore_entries WHERE namespace = %s AND key = %s AND {_LIVE}) {SQL_PUT}"
    " RETURNING EXISTS (SELECT 1 FROM live)"
)
SQL_CURRENT_MANY: Final = (
    f"SELECT key, version, created_us FROM kvstore_entries WHERE namespace = %s AND key = ANY(%s) AND {_LIVE}"
)
SQL_DELETE: Final = "DELETE FROM kvstore_entries WHERE namespace = %s AND key = %s"
SQL_RANGE_BATCH: Final = (
    f"SELECT key, {_LIVE} FROM kvstore_entries WHERE namespace = %s AND key >= %s AND key < %s ORDER BY key LIMIT %s"
)
SQL_DELETE_THROUGH: Final = "DELETE FROM kvstore_entries WHERE namespace = %s AND key >= %s AND key <= %s"
# A purge takes no write lock. The outer condition is re-checked on the newest row version when a writer
# got there first (READ COMMITTED's recheck), so an entry rewritten with a later expiry is never purged.
SQL_PURGE: Final = (
    "DELETE FROM kvstore_entries WHERE id IN"
    " (SELECT id FROM kvstore_entries WHERE expires_us <= %s ORDER BY expires_us LIMIT %s) AND expires_us <= %s"
)

SQL_STATS: Final = (
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE expires_us <= %s), COUNT(DISTINCT namespace),"
    " COALESCE(MAX(version), 0) FROM kvstore_entries"
)
SQL_LAST_VERSION: Final = "SELECT version FROM kvstore_versionstamp WHERE id = 1"
# A dump (export, and a backup into an SQLite file): whole rows in the order of the unique index, as PutRows,
# every row or only the live ones; and how many, counted in the same snapshot.
_DUMP: Final = (
    "SELECT namespace, key, value, content_type, metadata, version, created_us, updated_us, expires_us, ttl_us,"
    " refresh_on_access, checksum FROM kvstore_entries"
)
SQL_DUMP: Final = f"{_DUMP} ORDER BY namespace, key"
SQL_DUMP_LIVE: Final = f"{_DUMP} WHERE {_LIVE} ORDER BY namespace, key"
SQL_COUNT_ALL: Final = "SELECT COUNT(*) FROM kvstore_entries"
SQL_COUNT_ALL_LIVE: Final = f"SELECT COUNT(*) FROM kvstore_entries WHERE {_LIVE}"
SQL_SIZE: Final = (
    "SELECT pg_total_relation_size('kvstore_entries'::regclass)"
    " + pg_total_relation_size('kvstore_versionstamp'::regclass)"
)
# Resolved through the connection's search_path, as alembic resolves the tables it creates.
SQL_HAS_VERSION_TABLE: Final = "SELECT to_regclass(%s) IS NOT NULL"
SQL_REVISIONS: Final = f"SELECT version_num FROM {VERSION_TABLE}"
# Taken by a migrating connection, so that processes opening a new database at once migrate it once.
SQL_MIGRATION_LOCK: Final = "SELECT pg_advisory_xact_lock(4242424242)"

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
