"""Every SQL statement of the content domain, named for what it returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.content.models import (
    Base,
    ContentLock,
    Decision,
    Entry,
    Release,
    ReleaseItem,
    ReviewDecision,
    Revision,
    RevisionDisclaimer,
)

EntryLocale = tuple[int, str]


@dataclass(frozen=True)
class LatestRevision:
    revision_id: int
    number: int
    content_hash: str


class ContentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_for_writing(self) -> None:
        """Queue behind any other writer until this transaction ends.

        An UPDATE is the one statement that takes a write lock on both databases: a row lock
        on PostgreSQL, the database write lock on SQLite (which then waits busy_timeout).
        It must be the transaction's first statement, so no snapshot older than the lock is read.
        """
        await self.session.execute(
            update(ContentLock)
            .where(ContentLock.name == "content")
            .values(generation=ContentLock.generation + 1)
        )

    # --- catalogs ---------------------------------------------------------------------------

    async def catalog_rows(self, model: type[Base], key_column: str) -> dict[str, Any]:
        rows = (await self.session.scalars(select(model))).all()
        return {str(getattr(row, key_column)): row for row in rows}

    async def catalog_snapshot(self, models: dict[str, tuple[type[Base], str]]) -> dict[str, Any]:
        """Every catalog as plain data, sorted by key: what a release keeps for ever."""
        snapshot: dict[str, Any] = {}
        for name, (model, key_column) in models.items():
            rows = (await self.session.scalars(select(model).order_by(key_column))).all()
            columns = [column.key for column in model.__table__.columns]
            snapshot[name] = [{column: getattr(row, column) for column in columns} for row in rows]
        return snapshot

    async def insert_rows(self, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(model), list(rows))

    # --- entries and revisions --------------------------------------------------------------

    async def entries_by_key(self) -> dict[str, tuple[int, str]]:
        result = await self.session.execute(select(Entry.key, Entry.id, Entry.kind))
        return {key: (entry_id, kind) for key, entry_id, kind in result}

    async def insert_entries(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        if not rows:
            return {}
        result = await self.session.execute(
            insert(Entry).returning(Entry.key, Entry.id, sort_by_parameter_order=True), list(rows)
        )
        return {str(key): int(entry_id) for key, entry_id in result}

    async def latest_revisions(self) -> dict[EntryLocale, LatestRevision]:
        newest = (
            select(Revision.entry_id, Revision.locale, func.max(Revision.number).label("number"))
            .group_by(Revision.entry_id, Revision.locale)
            .subquery()
        )
        result = await self.session.execute(
            select(
                Revision.entry_id,
                Revision.locale,
                Revision.id,
                Revision.number,
                Revision.content_hash,
            ).join(
                newest,
                (Revision.entry_id == newest.c.entry_id)
                & (Revision.locale == newest.c.locale)
                & (Revision.number == newest.c.number),
            )
        )
        return {
            (entry_id, locale): LatestRevision(revision_id, number, content_hash)
            for entry_id, locale, revision_id, number, content_hash in result
        }

    async def insert_revisions(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        if not rows:
            return []
        result = await self.session.execute(
            insert(Revision).returning(Revision.id, sort_by_parameter_order=True), list(rows)
        )
        return list(result.scalars())

    async def insert_decisions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.insert_rows(ReviewDecision, rows)

    async def newest_approved_revisions(self) -> dict[EntryLocale, int]:
        """Per (entry, locale), the highest-numbered revision whose latest decision is approval."""
        last_decision = (
            select(ReviewDecision.revision_id, func.max(ReviewDecision.id).label("decision_id"))
            .group_by(ReviewDecision.revision_id)
            .subquery()
        )
        result = await self.session.execute(
            select(Revision.entry_id, Revision.locale, Revision.number, Revision.id)
            .join(last_decision, last_decision.c.revision_id == Revision.id)
            .join(ReviewDecision, ReviewDecision.id == last_decision.c.decision_id)
            .where(ReviewDecision.decision == Decision.APPROVED.value)
        )
        newest: dict[EntryLocale, tuple[int, int]] = {}
        for entry_id, locale, number, revision_id in result:
            current = newest.get((entry_id, locale))
            if current is None or number > current[0]:
                newest[(entry_id, locale)] = (number, revision_id)
        return {key: revision_id for key, (_, revision_id) in newest.items()}

    async def required_disclaimers(self, revision_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = list(revision_ids)
        if not ids:
            return {}
        result = await self.session.execute(
            select(RevisionDisclaimer.revision_id, RevisionDisclaimer.disclaimer_key)
            .where(RevisionDisclaimer.revision_id.in_(ids))
            .order_by(RevisionDisclaimer.revision_id, RevisionDisclaimer.position)
        )
        required: dict[int, list[str]] = {}
        for revision_id, key in result:
            required.setdefault(revision_id, []).append(key)
        return required

    # --- releases ---------------------------------------------------------------------------

    async def latest_release_id(self) -> int:
        return int(await self.session.scalar(select(func.coalesce(func.max(Release.id), 0))) or 0)

    async def release(self, release_id: int) -> Release | None:
        return await self.session.get(Release, release_id)

    async def live_revisions(self, release_id: int) -> dict[EntryLocale, int]:
        """What each (entry, locale) shows as of `release_id`: a pure function of releases 1..N."""
        newest = (
            select(
                ReleaseItem.entry_id,
                ReleaseItem.locale,
                func.max(ReleaseItem.release_id).label("release_id"),
            )
            .where(ReleaseItem.release_id <= release_id)
            .group_by(ReleaseItem.entry_id, ReleaseItem.locale)
            .subquery()
        )
        result = await self.session.execute(
            select(ReleaseItem.entry_id, ReleaseItem.locale, ReleaseItem.revision_id)
            .join(
                newest,
                (ReleaseItem.entry_id == newest.c.entry_id)
                & (ReleaseItem.locale == newest.c.locale)
                & (ReleaseItem.release_id == newest.c.release_id),
            )
            .where(ReleaseItem.revision_id.is_not(None))
        )
        return {
            (entry_id, locale): revision_id
            for entry_id, locale, revision_id in result
            if revision_id is not None
        }

    async def keys_of_entries(self, entry_ids: Iterable[int]) -> dict[int, str]:
        ids = list(entry_ids)
        if not ids:
            return {}
        result = await self.session.execute(select(Entry.id, Entry.key).where(Entry.id.in_(ids)))
        return {int(entry_id): str(key) for entry_id, key in result}

    async def insert_release(self, release: Release, items: Sequence[Mapping[str, Any]]) -> None:
        self.session.add(release)
        await self.session.flush()
        await self.insert_rows(ReleaseItem, items)
