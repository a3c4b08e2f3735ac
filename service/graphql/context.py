"""The per-request context: one session, one reader, fresh DataLoaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from service.config import Settings
from service.content.reading import Reader
from service.graphql.dataloaders import Loaders


class Context(BaseContext):
    def __init__(self, settings: Settings, reader: Reader, loaders: Loaders) -> None:
        super().__init__()
        self.settings = settings
        self.reader = reader
        self.loaders = loaders


Info = StrawberryInfo[Context, None]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: committed at the end, rolled back on error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_context(request: Request, session: SessionDep) -> Context:
    settings: Settings = request.app.state.settings
    reader = Reader(
        session, default_locale=settings.default_locale, releases=request.app.state.releases
    )
    return Context(settings=settings, reader=reader, loaders=Loaders.for_reader(reader))
