"""The per-request context: one session, one reader, fresh DataLoaders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.exc import PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import State
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from service.access.keycache import KeyCache
from service.access.principal import Permission, Principal
from service.access.service import read_scope
from service.config import Settings
from service.content.errors import ContentError, Forbidden, Unauthenticated
from service.content.reading import Reader, ReleaseCache
from service.content.service import ContentService
from service.graphql.dataloaders import Loaders
from service.graphql.fragments import Fragments
from service.graphql.limits import reveals_schema
from service.observability import current_request


class Context(BaseContext):
    def __init__(
        self,
        settings: Settings,
        reader: Reader,
        loaders: Loaders,
        session: AsyncSession | None = None,
        caller: Principal | None = None,
        fragments: Fragments | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.reader = reader
        self.loaders = loaders
        self.session = session
        self.caller = caller
        # completed items of held releases, shared by the requests of one scope (fragments.py)
        self.fragments = fragments
        scope = reader.scope
        self.fragment_scope = (
            (scope.partner, scope.markets, scope.locales) if scope is not None else None,
            reader.default_locale,
        )
        # no "Did you mean ...?" for callers the schema is not revealed to (limits.py)
        self.hides_suggestions = not reveals_schema(caller, production=settings.is_production)

    async def staff(self, permission: Permission) -> Principal:
        """The caller, when it is allowed `permission`; else an error that says why."""
        if self.caller is None:
            raise Unauthenticated(
                "this needs a staff API key: send the header Authorization: Bearer <key>"
            )
        self.caller.require(permission)
        return self.caller


Info = StrawberryInfo[Context, None]


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession], previewing: Callable[[], bool]
) -> AsyncIterator[AsyncSession]:
    """A request's session, which owns its transaction: committed at the end, rolled back on
    error, and always rolled back for a preview (`previewing()` at the end), whose staged
    release must never be kept, or after the database stopped answering (the connection is
    gone: there is nothing to commit)."""
    session = sessionmaker()
    try:
        yield session
        if not session.in_transaction():
            # nothing was read on it (an answer from held releases): nothing to end
            return
        record = current_request()
        if previewing() or (record is not None and record.database_unavailable):
            await session.rollback()
        else:
            try:
                await session.commit()
            except PendingRollbackError:
                # a query's field failed while a sibling field's statement was in flight,
                # and the statement was cancelled: queries only read (mutations run one
                # field at a time), so there is nothing to keep, and the answer stands
                await session.rollback()
    except BaseException:
        await session.rollback()
        raise
    finally:
        if session.in_transaction() or session.sync_session.identity_map:
            await session.close()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session (`transaction`)."""
    async with transaction(
        request.app.state.sessionmaker, lambda: getattr(request.state, "preview", False)
    ) as session:
        yield session


# ended with the operation, before the response is sent: a commit that fails is answered as
# the error it is, never after a success was already reported
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


PREVIEW_HEADER = "content-preview"
PREVIEW_NEXT = "next-release"


class CallerRefused(Exception):
    """A request the API answers before any GraphQL: no key, a bad key, a bad preview."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def get_context(request: Request, response: Response, session: SessionDep) -> Context:
    settings: Settings = request.app.state.settings
    # keys checked in the last minute are held by the delivery layer: no statement for them
    keys: KeyCache = request.app.state.delivery.keys
    caller = await keys.caller(
        session, request.headers.get("authorization"), production=settings.is_production
    )
    # the latest release, when the delivery layer has already read it for this request
    latest: int | None = getattr(request.state, "latest_release", None)
    preview = request.headers.get(PREVIEW_HEADER)
    if preview is not None:
        await _stage_preview(request, response, session, preview, caller)
    return reading_context(
        request.app.state, session, caller, latest=latest, preview=preview is not None
    )


def reading_context(
    state: State,
    session: AsyncSession,
    caller: Principal | None,
    *,
    latest: int | None,
    preview: bool = False,
) -> Context:
    """The context an operation runs in for `caller`, reading on `session`; `latest` is the
    release "latest" means for this request, when already read."""
    settings: Settings = state.settings
    releases: ReleaseCache = state.releases
    if preview:
        # the staged release takes the next id, in this transaction only: it must not enter
        # the shared cache or memory, and the latest is the staged one, read on this session
        releases = ReleaseCache(memories=0)
        latest = None
    reader = Reader(
        session,
        default_locale=settings.default_locale,
        releases=releases,
        scope=read_scope(caller),
        latest=latest,
        memory=not preview,
    )
    return Context(
        settings=settings,
        reader=reader,
        loaders=Loaders.for_reader(reader),
        session=session,
        caller=caller,
        # never for a preview: its staged release is read on this transaction only
        fragments=None if preview else state.fragments,
    )


async def _stage_preview(
    request: Request,
    response: Response,
    session: AsyncSession,
    preview: str,
    caller: Principal | None,
) -> None:
    """Staff may read the next release before it exists: it is written in this request's
    transaction, read by the same queries partners use, then rolled back. Never cached."""
    if preview.strip().lower() != PREVIEW_NEXT:
        raise CallerRefused(
            400, "BAD_USER_INPUT", f"{PREVIEW_HEADER}: the one preview is {PREVIEW_NEXT!r}"
        )
    if caller is None:
        raise CallerRefused(
            401,
            "UNAUTHENTICATED",
            "a preview needs a staff API key: send Authorization: Bearer <key>",
        )
    try:
        caller.require(Permission.READ_DRAFTS)
        request.state.preview = True
        response.headers["cache-control"] = "no-store"
        await ContentService(session).stage_next_release(staged_by=caller.name)
    except Forbidden as exc:
        raise CallerRefused(403, exc.code, exc.message) from exc
    except ContentError as exc:
        raise CallerRefused(
            409, exc.code, f"the next release could not be published: {exc.message}"
        ) from exc
