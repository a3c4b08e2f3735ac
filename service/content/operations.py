"""Whole operations in their own transaction: what the CLI and the service start-up run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.access.principal import Permission
from service.access.service import acting_principal
from service.config import Settings
from service.content.models import Release
from service.content.seedfiles import read_seed
from service.content.service import (
    DEVELOPMENT_REVIEWER,
    ContentService,
    SeedReport,
    require_development,
)
from service.db import create_engine_for, create_sessionmaker
from service.vetting import audit
from service.vetting.service import VettingService

T = TypeVar("T")


async def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction: committed when it returns, rolled back when it raises."""
    engine = create_engine_for(settings.database_url, echo=settings.log_sql)
    sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def bootstrap_development(settings: Settings) -> Release | None:
    """On an empty development database: seed, approve as the development reviewer, publish."""
    require_development(settings, "publishing the seed content without review")

    async def work(session: AsyncSession) -> Release | None:
        service = ContentService(session)
        if await service.repository.latest_release_id():
            return None
        seed = read_seed(Path(settings.seed_path))
        await service.seed(seed, author="seed files", approve_as=DEVELOPMENT_REVIEWER)
        return await VettingService(session).publish(
            note="Seed content, approved automatically for development", by=DEVELOPMENT_REVIEWER
        )

    return await in_transaction(settings, work)


async def seed_from_files(
    settings: Settings,
    path: Path,
    *,
    key: str | None = None,
    author: str | None = None,
    approve: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    if approve:
        require_development(settings, "seed --approve")
    seed = read_seed(path, progress=progress)

    async def work(session: AsyncSession) -> SeedReport:
        writer = await acting_principal(
            session, key, production=settings.is_production, local_name=author or settings.actor
        )
        writer.require(Permission.WRITE)
        report = await ContentService(session).seed(
            seed,
            author=writer.name,
            approve_as=DEVELOPMENT_REVIEWER if approve else None,
            dry_run=dry_run,
            progress=progress,
        )
        if dry_run:
            await session.rollback()
            return report
        await audit.record(
            session,
            [
                audit.event(
                    writer,
                    "revision.create",
                    entry_key=plan.draft.key,
                    locale=plan.draft.locale,
                    reason=plan.draft.front.change_note,
                    after={"revision": plan.number, "source": plan.draft.source.path},
                )
                for plan in report.planned
            ]
            + (
                [
                    audit.event(
                        DEVELOPMENT_REVIEWER, "seed.approve", after={"approved": report.approved}
                    )
                ]
                if report.approved
                else []
            ),
        )
        return report

    return await in_transaction(settings, work)


async def publish_release(
    settings: Settings, *, note: str, key: str | None = None, by: str | None = None
) -> Release:
    async def work(session: AsyncSession) -> Release:
        publisher = await acting_principal(
            session, key, production=settings.is_production, local_name=by or settings.actor
        )
        return await VettingService(session).publish(note=note, by=publisher)

    return await in_transaction(settings, work)
