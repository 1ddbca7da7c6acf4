"""Add the entries' checksum column: CRC32 of content type, metadata and value, checked on every read.

Entries already stored keep NULL there ("no checksum yet") until they are rewritten: an upgrade reads no row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("kvstore_entries", sa.Column("checksum", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kvstore_entries") as batch:
        batch.drop_column("checksum")
