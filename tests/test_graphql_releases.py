"""Releases as partners rely on them: pinned answers never change; no N+1; errors in production."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from typer.testing import CliRunner

from benchmarks.seedgen import generate
from service.app import create_app
from service.config import Environment, Settings
from service.content.operations import bootstrap_development
from service.content.reading import Reader
from tests.helpers import data, error, gql, invoke

EVERYTHING = """query ($r: Int, $l: String) {
  release(id: $r) { id number note publishedAt }
  topics(locale: $l, release: $r) { id key name description }
  conditions(locale: $l, release: $r) { id key name }
  categories(locale: $l, release: $r) { id key name }
  markets(release: $r) { id code name defaultLocale locales }
  snippets(locale: $l, release: $r, first: 100) {
    totalCount
    edges { cursor node {
      id key locale version title summary evidence tags contentHash markets
      body { markdown html text } topics { id key name } conditions { id key name }
      citations { id key title doi pmid url } disclaimers(market: "US") { id key version text }
      release { id number publishedAt }
    } } }
  takeaways(locale: $l, release: $r) { id key locale version position text topic { id key name } release { id number } }
  disclaimers(market: "EU", locale: $l, release: $r) { id key kind text html version }
  productPage(product: {category: "supplement", concerns: ["acne"]}, market: "US", locale: $l, release: $r) {
    release { id number } snippets { id key version title } takeaways { id key text } disclaimers { id key text }
  }
}"""


@contextmanager
def serving(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def raw(client: TestClient, query: str, variables: dict[str, Any]) -> bytes:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    assert "errors" not in response.json(), response.json()
    return response.content


def test_a_pinned_release_answers_byte_for_byte_the_same_after_later_releases(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    settings = settings.model_copy(update={"seed_path": seed_copy})
    asyncio.run(bootstrap_development(settings))
    with serving(settings) as client:
        before = {
            locale: raw(client, EVERYTHING, {"r": 1, "l": locale}) for locale in ("en-US", "fr-FR")
        }

    # a writer rewords a snippet, renames a topic, corrects a citation and adds a snippet
    probiotics = seed_copy / "snippets/probiotics.en-US.md"
    probiotics.write_text(probiotics.read_text() + "\nA sentence added in release 2.\n")
    topics = seed_copy / "catalog/topics.yaml"
    topics.write_text(topics.read_text().replace("Gut–skin axis", "The gut–skin axis"))
    citations = seed_copy / "catalog/citations.yaml"
    citations.write_text(citations.read_text().replace("Major Regulator", "Major regulator"))
    new = (
        (seed_copy / "snippets/prebiotics.en-US.md")
        .read_text()
        .replace("key: prebiotics", "key: fibre")
    )
    (seed_copy / "snippets/fibre.en-US.md").write_text(new)
    assert invoke(cli, "seed", str(seed_copy), "--approve").exit_code == 0
    assert "Published release 2" in invoke(cli, "publish", "--note", "two").output

    for client_factory in (lambda: serving(settings), lambda: serving(settings)):
        with client_factory() as client:
            after = {
                locale: raw(client, EVERYTHING, {"r": 1, "l": locale})
                for locale in ("en-US", "fr-FR")
            }
            assert after == before
            latest = data(client, EVERYTHING, {"l": "en-US"})
    assert latest["release"]["number"] == 2
    snippets = {e["node"]["key"]: e["node"] for e in latest["snippets"]["edges"]}
    assert "fibre" in snippets
    assert snippets["probiotics"]["version"] == 2
    assert snippets["probiotics"]["release"]["number"] == 2
    assert snippets["prebiotics"]["release"]["number"] == 1  # unchanged since release 1
    assert "The gut–skin axis" in {t["name"] for t in latest["topics"]}


def test_before_any_release_lists_are_empty_and_a_product_page_is_not_found(
    settings: Settings,
) -> None:
    with serving(settings) as client:
        result = data(
            client,
            '{ release { id } topics { key } snippets { totalCount edges { cursor } } snippet(key: "probiotics") { key } takeaways { key } disclaimers(market: "US") { key } }',
        )
        assert result == {
            "release": None,
            "topics": [],
            "snippets": {"totalCount": 0, "edges": []},
            "snippet": None,
            "takeaways": [],
            "disclaimers": [],
        }
        assert error(client, '{ productPage(product: {}, market: "US") { market } }') == {
            "message": "no release has been published yet",
            "code": "NOT_FOUND",
        }


def test_market_decides_where_a_snippet_may_be_shown(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    us_only = (seed_copy / "snippets/prebiotics.en-US.md").read_text()
    us_only = us_only.replace("key: prebiotics", "key: us-only").replace(
        "markets: [US, EU, GB, FR]", "markets: [US]"
    )
    (seed_copy / "snippets/us-only.en-US.md").write_text(us_only)
    asyncio.run(bootstrap_development(settings.model_copy(update={"seed_path": seed_copy})))
    with serving(settings) as client:
        query = "query ($m: String!) { snippets(filter: {market: $m}, first: 100) { nodes { key } } productPage(product: {}, market: $m) { snippets { key } } }"
        us = data(client, query, {"m": "US"})
        eu = data(client, query, {"m": "EU"})
    assert "us-only" in [n["key"] for n in us["snippets"]["nodes"]]
    assert "us-only" in [n["key"] for n in us["productPage"]["snippets"]]
    assert "us-only" not in [n["key"] for n in eu["snippets"]["nodes"]]
    assert "us-only" not in [n["key"] for n in eu["productPage"]["snippets"]]


# --- no N+1 -----------------------------------------------------------------------------------

# every id too: ids are computed from what the request has already read, never queried
PRODUCT_PAGE = """{ productPage(product: {category: "supplement", concerns: ["acne"]}, market: "US") {
  release { id number }
  snippets { id key locale version title summary evidence tags contentHash markets
    body { html text } topics { id key name } conditions { id key name }
    citations { id key doi url } disclaimers(market: "US") { id key kind text } release { id } }
  takeaways { id key position text topic { id key name } citations { id } release { id } }
  disclaimers { id key kind text html markets release { id number } }
} }"""
FIFTY_SNIPPETS = """{ snippets(first: 50, filter: {market: "US"}) { totalCount edges { cursor node {
  id key locale version title summary evidence tags contentHash markets
  body { markdown html text } topics { id key name } conditions { id key name }
  citations { id key title doi pmid url } disclaimers(market: "US") { id key kind text markets }
  release { id number note }
} } } }"""


def statements_per_request(settings: Settings, query: str) -> tuple[int, dict[str, Any]]:
    with serving(settings) as client:
        data(client, query)  # releases are read once per process: count the steady state
        count = 0

        def counted(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            nonlocal count
            # the freshness poll runs on its own clock, not for the request
            if "revoked_at" not in statement:
                count += 1

        engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", counted)
        result = data(client, query)
        event.remove(engine, "before_cursor_execute", counted)
    return count, result


# a warm release is read from memory, and the delivery layer has read the latest release's
# number for the request (and holds the caller's key): no statement at all
@pytest.mark.parametrize(
    ("query", "budget"),
    [(PRODUCT_PAGE, 0), (FIFTY_SNIPPETS, 0)],
    ids=["productPage", "snippets50"],
)
def test_sql_statements_do_not_grow_with_the_number_of_items(
    settings: Settings, tmp_path: Path, query: str, budget: int
) -> None:
    small = settings.model_copy(
        update={"seed_path": generate(tmp_path / "small", 2, with_project_entries=True)}
    )
    asyncio.run(bootstrap_development(small))
    few_statements, few = statements_per_request(small, query)

    # the same database, many more items
    large = small.model_copy(
        update={"seed_path": generate(tmp_path / "large", 80, with_project_entries=True)}
    )
    runner = CliRunner()
    assert invoke(runner, "seed", str(large.seed_path), "--approve").exit_code == 0
    assert invoke(runner, "publish", "--note", "more").exit_code == 0
    many_statements, many = statements_per_request(large, query)

    def items(result: dict[str, Any]) -> int:
        if "productPage" in result:
            return len(result["productPage"]["snippets"])
        return len(result["snippets"]["edges"])

    assert items(many) >= items(few) * 4
    assert many_statements == few_statements == budget


# --- production ---------------------------------------------------------------------------------


def test_production_hides_internal_errors_but_keeps_user_errors(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, cli: CliRunner
) -> None:
    asyncio.run(bootstrap_development(settings))
    created = invoke(
        cli, "keys", "create", "--partner", "Acme", "--markets", "US", "--locales", "en-US"
    )
    partner_key = created.stdout.strip().splitlines()[-1]

    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("connection string postgres://secret@db")

    monkeypatch.setattr(Reader, "snippet", broken)
    production = settings.model_copy(update={"env": Environment.PRODUCTION})
    with serving(production) as client:
        client.headers["authorization"] = f"Bearer {partner_key}"
        body = gql(client, '{ snippet(key: "probiotics") { key } }')
        assert body["errors"][0]["message"] == "Internal server error"
        # the request's id, for a partner to quote, is all the error says about what failed
        assert set(body["errors"][0]["extensions"]) == {"code", "requestId"}
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
        assert "secret" not in str(body)
        assert (
            error(client, '{ snippets(locale: "xx_YY") { totalCount } }')["code"]
            == "BAD_USER_INPUT"
        )
        assert client.get("/graphql", headers={"accept": "text/html"}).status_code != 200
        assert client.get("/docs").status_code == 404
    with serving(settings) as client:
        found = error(client, '{ snippet(key: "probiotics") { key } }')
        assert found == {"message": "connection string postgres://secret@db", "code": "INTERNAL"}


def test_documents_beyond_the_limits_are_refused(settings: Settings) -> None:
    limited = settings.model_copy(update={"graphql_max_depth": 2, "graphql_max_aliases": 2})
    with serving(limited) as client:
        deep = error(
            client,
            '{ snippet(key: "x") { topics { key } release { id } disclaimers(market: "US") { release { id } } } }',
        )
        assert deep["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "exceeds maximum operation depth" in deep["message"]
        aliases = error(client, "{ a: topics { key } b: topics { key } c: topics { key } }")
        assert aliases["code"] == "GRAPHQL_VALIDATION_FAILED"
