"""Releases carry the catalogs as they were when published, so pinned releases never change.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 04:03:55.180689
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the catalog tables as of this revision; later schema changes do not alter this migration
CATALOG_COLUMNS = {
    "topics": ("key", ["key", "names", "descriptions"]),
    "conditions": ("key", ["key", "names"]),
    "categories": ("key", ["key", "names"]),
    "markets": ("code", ["code", "name", "default_locale", "locales"]),
    "citations": (
        "key",
        ["key", "title", "authors", "journal", "year", "doi", "pmid", "study_type"],
    ),
}
JSON_COLUMNS = {"names", "descriptions", "locales"}


def _snapshot(connection: sa.Connection) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for table, (key, columns) in CATALOG_COLUMNS.items():
        rows = connection.execute(
            sa.select(*(sa.column(c) for c in columns))
            .select_from(sa.table(table))
            .order_by(sa.column(key))
        )
        snapshot[table] = [
            {
                column: json.loads(value)
                if column in JSON_COLUMNS and isinstance(value, str)
                else value
                for column, value in zip(columns, row, strict=True)
            }
            for row in rows
        ]
    return snapshot


def upgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("catalog", sa.JSON(), nullable=True))
    # releases published before this revision get today's catalogs: the best record there is
    connection = op.get_bind()
    releases = sa.table("releases", sa.column("id", sa.Integer), sa.column("catalog", sa.JSON))
    if connection.execute(sa.select(sa.func.count()).select_from(releases)).scalar():
        connection.execute(sa.update(releases).values(catalog=_snapshot(connection)))
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.alter_column("catalog", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("catalog")
