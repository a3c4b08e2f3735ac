"""The fast lane: the outermost layer, which answers a GraphQL GET the delivery gate has just
answered from its cache, by the exact same request bytes, without FastAPI, CORS or the gate
running again.

The gate marks the answers it may repeat (a stored answer or a 304 to a planned GET); this
layer keeps the response as it left the application, headers and all, under the request's
query string, key, Accept and Accept-Encoding. A repeat is answered from there while what the
answer depended on still holds: the same latest release (none for a pinned answer), no key
revoked, trusted document removed or publish made in this process since, and for a few
seconds at most, after which the gate plans it afresh. It still spends from the caller's rate
limit, carries its own request id, and is logged and counted like any other request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import Message, Scope, Send

from service import generations
from service.access.keycache import KeyCache
from service.delivery import ratelimit
from service.delivery.documents import DocumentStore
from service.delivery.freshness import Freshness
from service.delivery.ratelimit import RateLimits
from service.observability import (
    REQUEST_ID_HEADER,
    account_cached,
    fresh_request_id,
    sane_request_id,
)
from service.server import HeaderBlock, PreparedHeaders

GRAPHQL_PATH = "/graphql"
# seconds a learned answer is repeated before the gate plans the request again
LIFETIME = 5.0
SIZE = 1_024
_REQUEST_ID = REQUEST_ID_HEADER.encode()
# per request: these are set anew, never repeated from a learned answer
_PER_REQUEST = frozenset({_REQUEST_ID, b"ratelimit", b"ratelimit-policy"})
# what a 304 does not repeat of a 200: the body's headers, and the cache tags, which the stored
# answer keeps (RFC 9110, 15.4.5: a 304 carries what updates the stored answer)
_NOT_REVALIDATED = frozenset(
    {b"content-type", b"content-length", b"content-encoding", b"surrogate-key", b"cache-tag"}
)
_WANTED = frozenset(
    {b"authorization", b"accept", b"accept-encoding", b"if-none-match", _REQUEST_ID}
)
# requests the lane leaves to the application: a browser's (CORS), a preview, a refresh
_NOT_FOR_THE_LANE = frozenset({b"origin", b"content-preview", b"cache-control", b"pragma"})


@dataclass(frozen=True, slots=True)
class Mark:
    """What the gate says of an answer it may repeat."""

    key: str  # the ETag's value, without its coding suffix
    latest: int | None  # the latest release it was answered for; None when pinned
    identity: str  # whose rate limit it spends
    caller: str  # as the log says it
    operation: str | None


@dataclass(slots=True)
class Learned:
    mark: Mark
    keys_epoch: int
    documents_epoch: int
    until: float
    etag: bytes | None  # of the body held; None when only a 304 was seen
    head: HeaderBlock | None  # a 200's headers, without the per-request ones
    body: bytes | None
    not_modified: HeaderBlock  # a 304's headers


class FastLane:
    def __init__(
        self,
        freshness: Freshness,
        keys: KeyCache,
        limits: RateLimits | None,
        documents: DocumentStore | None = None,
    ) -> None:
        self.freshness = freshness
        self.keys = keys
        self.documents = documents
        self.limits = limits if limits is not None and limits.local_only else None
        self.limited = limits is not None
        self._learned: OrderedDict[tuple[bytes, ...], Learned] = OrderedDict()

    @staticmethod
    def eligible(scope: Scope) -> bool:
        return bool(
            scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == GRAPHQL_PATH
        )

    def _request(self, scope: Scope) -> tuple[tuple[bytes, ...], dict[bytes, bytes]] | None:
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            name = name.lower()
            if name in _NOT_FOR_THE_LANE or name in found:
                return None
            if name in _WANTED:
                found[name] = value
        made_from = (
            scope.get("query_string", b""),
            found.get(b"authorization", b""),
            found.get(b"accept", b""),
            found.get(b"accept-encoding", b""),
        )
        return made_from, found

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Answer the request from what was learned; False when the application must."""
        started = time.perf_counter()
        request = self._request(scope)
        if request is None:
            return False
        made_from, found = request
        learned = self._learned.get(made_from)
        if learned is None or not self._holds(learned):
            return False
        if_none_match = found.get(b"if-none-match")
        if if_none_match is not None:
            if learned.etag is None or not names_answer(if_none_match, learned.mark.key):
                return False
            status, head, body, cost = 304, learned.not_modified, b"", ratelimit.REVALIDATED
        elif learned.head is not None and learned.body is not None:
            status, head, body, cost = 200, learned.head, learned.body, ratelimit.CACHED
        else:
            return False
        extra: list[tuple[bytes, bytes]] = []
        if self.limited:
            if self.limits is None:
                return False  # shared limits are spent through the gate
            decision = self.limits.spend_local(learned.mark.identity, cost)
            if not decision.allowed:
                return False  # the gate refuses it, with the whole answer
            extra.extend(decision.headers())
        incoming = found.get(_REQUEST_ID)
        request_id = sane_request_id(incoming) or fresh_request_id()
        extra.append((_REQUEST_ID, request_id.encode()))
        headers = PreparedHeaders(head, extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        mark = learned.mark
        account_cached(
            scope,
            status,
            time.perf_counter() - started,
            route=GRAPHQL_PATH,
            request_id=request_id,
            caller=mark.caller,
            operation=mark.operation,
        )
        return True

    def _holds(self, learned: Learned) -> bool:
        if (
            time.monotonic() >= learned.until
            or learned.keys_epoch != self.keys.current_epoch()
            or learned.documents_epoch != self._documents_epoch()
        ):
            return False
        if learned.mark.latest is None:
            return True
        freshness = self.freshness
        return (
            freshness.latest == learned.mark.latest
            and freshness.generation == generations.RELEASES.value
        )

    def learning(self, scope: Scope, send: Send) -> Send:
        """`send`, keeping the response when the gate marked it as one to repeat."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def learn(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                mark = scope.get("state", {}).get("fast_lane")
                if not message.get("more_body", False) and start is not None and mark:
                    self._learn(scope, mark, start, b"".join(chunks))
            await send(message)

        return learn

    def _learn(self, scope: Scope, mark: Mark, start: Message, body: bytes) -> None:
        request = self._request(scope)
        if request is None:
            return
        made_from, _ = request
        status = int(start["status"])
        headers = [
            (name, b"contentapi; hit" if name == b"cache-status" else value)
            for name, value in start["headers"]
            if name.lower() not in _PER_REQUEST
        ]
        try:
            block = HeaderBlock(headers)
            not_modified = HeaderBlock(
                (n, v) for n, v in headers if n.lower() not in _NOT_REVALIDATED
            )
        except ValueError:
            return  # the server refuses such headers: nothing to repeat
        learned = self._learned.get(made_from)
        if learned is None or learned.mark != mark or not self._holds(learned):
            learned = Learned(
                mark,
                self.keys.current_epoch(),
                self._documents_epoch(),
                time.monotonic() + LIFETIME,
                None,
                None,
                None,
                not_modified,
            )
        if status == 200:
            etag = next((v for n, v in headers if n.lower() == b"etag"), None)
            learned.etag, learned.head, learned.body = etag, block, body
        elif status == 304:
            learned.etag = learned.etag or b"304"
        else:
            return
        learned.not_modified = not_modified if status == 304 else learned.not_modified
        self._learned[made_from] = learned
        self._learned.move_to_end(made_from)
        while len(self._learned) > SIZE:
            self._learned.popitem(last=False)

    def _documents_epoch(self) -> int:
        return self.documents.current_epoch() if self.documents is not None else 0


def names_answer(if_none_match: bytes | None, key: str) -> bool:
    """Whether If-None-Match names the answer, in any of its codings (weak comparison, as
    RFC 9110 asks for If-None-Match)."""
    if not if_none_match:
        return False
    wanted = key.encode()
    for tag in if_none_match.split(b","):
        tag = tag.strip().removeprefix(b"W/").strip(b'"')
        if tag.removesuffix(b"-br").removesuffix(b"-gz") == wanted:
            return True
    return False
