"""The GraphQL-over-HTTP endpoint: which media type a client gets, and with which status code.

`application/graphql-response+json` (what current clients ask for first) answers a request
that never ran (a document that does not parse or validate, variables that do not coerce)
with 400 and no `data`; `application/json`, which partners have always received, keeps 200
for every GraphQL response, as the specification asks of that media type.
"""

from __future__ import annotations

from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette import status
from starlette.requests import Request
from starlette.responses import Response
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from service.graphql.context import Context

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


class ContentGraphQLRouter(GraphQLRouter[Context, None]):
    """Strawberry's FastAPI router, answering in the media type the client accepts."""

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
        result = await super().execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )
        # The sub-response is this request's own: Strawberry passes it on to create_response,
        # which builds the response from its status and media type.
        sub_response.media_type = media_type
        if media_type == GRAPHQL_RESPONSE_JSON:
            sub_response.status_code = graphql_response_status(result)
        return result

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status_code = sub_response.status_code or status.HTTP_200_OK
        body: Any = response_data
        if media_type == GRAPHQL_RESPONSE_JSON and status_code >= 400 and isinstance(body, dict):
            # the operation never ran, so the response has no data entry, not even null
            body = {key: value for key, value in body.items() if key != "data"}
        response = Response(
            self.encode_json(body), status_code=status_code, media_type=CONTENT_TYPES[media_type]
        )
        response.headers.raw.extend(sub_response.headers.raw)
        # the same URL answers differently per Accept: caches must keep them apart
        response.headers.add_vary_header("Accept")
        return response
