"""The one definition of kvstore's tables; alembic revisions in migrations/ are checked against it.

Times are integer microseconds since the Unix epoch, taken from the store's clock, never the database's.
Imported only by migrations and tests: the SQLite hot path uses the named statements in ``_backends.sqlite.sql``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["entries", "metadata", "queue", "versionstamps"]

metadata = MetaData()

entries = Table(
    "kvstore_entries",
    metadata,
    # A rowid table with a unique index, not WITHOUT ROWID: values may be megabytes, and SQLite advises
    # WITHOUT ROWID only for rows far smaller than a page.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    # Byte order ("C" collation) on PostgreSQL, as SQLite compares text: listings and ranges agree.
    Column("namespace", String(64).with_variant(String(64, collation="C"), "postgresql"), nullable=False),
    Column("key", String(256).with_variant(String(256, collation="C"), "postgresql"), nullable=False),
    Column("value", LargeBinary(), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("metadata", Text(), nullable=True),
    Column("version", BigInteger(), nullable=False),
    Column("created_us", BigInteger(), nullable=False),
    Column("updated_us", BigInteger(), nullable=False),
    Column("expires_us", BigInteger(), nullable=True),
    Column("ttl_us", BigInteger(), nullable=True),
    Column("refresh_on_access", Boolean(), nullable=False),
    # CRC32 of content_type, metadata and value (``_checksum``), checked on every read; NULL in an entry
    # written before revision 0003 until it is rewritten.
    Column("checksum", BigInteger(), nullable=True),
    UniqueConstraint("namespace", "key", name="uq_kvstore_entries_namespace_key"),
)

# Partial: permanent entries never enter the index that purge_expired walks.
Index(
    "ix_kvstore_entries_expires_us",
    entries.c.expires_us,
    sqlite_where=entries.c.expires_us.isnot(None),
    postgresql_where=entries.c.expires_us.isnot(None),
)

# One row (id = 1) holding the last commit counter: the source of every versionstamp.
versionstamps = Table(
    "kvstore_versionstamp",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("version", BigInteger(), nullable=False),
)

# Queue messages. state: 0 live, 1 dead letter (kept until cleared). A live message is leased while
# leased_until_us (0 when never leased or put back) is after now, else ready once due_us has passed. Delivery
# order is (due_us, id); acknowledged rows are deleted. A claim writes only attempt, leased_until_us and
# lease_token, none of which ix_kvstore_queue_due holds or filters on, so the claimed row stays where it is in
# that index (and an expired lease is delivered again in its place). The value comes last: a claim reads
# leased_until_us of each leased row it passes, and a column stored after a value that overflows its page is
# reached through the value's overflow pages (under callgrind, passing 10 rows of 16 KiB: 36,200 instructions
# a claim that way, 23,700 with the value last).
queue = Table(
    "kvstore_queue",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(26), nullable=False),
    Column("namespace", String(64).with_variant(String(64, collation="C"), "postgresql"), nullable=False),
    Column("queue", String(64).with_variant(String(64, collation="C"), "postgresql"), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("version", BigInteger(), nullable=False),
    Column("enqueued_us", BigInteger(), nullable=False),
    Column("due_us", BigInteger(), nullable=False),
    Column("leased_until_us", BigInteger(), nullable=False),
    Column("attempt", Integer(), nullable=False),
    Column("state", SmallInteger(), nullable=False),
    Column("lease_token", String(32), nullable=True),
    Column("backoff", Text(), nullable=False),
    Column("keys_if_undelivered", Text(), nullable=True),
    Column("value", LargeBinary(), nullable=False),
)

# Partial: the claim walks only live messages, in delivery order; dead letters have an index of their own.
Index(
    "ix_kvstore_queue_due",
    queue.c.namespace,
    queue.c.queue,
    queue.c.due_us,
    queue.c.id,
    sqlite_where=queue.c.state == 0,
    postgresql_where=queue.c.state == 0,
)
Index(
    "ix_kvstore_queue_dead",
    queue.c.namespace,
    queue.c.queue,
    sqlite_where=queue.c.state == 1,
    postgresql_where=queue.c.state == 1,
)
