"""GraphQL over HTTP: the media type a client gets, and the status code that comes with it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from graphql import GraphQLError
from httpx2 import Response
from strawberry.types import ExecutionResult

from service.graphql.router import graphql_response_status, negotiate_media_type

NEW = "application/graphql-response+json"
JSON = "application/json"
NEW_CONTENT_TYPE = "application/graphql-response+json; charset=utf-8"
APOLLO_CLIENT_4 = "application/graphql-response+json,application/json;q=0.9"

SNIPPET = "query ($k: String!) { snippet(key: $k) { key } }"
TOO_MANY_ALIASES = "{ " + " ".join(f"m{n}: markets {{ code }}" for n in range(31)) + " }"
MARKETS = [{"code": code} for code in ("EU", "FR", "GB", "US")]

# operation: (document, variables, error codes, data when the operation ran)
OPERATIONS: dict[str, tuple[str, dict[str, Any] | None, list[str], Any]] = {
    "success": (SNIPPET, {"k": "probiotics"}, [], {"snippet": {"key": "probiotics"}}),
    "parse error": ("{ snippet(key: ", None, ["GRAPHQL_PARSE_FAILED"], None),
    "validation error": ("{ nope }", None, ["GRAPHQL_VALIDATION_FAILED"], None),
    "over the alias limit": (TOO_MANY_ALIASES, None, ["GRAPHQL_VALIDATION_FAILED"], None),
    "variable coercion error": (SNIPPET, {"k": 5}, ["BAD_USER_INPUT"], None),
    "field error": (
        '{ markets { code } snippet(key: "probiotics", release: 42) { key } }',
        None,
        ["NOT_FOUND"],
        {"markets": MARKETS, "snippet": None},
    ),
}

# (Accept, operation, status, content type, whether the body has a data entry)
EXPECTED = [
    # what partners have always received: 200 and data (null when the operation never ran)
    *((JSON, operation, 200, JSON, True) for operation in OPERATIONS),
    (None, "success", 200, JSON, True),
    (None, "parse error", 200, JSON, True),
    (None, "validation error", 200, JSON, True),
    (None, "variable coercion error", 200, JSON, True),
    ("*/*", "success", 200, JSON, True),
    ("*/*", "parse error", 200, JSON, True),
    ("*/*", "validation error", 200, JSON, True),
    ("*/*", "variable coercion error", 200, JSON, True),
    # the specification's media type: an operation that never ran is a 400 without data
    (NEW, "success", 200, NEW_CONTENT_TYPE, True),
    (NEW, "parse error", 400, NEW_CONTENT_TYPE, False),
    (NEW, "validation error", 400, NEW_CONTENT_TYPE, False),
    (NEW, "over the alias limit", 400, NEW_CONTENT_TYPE, False),
    (NEW, "variable coercion error", 400, NEW_CONTENT_TYPE, False),
    (NEW, "field error", 200, NEW_CONTENT_TYPE, True),
    (APOLLO_CLIENT_4, "success", 200, NEW_CONTENT_TYPE, True),
    (APOLLO_CLIENT_4, "validation error", 400, NEW_CONTENT_TYPE, False),
]


def send(
    client: TestClient,
    method: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    accept: str | None,
) -> Response:
    """One operation over GET or POST, with the given Accept header, or none at all."""
    if method == "GET":
        params = {"query": query} | ({"variables": json.dumps(variables)} if variables else {})
        request = client.build_request("GET", "/graphql", params=params)
    else:
        body = {"query": query} | ({"variables": variables} if variables else {})
        request = client.build_request("POST", "/graphql", json=body)
    del request.headers["accept"]
    if accept is not None:
        request.headers["accept"] = accept
    return client.send(request)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("accept", "operation", "status", "content_type", "has_data"), EXPECTED)
def test_status_and_media_type_follow_the_accept_header(
    client: TestClient,
    method: str,
    accept: str | None,
    operation: str,
    status: int,
    content_type: str,
    has_data: bool,
) -> None:
    query, variables, codes, data = OPERATIONS[operation]
    response = send(client, method, query, variables, accept=accept)
    assert (response.status_code, response.headers["content-type"]) == (status, content_type)
    body = response.json()
    assert [found["extensions"]["code"] for found in body.get("errors", [])] == codes
    if has_data:
        assert body["data"] == data
    else:
        assert "data" not in body


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("accept", ["text/html", f"{NEW};q=0, {JSON};q=0", "application/xml"])
def test_an_accept_header_that_allows_neither_media_type_is_refused(
    client: TestClient, method: str, accept: str
) -> None:
    response = send(client, method, SNIPPET, {"k": "probiotics"}, accept=accept)
    assert response.status_code == 406
    assert response.headers["content-type"].startswith("text/plain")
    assert NEW in response.text
    assert JSON in response.text


def test_caches_keep_the_answers_to_each_accept_header_apart(client: TestClient) -> None:
    for accept in (JSON, NEW):
        response = send(client, "GET", SNIPPET, {"k": "probiotics"}, accept=accept)
        assert "accept" in response.headers["vary"].lower()


def test_graphiql_is_still_served_to_a_browser(client: TestClient) -> None:
    response = client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (f"{JSON}; charset=utf-8", JSON),
        (NEW, NEW),
        ("Application/GraphQL-Response+JSON", NEW),
        (APOLLO_CLIENT_4, NEW),
        (f"{JSON}, {NEW}", NEW),  # both named at equal quality: the specification's own
        (f"{JSON}, {NEW};q=0.5", JSON),
        (f"{NEW};q=0.5, */*", JSON),  # */* gives application/json the higher quality
        (f"{NEW}, */*", NEW),
        (f"{JSON}, */*", JSON),
        (f"text/html, {NEW};q=0.8, */*;q=0.1", NEW),
        (f"{NEW};q=oops, {JSON}", JSON),
        ("text/html", None),
        (f"{NEW};q=0, {JSON};q=0", None),
        (f"{NEW};q=0, text/*", None),
    ],
)
def test_negotiation_picks_the_media_type_the_client_prefers(
    accept: str | None, media_type: str | None
) -> None:
    assert negotiate_media_type(accept) == media_type


def test_a_server_failure_before_execution_is_a_500_not_the_clients_fault() -> None:
    before = GraphQLError("Internal server error", extensions={"code": "INTERNAL"})
    assert graphql_response_status(ExecutionResult(data=None, errors=[before])) == 500
    in_a_field = GraphQLError("boom", path=["snippet"], extensions={"code": "INTERNAL"})
    assert graphql_response_status(ExecutionResult(data=None, errors=[in_a_field])) == 200
