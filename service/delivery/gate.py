"""The delivery gate: a plain ASGI layer in front of the GraphQL endpoint that answers what it
can without FastAPI or Strawberry running.

For a GET it reads the question (plan.py), the caller (keys checked recently are held) and the
latest release (freshness.py), and from them alone computes a strong ETag: a matching
If-None-Match is a 304 and an answer in the response cache is sent as stored, both before any
resolver runs. Anything else goes to the endpoint; a successful answer to a planned GET is
stored, tagged with the release and the entries it shows, and sent with the caching headers.
Every request to /graphql spends from its caller's rate limit and may be compressed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from service.access.keycache import KeyCache
from service.access.principal import Principal
from service.config import Settings
from service.content.errors import Unauthenticated
from service.content.served import recording
from service.db import is_unavailable
from service.delivery import ratelimit
from service.delivery.cache import Answer, LocalCache, SharedCache
from service.delivery.compression import compress, negotiate_encoding
from service.delivery.documents import DocumentStore
from service.delivery.fastlane import Mark, names_answer
from service.delivery.freshness import Freshness
from service.delivery.plan import Question, Questions, Shapes, pinned_releases
from service.delivery.ratelimit import Decision, RateLimits
from service.graphql.context import reading_context, transaction
from service.graphql.router import ContentGraphQLRouter, json_problem, negotiate_media_type
from service.observability import (
    current_request,
    current_request_id,
    note_cache,
    note_database_unavailable,
    unavailable_body,
)

logger = logging.getLogger("service.delivery.gate")

QUERIES = frozenset({OperationType.QUERY})

GRAPHQL_PATH = "/graphql"
VARY = b"Accept, Accept-Encoding, Authorization"
IMMUTABLE = b"public, max-age=31536000, immutable"
# cache tags past this length are cut to the release's own: CDNs cap the header (16 KiB)
MAX_TAGS_LENGTH = 8 * 1024
CODING_SUFFIX = {"br": "-br", "gzip": "-gz"}
# questions whose last stored answer is remembered, to answer from it while the database is away
FALLBACK_SIZE = 10_000
PLANS_SIZE = 4_096
ASKED_SIZE = 8_192


@dataclass
class Delivery:
    """What the gate keeps for one application: held keys, the latest release, parsed
    documents, stored answers and the rate limits."""

    settings: Settings
    documents: DocumentStore | None = None
    keys: KeyCache = field(default_factory=KeyCache)
    shapes: Shapes = field(default_factory=Shapes)
    questions: Questions = field(default_factory=Questions)
    local: LocalCache | None = None
    shared: SharedCache | None = None
    limits: RateLimits | None = None
    freshness: Freshness = field(init=False)
    fallback: OrderedDict[str, str] = field(default_factory=OrderedDict)
    # the keys of answers computed once and not kept: kept when asked again (`_admitted`)
    asked: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # plans by what they were made from (URL, key, Accept, latest release): a partner's build
    # repeats the same GETs, so most are planned once
    plans: OrderedDict[tuple[bytes, ...], tuple[Plan, Principal | None]] = field(
        default_factory=OrderedDict
    )

    def __post_init__(self) -> None:
        settings = self.settings
        self.freshness = Freshness(
            self.keys, interval=settings.freshness_interval, documents=self.documents
        )
        if settings.response_cache_bytes:
            self.local = LocalCache(settings.response_cache_bytes)
            if settings.redis_url:
                self.shared = SharedCache(settings.redis_url)
        if settings.rate_limit:
            self.limits = RateLimits(settings.rate_limit, settings.redis_url)
        latest = (
            f"public, max-age={settings.cache_max_age}, "
            f"stale-while-revalidate={settings.cache_stale_while_revalidate}, "
            f"stale-if-error={settings.cache_stale_if_error}"
        )
        self.latest_cache_control = latest.encode()

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
        if self.limits is not None:
            await self.limits.close()

    async def stored(self, key: str) -> Answer | None:
        if self.local is None:
            return None
        answer = self.local.get(key)
        if answer is None and self.shared is not None:
            answer = await self.shared.get(key)
            if answer is not None:
                self.local.put(key, answer)
        return answer

    def _admitted(self, key: str) -> bool:
        """Whether to keep an answer: once its question is asked a second time. Most of a
        build's questions are asked once (a page per product), and keeping each of those would
        push out the answers that are asked again and again, and grow the process to the
        cache's bound for nothing."""
        if key in self.asked:
            del self.asked[key]
            return True
        self.asked[key] = None
        if len(self.asked) > ASKED_SIZE:
            self.asked.popitem(last=False)
        return False

    async def store(self, key: str, question_key: str, answer: Answer) -> bool:
        """Keep an answer, when it is worth keeping; whether it was kept."""
        if self.local is None or not self._admitted(key):
            return False
        self.local.put(key, answer)
        self.fallback[question_key] = key
        self.fallback.move_to_end(question_key)
        while len(self.fallback) > FALLBACK_SIZE:
            self.fallback.popitem(last=False)
        if self.shared is not None:
            await self.shared.put(key, answer)
        return True


@dataclass(frozen=True, slots=True)
class Plan:
    """A planned GET: the key its answer is stored under, and what its headers say."""

    key: str
    question_key: str
    pinned: bool
    tags: str  # the release's own cache tags; the entries' are added once it is computed
    # the operation as the endpoint would run it, when the gate may run it itself
    operation: Operation | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """A planned GET's operation: its document, name and variables, and the media type of
    its answer."""

    document: str
    name: str | None
    variables: dict[str, object]
    media_type: str


class DeliveryGate:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != GRAPHQL_PATH:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        delivery: Delivery = state.delivery
        headers = _headers(scope)
        if b"content-preview" not in headers:
            # the release every reader of this request reads as "latest": the one its ETag names
            latest = await delivery.freshness.latest_release(state.freshness_sessions)
            if latest:
                scope.setdefault("state", {})["latest_release"] = latest
        if scope["method"] == "GET":
            await self._get(scope, receive, send, delivery, headers)
        else:
            await self._pass(scope, receive, send, delivery, headers, cost=ratelimit.EXECUTED)

    # --- a GET ---------------------------------------------------------------------------

    async def _get(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        delivery: Delivery,
        headers: dict[bytes, bytes],
    ) -> None:
        plan, principal = await self._plan(scope, delivery, headers)
        if plan is None:
            note_cache("bypass")
            await self._pass(scope, receive, send, delivery, headers, cost=ratelimit.EXECUTED)
            return
        identity = _identity(scope, principal)
        coding = self._coding(headers)
        if names_answer(headers.get(b"if-none-match"), plan.key):
            decision = await self._spend(delivery, identity, ratelimit.REVALIDATED)
            if decision is not None and not decision.allowed:
                await _too_many(send, decision)
                return
            note_cache("hit")
            _mark(scope, plan, principal, identity)
            await _send_not_modified(send, delivery, plan, coding, decision)
            return
        answer = await delivery.stored(plan.key)
        if answer is not None:
            decision = await self._spend(delivery, identity, ratelimit.CACHED)
            if decision is not None and not decision.allowed:
                await _too_many(send, decision)
                return
            note_cache("hit")
            _mark(scope, plan, principal, identity)
            await self._send_answer(send, delivery, plan, answer, coding, decision, b"hit")
            return
        decision = await self._spend(delivery, identity, ratelimit.EXECUTED)
        if decision is not None and not decision.allowed:
            await _too_many(send, decision)
            return
        note_cache("miss")
        await self._compute(
            scope, receive, send, delivery, plan, coding, decision, (principal, identity)
        )

    async def _plan(
        self, scope: Scope, delivery: Delivery, headers: dict[bytes, bytes]
    ) -> tuple[Plan | None, Principal | None]:
        latest = scope.get("state", {}).get("latest_release")
        authorization = headers.get(b"authorization")
        documents = delivery.documents
        made_from = (
            scope.get("query_string", b""),
            authorization or b"",
            headers.get(b"accept", b""),
            str(latest).encode(),
            # a trusted document removed: what was planned for it may no longer run
            b"%d" % documents.current_epoch() if documents is not None else b"",
        )
        planned = delivery.plans.get(made_from)
        if planned is not None:
            known, holder = planned
            # the key must still be held: a revocation clears what is held
            if holder is None or (
                authorization is not None
                and delivery.keys.held(authorization.decode("latin-1")) is holder
            ):
                return known, holder
        plan, principal = await self._make_plan(scope, delivery, headers)
        if plan is not None:
            delivery.plans[made_from] = (plan, principal)
            if len(delivery.plans) > PLANS_SIZE:
                delivery.plans.popitem(last=False)
        return plan, principal

    async def _make_plan(
        self, scope: Scope, delivery: Delivery, headers: dict[bytes, bytes]
    ) -> tuple[Plan | None, Principal | None]:
        settings = self.settings
        query_string: bytes = scope.get("query_string", b"")
        if b"content-preview" in headers or len(query_string) > settings.max_query_string_bytes:
            return None, None
        question = delivery.questions.read(query_string)
        if question is None:
            return None, None
        documents = getattr(scope["app"].state, "documents", None)
        if documents is None:
            return None, None
        document = question.document or documents.known(question.document_hash)
        if document is None:
            return None, None
        if settings.trusted_documents and not documents.is_trusted(question.document_hash):
            return None, None  # the endpoint refuses it, or runs it for staff
        accept = headers.get(b"accept")
        media_type = negotiate_media_type(accept.decode("latin-1") if accept else None)
        if media_type is None:
            return None, None
        principal: Principal | None = None
        authorization = headers.get(b"authorization")
        if authorization is None:
            if settings.is_production:
                return None, None  # refused with 401 by the endpoint
            audience = "anonymous"
        else:
            principal = await self._caller(scope, delivery, authorization.decode("latin-1"))
            if principal is None or not principal.is_partner:
                return None, principal  # refused, or staff: always answered afresh
            audience = "\x1f".join(
                (
                    principal.name,
                    ",".join(principal.markets or ()),
                    ",".join(principal.locales or ()),
                )
            )
        shape = delivery.shapes.of(question, document)
        latest = scope.get("state", {}).get("latest_release")
        if shape is None or not latest:
            return None, principal
        pinned = pinned_releases(shape, question.variables, latest)
        question_key = _digest(
            question.document_hash,
            question.operation_name or "",
            question.canonical_variables,
            audience,
            media_type,
        )
        release = f"pinned:{pinned}" if pinned is not None else f"latest:{latest}"
        releases = pinned.split(",") if pinned is not None else [str(latest)]
        tags = " ".join(f"release-{number}" for number in releases if number != "0")
        operation = None
        if _runs_as_planned(question, documents) and json_problem(question.variables) is None:
            operation = Operation(document, question.operation_name, question.variables, media_type)
        plan = Plan(
            _digest(question_key, release), question_key, pinned is not None, tags, operation
        )
        return plan, principal

    async def _caller(
        self, scope: Scope, delivery: Delivery, authorization: str
    ) -> Principal | None:
        """The key's principal: held, or checked now (and held); None when it is refused or the
        database cannot say, which the endpoint then answers."""
        held = delivery.keys.held(authorization)
        if held is not None:
            return held
        sessions = scope["app"].state.sessionmaker
        try:
            async with sessions() as session:
                principal = await delivery.keys.caller(
                    session, authorization, production=self.settings.is_production
                )
                await session.commit()
        except (Unauthenticated, DBAPIError, PoolTimeout, OSError):
            return None
        return principal

    def _coding(self, headers: dict[bytes, bytes]) -> str | None:
        accept_encoding = headers.get(b"accept-encoding")
        return negotiate_encoding(accept_encoding.decode("latin-1") if accept_encoding else None)

    async def _spend(self, delivery: Delivery, identity: str, cost: int) -> Decision | None:
        if delivery.limits is None:
            return None
        return await delivery.limits.spend(identity, cost)

    async def _send_answer(
        self,
        send: Send,
        delivery: Delivery,
        plan: Plan,
        answer: Answer,
        coding: str | None,
        decision: Decision | None,
        status: bytes,
    ) -> None:
        body = answer.body
        suffix = ""
        if coding is not None and len(body) >= self.settings.compression_min_bytes:
            new = coding not in answer.coded
            body = answer.encoded(coding)
            if new and delivery.local is not None:
                delivery.local.grew(answer, len(body))
            suffix = CODING_SUFFIX[coding]
        head = [
            (b"content-type", answer.content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"etag", f'"{plan.key}{suffix}"'.encode()),
            *_caching_headers(delivery, plan, answer.tags),
            (b"cache-status", b"contentapi; " + status),
        ]
        if suffix:
            head.append((b"content-encoding", coding.encode() if coding else b""))
        if decision is not None:
            head.extend(decision.headers())
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": body})

    async def _compute(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        delivery: Delivery,
        plan: Plan,
        coding: str | None,
        decision: Decision | None,
        caller: tuple[Principal | None, str],
    ) -> None:
        captured = None
        if plan.operation is not None:
            with recording() as served:
                captured = await self._run(scope, plan.operation, caller[0])
        if captured is None:
            captured = _Captured()
            with recording() as served:
                await self.app(scope, receive, captured.send)
        record = current_request()
        if record is not None and record.database_unavailable:
            stale_key = delivery.fallback.get(plan.question_key)
            stale = await delivery.stored(stale_key) if stale_key else None
            if stale is not None and stale_key is not None:
                # stale-if-error: the last answer this question got, while the database is away
                record.database_unavailable = False
                note_cache("stale")
                stale_plan = Plan(stale_key, plan.question_key, stale.pinned, stale.tags)
                await self._send_answer(
                    send, delivery, stale_plan, stale, coding, decision, b"stale"
                )
                return
        body = captured.body
        if captured.status != 200 or b'"errors":' in body or not captured.complete:
            await captured.replay(send, decision)
            return
        tags = _tags(plan.tags, served)
        answer = Answer(body, captured.content_type, tags, plan.pinned)
        if await delivery.store(plan.key, plan.question_key, answer):
            _mark(scope, plan, *caller)
            status = b"fwd=miss; stored"
        else:
            status = b"fwd=miss"
        await self._send_answer(send, delivery, plan, answer, coding, decision, status)

    async def _run(
        self, scope: Scope, operation: Operation, caller: Principal | None
    ) -> _Captured | None:
        """Run a planned GET's operation as the endpoint runs it (the same context, schema,
        extensions and response), without FastAPI's routing or Strawberry's HTTP view; None
        when the endpoint must answer it (an operation it refuses before running)."""
        state = scope["app"].state
        router: ContentGraphQLRouter = state.graphql
        try:
            async with transaction(state.sessionmaker, previewing=lambda: False) as session:
                context = reading_context(
                    state, session, caller, latest=scope["state"].get("latest_release")
                )
                result = await router.schema.execute(
                    operation.document,
                    variable_values=operation.variables,
                    context_value=context,
                    operation_name=operation.name,
                    allowed_operation_types=QUERIES,
                )
        except (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError):
            return None
        except (DBAPIError, PoolTimeout) as exc:
            # the transaction could not end: answered as the database being away (a stored
            # answer, while there is one, else 503), as the endpoint's handler answers it
            if not is_unavailable(exc):
                raise
            note_database_unavailable()
            status = 503
            body = unavailable_body(current_request_id() or "")
            headers = [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ]
        else:
            status, headers, body = router.answer(result, operation.media_type)
        scope["route"] = router  # answered by the endpoint's route: counted under it
        captured = _Captured()
        await captured.send({"type": "http.response.start", "status": status, "headers": headers})
        await captured.send({"type": "http.response.body", "body": body})
        return captured

    # --- anything else -------------------------------------------------------------------

    async def _pass(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        delivery: Delivery,
        headers: dict[bytes, bytes],
        *,
        cost: int,
    ) -> None:
        authorization = headers.get(b"authorization")
        principal = delivery.keys.held(authorization.decode("latin-1")) if authorization else None
        decision = await self._spend(delivery, _identity(scope, principal), cost)
        if decision is not None and not decision.allowed:
            await _too_many(send, decision)
            return
        coding = self._coding(headers)
        if coding is None:
            await self.app(scope, receive, _with_headers(send, decision))
            return
        captured = _Captured()
        await self.app(scope, receive, captured.send)
        body = captured.body
        if (
            coding is not None
            and captured.complete
            and len(body) >= self.settings.compression_min_bytes
            and captured.content_type.startswith("application/")
        ):
            await captured.replay(send, decision, coding=coding)
        else:
            await captured.replay(send, decision)


class _Captured:
    """A response held whole before it is sent on: GraphQL answers are small and sent at once."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True

    @property
    def status(self) -> int:
        return int(self.start["status"]) if self.start else 500

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def content_type(self) -> str:
        for name, value in self.start["headers"] if self.start else []:
            if name.lower() == b"content-type":
                return str(value.decode("latin-1"))
        return "application/json"

    async def replay(
        self, send: Send, decision: Decision | None, *, coding: str | None = None
    ) -> None:
        if self.start is None:
            return
        headers = list(self.start["headers"])
        body = self.body
        if coding is not None:
            body = compress(body, coding)
            headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
            headers += [
                (b"content-length", str(len(body)).encode()),
                (b"content-encoding", coding.encode()),
            ]
            if not any(n.lower() == b"vary" for n, _ in headers):
                headers.append((b"vary", b"Accept-Encoding"))
            else:
                headers = [
                    (n, v + b", Accept-Encoding" if n.lower() == b"vary" else v) for n, v in headers
                ]
        if decision is not None:
            headers.extend(decision.headers())
        await send({**self.start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _with_headers(send: Send, decision: Decision | None) -> Send:
    """`send`, adding the rate limit's fields to the response's start."""
    if decision is None:
        return send

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], *decision.headers()]}
        await send(message)

    return sending


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        name = name.lower()
        found[name] = found[name] + b", " + value if name in found else value
    return found


def _mark(scope: Scope, plan: Plan, principal: Principal | None, identity: str) -> None:
    """Tell the fast lane it may repeat this answer (service/delivery/fastlane.py)."""
    state = scope.setdefault("state", {})
    record = current_request()
    state["fast_lane"] = Mark(
        key=plan.key,
        latest=None if plan.pinned else state.get("latest_release"),
        identity=identity,
        caller=record.caller if record else "anonymous",
        operation=record.operation if record else None,
    )


def _runs_as_planned(question: Question, documents: DocumentStore) -> bool:
    """Whether the endpoint would run the question's document as the plan read it, with no
    step of its own: not a document to register (sent with its hash), nor a hash it would
    refuse (persisted queries off)."""
    if not question.persisted:
        return True
    if question.document is not None:
        return False
    if documents.trusted_documents:
        return documents.is_trusted(question.document_hash)
    return documents.persisted_queries


def _digest(*parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def _identity(scope: Scope, principal: Principal | None) -> str:
    """Whose rate limit a request spends: its key's (by prefix) once the key is known good,
    else its client address's, so that made-up keys share their sender's limit."""
    if principal is not None and principal.key_prefix:
        return f"key:{principal.key_prefix}"
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


def _tags(release_tags: str, served: Iterable[str]) -> str:
    tags = " ".join([release_tags, *(f"entry-{key}" for key in sorted(served))]).strip()
    return tags if len(tags) <= MAX_TAGS_LENGTH else release_tags


def _caching_headers(delivery: Delivery, plan: Plan, tags: str) -> list[tuple[bytes, bytes]]:
    head = [
        (b"cache-control", IMMUTABLE if plan.pinned else delivery.latest_cache_control),
        (b"vary", VARY),
    ]
    if tags:
        encoded = tags.encode()
        head += [(b"surrogate-key", encoded), (b"cache-tag", encoded.replace(b" ", b","))]
    return head


async def _send_not_modified(
    send: Send, delivery: Delivery, plan: Plan, coding: str | None, decision: Decision | None
) -> None:
    suffix = CODING_SUFFIX.get(coding or "", "")
    # what updates the stored answer (RFC 9110, 15.4.5); its cache tags stay those of the 200
    head = [
        (b"etag", f'"{plan.key}{suffix}"'.encode()),
        *_caching_headers(delivery, plan, ""),
        (b"cache-status", b"contentapi; hit"),
    ]
    if decision is not None:
        head.extend(decision.headers())
    await send({"type": "http.response.start", "status": 304, "headers": head})
    await send({"type": "http.response.body", "body": b""})


async def _too_many(send: Send, decision: Decision) -> None:
    message = (
        f"Too many requests for this key: at most {decision.limit} units per "
        f"{decision.window} s (an executed operation costs {ratelimit.EXECUTED}, a cached "
        f"answer {ratelimit.CACHED}, a 304 {ratelimit.REVALIDATED}). Retry after "
        f"{max(decision.reset, 1)} s, or revalidate with If-None-Match."
    )
    extensions: dict[str, Any] = {"code": "RATE_LIMITED"}
    request_id = current_request_id()
    if request_id:
        extensions["requestId"] = request_id
    body = json.dumps({"errors": [{"message": message, "extensions": extensions}]}).encode()
    head = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *decision.headers(),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": head})
    await send({"type": "http.response.body", "body": body})
