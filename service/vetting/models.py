"""ORM models of vetting: the append-only audit log and the waivers of compliance findings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.content.models import ACTOR_LENGTH, KEY_LENGTH, LOCALE_LENGTH, Base, utcnow


class AuditEvent(Base):
    """One action by one actor. Rows are only ever inserted; triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entry_key", "entry_key"),
        Index("ix_audit_events_actor", "actor"),
        Index("ix_audit_events_at", "at"),
        # the latest of one action: the freshness poll's latest removal of a document
        Index("ix_audit_events_action", "action", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    key_prefix: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    entry_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    locale: Mapped[str | None] = mapped_column(String(LOCALE_LENGTH))
    revision_id: Mapped[int | None] = mapped_column(Integer)
    release_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class FindingWaiver(Base):
    """A reviewer's recorded decision that one finding on one revision is a false positive."""

    __tablename__ = "finding_waivers"
    __table_args__ = (
        UniqueConstraint("revision_id", "fingerprint", name="uq_finding_waivers_revision_finding"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("revisions.id"))
    rule: Mapped[str] = mapped_column(String(80))
    fingerprint: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    waived_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
