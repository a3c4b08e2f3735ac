"""The GraphQL-over-HTTP endpoint: how a request is read, which media type a client gets, and
with which status code.

`application/graphql-response+json` (what current clients ask for first) answers a request
that never ran (a document that does not parse or validate, variables that do not coerce)
with 400 and no `data`; `application/json`, which partners have always received, keeps 200
for every GraphQL response, as the specification asks of that media type.

A request that is not a GraphQL request at all (too large, not JSON, the wrong shape) is
refused before any GraphQL runs, with an HTTP status that says why and a body shaped like a
GraphQL response, `{"errors": [{"message", "extensions": {"code"}}]}`, so clients show it as
they show every other error.

A document may also be named by its hash (`extensions.persistedQuery`, automatic persisted
queries), which is resolved here into the text Strawberry parses; in trusted mode, partners
and anonymous callers run only trusted documents (service.delivery.documents).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from graphql import GraphQLError
from starlette import status
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.types import QueryParams
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types import ExecutionResult

from service.access.principal import Principal
from service.delivery.documents import (
    PERSISTED_QUERY_HASH_MISMATCH,
    PERSISTED_QUERY_NOT_FOUND,
    PERSISTED_QUERY_NOT_IN_LIST,
    PERSISTED_QUERY_NOT_SUPPORTED,
    DocumentRefused,
    DocumentStore,
)
from service.graphql.context import Context
from service.graphql.errors import coded, uncoded
from service.graphql.limits import QUERY_TOO_COSTLY

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
CONTENT_TYPES = {
    GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    # unchanged from what partners have always received
    JSON: JSON,
}

# how closely a range of the Accept header names a media type
_EXACT, _SUBTYPE_WILDCARD, _ANY = 2, 1, 0


def _quality(params: list[str]) -> float | None:
    """The q parameter of a media range (1 without one); None when it is not a number."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return None
    return 1.0


def _accept_ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their quality, lower-cased; a range whose
    quality is not a number is dropped rather than guessed."""
    ranges = []
    for part in accept.split(","):
        media_range, *params = (piece.strip() for piece in part.split(";"))
        quality = _quality(params)
        if media_range and quality is not None:
            ranges.append((media_range.lower(), quality))
    return ranges


def _match(media_type: str, media_range: str) -> int | None:
    if media_range == media_type:
        return _EXACT
    if media_range == f"{media_type.split('/')[0]}/*":
        return _SUBTYPE_WILDCARD
    if media_range == "*/*":
        return _ANY
    return None


@lru_cache(maxsize=256)
def negotiate_media_type(accept: str | None) -> str | None:
    """The media type to answer in, or None when the client accepts neither of ours.

    Each media type takes the quality of the most specific range that names it (RFC 9110);
    the higher quality wins. At equal quality, a type the client named beats one it only
    reached through a wildcard. When it named both, it gets `application/graphql-response+json`,
    which the specification recommends. When it named neither (`*/*`, `application/*`) or sent
    no Accept header, where the specification leaves the choice to the server, it gets
    `application/json` (as the reference audit expects), so curl, browsers' `fetch` and every
    existing partner see what they always saw.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = _accept_ranges(accept)
    best: tuple[float, int, bool] | None = None
    chosen = None
    for media_type in (GRAPHQL_RESPONSE_JSON, JSON):
        matches = [
            (specificity, quality)
            for media_range, quality in ranges
            if (specificity := _match(media_type, media_range)) is not None
        ]
        if not matches:
            continue
        specificity, quality = max(matches)
        if quality == 0:
            continue
        preferred = media_type == (GRAPHQL_RESPONSE_JSON if specificity == _EXACT else JSON)
        rank = (quality, specificity, preferred)
        if best is None or rank > best:
            best, chosen = rank, media_type
    return chosen


def _operation_not_run(exc: HTTPException) -> ExecutionResult:
    """The GraphQL answer to a request whose operation could not be chosen, or refusal of one
    that is not GraphQL at all."""
    if isinstance(exc.__cause__, CannotGetOperationTypeError):
        name = exc.__cause__.operation_name
        message = (
            f"The document has no operation named {name!r}: `operationName` must name one of "
            "its operations."
            if name is not None
            else "The document holds no operation to run, only fragments: send a query."
        )
        error = GraphQLError(message, extensions={"code": OPERATION_RESOLUTION_FAILURE})
        # a request error, answered like one that does not validate
        return ExecutionResult(data=None, errors=[error])
    if exc.status_code == status.HTTP_400_BAD_REQUEST:
        message = exc.reason  # a mutation over GET
        if isinstance(exc.__cause__, MissingQueryError):  # nor one from an extension
            message = "The request has no `query`: send the GraphQL document as `query`."
        raise RequestRefused(status.HTTP_400_BAD_REQUEST, BAD_REQUEST, message) from exc
    raise exc


def is_request_error(result: ExecutionResult) -> bool:
    """Whether the operation never ran: its document did not parse or validate, the operation
    to run could not be chosen, or its variables did not coerce. graphql-core answers these
    with no data and errors that have no path; an error raised while executing always carries
    the path of its field, even when it nulls the whole `data`."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or [])
    )


def graphql_response_status(result: ExecutionResult) -> int:
    """The status code of a result served as `application/graphql-response+json`."""
    if not is_request_error(result):
        return status.HTTP_200_OK  # executed: data, perhaps partial, and field errors
    codes = {(error.extensions or {}).get("code") for error in result.errors or []}
    if "INTERNAL" in codes:  # the server failed before executing, not the request
        return status.HTTP_500_INTERNAL_SERVER_ERROR
    return status.HTTP_400_BAD_REQUEST


def code_errors(result: ExecutionResult, *, hide_internal_errors: bool) -> None:
    """Give a code to the errors raised inside an extension's hook, which Strawberry answers
    past ErrorCodes: coded (and hidden in production) as every other error."""
    if uncoded(result.errors):
        result.errors = [
            error
            if "code" in (error.extensions or {})
            else coded(error, hide_internal_errors=hide_internal_errors)
            for error in result.errors or []
        ]


def response_body(response_data: Any, media_type: str, status_code: int) -> Any:
    """What is encoded as the response's body."""
    if (
        media_type == GRAPHQL_RESPONSE_JSON
        and status_code >= 400
        and isinstance(response_data, dict)
    ):
        # the operation never ran, so the response has no data entry, not even null
        return {key: value for key, value in response_data.items() if key != "data"}
    return response_data


BAD_REQUEST = "BAD_REQUEST"
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"
# far deeper than any operation's variables (a product is three levels down); json.loads itself
# gives up near 1,000 levels, by raising RecursionError
MAX_JSON_DEPTH = 32


class RequestRefused(Exception):
    """A request answered before any GraphQL runs: too large, not JSON, the wrong shape, a
    document it names by a hash that cannot run."""

    def __init__(
        self, status_code: int, code: str, message: str, *, json_status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        # the status under application/json, where it differs
        self.json_status_code = json_status_code


def refusal_response(request: Request, exc: RequestRefused) -> Response:
    """A refusal shaped like a GraphQL response without data, in the media type the client
    accepts (`application/json` when it accepts neither: a refusal comes first). Never stored
    by a cache: a document not found now may be registered the next moment."""
    media_type = negotiate_media_type(", ".join(request.headers.getlist("accept")) or None)
    status_code = exc.status_code
    if media_type in {JSON, None} and exc.json_status_code is not None:
        status_code = exc.json_status_code
    response = JSONResponse(
        {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]},
        status_code=status_code,
        media_type=CONTENT_TYPES[media_type or JSON],
        headers={"cache-control": "no-store"},
    )
    response.headers.add_vary_header("Accept")
    return response


# (status under application/graphql-response+json, under application/json) of a document that
# cannot run as named. The two misses an APQ client answers by itself (sending the document, or
# leaving the hash out) keep 200 under application/json, as Apollo Server answers them and
# older clients need; the newer media type has no `data` to show, so a 4xx.
DOCUMENT_REFUSAL_STATUS = {
    PERSISTED_QUERY_NOT_FOUND: (status.HTTP_404_NOT_FOUND, status.HTTP_200_OK),
    PERSISTED_QUERY_NOT_SUPPORTED: (status.HTTP_400_BAD_REQUEST, status.HTTP_200_OK),
    PERSISTED_QUERY_NOT_IN_LIST: (status.HTTP_403_FORBIDDEN, status.HTTP_403_FORBIDDEN),
    PERSISTED_QUERY_HASH_MISMATCH: (status.HTTP_400_BAD_REQUEST, status.HTTP_400_BAD_REQUEST),
}
# a document whose request failed only for these reasons parsed and validated: it is kept
REQUEST_ERRORS_OF_A_SOUND_DOCUMENT = {"BAD_USER_INPUT", QUERY_TOO_COSTLY}


def _document_refusal(exc: DocumentRefused) -> RequestRefused:
    status_code, json_status_code = DOCUMENT_REFUSAL_STATUS.get(
        exc.code, (status.HTTP_400_BAD_REQUEST, status.HTTP_400_BAD_REQUEST)
    )
    return RequestRefused(status_code, exc.code, exc.message, json_status_code=json_status_code)


def _document_is_sound(result: ExecutionResult) -> bool:
    """Whether the operation's document parsed and validated: it ran, or only its variables
    (or the cost they make) were refused."""
    if not is_request_error(result):
        return True
    codes = {(error.extensions or {}).get("code") for error in result.errors or []}
    return codes <= REQUEST_ERRORS_OF_A_SOUND_DOCUMENT


def _is_staff(caller: Principal | None) -> bool:
    return caller is not None and not caller.is_partner


@dataclass(frozen=True)
class RequestLimits:
    """What one HTTP request may send (CONTENT_API_MAX_BODY_BYTES and the others)."""

    max_body_bytes: int
    max_query_string_bytes: int
    max_batch: int  # operations in a JSON array; 0: batching is off


def _kib(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size:,} bytes"


class BoundedRequestAdapter(StarletteRequestAdapter):
    """Reads a request only within the limits: a body only up to its limit, so a larger or
    endless one is refused once the limit is passed, never held whole in memory; the query
    string only when it is within its own."""

    def __init__(self, request: Request, limits: RequestLimits) -> None:
        super().__init__(request)
        self.request = request
        self.limits = limits

    @property
    def query_params(self) -> QueryParams:
        most = self.limits.max_query_string_bytes
        if len(self.request.scope.get("query_string", b"")) > most:
            raise RequestRefused(
                status.HTTP_414_URI_TOO_LONG,
                REQUEST_TOO_LARGE,
                f"The query string is longer than {_kib(most)}, the most this API reads over "
                "GET (CONTENT_API_MAX_QUERY_STRING_BYTES): send the operation as a POST with a "
                "JSON body.",
            )
        return super().query_params

    def _too_large(self) -> RequestRefused:
        return RequestRefused(
            status.HTTP_413_CONTENT_TOO_LARGE,
            REQUEST_TOO_LARGE,
            f"The request body is larger than {_kib(self.limits.max_body_bytes)}, the most this "
            "API reads (CONTENT_API_MAX_BODY_BYTES): send a shorter document, or fewer variables.",
        )

    async def get_body(self) -> bytes:
        most = self.limits.max_body_bytes
        declared = self.request.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > most:
            raise self._too_large()  # refused before a byte is read
        body = bytearray()
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > most:
                raise self._too_large()
        return bytes(body)


def json_problem(value: object) -> str | None:
    """What makes parsed JSON unfit to run: nesting past MAX_JSON_DEPTH, a string with an
    unpaired surrogate escape ("\\ud800"), which is no text and which no database stores, or
    with a NULL ("\\u0000"), which PostgreSQL cannot compare with any text (SQLite can): so
    both databases give the same answer."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return f"it nests objects and arrays more than {MAX_JSON_DEPTH} levels deep"
            inner = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((element, depth + 1) for element in inner)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string in it holds an unpaired surrogate escape (\\ud800-\\udfff)"
            if "\x00" in item:
                return "a string in it holds U+0000 NULL (\\u0000), which no text in this API does"
    return None


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def decode_request_json(data: str | bytes) -> object:
    """Parse a request's JSON (a body, or GET's variables or extensions), refusing what is not
    JSON, or not runnable, with 400."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        problem: str | None = "it nests objects and arrays too deeply"
    except ValueError as exc:  # not JSON, not UTF-8, a 5,000-digit number, NaN or Infinity
        problem = str(exc)
    else:
        problem = json_problem(value)
    if problem is not None:
        raise RequestRefused(
            status.HTTP_400_BAD_REQUEST, BAD_REQUEST, f"The request is not usable JSON: {problem}."
        )
    return value


def _request_data(data: object, where: str, *, from_query_string: bool) -> GraphQLRequestData:
    """One operation's parameters, each of the type the GraphQL-over-HTTP specification gives
    it; anything else is refused with a message that names it."""

    def refuse(message: str) -> RequestRefused:
        return RequestRefused(status.HTTP_400_BAD_REQUEST, BAD_REQUEST, f"{where}: {message}")

    if not isinstance(data, dict):
        raise refuse(
            'expected a JSON object such as {"query": "{ release { number } }"}, '
            f"not {_json_type(data)}"
        )
    if from_query_string:
        # an empty parameter (variables=) is a parameter not sent
        data = {name: value for name, value in data.items() if value != ""}
    query = data.get("query")
    # a missing query is refused when the operation runs, after extensions that may supply one
    # (persisted queries) have had their turn
    if query is not None and not isinstance(query, str):
        raise refuse(f"`query` must be a string holding the document, not {_json_type(query)}")
    for name in ("variables", "extensions"):
        value = data.get(name)
        if value is not None and not isinstance(value, dict):
            raise refuse(
                f"`{name}` must be a JSON object (or null), such as "
                f'{{"key": "probiotics"}}, not {_json_type(value)}'
            )
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise refuse(
            "`operationName` must be the name of an operation in the document, not "
            f"{_json_type(operation_name)}"
        )
    return GraphQLRequestData(
        query=query,
        variables=data.get("variables"),
        operation_name=operation_name,
        extensions=data.get("extensions"),
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class ContentGraphQLRouter(GraphQLRouter[Context, None]):
    """Strawberry's FastAPI router, reading requests within limits and answering in the media
    type the client accepts."""

    def __init__(
        self, *args: Any, limits: RequestLimits, hide_internal_errors: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.hide_internal_errors = hide_internal_errors

    def request_adapter_class(self, request: Request) -> AsyncHTTPRequestAdapter:  # type: ignore[override]
        return BoundedRequestAdapter(request, self.limits)

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)

    def encode_json(self, data: object) -> bytes:
        # UTF-8, as JSON is exchanged (RFC 8259), at a tenth of the standard library's time:
        # a product page is 14 kB of it
        return orjson.dumps(data)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # a GET that names its document by hash has no `query` either, yet it is an operation
        # (curl and CDNs send Accept: */*), not a browser asking for GraphiQL
        if "extensions" in request.query_params:
            return False
        return super().should_render_graphql_ide(request)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "GET":
            params = self.parse_query_params(request.query_params)
            return _request_data(params, "the query string", from_query_string=True)
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != JSON:
            raise RequestRefused(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                BAD_REQUEST,
                f"Send the operation as {JSON} (Content-Type: {JSON}), not "
                f"{content_type or 'a body without a Content-Type'}.",
            )
        data = self.parse_json(await request.get_body())
        if not isinstance(data, list):
            return _request_data(data, "the request body", from_query_string=False)
        return [
            _request_data(item, f"operation {index} of the batch", from_query_string=False)
            for index, item in enumerate(self._batch(data))
        ]

    def _batch(self, operations: list[Any]) -> list[Any]:
        most = self.limits.max_batch
        if most == 0:
            message = (
                "Batched requests (a JSON array of operations) are off: send one operation per "
                "request, or select everything a page needs in one operation."
            )
        elif not operations:
            message = "The batch is empty: send at least one operation."
        elif len(operations) > most:
            message = (
                f"A batch holds at most {most} operations (CONTENT_API_GRAPHQL_MAX_BATCH); this "
                f"one has {len(operations)}."
            )
        else:
            return operations
        raise RequestRefused(status.HTTP_400_BAD_REQUEST, BAD_REQUEST, message)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        # One after another, not gathered as Strawberry does: the operations share the
        # request's database session, which runs one statement at a time.
        results = [
            await self.execute_single(
                request, request_adapter, sub_response, context, root_value, operation
            )
            for operation in request_data
        ]
        # each answer carries its own errors; one status cannot speak for all of them
        sub_response.status_code = status.HTTP_200_OK
        return results

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        media_type = negotiate_media_type(", ".join(request.headers.getlist("accept")) or None)
        if media_type is None:
            # refused before anything runs, as the specification allows
            raise HTTPException(
                status.HTTP_406_NOT_ACCEPTABLE,
                f"Not Acceptable: this endpoint answers in {GRAPHQL_RESPONSE_JSON} or {JSON}",
            )
        documents: DocumentStore = request.app.state.documents
        try:
            resolution = await documents.resolve(
                request_data.query,
                request_data.extensions,
                staff=_is_staff(context.caller),
                session=context.session,
            )
        except DocumentRefused as exc:
            raise _document_refusal(exc) from exc
        request_data = replace(request_data, query=resolution.query)
        try:
            result = await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as exc:
            result = _operation_not_run(exc)
        code_errors(result, hide_internal_errors=self.hide_internal_errors)
        if (
            resolution.register is not None
            and resolution.query is not None
            and _document_is_sound(result)
            # a preview's transaction is rolled back, and with it anything registered in it
            and not getattr(request.state, "preview", False)
        ):
            caller = context.caller
            await documents.register(
                resolution.register,
                resolution.query,
                added_by=caller.name if caller is not None else None,
                session=context.session,
            )
        # The sub-response is this request's own: Strawberry passes it on to create_response,
        # which builds the response from its status and media type.
        sub_response.media_type = media_type
        if media_type == GRAPHQL_RESPONSE_JSON:
            sub_response.status_code = graphql_response_status(result)
        return result

    def answer(
        self, result: ExecutionResult, media_type: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The response to one operation's result, as this endpoint sends it (status, headers,
        body): for a caller that ran the operation itself (the delivery gate)."""
        code_errors(result, hide_internal_errors=self.hide_internal_errors)
        status_code = status.HTTP_200_OK
        if media_type == GRAPHQL_RESPONSE_JSON:
            status_code = graphql_response_status(result)
        encoded = self.encode_json(response_body(process_result(result), media_type, status_code))
        headers = [
            (b"content-length", str(len(encoded)).encode()),
            (b"content-type", CONTENT_TYPES[media_type].encode()),
            (b"vary", b"Accept"),
        ]
        return status_code, headers, encoded

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status_code = sub_response.status_code or status.HTTP_200_OK
        body = response_body(response_data, media_type, status_code)
        response = Response(
            self.encode_json(body), status_code=status_code, media_type=CONTENT_TYPES[media_type]
        )
        response.headers.raw.extend(sub_response.headers.raw)
        # the same URL answers differently per Accept: caches must keep them apart
        response.headers.add_vary_header("Accept")
        return response
