"""ORM models of access: staff accounts and the API keys that act for them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.content.models import ACTOR_LENGTH, Base, _enum_check, utcnow


class Role(StrEnum):
    EDITOR = "editor"  # writes content and submits it for review
    REVIEWER = "reviewer"  # approves or rejects
    PUBLISHER = "publisher"  # publishes, withdraws, rolls back
    ADMIN = "admin"  # manages staff, waives findings


class KeyKind(StrEnum):
    STAFF = "staff"
    PARTNER = "partner"


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(ACTOR_LENGTH), unique=True)
    roles: Mapped[list[str]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """A key is stored as its hash and a short visible prefix; the secret is shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(_enum_check("kind", KeyKind), name="kind"),
        CheckConstraint("kind <> 'staff' OR staff_id IS NOT NULL", name="staff_key_has_staff"),
        CheckConstraint(
            "kind <> 'partner' OR partner IS NOT NULL", name="partner_key_names_partner"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    # a partner key reads published content of these markets and locales only
    partner: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    markets: Mapped[list[str] | None] = mapped_column(JSON)
    locales: Mapped[list[str] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
