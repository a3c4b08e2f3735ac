"""The per-request context: one session, one reader, fresh DataLoaders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from service.access.principal import Permission, Principal
from service.access.service import AccessService
from service.config import Settings
from service.content.errors import ContentError, Forbidden, Unauthenticated
from service.content.reading import Reader, ReleaseCache
from service.content.service import ContentService
from service.graphql.dataloaders import Loaders


class Context(BaseContext):
    def __init__(
        self,
        settings: Settings,
        reader: Reader,
        loaders: Loaders,
        session: AsyncSession | None = None,
        authorization: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.reader = reader
        self.loaders = loaders
        self.session = session
        self.authorization = authorization
        self._staff: Principal | None = None

    async def staff(self, permission: Permission) -> Principal:
        """The staff member whose key the request carries, allowed `permission`; else an error.

        The key is checked on the request's own session, so a revoked key stops working at
        once on every instance.
        """
        if self._staff is None:
            scheme, _, key = (self.authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise Unauthenticated(
                    "this needs a staff API key: send the header Authorization: Bearer <key>"
                )
            if self.session is None:
                raise Unauthenticated("staff operations need a database session")
            self._staff = await AccessService(self.session).authenticate(key.strip())
        self._staff.require(permission)
        return self._staff


Info = StrawberryInfo[Context, None]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: committed at the end, rolled back on error, and
    always rolled back for a preview, whose staged release must never be kept."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            if getattr(request.state, "preview", False):
                await session.rollback()
            else:
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session)]


PREVIEW_HEADER = "content-preview"
PREVIEW_NEXT = "next-release"


async def get_context(request: Request, response: Response, session: SessionDep) -> Context:
    settings: Settings = request.app.state.settings
    authorization = request.headers.get("authorization")
    releases: ReleaseCache = request.app.state.releases
    preview = request.headers.get(PREVIEW_HEADER)
    if preview is not None:
        await _stage_preview(request, response, session, preview, authorization)
        # the staged release takes the next id: it must not enter the shared cache
        releases = ReleaseCache()
    reader = Reader(session, default_locale=settings.default_locale, releases=releases)
    return Context(
        settings=settings,
        reader=reader,
        loaders=Loaders.for_reader(reader),
        session=session,
        authorization=authorization,
    )


async def _stage_preview(
    request: Request,
    response: Response,
    session: AsyncSession,
    preview: str,
    authorization: str | None,
) -> None:
    """Staff may read the next release before it exists: it is written in this request's
    transaction, read by the same queries partners use, then rolled back. Never cached."""
    if preview.strip().lower() != PREVIEW_NEXT:
        raise HTTPException(400, f"{PREVIEW_HEADER}: the one preview is {PREVIEW_NEXT!r}")
    scheme, _, key = (authorization or "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated(
                "a preview needs a staff API key: send Authorization: Bearer <key>"
            )
        staff = await AccessService(session).authenticate(key.strip())
        staff.require(Permission.READ_DRAFTS)
        request.state.preview = True
        response.headers["cache-control"] = "no-store"
        await ContentService(session).stage_next_release(staged_by=staff.name)
    except Unauthenticated as exc:
        raise HTTPException(401, exc.message) from exc
    except Forbidden as exc:
        raise HTTPException(403, exc.message) from exc
    except ContentError as exc:
        raise HTTPException(409, f"the next release could not be published: {exc.message}") from exc
