"""Abuse limits: what one request may send and ask for, each refusal a GraphQL-shaped error with
its `extensions.code` and the status the media type calls for, never a 500 and never a hang."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from graphql import DocumentNode, parse
from graphql.execution.values import VariableValues, get_variable_values
from graphql.utilities import get_operation_ast
from typer.testing import CliRunner

from service.access.models import KeyKind, Role
from service.access.principal import Principal, local_identity
from service.app import create_app
from service.config import PROJECT_ROOT, Environment, Settings
from service.graphql import limits
from service.graphql.limits import _validate, operation_cost, reveals_schema
from service.graphql.schema import schema as exported_schema
from tests.helpers import invoke

NEW = "application/graphql-response+json"
JSON = "application/json"
OPERATIONS = PROJECT_ROOT / "schema" / "operations"
GRAPHQL_SCHEMA = exported_schema._schema

# 100 snippets, each with their citations, topics, conditions and disclaimers: 12,502
RICH_PAGE = (
    "snippets(first: $first) { nodes { key citations { key title url doi } topics { key name } "
    'conditions { key name } disclaimers(market: "US") { key text html title } } }'
)
TOO_COSTLY = f"query ($first: Int) {{ a: {RICH_PAGE} b: {RICH_PAGE} c: {RICH_PAGE} }}"


def post(
    client: TestClient, body: Any, *, accept: str | None = None, content: bytes | None = None
) -> tuple[int, str, dict[str, Any]]:
    """POST a body (JSON, or raw bytes); the status, content type and decoded JSON answer."""
    headers = {"accept": accept} if accept else {}
    if content is not None:
        response = client.post(
            "/graphql", content=content, headers=headers | {"content-type": JSON}
        )
    else:
        response = client.post("/graphql", json=body, headers=headers)
    answer: dict[str, Any] = response.json()
    return response.status_code, response.headers["content-type"], answer


def only_error(answer: dict[str, Any]) -> tuple[str, str]:
    assert len(answer.get("errors", [])) == 1, answer
    error = answer["errors"][0]
    return error["extensions"]["code"], error["message"]


def cost(document: str, variables: dict[str, Any] | None = None) -> int:
    parsed = parse(document)
    operation = get_operation_ast(parsed)
    assert operation is not None
    coerced = get_variable_values(
        GRAPHQL_SCHEMA, operation.variable_definitions or (), variables or {}
    )
    assert isinstance(coerced, VariableValues), coerced
    return operation_cost(GRAPHQL_SCHEMA, parsed, None, coerced)


# --- 1. the cost limit --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # the connection's first, times what each item asks for (citations: 10 assumed, 1 each)
        ("{ snippets(first: 100) { nodes { citations { key } } } }", 1 + 1 + 100 * (1 + 10)),
        ("{ snippets(first: 10) { nodes { citations { key } } } }", 1 + 1 + 10 * (1 + 10)),
        # without first, the field's own default page (20)
        ("{ snippets { nodes { citations { key } } } }", 1 + 1 + 20 * (1 + 10)),
        ("{ snippets(first: null) { totalCount edges { node { key } } } }", 2 + 1 + 20 * 2),
        # lists multiply what is below them, nested lists multiply again
        ("{ topics { key name } }", 1 + 10 * 2),
        ('{ productPage(product: {}, market: "US") { snippets { topics { key } } } }', 2 + 10 * 11),
        # one object is only one type: the costliest fragment counts, not their sum
        (
            '{ node(id: "x") { id ... on Snippet { topics { key } } ... on Takeaway { key } } }',
            1 + 1 + 11,
        ),
        # introspection reads the schema in memory
        ("{ __schema { types { fields { name } } } }", 1),
    ],
)
def test_lists_multiply_the_cost_of_what_they_select(document: str, expected: int) -> None:
    assert cost(document) == expected


def test_the_cost_follows_the_variables_and_fragments_cost_what_they_select() -> None:
    document = "query ($n: Int) { snippets(first: $n) { nodes { citations { key } } } }"
    assert cost(document, {"n": 5}) == 1 + 1 + 5 * 11
    assert cost(document, {"n": 100}) == 1 + 1 + 100 * 11
    assert cost(document) == 1 + 1 + 20 * 11  # null: the default page
    spread = (
        "query ($n: Int) { snippets(first: $n) { ...Page } } "
        "fragment Page on SnippetConnection { nodes { ...Cites } } "
        "fragment Cites on Snippet { citations { key } }"
    )
    assert cost(spread, {"n": 100}) == cost(document, {"n": 100})


def test_every_partner_operation_runs_well_within_the_cost_limit(client: TestClient) -> None:
    limit = Settings().graphql_max_cost
    for path in sorted(OPERATIONS.glob("*.graphql")):
        document = path.read_text(encoding="utf-8")
        variables = json.loads(path.with_suffix(".variables.json").read_text(encoding="utf-8"))
        assert cost(document, variables) * 3 <= limit, path.name  # a margin for richer pages
        status, _, answer = post(client, {"query": document, "variables": variables})
        assert (status, answer.get("errors")) == (200, None), path.name


@pytest.mark.parametrize(
    ("accept", "status", "content_type"),
    [(None, 200, JSON), (NEW, 400, f"{NEW}; charset=utf-8")],
)
def test_an_operation_over_the_cost_limit_is_refused_before_anything_runs(
    client: TestClient, accept: str | None, status: int, content_type: str
) -> None:
    answered = post(client, {"query": TOO_COSTLY, "variables": {"first": 100}}, accept=accept)

    assert answered[:2] == (status, content_type)
    answer = answered[2]
    assert answer.get("data") is None
    code, message = only_error(answer)
    assert code == "QUERY_TOO_COSTLY"
    assert message.startswith("This operation costs 37,506, over the limit of 25,000")
    extensions = answer["errors"][0]["extensions"]
    assert extensions.pop("requestId")  # every error names its request, for the logs
    assert extensions == {"code": "QUERY_TOO_COSTLY", "cost": 37_506, "maxCost": 25_000}
    # the same document asking for smaller pages runs
    small = post(client, {"query": TOO_COSTLY, "variables": {"first": 2}}, accept=accept)
    assert small[0] == 200
    assert "errors" not in small[2]
    assert len(small[2]["data"]["a"]["nodes"]) == 2


def test_the_cost_limit_is_a_setting(published: Settings) -> None:
    strict = published.model_copy(update={"graphql_max_cost": 100, "webhook_worker": False})
    with TestClient(create_app(strict)) as client:
        _, _, answer = post(client, {"query": "{ snippets(first: 99) { nodes { key } } }"})
        allowed = post(client, {"query": "{ snippets(first: 98) { nodes { key } } }"})[2]
    code, message = only_error(answer)
    assert code == "QUERY_TOO_COSTLY"
    assert message.startswith("This operation costs 101, over the limit of 100")
    assert "errors" not in allowed


def test_a_document_is_validated_once_however_often_it_is_sent(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated: list[DocumentNode] = []

    def validating(schema: Any, document: DocumentNode, *args: Any) -> Any:
        validated.append(document)
        return _validate(schema, document, *args)

    monkeypatch.setattr(limits, "_validate", validating)
    document = '{ validatedOnce: disclaimers(market: "GB") { key } }'
    for _ in range(3):
        assert post(client, {"query": document})[0] == 200
    assert len(validated) == 1
    # another document is validated in its turn
    assert post(client, {"query": '{ validatedOnce: disclaimers(market: "US") { key } }'})[0] == 200
    assert len(validated) == 2


# --- 2. how much a request may send -------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid request body of exactly `size` bytes."""
    head = b'{"query": "{ release { number } }", "variables": {"pad": "'
    tail = b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize("accept", [None, NEW])
def test_a_body_over_the_limit_is_refused_with_413(client: TestClient, accept: str | None) -> None:
    at_limit = post(client, None, content=padded(64 * 1024), accept=accept)
    status, content_type, answer = post(client, None, content=padded(64 * 1024 + 1), accept=accept)

    assert at_limit[0] == 200
    assert at_limit[2]["data"] == {"release": {"number": 1}}
    assert status == 413
    assert content_type.startswith(accept or JSON)
    assert only_error(answer) == (
        "REQUEST_TOO_LARGE",
        "The request body is larger than 64 KiB, the most this API reads "
        "(CONTENT_API_MAX_BODY_BYTES): send a shorter document, or fewer variables.",
    )


def _call_asgi(
    settings: Settings, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes]
) -> tuple[int, bytes, int]:
    """POST to the app as a server would, the body arriving in chunks as the app asks for
    them; the status, the body and how many chunks the app read."""
    app = create_app(settings)
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": next(chunks), "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(app(scope, receive, send), timeout=60)

    asyncio.run(run())
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return start["status"], body, read


def test_an_endless_body_is_refused_once_past_the_limit_not_read_whole(
    published: Settings,
) -> None:
    def endless() -> Iterator[bytes]:
        yield b'{"query": "{ release { number } }", "variables": {"pad": "'
        while True:
            yield b"x" * 4096

    settings = published.model_copy(update={"webhook_worker": False})
    status, body, read = _call_asgi(settings, [], endless())

    assert status == 413
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert read == 64 * 1024 // 4096 + 1  # read up to the limit and not a chunk further


def test_a_body_declared_too_large_is_refused_before_it_is_read(published: Settings) -> None:
    def never() -> Iterator[bytes]:
        raise AssertionError("the body was read")
        yield b""

    settings = published.model_copy(update={"webhook_worker": False})
    status, body, read = _call_asgi(settings, [(b"content-length", b"1000000000")], never())

    assert (status, read) == (413, 0)
    assert json.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


def test_a_query_string_over_the_limit_is_refused_with_414(client: TestClient) -> None:
    query = "{ release { number } }"
    within = client.get("/graphql", params={"query": query, "pad": "x" * 8000})
    over = client.get("/graphql", params={"query": query, "pad": "x" * 8200})

    assert within.status_code == 200
    assert over.status_code == 414
    assert over.json() == {
        "errors": [
            {
                "message": "The query string is longer than 8 KiB, the most this API reads over "
                "GET (CONTENT_API_MAX_QUERY_STRING_BYTES): send the operation as a POST with a "
                "JSON body.",
                "extensions": {"code": "REQUEST_TOO_LARGE"},
            }
        ]
    }


# --- 3. batches ---------------------------------------------------------------------------------

RELEASE = {"query": "{ release { number } }"}


@pytest.mark.parametrize("accept", [None, NEW])
def test_a_batch_is_refused_by_default(client: TestClient, accept: str | None) -> None:
    status, content_type, answer = post(client, [RELEASE, RELEASE], accept=accept)

    assert status == 400
    assert content_type.startswith(accept or JSON)
    code, message = only_error(answer)
    assert code == "BAD_REQUEST"
    assert message.startswith("Batched requests (a JSON array of operations) are off")


def test_a_batch_runs_when_allowed_and_only_up_to_its_limit(published: Settings) -> None:
    batching = published.model_copy(update={"graphql_max_batch": 2})
    nope = {"query": "{ nope }"}
    with TestClient(create_app(batching)) as client:
        both = post(client, [RELEASE, nope], accept=NEW)
        too_many = post(client, [RELEASE, RELEASE, RELEASE])
        not_objects = post(client, [RELEASE, "{ release { number } }"])
        empty = post(client, [])

    assert both[0] == 200
    assert both[2][0] == {"data": {"release": {"number": 1}}}
    assert both[2][1]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert too_many[0] == 400
    assert only_error(too_many[2]) == (
        "BAD_REQUEST",
        "A batch holds at most 2 operations (CONTENT_API_GRAPHQL_MAX_BATCH); this one has 3.",
    )
    assert not_objects[0] == 400
    assert only_error(not_objects[2])[1].startswith("operation 1 of the batch: expected a JSON")
    assert (empty[0], only_error(empty[2])[0]) == (400, "BAD_REQUEST")


# --- 4. variables and the other request parameters ----------------------------------------------

SNIPPET = "query ($key: String!, $locale: String) { snippet(key: $key, locale: $locale) { key } }"
PAGE = (
    "query ($product: ProductInput!) "
    '{ productPage(product: $product, market: "US") { snippets { key } } }'
)


def nested(depth: int) -> Any:
    value: Any = "acne"
    for _ in range(depth):
        value = [value]
    return value


# (body as JSON or raw bytes, code, part of the message); answered as a GraphQL response:
# 200 for application/json, 400 for application/graphql-response+json
GRAPHQL_ERRORS: dict[str, tuple[Any, str, str]] = {
    "wrong type": (
        {"query": SNIPPET, "variables": {"key": 5}},
        "BAD_USER_INPUT",
        "String cannot represent a non string value: 5",
    ),
    "missing variable": (
        {"query": SNIPPET, "variables": {}},
        "BAD_USER_INPUT",
        "Variable '$key' has invalid value: Expected a value of non-null type 'String!'",
    ),
    "list nested deeper than its type": (
        {"query": PAGE, "variables": {"product": {"concerns": nested(20)}}},
        "BAD_USER_INPUT",
        "String cannot represent a non string value",
    ),
    "unknown input field": (
        {"query": PAGE, "variables": {"product": {"colour": "red"}}},
        "BAD_USER_INPUT",
        "not to include unknown field 'colour'",
    ),
    "operationName names no operation": (
        {"query": "query A { release { number } }", "operationName": "B"},
        "OPERATION_RESOLUTION_FAILURE",
        "The document has no operation named 'B'",
    ),
    "operationName names the anonymous operation": (
        {"query": "{ release { number } } query B { markets { code } }", "operationName": "A"},
        "OPERATION_RESOLUTION_FAILURE",
        "The document has no operation named 'A'",
    ),
    "an empty selection set": (
        {"query": '{ snippet(key: "probiotics") { ... on Snippet { } } }'},
        "GRAPHQL_VALIDATION_FAILED",
        "A selection set cannot be empty: select at least one field.",
    ),
    "nothing selected at all": (
        {"query": "{}"},
        "GRAPHQL_VALIDATION_FAILED",
        "A selection set cannot be empty",
    ),
    "a NULL written as an escape": (
        {"query": '{ snippet(key: "probiotics\\u0000") { key } }'},
        "GRAPHQL_VALIDATION_FAILED",
        "A string cannot hold U+0000 NULL",
    ),
    "no operation at all": (
        {"query": "fragment F on Query { release { number } }"},
        "OPERATION_RESOLUTION_FAILURE",
        "The document holds no operation",
    ),
}
# not a GraphQL request at all: 400 whatever the client accepts
BAD_REQUESTS: dict[str, tuple[Any, str]] = {
    "variables an array": ({"query": SNIPPET, "variables": ["probiotics"]}, "not an array"),
    "variables a string": (
        {"query": SNIPPET, "variables": '{"key": "probiotics"}'},
        "`variables` must be a JSON object (or null)",
    ),
    "variables a number": ({"query": SNIPPET, "variables": 5}, "not a number"),
    "extensions an array": ({"query": SNIPPET, "extensions": []}, "`extensions` must be"),
    "operationName an object": (
        {"query": SNIPPET, "operationName": {"name": "A"}},
        "`operationName` must be the name of an operation in the document, not an object",
    ),
    "query a number": ({"query": 5}, "`query` must be a string"),
    "no query": ({"variables": {}}, "The request has no `query`"),
    "body not an object": ("{ release { number } }", "expected a JSON object"),
    "JSON nested 40 deep": (
        {"query": PAGE, "variables": {"product": {"concerns": nested(40)}}},
        "The request is not usable JSON: it nests objects and arrays more than 32 levels deep.",
    ),
    "JSON nested 20,000 deep": (
        b'{"query": "{ release { number } }", "variables": {"a": ' + b"[" * 20_000 + b"]" * 20_000,
        "it nests objects and arrays too deeply",
    ),
    "not JSON": (b'{"query": "{ release { number } }"', "The request is not usable JSON"),
    "not UTF-8": (b'{"query": "{ release { number } }", "x": "\xff"}', "not usable JSON"),
    "NaN": (b'{"query": "{ release { number } }", "variables": {"n": NaN}}', "NaN is not"),
    "a 5,000-digit number": (
        b'{"query": "{ release { number } }", "variables": {"n": ' + b"9" * 5000 + b"}}",
        "not usable JSON",
    ),
    "a NULL in a variable": (
        {"query": SNIPPET, "variables": {"key": "probiotics\u0000"}},
        "a string in it holds U+0000 NULL",
    ),
    "an unpaired surrogate": (
        b'{"query": "' + SNIPPET.encode() + b'", "variables": {"key": "\\ud800"}}',
        "a string in it holds an unpaired surrogate escape",
    ),
}


@pytest.mark.parametrize("case", GRAPHQL_ERRORS)
@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (NEW, 400)])
def test_bad_variables_and_operation_names_are_graphql_errors(
    client: TestClient, case: str, accept: str, status: int
) -> None:
    body, expected_code, expected_message = GRAPHQL_ERRORS[case]
    answered_status, content_type, answer = post(client, body, accept=accept)

    assert answered_status == status
    assert content_type.startswith(accept)
    assert ("data" in answer) is (accept == JSON)
    code, message = only_error(answer)
    assert code == expected_code
    assert expected_message in message


@pytest.mark.parametrize("case", BAD_REQUESTS)
@pytest.mark.parametrize("accept", [JSON, NEW])
def test_a_request_that_is_not_graphql_is_a_400_that_says_why(
    client: TestClient, case: str, accept: str
) -> None:
    body, expected_message = BAD_REQUESTS[case]
    raw = body if isinstance(body, bytes) else None
    status, content_type, answer = post(client, body, content=raw, accept=accept)

    assert status == 400
    assert content_type.startswith(accept)
    code, message = only_error(answer)
    assert code == "BAD_REQUEST"
    assert expected_message in message


def test_get_parameters_are_checked_as_a_body_is(client: TestClient) -> None:
    array = client.get("/graphql", params={"query": SNIPPET, "variables": "[1]"})
    broken = client.get("/graphql", params={"query": SNIPPET, "variables": "{"})
    empty = client.get("/graphql", params={"query": "{ release { number } }", "variables": ""})

    assert array.status_code == broken.status_code == 400
    assert "the query string: `variables` must be a JSON object" in array.text
    assert "not usable JSON" in broken.text
    assert empty.json() == {"data": {"release": {"number": 1}}}


def test_a_body_that_is_not_json_is_refused_with_415(client: TestClient) -> None:
    response = client.post(
        "/graphql", content=b"{ release { number } }", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["errors"][0] == {
        "message": "Send the operation as application/json (Content-Type: application/json), "
        "not text/plain.",
        "extensions": {"code": "BAD_REQUEST"},
    }


@pytest.mark.parametrize("variable", ["key", "locale"])
def test_huge_strings_are_answered_not_crashed_on(client: TestClient, variable: str) -> None:
    variables = {"key": "probiotics", "locale": "en-US"} | {variable: "a" * 60_000}
    status, _, answer = post(client, {"query": SNIPPET, "variables": variables})

    assert status == 200
    if variable == "key":
        assert answer == {"data": {"snippet": None}}
    else:
        assert only_error(answer)[0] == "BAD_USER_INPUT"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


NUL = "\x00"


@pytest.mark.parametrize(
    ("field", "encoded"),
    [
        ("snippets(after: {})", "snippet:probiotics"),
        ("changes(since: 0, after: {})", "change:0:1:probiotics"),
        ("node(id: {})", "Topic:1:en-US:microbiome"),
        ("node(id: {})", "Market:1:US"),
    ],
)
def test_a_cursor_or_id_that_decodes_to_a_null_is_bad_input_on_both_databases(
    client: TestClient, field: str, encoded: str
) -> None:
    argument = json.dumps(_b64(encoded + NUL))
    _, _, answer = post(client, {"query": "{ " + field.format(argument) + " { __typename } }"})
    assert only_error(answer)[0] == "BAD_USER_INPUT"


# --- 5. what production tells whom about the schema -------------------------------------------

INTROSPECTION = ["{ __schema { description } }", '{ __type(name: "Snippet") { name } }']


@pytest.fixture(scope="module")
def keys(published: Settings) -> dict[str, str]:
    env = {"CONTENT_API_DATABASE_URL": published.database_url, "CONTENT_API_ENV": "development"}
    runner = CliRunner()
    staff = invoke(runner, "staff", "add", "ada", "--role", "admin", env=env)
    partner = invoke(
        runner, "keys", "create", "--partner", "Acme", "--markets", "US", "--locales", "en-US",
        env=env,
    )  # fmt: skip
    assert staff.exit_code == partner.exit_code == 0, staff.output + partner.output
    return {
        "staff": staff.stdout.strip().splitlines()[-1],
        "partner": partner.stdout.strip().splitlines()[-1],
    }


@pytest.fixture(scope="module")
def production(published: Settings) -> Iterator[TestClient]:
    settings = Settings(
        database_url=published.database_url, env=Environment.PRODUCTION, webhook_worker=False
    )
    with TestClient(create_app(settings)) as client:
        yield client


def ask(client: TestClient, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.post("/graphql", json=body, headers=headers)
    answer: dict[str, Any] = response.json()
    return answer


def test_who_is_shown_the_schema() -> None:
    staff = Principal(name="rob", roles=frozenset({Role.REVIEWER}), kind=KeyKind.STAFF)
    partner = Principal(name="Acme", roles=frozenset(), kind=KeyKind.PARTNER)
    assert [reveals_schema(caller, production=True) for caller in (staff, partner, None)] == [
        True,
        False,
        False,
    ]
    assert reveals_schema(local_identity("ann"), production=True)
    assert all(reveals_schema(caller, production=False) for caller in (staff, partner, None))


@pytest.mark.parametrize("query", INTROSPECTION)
def test_in_production_only_staff_introspect_the_schema(
    production: TestClient, keys: dict[str, str], query: str
) -> None:
    # staff first: a partner sending the same document must not get staff's validation
    staff = ask(production, keys["staff"], {"query": query})
    partner = ask(production, keys["partner"], {"query": query})
    anonymous = production.post("/graphql", json={"query": query})

    assert "errors" not in staff
    assert partner["data"] is None
    code, message = only_error(partner)
    assert code == "GRAPHQL_VALIDATION_FAILED"
    assert message.startswith("GraphQL introspection has been disabled")
    assert anonymous.status_code == 401
    typename = ask(production, keys["partner"], {"query": "{ __typename }"})
    assert typename == {"data": {"__typename": "Query"}}


SUGGESTING = {
    "a misspelt field": ({"query": '{ snipet(key: "probiotics") { key } }'}, "snippet"),
    "a misspelt argument": ({"query": "{ snippets(firts: 5) { totalCount } }"}, "first"),
    "a misspelt enum in the document": (
        {"query": "{ snippets(filter: {evidence: LIMTED}) { totalCount } }"},
        "LIMITED",
    ),
    "a misspelt enum in the variables": (
        {
            "query": "query ($f: SnippetFilter) { snippets(filter: $f) { totalCount } }",
            "variables": {"f": {"evidence": "LIMTED"}},
        },
        "LIMITED",
    ),
    "a misspelt input field in the variables": (
        {
            "query": "query ($f: SnippetFilter) { snippets(filter: $f) { totalCount } }",
            "variables": {"f": {"topc": "gut-skin-axis"}},
        },
        "topic",
    ),
}


@pytest.mark.parametrize("case", SUGGESTING)
def test_in_production_only_staff_are_told_what_they_might_have_meant(
    production: TestClient, client: TestClient, keys: dict[str, str], case: str
) -> None:
    body, suggestion = SUGGESTING[case]
    # the document asked once without variables first: what is known of it by then (its cost)
    # changes nothing of what a partner is told
    ask(production, keys["partner"], {**body, "variables": {}})
    staff = only_error(ask(production, keys["staff"], body))[1]
    partner = only_error(ask(production, keys["partner"], body))[1]
    development = only_error(ask(client, None, body))[1]

    assert "Did you mean" in staff
    assert suggestion in staff.split("Did you mean")[1]
    assert staff == development
    assert "Did you mean" not in partner
    assert suggestion not in partner


def test_graphiql_is_off_in_production(production: TestClient, keys: dict[str, str]) -> None:
    headers = {"accept": "text/html", "authorization": f"Bearer {keys['staff']}"}
    response = production.get("/graphql", headers=headers)
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


def test_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "GRAPHQL_MAX_COST": "5000",
        "GRAPHQL_MAX_BATCH": "4",
        "MAX_BODY_BYTES": "2048",
        "MAX_QUERY_STRING_BYTES": "1024",
    }.items():
        monkeypatch.setenv(f"CONTENT_API_{name}", value)
    settings = Settings()
    assert (
        settings.graphql_max_cost,
        settings.graphql_max_batch,
        settings.max_body_bytes,
        settings.max_query_string_bytes,
    ) == (5000, 4, 2048, 1024)


def test_an_error_raised_outside_a_resolver_is_coded_and_hidden_in_production(
    production: TestClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("cost table missing at /srv/secret/path")

    # the cost limiter runs in an extension's hook, which Strawberry answers past ErrorCodes
    monkeypatch.setattr("service.graphql.limits.get_variable_values", broken)
    headers = {"authorization": f"Bearer {keys['partner']}"}
    plain = production.post("/graphql", json=RELEASE, headers=headers)
    new = production.post("/graphql", json=RELEASE, headers=headers | {"accept": NEW})

    assert plain.status_code == 200
    assert only_error(plain.json()) == ("INTERNAL", "Internal server error")
    assert new.status_code == 500
    assert "secret" not in plain.text + new.text
