"""Reading with a key: production answers nothing without a valid one, and a partner key
reads published content of its markets and locales only; asking outside them is refused."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app
from service.config import Environment, Settings
from service.content.operations import bootstrap_development
from tests.conftest import DATABASES, SEED, fresh_database

FRANCE_ONLY = "secretome"  # its only revision is cleared for France alone, in this module


@pytest.fixture(scope="module", params=DATABASES)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("partner")
    seed = folder / "seed"
    shutil.copytree(SEED, seed)
    path = seed / f"snippets/{FRANCE_ONLY}.en-US.md"
    path.write_text(path.read_text().replace("markets: [US, EU, GB, FR]", "markets: [FR]"))
    with fresh_database(request, request.param, folder) as url:
        settings = Settings(database_url=url, env=Environment.DEVELOPMENT, seed_path=seed)
        asyncio.run(bootstrap_development(settings))
        yield url


def command(database: str, *args: str) -> Result:
    env = {"CONTENT_API_DATABASE_URL": database, "CONTENT_API_ENV": "development"}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def partner_key(database: str, markets: str, locales: str) -> str:
    result = command(
        database, "keys", "create", "--partner", "Acme", "--markets", markets, "--locales", locales
    )
    return str(result.stdout).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def us_key(database: str) -> str:
    return partner_key(database, "US", "en-US,fr-FR")


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database))) as test_client:
        yield test_client


def ask(client: TestClient, query: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.post("/graphql", json={"query": query}, headers=headers)
    return response.status_code, response.json()


def code_of(body: dict[str, Any]) -> str:
    assert len(body["errors"]) == 1, body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


SNIPPET_KEYS = "{ snippets(first: 100) { nodes { key locale } } }"


def test_production_answers_nothing_without_a_valid_key(database: str, us_key: str) -> None:
    production = Settings(database_url=database, env=Environment.PRODUCTION)
    with TestClient(create_app(production)) as client:
        anonymous = client.post("/graphql", json={"query": "{ release { number } }"})
        typo = client.post(
            "/graphql",
            json={"query": "{ release { number } }"},
            headers={"authorization": f"Bearer {us_key[:-1]}x"},
        )
        keyed = ask(client, "{ release { number } }", us_key)

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["errors"][0] == {
        "message": "this API needs a key: send the header Authorization: Bearer <key>",
        "extensions": {
            "code": "UNAUTHENTICATED",
            "requestId": anonymous.headers["x-request-id"],
        },
    }
    assert typo.status_code == 401
    assert "mistyped or truncated" in typo.json()["errors"][0]["message"]
    assert keyed == (200, {"data": {"release": {"number": 1}}})


def test_a_revoked_key_is_refused_from_the_next_request_on(
    database: str, client: TestClient
) -> None:
    key = partner_key(database, "US", "en-US")
    assert ask(client, "{ release { number } }", key)[0] == 200

    command(database, "keys", "revoke", key[:14])

    status, body = ask(client, "{ release { number } }", key)
    assert status == 401
    assert "has been revoked" in body["errors"][0]["message"]


def test_a_partner_reads_only_content_cleared_for_its_markets(
    database: str, client: TestClient, us_key: str
) -> None:
    france = partner_key(database, "FR", "fr-FR")
    anonymous = {node["key"] for node in ask(client, SNIPPET_KEYS)[1]["data"]["snippets"]["nodes"]}
    us = {n["key"] for n in ask(client, SNIPPET_KEYS, us_key)[1]["data"]["snippets"]["nodes"]}
    fr = {n["key"] for n in ask(client, SNIPPET_KEYS, france)[1]["data"]["snippets"]["nodes"]}

    assert FRANCE_ONLY in anonymous
    assert FRANCE_ONLY not in us
    assert us == anonymous - {FRANCE_ONLY}
    assert FRANCE_ONLY in fr
    node_id = ask(client, f'{{ snippet(key: "{FRANCE_ONLY}") {{ id }} }}')[1]["data"]["snippet"][
        "id"
    ]
    refetch = f'{{ node(id: "{node_id}") {{ id }} }}'
    assert ask(client, refetch, us_key)[1]["data"] == {"node": None}
    assert ask(client, f'{{ snippet(key: "{FRANCE_ONLY}") {{ key }} }}', us_key)[1]["data"] == {
        "snippet": None
    }


@pytest.mark.parametrize(
    "query",
    [
        '{ disclaimers(market: "FR") { kind } }',
        '{ productPage(product: {category: "supplement"}, market: "EU") { snippets { key } } }',
        '{ snippets(filter: {market: "FR"}) { totalCount } }',
        '{ snippet(key: "probiotics") { disclaimers(market: "FR") { kind } } }',
    ],
)
def test_asking_for_a_market_outside_the_key_is_forbidden(
    client: TestClient, us_key: str, query: str
) -> None:
    status, body = ask(client, query, us_key)

    assert status == 200
    assert code_of(body) == "FORBIDDEN"
    assert "this key (Acme) reads the markets US, not" in body["errors"][0]["message"]


def test_a_partner_asks_in_its_locales_the_first_being_its_default(
    database: str, client: TestClient, us_key: str
) -> None:
    french_first = partner_key(database, "US", "fr-FR,en-US")

    _, body = ask(client, '{ snippet(key: "probiotics", locale: "de-DE") { key } }', us_key)
    default = ask(client, '{ snippet(key: "probiotics") { locale } }', french_first)[1]

    assert code_of(body) == "FORBIDDEN"
    assert "reads the locales en-US, fr-FR, not 'de-DE'" in body["errors"][0]["message"]
    assert default["data"] == {"snippet": {"locale": "fr-FR"}}
    english = ask(client, '{ snippet(key: "probiotics") { locale } }', us_key)[1]
    assert english["data"] == {"snippet": {"locale": "en-US"}}


def test_a_partner_key_never_reaches_staff_fields(client: TestClient, us_key: str) -> None:
    _, body = ask(client, "{ reviewQueue { key } }", us_key)
    assert code_of(body) == "FORBIDDEN"
    assert "a partner key (Acme) reads published content only" in body["errors"][0]["message"]
    mutation = 'mutation { publishRelease(note: "x") { number } }'
    assert code_of(ask(client, mutation, us_key)[1]) == "FORBIDDEN"


def test_development_answers_anonymous_reads(client: TestClient) -> None:
    status, body = ask(client, "{ release { number } }")
    assert (status, body) == (200, {"data": {"release": {"number": 1}}})


def test_the_old_spelling_of_a_market_is_an_error_that_names_the_iso_code(
    client: TestClient,
) -> None:
    _, body = ask(client, '{ disclaimers(market: "UK") { kind } }')
    assert code_of(body) == "BAD_USER_INPUT"
    assert "unknown market 'UK' (ISO 3166-1 writes it 'GB')" in body["errors"][0]["message"]


def test_bundles_follow_the_same_caller_rules(
    database: str, client: TestClient, us_key: str
) -> None:
    def keys(response: Any) -> set[str]:
        return {item["key"] for item in response.json()["snippets"]}

    anonymous = client.get("/bundles/1/en-US.json")
    partner = client.get("/bundles/1/en-US.json", headers={"authorization": f"Bearer {us_key}"})
    outside = client.get(
        "/bundles/1/en-US.json?market=FR", headers={"authorization": f"Bearer {us_key}"}
    )

    assert FRANCE_ONLY in keys(anonymous)
    assert keys(partner) == keys(anonymous) - {FRANCE_ONLY}
    assert partner.headers["etag"] != anonymous.headers["etag"]
    assert "Authorization" in partner.headers["vary"]
    assert outside.status_code == 403
    production = Settings(database_url=database, env=Environment.PRODUCTION)
    with TestClient(create_app(production)) as locked:
        assert locked.get("/bundles/1/en-US.json").status_code == 401


def test_a_refused_field_beside_fields_still_reading_is_an_error_never_a_500(
    client: TestClient, us_key: str
) -> None:
    # history is for staff: refused at once, while its siblings are still reading
    query = """{ a: snippets(filter: {market: "US"}, first: 5) { totalCount }
      b: changes(since: 0, first: 3) { totalCount }
      c: history(key: "probiotics") { number }
      d: snippets(first: 50) { totalCount } }"""
    for _ in range(3):
        status, body = ask(client, query, us_key)
        assert status == 200, body
        assert code_of(body) == "FORBIDDEN"
        assert body["errors"][0]["path"] == ["c"]
    # and the next request is answered as usual
    status, body = ask(client, SNIPPET_KEYS, us_key)
    assert status == 200
    assert body["data"]["snippets"]["nodes"]
