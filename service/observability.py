"""What operators see of each request: its id, one structured log line, Prometheus metrics,
security headers, and a 503 in place of an answer the database could not give."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import sys
import time
import uuid
from bisect import bisect_left
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from ipaddress import ip_address
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.access.keys import KEY_PATTERN, prefix_of
from service.config import Settings
from service.db import is_unavailable

REQUEST_ID_HEADER = "x-request-id"
# an incoming id is kept when it is short and plain (a UUID, a load balancer's trace id);
# anything else could forge log lines or carry a secret, and is replaced
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# seconds a client is asked to wait after a 503: about how long a failover or restart takes
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = (
    "The content database is not answering at the moment; nothing was changed. "
    f"Retry in {RETRY_AFTER_SECONDS} seconds."
)
# a leaked key found anywhere in a log line (an exception's text, a header echoed by a
# library) keeps its visible prefix only
_KEY_ANYWHERE = re.compile(r"gsk_[sp]_[0-9A-Za-z]{8}[0-9A-Za-z]{28}")
_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OPERATION_LABELS = 100  # distinct operation names kept as metric labels per process
OPERATION_LOG_LENGTH = 100

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
HSTS = "max-age=31536000; includeSubDomains"

logger = structlog.stdlib.get_logger("service.http")


# --- the request's own record, filled by every layer it passes -------------------------------


@dataclass
class RequestLog:
    """What the log line and the metrics of one request say. Layers inside the middleware fill
    it through the context variable: the GraphQL layer the operation, the response cache
    `cache` ("hit", "miss" or "bypass", through `note_cache`)."""

    request_id: str
    caller: str
    operation: str | None = None
    cache: str | None = None
    database_unavailable: bool = False


_current: ContextVar[RequestLog | None] = ContextVar("contentapi_request", default=None)


def current_request() -> RequestLog | None:
    return _current.get()


def current_request_id() -> str | None:
    record = _current.get()
    return record.request_id if record else None


def note_operation(name: str | None) -> None:
    record = _current.get()
    if record is not None and name:
        record.operation = name[:OPERATION_LOG_LENGTH]


def note_database_unavailable() -> None:
    """The answer failed because the database could not answer: it becomes a 503."""
    record = _current.get()
    if record is not None:
        record.database_unavailable = True


def note_cache(result: str) -> None:
    """For the response cache: whether this request was answered from it ("hit", or "stale"
    while the database is away), had to be computed ("miss"), or could not be cached
    ("bypass")."""
    _cache_lookups(result).inc()
    record = _current.get()
    if record is not None:
        record.cache = result


def request_id_from(headers: Mapping[str, str]) -> str:
    incoming = headers.get(REQUEST_ID_HEADER, "")
    return incoming if _SANE_REQUEST_ID.fullmatch(incoming) else fresh_request_id()


def sane_request_id(incoming: bytes | None) -> str | None:
    """An incoming request id worth keeping, or None."""
    if incoming is None:
        return None
    text = incoming.decode("latin-1")
    return text if _SANE_REQUEST_ID.fullmatch(text) else None


# request ids: this process's random half, then a count (unique without a system call each)
_PROCESS_ID = uuid.uuid4().hex[:16]
_request_count = itertools.count(1)


def _new_process() -> None:
    """A forked process draws its own half: two processes never hand out the same id."""
    global _PROCESS_ID, _request_count
    _PROCESS_ID = uuid.uuid4().hex[:16]
    _request_count = itertools.count(1)


os.register_at_fork(after_in_child=_new_process)


def fresh_request_id() -> str:
    return f"{_PROCESS_ID}{next(_request_count):016x}"


def caller_of(authorization: str | None) -> str:
    """Who called, as a log may say it: a key's visible prefix, never the key."""
    if authorization is None:
        return "anonymous"
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() == "bearer" and KEY_PATTERN.fullmatch(key):
        return prefix_of(key)
    return "malformed"


# --- metrics ---------------------------------------------------------------------------------

# With several server processes (`serve --workers N`), PROMETHEUS_MULTIPROC_DIR is set before
# they start: each writes its values there, and /metrics adds them up. Gauges say how.
REQUESTS = Counter(
    "contentapi_http_requests",
    "HTTP requests answered, by route template, method, status and GraphQL operation",
    ["route", "method", "status", "operation"],
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LATENCY = Histogram(
    "contentapi_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and GraphQL operation",
    ["route", "method", "operation"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "contentapi_http_requests_in_flight",
    "HTTP requests being answered now",
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "contentapi_db_pool_checked_out",
    "Database connections in use by requests now",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "contentapi_db_pool_size",
    "Database connections the pool keeps open (more may be opened under load)",
    multiprocess_mode="livesum",
)
WEBHOOK_PENDING = Gauge(
    "contentapi_webhook_deliveries_pending",
    "Webhook deliveries waiting to be sent or retried, counted when /metrics is read",
    multiprocess_mode="mostrecent",
)
CACHE_LOOKUPS = Counter(
    "contentapi_response_cache_lookups",
    "Response cache lookups, by result: hit, miss or bypass",
    ["result"],
)
DATABASE_UNAVAILABLE = Counter(
    "contentapi_database_unavailable",
    "Requests answered 503 because the database did not answer in time",
)

_operation_labels: set[str] = set()


# a metric's child per label values, looked up once: the values are bounded (route templates,
# methods, statuses, operation_label's names), and labels() costs more than the increment
@lru_cache(maxsize=4096)
def _requests(route: str, method: str, status: str, operation: str) -> Any:
    return REQUESTS.labels(route=route, method=method, status=status, operation=operation)


@lru_cache(maxsize=4096)
def _latency(route: str, method: str, operation: str) -> Any:
    return LATENCY.labels(route=route, method=method, operation=operation)


@lru_cache(maxsize=16)
def _cache_lookups(result: str) -> Any:
    return CACHE_LOOKUPS.labels(result=result)


def operation_label(name: str | None) -> str:
    """A bounded set of label values: clients choose operation names, and every new name
    would be a new time series."""
    if name is None:
        return ""
    if name in _operation_labels:
        return name
    if _OPERATION_NAME.fullmatch(name) and len(_operation_labels) < MAX_OPERATION_LABELS:
        _operation_labels.add(name)
        return name
    return "other"


def route_label(scope: Scope) -> str:
    """The route's template (/bundles/{release}/{locale}.json), never the raw path, which
    would make a time series per URL; rebuilt from the path and its parameters, since routers
    included under a prefix do not keep the whole template."""
    if "route" not in scope:
        mount = str(scope.get("root_path", ""))
        return f"{mount}/{{path}}" if "endpoint" in scope and mount else "unmatched"
    path = str(scope.get("path", ""))
    for name, value in dict(scope.get("path_params") or {}).items():
        text = str(value)
        if text:
            head, found, tail = path.rpartition(text)
            if found:
                path = f"{head}{{{name}}}{tail}"
    return path


def observe_pool(engine: AsyncEngine | None) -> None:
    if engine is None:
        return
    pool: Any = engine.sync_engine.pool
    if hasattr(pool, "checkedout") and hasattr(pool, "size"):
        POOL_CHECKED_OUT.set(pool.checkedout())
        POOL_SIZE.set(pool.size())


class Tally:
    """Requests counted in batches, for the answers so cheap that counting each in the metrics
    would be a large share of answering it (the fast lane's): their counts, latency sums
    and latency buckets are added up here, and added to the metrics once a second (`flush`,
    from the next such answer or from `flush_periodically`) and whenever this process's
    /metrics is read."""

    INTERVAL = 1.0

    def __init__(self) -> None:
        # by (route, method, status, operation): [answers, seconds, answers per bucket]
        self._pending: dict[tuple[str, str, str, str], list[Any]] = {}
        self._hits = 0
        self._flushed = time.monotonic()

    def count(
        self, route: str, method: str, status: int, operation: str | None, elapsed: float
    ) -> None:
        """One answer given from a cache (a cache hit as well as a request)."""
        key = (route, method, str(status), operation_label(operation))
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = [0, 0.0, [0] * len(_LATENCY_BOUNDS)]
        pending[0] += 1
        pending[1] += elapsed
        pending[2][bisect_left(_LATENCY_BOUNDS, elapsed)] += 1
        self._hits += 1
        if time.monotonic() - self._flushed >= self.INTERVAL:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        hits, self._hits = self._hits, 0
        self._flushed = time.monotonic()
        for (route, method, status, operation), (answers, seconds, buckets) in pending.items():
            _requests(route, method, status, operation).inc(answers)
            # what Histogram.observe does once per value, done once per batch
            latency = _latency(route, method, operation)
            latency._sum.inc(seconds)
            for index, count in enumerate(buckets):
                if count:
                    latency._buckets[index].inc(count)
        if hits:
            _cache_lookups("hit").inc(hits)

    async def flush_periodically(self, stop: asyncio.Event) -> None:
        """Flush once a second until `stop`, then a last time: a process that answers nothing
        more still shows what it answered."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.INTERVAL)
            self.flush()


# the latency histogram's upper bounds, +Inf last, as Histogram.observe compares them
_LATENCY_BOUNDS = (*LATENCY_BUCKETS, float("inf"))
TALLY = Tally()


def metrics_payload() -> bytes:
    TALLY.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        payload: bytes = generate_latest(registry)
    else:
        payload = generate_latest(REGISTRY)
    return payload


def metrics_allowed(request: Request, settings: Settings) -> bool:
    networks = settings.metrics_networks
    if networks is None:
        return True
    if request.client is None:
        return False
    try:
        address = ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def metrics_response(body: bytes) -> Response:
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})


# --- the middleware --------------------------------------------------------------------------


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def unavailable_body(request_id: str) -> bytes:
    return _compact(
        {
            "errors": [
                {
                    "message": UNAVAILABLE_MESSAGE,
                    "extensions": {"code": "SERVICE_UNAVAILABLE", "requestId": request_id},
                }
            ]
        }
    )


class Observability:
    """The outermost layer of the application: every response, whatever produced it, gets the
    request id and the security headers, is logged once and counted once.

    An answer that failed because the database could not answer (a GraphQL error the resolver
    layer marked, or an exception no handler took) leaves as 503 with Retry-After and
    `no-store`, so clients and CDNs retry instead of caching a failure."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        security = dict(SECURITY_HEADERS)
        if settings.is_production:
            security["strict-transport-security"] = HSTS
        self._security_headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in security.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        record = RequestLog(
            request_id=request_id_from(headers), caller=caller_of(headers.get("authorization"))
        )
        token = _current.set(record)
        # every line logged while answering (a library's too) carries the request's id
        bound = structlog.contextvars.bind_contextvars(request_id=record.request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        IN_FLIGHT.inc()

        async def send_observed(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                if record.database_unavailable:
                    self._as_unavailable(message)
                status = int(message["status"])
                self._add_headers(message, record)
            await send(message)

        try:
            if self.settings.request_delay and scope.get("path") == "/graphql":
                await asyncio.sleep(self.settings.request_delay)
            await self.app(scope, receive, send_observed)
        except Exception as exc:
            if response_started:
                logger.exception("response failed after it started", caller=record.caller)
                raise
            if is_unavailable(exc):
                record.database_unavailable = True
                logger.warning("database unavailable", error=_one_line(exc))
                await self._send_unavailable(send_observed, record)
            else:
                # the one place an unforeseen error is logged: with the request's id, so a
                # partner quoting it finds this line
                logger.exception("unhandled error", caller=record.caller)
                await self._send_internal(send_observed, record)
        finally:
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            self._account(scope, record, status, elapsed)
            structlog.contextvars.reset_contextvars(**bound)
            _current.reset(token)

    def _add_headers(self, message: MutableMapping[str, Any], record: RequestLog) -> None:
        raw = list(message.get("headers") or [])
        present = {name.lower() for name, _ in raw}
        raw.append((b"x-request-id", record.request_id.encode("latin-1")))
        # the console sets its own, stricter set (CSP, referrer policy): kept as they are
        raw.extend(header for header in self._security_headers if header[0] not in present)
        message["headers"] = raw

    def _as_unavailable(self, message: MutableMapping[str, Any]) -> None:
        message["status"] = 503
        headers = MutableHeaders(scope=message)
        for stale in ("etag", "last-modified", "expires"):
            if stale in headers:
                del headers[stale]
        headers["cache-control"] = "no-store"
        headers["retry-after"] = str(RETRY_AFTER_SECONDS)

    async def _send_unavailable(self, send: Send, record: RequestLog) -> None:
        body = unavailable_body(record.request_id)
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _send_internal(self, send: Send, record: RequestLog) -> None:
        body = _compact(
            {
                "errors": [
                    {
                        "message": "Internal server error",
                        "extensions": {"code": "INTERNAL", "requestId": record.request_id},
                    }
                ]
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _account(self, scope: Scope, record: RequestLog, status: int, elapsed: float) -> None:
        account(scope, record, status, elapsed)


def account_cached(
    scope: Scope,
    status: int,
    elapsed: float,
    *,
    route: str,
    request_id: str,
    caller: str,
    operation: str | None,
) -> None:
    """Count and log one request answered from a cache, counted in a batch (`Tally`); its log
    record is made only when a line will be written."""
    TALLY.count(route, str(scope.get("method", "")), status, operation, elapsed)
    level = _access_level(status)
    if not _ACCESS_LOG.silent(level):
        record = RequestLog(request_id, caller, operation, "hit")
        _log_request(scope, record, status, elapsed, route, level)


def account(
    scope: Scope, record: RequestLog, status: int, elapsed: float, *, route: str | None = None
) -> None:
    """Count and log one answered request (once, whichever layer answered it)."""
    route = route or route_label(scope)
    operation = operation_label(record.operation)
    method = str(scope.get("method", ""))
    _requests(route, method, str(status), operation).inc()
    _latency(route, method, operation).observe(elapsed)
    if record.database_unavailable:
        DATABASE_UNAVAILABLE.inc()
    app = scope.get("app")
    observe_pool(getattr(getattr(app, "state", None), "engine", None))
    level = _access_level(status)
    if not _ACCESS_LOG.silent(level):
        _log_request(scope, record, status, elapsed, route, level)


def _access_level(status: int) -> int:
    return logging.WARNING if status >= 500 else logging.INFO


def _log_request(
    scope: Scope, record: RequestLog, status: int, elapsed: float, route: str, level: int
) -> None:
    client = scope.get("client")
    fields = {
        "request_id": record.request_id,
        "method": str(scope.get("method", "")),
        "path": scope.get("path", ""),
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
        "caller": record.caller,
        "operation": record.operation,
        "cache": record.cache,
        "client": client[0] if client else None,
    }
    if not _ACCESS_LOG.write(level, fields):
        logger.log(level, "request", **fields)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- logging ---------------------------------------------------------------------------------


def _redact_keys(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    for field_name, value in event.items():
        if isinstance(value, str) and "gsk_" in value:
            event[field_name] = _KEY_ANYWHERE.sub(lambda m: prefix_of(m.group()) + "…", value)
    return event


def _json(event: Any, **_: Any) -> str:
    return json.dumps(event, default=str, ensure_ascii=False, separators=(",", ":"))


class _AccessLog:
    """The one line per request, written straight to the log's stream when the log is JSON:
    the same object the processors would make, at a fraction of their cost on the hot path.
    Anything else (console format, processors replaced, as when a test captures the log)
    goes through structlog."""

    def __init__(self) -> None:
        self.handler: logging.StreamHandler[Any] | None = None
        self.processors: object = None

    def configured(self, handler: logging.StreamHandler[Any] | None) -> None:
        self.handler = handler
        self.processors = structlog.get_config()["processors"] if handler else None

    def _direct(self) -> bool:
        """Whether the line is written here rather than through structlog."""
        return self.handler is not None and structlog.get_config()["processors"] is self.processors

    def silent(self, level: int) -> bool:
        """Whether a line of `level` would be written nowhere: then nothing is prepared."""
        return not _HTTP_LOGGER.isEnabledFor(level) and self._direct()

    def write(self, level: int, fields: dict[str, Any]) -> bool:
        handler = self.handler
        if handler is None or not self._direct():
            return False
        if not _HTTP_LOGGER.isEnabledFor(level):
            return True
        event = {
            **fields,
            "event": "request",
            "level": logging.getLevelName(level).lower(),
            "logger": "service.http",
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        line = _json(_redact_keys(None, "", event)) + "\n"
        handler.acquire()
        try:
            handler.stream.write(line)
            handler.flush()
        finally:
            handler.release()
        return True


_ACCESS_LOG = _AccessLog()
_HTTP_LOGGER = logging.getLogger("service.http")


def configure_logging(settings: Settings) -> None:
    """Every log line of the process, the service's and the libraries' (uvicorn's included),
    as one JSON object on stdout (or aligned text for a terminal), with a key never in it."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json)
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_keys,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    _ACCESS_LOG.configured(handler if settings.log_format == "json" else None)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # each request is logged once, by Observability, with more than an access log says
    logging.getLogger("uvicorn.access").disabled = True
    if not settings.log_sql:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
