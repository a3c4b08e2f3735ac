"""create_app(settings): the FastAPI application wiring the database and the GraphQL API;
health, readiness and metrics. `app_from_environment` is the factory server processes import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from starlette.types import Receive, Scope, Send

from service.config import Settings
from service.console.routes import mount_console
from service.content.errors import Unauthenticated
from service.content.reading import ReleaseCache
from service.db import create_engine_for, create_sessionmaker, is_unavailable
from service.delivery.bundles import BundleHashes
from service.delivery.documents import DocumentStore
from service.delivery.fastlane import FastLane
from service.delivery.gate import Delivery, DeliveryGate
from service.delivery.routes import router as bundles
from service.delivery.webhook_repository import WebhookRepository
from service.delivery.webhook_worker import run_worker
from service.graphql.context import CallerRefused, get_context
from service.graphql.fragments import Fragments
from service.graphql.router import (
    ContentGraphQLRouter,
    RequestLimits,
    RequestRefused,
    refusal_response,
)
from service.graphql.schema import build_schema
from service.observability import (
    RETRY_AFTER_SECONDS,
    TALLY,
    WEBHOOK_PENDING,
    Observability,
    configure_logging,
    current_request_id,
    metrics_allowed,
    metrics_payload,
    metrics_response,
    observe_pool,
    unavailable_body,
)

logger = logging.getLogger("service.app")


class ContentAPI(FastAPI):
    """The application, with the fast lane in front of everything else: a GraphQL GET the
    delivery gate has just answered from its cache is answered again from there, by the
    same request bytes, before any other layer runs (service/delivery/fastlane.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane: FastLane | None = getattr(self.state, "fast_lane", None)
        if lane is None or not FastLane.eligible(scope):
            await super().__call__(scope, receive, send)
            return
        if not await lane.answer(scope, send):
            await super().__call__(scope, receive, lane.learning(scope, send))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine_for(
            settings.database_url, echo=settings.log_sql, timeout=settings.database_timeout
        )
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        # releases are loaded on connections of their own, outside the pool: a load that
        # requests wait for never waits for a pooled connection one of them holds
        loader_engine = create_engine_for(
            settings.database_url, timeout=settings.database_timeout, poolclass=NullPool
        )
        app.state.releases.memory.sessions = create_sessionmaker(loader_engine)
        await app.state.documents.load(app.state.sessionmaker)
        # readiness opens a connection of its own each time: it asks whether this instance
        # can reach the database now, not whether the pool still holds an old connection
        app.state.probe_engine = create_engine_for(
            settings.database_url, timeout=settings.readiness_timeout, poolclass=NullPool
        )
        # the freshness poll keeps one connection of its own: requests never wait for it,
        # nor it for them, and the pool's gauge counts requests only
        freshness_engine = create_engine_for(
            settings.database_url, timeout=settings.database_timeout, pool_size=1
        )
        app.state.freshness_sessions = create_sessionmaker(freshness_engine)
        delivery: Delivery = app.state.delivery
        stop_worker = asyncio.Event()
        stop_polling = asyncio.Event()
        polling = asyncio.create_task(
            delivery.freshness.run(app.state.freshness_sessions, stop_polling), name="freshness"
        )
        # the answers counted in batches reach the metrics within a second
        tallying = asyncio.create_task(TALLY.flush_periodically(stop_polling), name="tally")
        worker = None
        if settings.webhook_worker:
            worker = asyncio.create_task(
                run_worker(settings, app.state.sessionmaker, stop=stop_worker),
                name="webhook worker",
            )
        try:
            yield
        finally:
            if worker is not None:
                await _stop_worker(worker, stop_worker, settings)
            stop_polling.set()
            await polling
            await tallying
            await delivery.close()
            await engine.dispose()
            await loader_engine.dispose()
            await freshness_engine.dispose()
            await app.state.probe_engine.dispose()

    app = ContentAPI(
        title="Gut–skin content API",
        lifespan=lifespan,
        docs_url=None if settings.is_production else "/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.releases = ReleaseCache()
    app.state.fragments = (
        Fragments(settings.fragment_cache_bytes) if settings.fragment_cache_bytes else None
    )
    app.state.bundle_hashes = BundleHashes()
    app.state.documents = DocumentStore.for_settings(settings)
    app.state.delivery = Delivery(settings, app.state.documents)
    app.state.fast_lane = FastLane(
        app.state.delivery.freshness,
        app.state.delivery.keys,
        app.state.delivery.limits,
        app.state.documents,
    )
    # innermost of the layers: cached answers, 304s and rate limits, before FastAPI routes
    # anything; CORS and Observability (added after, so outside it) see its answers too
    app.add_middleware(DeliveryGate, settings=settings)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "authorization", "x-request-id"],
        expose_headers=[
            "etag",
            "x-request-id",
            "retry-after",
            "ratelimit",
            "ratelimit-policy",
            "cache-status",
        ],
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
    # the delivery gate runs planned GETs' operations as this endpoint does
    app.state.graphql = graphql
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

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def database_error(request: Request, exc: Exception) -> Response:
        # outside GraphQL (checking a key, a bundle, the console): answered here, inside the
        # CORS layer, so a browser can read the 503 too
        if not is_unavailable(exc):
            raise exc
        logger.warning("database unavailable: %s", type(exc).__name__)
        return Response(
            unavailable_body(current_request_id() or ""),
            status_code=503,
            media_type="application/json",
            headers={"retry-after": str(RETRY_AFTER_SECONDS), "cache-control": "no-store"},
        )

    mount_console(app, settings)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/graphql")

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        """Liveness: the process answers. It never asks the database, so an orchestrator does
        not restart every instance while the database is away; /readyz says that."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        """Readiness: this instance can reach the database now. A load balancer sends it no
        traffic while it cannot (503), and again as soon as it can."""
        problem = await _database_problem(request.app.state.probe_engine, settings)
        if problem is not None:
            return JSONResponse(
                {"status": "unavailable", "checks": {"database": problem}},
                status_code=503,
                headers={"cache-control": "no-store", "retry-after": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse(
            {"status": "ready", "checks": {"database": "ok"}},
            headers={"cache-control": "no-store"},
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not metrics_allowed(request, settings):
            return _refusal(403, "FORBIDDEN", "metrics are for this service's monitoring only")
        observe_pool(request.app.state.engine)
        await _count_pending_webhooks(request.app.state.probe_engine, settings)
        return metrics_response(metrics_payload())

    # outermost, so that every response (CORS preflights, refusals, errors) is observed;
    # layers added before this one (a response cache) run inside it and fill its record
    app.add_middleware(Observability, settings=settings)
    return app


def app_from_environment() -> FastAPI:
    """What each server process runs (`uvicorn --factory service.app:app_from_environment`):
    settings from the environment, the process's logging, the application."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)


async def _stop_worker(worker: asyncio.Task[None], stop: asyncio.Event, settings: Settings) -> None:
    """The worker claims nothing more and finishes the batch in hand (its sends are bounded by
    the webhook timeout); if that still takes too long it is cancelled, and hands its claims
    back so that another instance sends them at once rather than after the lease."""
    stop.set()
    try:
        await asyncio.wait_for(worker, settings.webhook_timeout + settings.database_timeout)
    except TimeoutError:
        logger.warning("webhook worker did not finish its batch in time: claims handed back")
    except Exception:
        logger.exception("webhook worker failed while stopping")


async def _database_problem(engine: AsyncEngine, settings: Settings) -> str | None:
    try:
        # sooner than the driver's own timeouts (libpq connects for 2 s at least)
        async with asyncio.timeout(settings.readiness_timeout):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {settings.readiness_timeout:g} s"
    except (DBAPIError, PoolTimeout, OSError) as exc:
        return type(getattr(exc, "orig", None) or exc).__name__
    return None


async def _count_pending_webhooks(engine: AsyncEngine, settings: Settings) -> None:
    try:
        async with (
            asyncio.timeout(settings.readiness_timeout),
            create_sessionmaker(engine)() as session,
        ):
            WEBHOOK_PENDING.set(await WebhookRepository(session).pending_count())
    except (TimeoutError, DBAPIError, PoolTimeout):
        # the other metrics still matter most while the database is away
        logger.warning("webhook queue depth not counted: the database did not answer")


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    """Shaped like a GraphQL error, so clients show it as they show every other."""
    headers = {"www-authenticate": 'Bearer realm="content-api"'} if status == 401 else {}
    extensions = {"code": code}
    request_id = current_request_id()
    if request_id is not None:
        extensions["requestId"] = request_id
    return JSONResponse(
        {"errors": [{"message": message, "extensions": extensions}]},
        status_code=status,
        headers=headers | {"cache-control": "no-store"},
    )
