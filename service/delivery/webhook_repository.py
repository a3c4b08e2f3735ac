"""Every SQL statement of webhooks: endpoints, what a release changed, and the delivery outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.content.models import Entry, ReleaseItem, Revision
from service.delivery.models import DeliveryStatus, Webhook, WebhookDelivery


@dataclass(frozen=True)
class ReleaseChange:
    """What one release did to one (entry, locale), as partners see it."""

    key: str
    kind: str
    locale: str
    revision_id: int | None  # None: withdrawn
    revision: int | None
    previous_revision_id: int | None  # None: not live before
    previous_revision: int | None


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a worker holds a lease on, with what it needs to send it."""

    id: int
    message_id: str
    body: str
    attempts: int
    queued_at: datetime
    url: str
    secret: str
    webhook_removed: bool


def _claimable(now: datetime) -> Any:
    return (WebhookDelivery.status == DeliveryStatus.PENDING.value) & or_(
        WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until <= now
    )


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- webhooks ---------------------------------------------------------------------------

    async def webhook(self, webhook_id: int) -> Webhook | None:
        return await self.session.get(Webhook, webhook_id)

    async def webhooks(self, *, include_removed: bool = False) -> list[Webhook]:
        statement = select(Webhook).order_by(Webhook.id)
        if not include_removed:
            statement = statement.where(Webhook.removed_at.is_(None))
        return list((await self.session.scalars(statement)).all())

    async def active_with_url(self, url: str) -> Webhook | None:
        return await self.session.scalar(
            select(Webhook).where(Webhook.url == url, Webhook.removed_at.is_(None)).limit(1)
        )

    # --- what a release changed -------------------------------------------------------------

    async def release_changes(self, release_id: int) -> list[ReleaseChange]:
        """Each (entry, locale) the release names, with the revision it showed before."""
        shown = aliased(Revision)
        result = await self.session.execute(
            select(
                ReleaseItem.entry_id,
                ReleaseItem.locale,
                ReleaseItem.revision_id,
                Entry.key,
                Entry.kind,
                shown.number,
            )
            .join(Entry, Entry.id == ReleaseItem.entry_id)
            .outerjoin(shown, shown.id == ReleaseItem.revision_id)
            .where(ReleaseItem.release_id == release_id)
            .order_by(Entry.key, ReleaseItem.locale)
        )
        items = result.all()
        earlier, this = aliased(ReleaseItem), aliased(ReleaseItem)
        newest_before = (
            select(
                earlier.entry_id,
                earlier.locale,
                func.max(earlier.release_id).label("release_id"),
            )
            .join(
                this,
                (this.entry_id == earlier.entry_id)
                & (this.locale == earlier.locale)
                & (this.release_id == release_id),
            )
            .where(earlier.release_id < release_id)
            .group_by(earlier.entry_id, earlier.locale)
            .subquery()
        )
        before = await self.session.execute(
            select(
                ReleaseItem.entry_id, ReleaseItem.locale, ReleaseItem.revision_id, Revision.number
            )
            .join(
                newest_before,
                (ReleaseItem.entry_id == newest_before.c.entry_id)
                & (ReleaseItem.locale == newest_before.c.locale)
                & (ReleaseItem.release_id == newest_before.c.release_id),
            )
            .outerjoin(Revision, Revision.id == ReleaseItem.revision_id)
        )
        previous = {(entry_id, locale): (rid, number) for entry_id, locale, rid, number in before}
        changes = []
        for entry_id, locale, revision_id, key, kind, number in items:
            previous_id, previous_number = previous.get((entry_id, locale), (None, None))
            changes.append(
                ReleaseChange(
                    key=key,
                    kind=kind,
                    locale=locale,
                    revision_id=revision_id,
                    revision=number,
                    previous_revision_id=previous_id,
                    previous_revision=previous_number,
                )
            )
        return changes

    # --- the outbox -------------------------------------------------------------------------

    async def insert_deliveries(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(WebhookDelivery), list(rows))

    async def delivery(self, delivery_id: int) -> WebhookDelivery | None:
        return await self.session.get(WebhookDelivery, delivery_id)

    async def deliveries(
        self, *, failed_only: bool = False, limit: int = 100
    ) -> list[tuple[WebhookDelivery, str]]:
        """The newest deliveries first, each with its webhook's URL."""
        statement = select(WebhookDelivery, Webhook.url).join(
            Webhook, Webhook.id == WebhookDelivery.webhook_id
        )
        if failed_only:
            statement = statement.where(WebhookDelivery.status == DeliveryStatus.FAILED.value)
        result = await self.session.execute(
            statement.order_by(WebhookDelivery.id.desc()).limit(limit)
        )
        return [(delivery, url) for delivery, url in result]

    async def cancel_pending(self, webhook_id: int, *, now: datetime, reason: str) -> int:
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
            .values(status=DeliveryStatus.FAILED.value, last_error=reason, locked_until=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def any_due(self, due_by: datetime, now: datetime) -> bool:
        """A read, so an idle worker never takes SQLite's write lock."""
        found = await self.session.scalar(
            select(WebhookDelivery.id)
            .where(_claimable(now), WebhookDelivery.next_attempt_at <= due_by)
            .limit(1)
        )
        return found is not None

    async def claim_due(
        self, *, due_by: datetime, now: datetime, lease_until: datetime, claim: str, limit: int
    ) -> list[int]:
        """Lease up to `limit` due deliveries to one worker, and count the attempt.

        On PostgreSQL the inner SELECT ... FOR UPDATE SKIP LOCKED passes over rows another
        worker is claiming at this moment, so concurrent workers never take the same row; a
        row claimed and committed meanwhile fails the re-checked WHERE. SQLite has one writer
        at a time and drops the locking clause: the single UPDATE is atomic there.
        """
        due = (
            select(WebhookDelivery.id)
            .where(_claimable(now), WebhookDelivery.next_attempt_at <= due_by)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(due))
            .values(
                locked_until=lease_until,
                claim=claim,
                attempts=WebhookDelivery.attempts + 1,
                last_attempt_at=now,
            )
            .returning(WebhookDelivery.id)
        )
        return sorted(int(delivery_id) for delivery_id in result.scalars())

    async def claimed(self, delivery_ids: Sequence[int]) -> list[ClaimedDelivery]:
        if not delivery_ids:
            return []
        result = await self.session.execute(
            select(WebhookDelivery, Webhook)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id.in_(delivery_ids))
            .order_by(WebhookDelivery.id)
        )
        return [
            ClaimedDelivery(
                id=delivery.id,
                message_id=delivery.message_id,
                body=delivery.body,
                attempts=delivery.attempts,
                queued_at=delivery.queued_at,
                url=webhook.url,
                secret=webhook.secret,
                webhook_removed=webhook.removed_at is not None,
            )
            for delivery, webhook in result
        ]

    async def pending_count(self) -> int:
        """Deliveries still to send or retry (an index covers the status)."""
        found = await self.session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING.value)
        )
        return int(found or 0)

    async def release_claims(self, delivery_ids: Sequence[int], claim: str) -> int:
        """Hand back deliveries a stopping worker claimed and did not finish: due again at once
        for any worker, and the unfinished attempt not counted against them."""
        if not delivery_ids:
            return 0
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.claim == claim)
            .values(locked_until=None, claim=None, attempts=WebhookDelivery.attempts - 1)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def record_attempt(self, delivery_id: int, claim: str, values: dict[str, Any]) -> bool:
        """Store an attempt's outcome if the claim still holds; False when it lapsed and
        another worker took the delivery over."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.claim == claim)
            .values(**values, locked_until=None, claim=None)
        )
        return bool(getattr(result, "rowcount", 0))
