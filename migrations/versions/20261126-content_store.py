"""Content store: catalogs, entries, immutable revisions, reviews and the release log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 03:41:37.457825
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_categories")),
    )
    op.create_table(
        "citations",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("authors", sa.String(length=500), nullable=False),
        sa.Column("journal", sa.String(length=300), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("doi", sa.String(length=200), nullable=True),
        sa.Column("pmid", sa.String(length=20), nullable=True),
        sa.Column("study_type", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "doi IS NOT NULL OR pmid IS NOT NULL", name=op.f("ck_citations_doi_or_pmid")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_citations")),
    )
    op.create_table(
        "conditions",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_conditions")),
    )
    op.create_table(
        "content_locks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_content_locks")),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('snippet', 'takeaway', 'disclaimer')", name=op.f("ck_entries_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint("key", name=op.f("uq_entries_key")),
    )
    op.create_table(
        "markets",
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("default_locale", sa.String(length=35), nullable=False),
        sa.Column("locales", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_markets")),
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id >= 1", name=op.f("ck_releases_id_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
    )
    op.create_table(
        "topics",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("descriptions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_topics")),
    )
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=True),
        sa.Column("body_markdown", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("evidence", sa.String(length=20), nullable=True),
        sa.Column("disclaimer_kind", sa.String(length=40), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("change_note", sa.String(length=500), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("source_path", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "disclaimer_kind IS NULL OR disclaimer_kind IN ('not_medical_advice', 'fda_structure_function', 'cosmetic')",
            name=op.f("ck_revisions_disclaimer_kind"),
        ),
        sa.CheckConstraint(
            "evidence IS NULL OR evidence IN ('established', 'moderate', 'limited', 'emerging')",
            name=op.f("ck_revisions_evidence"),
        ),
        sa.CheckConstraint("number >= 1", name=op.f("ck_revisions_number_positive")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_revisions_entry_id_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisions")),
        sa.UniqueConstraint(
            "entry_id", "locale", "number", name="uq_revisions_entry_locale_number"
        ),
    )
    op.create_table(
        "release_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_release_items_entry_id_entries")
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_release_items_release_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"], ["revisions.id"], name=op.f("fk_release_items_revision_id_revisions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_items")),
        sa.UniqueConstraint(
            "release_id", "entry_id", "locale", name="uq_release_items_release_entry_locale"
        ),
    )
    with op.batch_alter_table("release_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_release_items_entry_locale_release",
            ["entry_id", "locale", "release_id"],
            unique=False,
        )

    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('submitted', 'approved', 'rejected')",
            name=op.f("ck_review_decisions_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_review_decisions_revision_id_revisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decisions")),
    )
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_decisions_revision_id"), ["revision_id"], unique=False
        )

    op.create_table(
        "revision_categories",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("category_key", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_key"],
            ["categories.key"],
            name=op.f("fk_revision_categories_category_key_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_revision_categories_revision_id_revisions"),
        ),
        sa.PrimaryKeyConstraint("revision_id", "category_key", name=op.f("pk_revision_categories")),
    )
    op.create_table(
        "revision_citations",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("citation_key", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["citation_key"],
            ["citations.key"],
            name=op.f("fk_revision_citations_citation_key_citations"),
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_revision_citations_revision_id_revisions"),
        ),
        sa.PrimaryKeyConstraint("revision_id", "citation_key", name=op.f("pk_revision_citations")),
    )
    op.create_table(
        "revision_conditions",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("condition_key", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["condition_key"],
            ["conditions.key"],
            name=op.f("fk_revision_conditions_condition_key_conditions"),
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_revision_conditions_revision_id_revisions"),
        ),
        sa.PrimaryKeyConstraint(
            "revision_id", "condition_key", name=op.f("pk_revision_conditions")
        ),
    )
    with op.batch_alter_table("revision_conditions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_revision_conditions_condition_key", ["condition_key"], unique=False
        )

    op.create_table(
        "revision_disclaimers",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("disclaimer_key", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["disclaimer_key"],
            ["entries.key"],
            name=op.f("fk_revision_disclaimers_disclaimer_key_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_revision_disclaimers_revision_id_revisions"),
        ),
        sa.PrimaryKeyConstraint(
            "revision_id", "disclaimer_key", name=op.f("pk_revision_disclaimers")
        ),
    )
    op.create_table(
        "revision_markets",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("market_code", sa.String(length=8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_code"], ["markets.code"], name=op.f("fk_revision_markets_market_code_markets")
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
            name=op.f("fk_revision_markets_revision_id_revisions"),
        ),
        sa.PrimaryKeyConstraint("revision_id", "market_code", name=op.f("pk_revision_markets")),
    )
    op.create_table(
        "revision_tags",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["revision_id"], ["revisions.id"], name=op.f("fk_revision_tags_revision_id_revisions")
        ),
        sa.PrimaryKeyConstraint("revision_id", "tag", name=op.f("pk_revision_tags")),
    )
    with op.batch_alter_table("revision_tags", schema=None) as batch_op:
        batch_op.create_index("ix_revision_tags_tag", ["tag"], unique=False)

    op.create_table(
        "revision_topics",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("topic_key", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["revision_id"], ["revisions.id"], name=op.f("fk_revision_topics_revision_id_revisions")
        ),
        sa.ForeignKeyConstraint(
            ["topic_key"], ["topics.key"], name=op.f("fk_revision_topics_topic_key_topics")
        ),
        sa.PrimaryKeyConstraint("revision_id", "topic_key", name=op.f("pk_revision_topics")),
    )
    with op.batch_alter_table("revision_topics", schema=None) as batch_op:
        batch_op.create_index("ix_revision_topics_topic_key", ["topic_key"], unique=False)

    # every writer updates this row first; see service.content.models.ContentLock
    op.bulk_insert(
        sa.table(
            "content_locks", sa.column("name", sa.String), sa.column("generation", sa.Integer)
        ),
        [{"name": "content", "generation": 0}],
    )


def downgrade() -> None:
    with op.batch_alter_table("revision_topics", schema=None) as batch_op:
        batch_op.drop_index("ix_revision_topics_topic_key")

    op.drop_table("revision_topics")
    with op.batch_alter_table("revision_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_revision_tags_tag")

    op.drop_table("revision_tags")
    op.drop_table("revision_markets")
    op.drop_table("revision_disclaimers")
    with op.batch_alter_table("revision_conditions", schema=None) as batch_op:
        batch_op.drop_index("ix_revision_conditions_condition_key")

    op.drop_table("revision_conditions")
    op.drop_table("revision_citations")
    op.drop_table("revision_categories")
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_decisions_revision_id"))

    op.drop_table("review_decisions")
    with op.batch_alter_table("release_items", schema=None) as batch_op:
        batch_op.drop_index("ix_release_items_entry_locale_release")

    op.drop_table("release_items")
    op.drop_table("revisions")
    op.drop_table("topics")
    op.drop_table("releases")
    op.drop_table("markets")
    op.drop_table("entries")
    op.drop_table("content_locks")
    op.drop_table("conditions")
    op.drop_table("citations")
    op.drop_table("categories")
