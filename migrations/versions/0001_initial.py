"""Create the entries and versionstamp tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kvstore_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column(
            "namespace",
            sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "key",
            sa.String(length=256).with_variant(sa.String(length=256, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=True),
        sa.Column("ttl_us", sa.BigInteger(), nullable=True),
        sa.Column("refresh_on_access", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace", "key", name="uq_kvstore_entries_namespace_key"),
    )
    op.create_index(
        "ix_kvstore_entries_expires_us",
        "kvstore_entries",
        ["expires_us"],
        unique=False,
        sqlite_where=sa.text("expires_us IS NOT NULL"),
        postgresql_where=sa.text("expires_us IS NOT NULL"),
    )
    versionstamps = op.create_table(
        "kvstore_versionstamp",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(versionstamps, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("kvstore_versionstamp")
    op.drop_index("ix_kvstore_entries_expires_us", table_name="kvstore_entries")
    op.drop_table("kvstore_entries")
