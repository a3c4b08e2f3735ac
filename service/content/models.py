"""ORM models of the content store: catalogs, entries, immutable revisions, reviews, releases."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

KEY_LENGTH = 100
LOCALE_LENGTH = 35  # the longest BCP 47 tag a registry is obliged to accept
ACTOR_LENGTH = 200
NOTE_LENGTH = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class EntryKind(StrEnum):
    SNIPPET = "snippet"
    TAKEAWAY = "takeaway"
    DISCLAIMER = "disclaimer"


class EvidenceLevel(StrEnum):
    """How strong the evidence behind a snippet is, in words a shopper can read."""

    ESTABLISHED = "established"  # consensus definitions and guideline statements
    MODERATE = "moderate"  # consistent controlled trials in people
    LIMITED = "limited"  # reviews of associations, few controlled trials
    EMERGING = "emerging"  # mostly preclinical or early research


class DisclaimerKind(StrEnum):
    NOT_MEDICAL_ADVICE = "not_medical_advice"
    FDA_STRUCTURE_FUNCTION = "fda_structure_function"
    COSMETIC = "cosmetic"


class Decision(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


def _enum_check(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


# --- catalogs: reference data that revisions point at -------------------------------------


class Topic(Base):
    __tablename__ = "topics"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    # {"en-US": "Gut–skin axis", "fr-FR": "Axe intestin–peau"}; the default locale is required
    names: Mapped[dict[str, Any]] = mapped_column(JSON)
    descriptions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Condition(Base):
    __tablename__ = "conditions"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    names: Mapped[dict[str, Any]] = mapped_column(JSON)


class Category(Base):
    """A product category a partner sells (supplement, skincare ...)."""

    __tablename__ = "categories"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    names: Mapped[dict[str, Any]] = mapped_column(JSON)


class Market(Base):
    __tablename__ = "markets"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    default_locale: Mapped[str] = mapped_column(String(LOCALE_LENGTH))
    locales: Mapped[list[str]] = mapped_column(JSON)


class Citation(Base):
    __tablename__ = "citations"
    __table_args__ = (CheckConstraint("doi IS NOT NULL OR pmid IS NOT NULL", name="doi_or_pmid"),)

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    authors: Mapped[str] = mapped_column(String(500))
    journal: Mapped[str] = mapped_column(String(300))
    year: Mapped[int] = mapped_column(Integer)
    doi: Mapped[str | None] = mapped_column(String(200))
    pmid: Mapped[str | None] = mapped_column(String(20))
    study_type: Mapped[str] = mapped_column(String(40))


# --- entries and their immutable revisions -------------------------------------------------


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (CheckConstraint(_enum_check("kind", EntryKind), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Revision(Base):
    """One immutable version of an entry in one locale. Never updated, never deleted."""

    __tablename__ = "revisions"
    __table_args__ = (
        UniqueConstraint("entry_id", "locale", "number", name="uq_revisions_entry_locale_number"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint(
            f"evidence IS NULL OR {_enum_check('evidence', EvidenceLevel)}", name="evidence"
        ),
        CheckConstraint(
            f"disclaimer_kind IS NULL OR {_enum_check('disclaimer_kind', DisclaimerKind)}",
            name="disclaimer_kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    locale: Mapped[str] = mapped_column(String(LOCALE_LENGTH))
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(String(500))
    body_markdown: Mapped[str] = mapped_column(Text)
    # rendered once when the revision is created, never per request
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(String(20))
    disclaimer_kind: Mapped[str | None] = mapped_column(String(40))
    position: Mapped[int | None] = mapped_column(Integer)  # a takeaway's order within its topic
    change_note: Mapped[str] = mapped_column(String(500), default="")
    author: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    source_path: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    entry: Mapped[Entry] = relationship(lazy="raise")


class _RevisionLink:
    """Columns shared by the tables that attach ordered lists to a revision."""

    # first in the primary key, so "everything attached to these revisions" is an index scan
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("revisions.id"), primary_key=True, sort_order=-10
    )
    position: Mapped[int] = mapped_column(Integer)


class RevisionTopic(_RevisionLink, Base):
    __tablename__ = "revision_topics"
    __table_args__ = (Index("ix_revision_topics_topic_key", "topic_key"),)

    topic_key: Mapped[str] = mapped_column(ForeignKey("topics.key"), primary_key=True)


class RevisionCondition(_RevisionLink, Base):
    __tablename__ = "revision_conditions"
    __table_args__ = (Index("ix_revision_conditions_condition_key", "condition_key"),)

    condition_key: Mapped[str] = mapped_column(ForeignKey("conditions.key"), primary_key=True)


class RevisionCategory(_RevisionLink, Base):
    __tablename__ = "revision_categories"

    category_key: Mapped[str] = mapped_column(ForeignKey("categories.key"), primary_key=True)


class RevisionMarket(_RevisionLink, Base):
    __tablename__ = "revision_markets"

    market_code: Mapped[str] = mapped_column(ForeignKey("markets.code"), primary_key=True)


class RevisionCitation(_RevisionLink, Base):
    __tablename__ = "revision_citations"

    citation_key: Mapped[str] = mapped_column(ForeignKey("citations.key"), primary_key=True)


class RevisionDisclaimer(_RevisionLink, Base):
    """A disclaimer entry that must accompany the revision wherever it is shown."""

    __tablename__ = "revision_disclaimers"

    disclaimer_key: Mapped[str] = mapped_column(ForeignKey("entries.key"), primary_key=True)


class RevisionTag(_RevisionLink, Base):
    __tablename__ = "revision_tags"
    __table_args__ = (Index("ix_revision_tags_tag", "tag"),)

    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


# --- review decisions, appended beside revisions -------------------------------------------


class ReviewDecision(Base):
    __tablename__ = "review_decisions"
    __table_args__ = (CheckConstraint(_enum_check("decision", Decision), name="decision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"), index=True)
    decision: Mapped[str] = mapped_column(String(20))
    reviewer: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- releases: the append-only publication log ---------------------------------------------


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (CheckConstraint("id >= 1", name="id_positive"),)

    # assigned as max + 1 under the content lock, so ids are gapless: 1, 2, 3 ...
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(String(NOTE_LENGTH))
    published_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    # the catalogs (topics, conditions, categories, markets, citations) as they were when
    # this release was published, so a pinned release reads the same names and DOIs for ever
    catalog: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReleaseItem(Base):
    """From `release_id` on, (entry, locale) shows `revision_id`, or is withdrawn when NULL."""

    __tablename__ = "release_items"
    __table_args__ = (
        UniqueConstraint(
            "release_id", "entry_id", "locale", name="uq_release_items_release_entry_locale"
        ),
        # "as of release N" looks up the newest item at or below N for each (entry, locale)
        Index("ix_release_items_entry_locale_release", "entry_id", "locale", "release_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"))
    locale: Mapped[str] = mapped_column(String(LOCALE_LENGTH))
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"))


class ContentLock(Base):
    """One row that every writer updates first, so writers queue on SQLite and PostgreSQL alike."""

    __tablename__ = "content_locks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
