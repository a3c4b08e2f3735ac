"""Partner keys: the partner a key reads for, and the markets and locales it may read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 19:46:42.508230
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("markets", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("locales", sa.JSON(), nullable=True))
        batch_op.create_check_constraint(
            "partner_key_names_partner", "kind <> 'partner' OR partner IS NOT NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_partner_key_names_partner"), type_="check")
        batch_op.drop_column("locales")
        batch_op.drop_column("markets")
        batch_op.drop_column("partner")
