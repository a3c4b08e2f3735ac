"""Audit events by action: the freshness poll reads the latest removal of a document, every
instance several times a second.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 00:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_action", table_name="audit_events")
