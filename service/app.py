"""create_app(settings): the FastAPI application wiring the database and the GraphQL API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response

from service.config import Settings
from service.console.routes import mount_console
from service.content.errors import Unauthenticated
from service.content.reading import ReleaseCache
from service.db import create_engine_for, create_sessionmaker
from service.delivery.bundles import BundleHashes
from service.delivery.routes import router as bundles
from service.delivery.webhook_worker import run_worker
from service.graphql.context import CallerRefused, get_context
from service.graphql.router import (
    ContentGraphQLRouter,
    RequestLimits,
    RequestRefused,
    refusal_response,
)
from service.graphql.schema import build_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine_for(settings.database_url, echo=settings.log_sql)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        worker = None
        if settings.webhook_worker:
            worker = asyncio.create_task(
                run_worker(settings, app.state.sessionmaker), name="webhook worker"
            )
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with suppress(asyncio.CancelledError):
                    await worker
            await engine.dispose()

    app = FastAPI(
        title="Gut–skin content API",
        lifespan=lifespan,
        docs_url=None if settings.is_production else "/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.releases = ReleaseCache()
    app.state.bundle_hashes = BundleHashes()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "authorization"],
        expose_headers=["etag"],
        max_age=86_400,
    )

    graphql = ContentGraphQLRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide=None if settings.is_production else "graphiql",
        allow_queries_via_get=True,
        limits=RequestLimits(
            max_body_bytes=settings.max_body_bytes,
            max_query_string_bytes=settings.max_query_string_bytes,
            max_batch=settings.graphql_max_batch,
        ),
        hide_internal_errors=settings.is_production,
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(bundles)

    @app.exception_handler(CallerRefused)
    async def refused(request: Request, exc: CallerRefused) -> JSONResponse:
        return _refusal(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestRefused)
    async def request_refused(request: Request, exc: RequestRefused) -> Response:
        # too large, not JSON, the wrong shape: refused before any GraphQL runs
        return refusal_response(request, exc)

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        # raised before any GraphQL runs: no key where one is needed, or a bad one
        return _refusal(401, exc.code, exc.message)

    mount_console(app, settings)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/graphql")

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    """Shaped like a GraphQL error, so clients show it as they show every other."""
    headers = {"www-authenticate": 'Bearer realm="content-api"'} if status == 401 else {}
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers | {"cache-control": "no-store"},
    )
