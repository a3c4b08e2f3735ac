"""The bundle routes: immutable, content-addressed JSON for each release, locale and market."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.service import caller_for, read_scope
from service.config import Settings
from service.content.errors import BadInput, ContentError, Forbidden, NotFound
from service.content.reading import Reader, ReleaseCache
from service.delivery.bundles import BundleHashes, BundleKey, build_bundle

IMMUTABLE = "public, max-age=31536000, immutable"
# `latest` moves when a release is published: a minute of staleness at most
LATEST = "public, max-age=60"
LATEST_NAME = "latest"
STATUS = {BadInput.code: 400, NotFound.code: 404, Forbidden.code: 403}

router = APIRouter()
MarketQuery = Annotated[
    str | None, Query(description="Only content cleared for this market, e.g. US.")
]


def _error(exc: ContentError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}},
        status_code=STATUS.get(exc.code, 400),
        headers={"cache-control": "no-store"},
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110): W/"x" matches "x"; * matches anything."""
    if if_none_match is None:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)


# answers differ by key (a partner's scope): shared caches keep one per Authorization
VARY = "Authorization"


def _not_modified(etag: str) -> Response:
    return Response(
        status_code=304, headers={"etag": etag, "cache-control": IMMUTABLE, "vary": VARY}
    )


def _release_number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise NotFound(f"no release {text!r}: use a release number or {LATEST_NAME!r}")
    return int(text)


@router.get(
    "/bundles/{release}/{locale}.json",
    summary="Everything published in one release and locale, as one immutable JSON document",
)
async def bundle(
    request: Request, release: str, locale: str, market: MarketQuery = None
) -> Response:
    settings: Settings = request.app.state.settings
    hashes: BundleHashes = request.app.state.bundle_hashes
    releases: ReleaseCache = request.app.state.releases
    async with request.app.state.sessionmaker() as session:
        # the same caller rules as GraphQL: a key where production needs one, a partner's scope
        authorization = request.headers.get("authorization")
        scope = read_scope(
            await caller_for(session, authorization, production=settings.is_production)
        )
        reader = Reader(
            session, default_locale=settings.default_locale, releases=releases, scope=scope
        )
        try:
            locales = reader.locales(locale)
            if release == LATEST_NAME:
                return await _latest(reader, locales.requested, market)
            key = BundleKey(
                _release_number(release),
                locales.requested,
                market,
                scope.markets if scope is not None and market is None else None,
            )
            known = hashes.get(key)
            if known is not None and _matches(request.headers.get("if-none-match"), f'"{known}"'):
                return _not_modified(f'"{known}"')
            return await _build(request, reader, session, key, hashes)
        except ContentError as exc:
            return _error(exc)


async def _latest(reader: Reader, locale: str, market: str | None) -> Response:
    view = await reader.require_release(None)
    reader.audience(view, locale, market)  # a bad market is refused here, not after the redirect
    query = f"?market={market}" if market is not None else ""
    return RedirectResponse(
        f"/bundles/{view.id}/{locale}.json{query}",
        status_code=302,
        headers={"cache-control": LATEST, "vary": VARY},
    )


async def _build(
    request: Request,
    reader: Reader,
    session: AsyncSession,
    key: BundleKey,
    hashes: BundleHashes,
) -> Response:
    view = await reader.require_release(key.release)
    audience = reader.audience(view, key.locale, key.market)
    built = await build_bundle(reader, view, audience)
    await session.rollback()  # read only
    hashes.put(key, built.content_hash)
    if _matches(request.headers.get("if-none-match"), built.etag):
        return _not_modified(built.etag)
    return Response(
        built.body,
        media_type="application/json",
        headers={"etag": built.etag, "cache-control": IMMUTABLE, "vary": VARY},
    )
