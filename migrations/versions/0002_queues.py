"""Create the queue table: messages of every namespace's queues, live (waiting or leased) or dead-lettered.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kvstore_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column(
            "namespace",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "queue",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("enqueued_us", sa.BigInteger(), nullable=False),
        sa.Column("due_us", sa.BigInteger(), nullable=False),
        sa.Column("leased_until_us", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("backoff", sa.Text(), nullable=False),
        sa.Column("keys_if_undelivered", sa.Text(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_kvstore_queue_due",
        "kvstore_queue",
        ["namespace", "queue", "due_us", "id"],
        unique=False,
        sqlite_where=sa.text("state = 0"),
        postgresql_where=sa.text("state = 0"),
    )
    op.create_index(
        "ix_kvstore_queue_dead",
        "kvstore_queue",
        ["namespace", "queue"],
        unique=False,
        sqlite_where=sa.text("state = 1"),
        postgresql_where=sa.text("state = 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_kvstore_queue_dead", table_name="kvstore_queue")
    op.drop_index("ix_kvstore_queue_due", table_name="kvstore_queue")
    op.drop_table("kvstore_queue")
