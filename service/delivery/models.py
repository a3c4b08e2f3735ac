"""ORM models of delivery: partners' webhooks and the outbox of their deliveries; the GraphQL
documents clients and staff registered by hash."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.content.models import ACTOR_LENGTH, Base, _enum_check, utcnow

URL_LENGTH = 2000
ERROR_LENGTH = 500


class WebhookEvent(StrEnum):
    RELEASE_PUBLISHED = "release.published"  # every new release: publish, withdraw, rollback
    ENTRY_WITHDRAWN = "entry.withdrawn"  # a release that withdraws entries


class DocumentSource(StrEnum):
    TRUSTED = "trusted"  # added by staff (`contentapi documents add`): runs in trusted mode
    APQ = "apq"  # registered by a client through automatic persisted queries


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waits for its next attempt (or is being sent)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # retried for the whole retry window, or its webhook was removed


class Webhook(Base):
    """A partner's endpoint, told about releases. Removed webhooks are kept for the log."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(URL_LENGTH))
    events: Mapped[list[str]] = mapped_column(JSON)
    # only releases that change content cleared for one of these markets; None for all
    markets: Mapped[list[str] | None] = mapped_column(JSON)
    # `whsec_...`, kept as given: signing needs the secret itself, not a hash of it
    secret: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One event for one webhook: the outbox row, written in the release's own transaction,
    and then the log of its attempts."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_enum_check("status", DeliveryStatus), name="status"),
        CheckConstraint(_enum_check("event", WebhookEvent), name="event"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # the worker's question: which pending deliveries are due?
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # the `webhook-id` header: the same on every attempt, so receivers deduplicate on it
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    # the exact bytes signed and sent, fixed when the release is published
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # when this round of attempts began (written, or redelivered): retried for the retry
    # window from then on, and marked failed at the first failure after it
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a worker's claim: nobody else sends it before then, and a crashed worker's claim lapses
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claim: Mapped[str | None] = mapped_column(String(40))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PersistedDocument(Base):
    """A GraphQL document under the SHA-256 of its text, shared by every instance. A row never
    changes its text (the key is the text's hash), so any instance may keep it in memory."""

    __tablename__ = "persisted_documents"
    __table_args__ = (
        CheckConstraint(_enum_check("source", DocumentSource), name="source"),
        CheckConstraint("length(sha256) = 64", name="sha256_is_hex_digest"),
        # start-up reads the trusted ones, a few among many a client registered
        Index("ix_persisted_documents_source", "source"),
    )

    # lower-case hex of the SHA-256 of the UTF-8 text, as Apollo's persisted-queries link sends it
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    # the names of its operations (or the manifest's), for people reading `documents list`
    names: Mapped[list[str]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    # the staff member who trusted it, or the partner whose client registered it (None:
    # anonymous)
    added_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
