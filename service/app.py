"""create_app(settings): the FastAPI application wiring the database and the GraphQL API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

from service.config import Settings
from service.console.routes import mount_console
from service.content.reading import ReleaseCache
from service.db import create_engine_for, create_sessionmaker
from service.graphql.context import get_context
from service.graphql.router import ContentGraphQLRouter
from service.graphql.schema import build_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine_for(settings.database_url, echo=settings.log_sql)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Gut–skin content API",
        lifespan=lifespan,
        docs_url=None if settings.is_production else "/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.releases = ReleaseCache()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "authorization"],
        max_age=86_400,
    )

    graphql = ContentGraphQLRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide=None if settings.is_production else "graphiql",
        allow_queries_via_get=True,
    )
    app.include_router(graphql, prefix="/graphql")

    mount_console(app, settings)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/graphql")

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
