"""Every SQL statement of the vetting domain: decisions, publication history, waivers, audit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.content.models import (
    Citation,
    Decision,
    Entry,
    ReleaseItem,
    ReviewDecision,
    Revision,
)
from service.vetting.models import AuditEvent, FindingWaiver


class VettingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entry(self, key: str) -> Entry | None:
        return await self.session.scalar(select(Entry).where(Entry.key == key))

    async def revision(self, entry_id: int, locale: str, number: int | None) -> Revision | None:
        statement = select(Revision).where(Revision.entry_id == entry_id, Revision.locale == locale)
        if number is None:
            statement = statement.order_by(Revision.number.desc()).limit(1)
        else:
            statement = statement.where(Revision.number == number)
        return await self.session.scalar(statement)

    async def revisions_of(self, entry_id: int, locale: str | None) -> list[Revision]:
        statement = select(Revision).where(Revision.entry_id == entry_id)
        if locale is not None:
            statement = statement.where(Revision.locale == locale)
        rows = await self.session.scalars(statement.order_by(Revision.locale, Revision.number))
        return list(rows.all())

    async def newest_numbers(self, entry_id: int) -> dict[str, int]:
        result = await self.session.execute(
            select(Revision.locale, func.max(Revision.number))
            .where(Revision.entry_id == entry_id)
            .group_by(Revision.locale)
        )
        return {locale: int(number) for locale, number in result}

    async def decisions(self, revision_ids: Sequence[int]) -> dict[int, list[ReviewDecision]]:
        found: dict[int, list[ReviewDecision]] = {rid: [] for rid in revision_ids}
        if revision_ids:
            rows = await self.session.scalars(
                select(ReviewDecision)
                .where(ReviewDecision.revision_id.in_(revision_ids))
                .order_by(ReviewDecision.id)
            )
            for row in rows:
                found[row.revision_id].append(row)
        return found

    async def releases_showing(self, revision_ids: Sequence[int]) -> dict[int, list[int]]:
        """The releases that made each revision live (a revision may go live more than once)."""
        found: dict[int, list[int]] = {rid: [] for rid in revision_ids}
        if revision_ids:
            result = await self.session.execute(
                select(ReleaseItem.revision_id, ReleaseItem.release_id)
                .where(ReleaseItem.revision_id.in_(revision_ids))
                .order_by(ReleaseItem.release_id)
            )
            for revision_id, release_id in result:
                if revision_id is not None:
                    found[revision_id].append(release_id)
        return found

    async def release_items_of(self, entry_id: int) -> list[ReleaseItem]:
        rows = await self.session.scalars(
            select(ReleaseItem)
            .where(ReleaseItem.entry_id == entry_id)
            .order_by(ReleaseItem.release_id, ReleaseItem.locale)
        )
        return list(rows.all())

    async def items_of_release(self, release_id: int) -> list[tuple[int, str, int | None]]:
        result = await self.session.execute(
            select(ReleaseItem.entry_id, ReleaseItem.locale, ReleaseItem.revision_id)
            .where(ReleaseItem.release_id == release_id)
            .order_by(ReleaseItem.entry_id, ReleaseItem.locale)
        )
        return [(int(entry_id), str(locale), rid) for entry_id, locale, rid in result]

    async def in_review(self) -> list[tuple[Revision, Entry, ReviewDecision]]:
        """Revisions whose latest decision is a submission, oldest submission first."""
        last = (
            select(ReviewDecision.revision_id, func.max(ReviewDecision.id).label("decision_id"))
            .group_by(ReviewDecision.revision_id)
            .subquery()
        )
        result = await self.session.execute(
            select(Revision, Entry, ReviewDecision)
            .join(last, last.c.revision_id == Revision.id)
            .join(ReviewDecision, ReviewDecision.id == last.c.decision_id)
            .join(Entry, Entry.id == Revision.entry_id)
            .where(ReviewDecision.decision == Decision.SUBMITTED.value)
            .order_by(ReviewDecision.created_at, ReviewDecision.id)
        )
        return [(revision, entry, decision) for revision, entry, decision in result]

    async def revisions_with_entries(
        self, revision_ids: Sequence[int]
    ) -> list[tuple[Revision, Entry]]:
        if not revision_ids:
            return []
        result = await self.session.execute(
            select(Revision, Entry)
            .join(Entry, Entry.id == Revision.entry_id)
            .where(Revision.id.in_(revision_ids))
            .order_by(Entry.key, Revision.locale)
        )
        return [(revision, entry) for revision, entry in result]

    async def citations(self, keys: Sequence[str]) -> dict[str, Citation]:
        """The catalog's current entries for these citation keys."""
        if not keys:
            return {}
        rows = await self.session.scalars(select(Citation).where(Citation.key.in_(keys)))
        return {row.key: row for row in rows}

    async def waivers(self, revision_ids: Sequence[int]) -> dict[int, list[FindingWaiver]]:
        found: dict[int, list[FindingWaiver]] = {rid: [] for rid in revision_ids}
        if revision_ids:
            rows = await self.session.scalars(
                select(FindingWaiver)
                .where(FindingWaiver.revision_id.in_(revision_ids))
                .order_by(FindingWaiver.id)
            )
            for row in rows:
                found[row.revision_id].append(row)
        return found

    async def audit_events(
        self,
        *,
        since: datetime | None = None,
        actor: str | None = None,
        entry_key: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        statement = select(AuditEvent)
        if since is not None:
            statement = statement.where(AuditEvent.at >= since)
        if actor is not None:
            statement = statement.where(AuditEvent.actor == actor)
        if entry_key is not None:
            statement = statement.where(AuditEvent.entry_key == entry_key)
        rows = await self.session.scalars(statement.order_by(AuditEvent.id).limit(limit))
        return list(rows.all())
