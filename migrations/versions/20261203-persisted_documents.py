"""Persisted documents: what clients registered by hash (APQ) and what staff trusted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:44:25.621805
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persisted_documents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('trusted', 'apq')", name=op.f("ck_persisted_documents_source")
        ),
        sa.CheckConstraint(
            "length(sha256) = 64", name=op.f("ck_persisted_documents_sha256_is_hex_digest")
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_persisted_documents")),
    )
    with op.batch_alter_table("persisted_documents", schema=None) as batch_op:
        batch_op.create_index("ix_persisted_documents_source", ["source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("persisted_documents", schema=None) as batch_op:
        batch_op.drop_index("ix_persisted_documents_source")

    op.drop_table("persisted_documents")
