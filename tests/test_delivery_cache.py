"""HTTP caching of GraphQL GETs: strong ETags computed before anything runs, 304s, the
response cache (in process and in Redis), Cache-Control, cache tags, compression, rate limits
and freshness after a publish."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event
from typer.testing import CliRunner

from service.access.keycache import KeyCache
from service.app import create_app
from service.config import PROJECT_ROOT, Settings
from service.content.operations import bootstrap_development
from service.db import create_engine_for, create_sessionmaker
from service.delivery.freshness import Freshness
from tests.helpers import invoke

OPERATIONS = PROJECT_ROOT / "schema" / "operations"
PRODUCT_PAGE = (OPERATIONS / "ProductPage.graphql").read_text()
PRODUCT = {"product": {"category": "supplement", "concerns": ["acne"]}, "market": "US"}
REDIS = "redis://127.0.0.1:6379/13"


def product_page(
    client: TestClient, variables: dict[str, Any] | None = None, **headers: str
) -> Any:
    params = {"query": PRODUCT_PAGE, "variables": json.dumps(variables or PRODUCT)}
    return client.get("/graphql", params=params, headers=headers)


class Statements:
    """The SQL statements requests run, leaving out the freshness poll's own."""

    def __init__(self, client: TestClient) -> None:
        self.seen: list[str] = []
        engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "revoked_at" not in statement:
                self.seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)

    def __len__(self) -> int:
        return len(self.seen)


@pytest.fixture
def fresh(settings: Settings) -> Settings:
    asyncio.run(bootstrap_development(settings))
    return settings


@pytest.fixture
def app_client(fresh: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(fresh.model_copy(update={"rate_limit": None}))) as client:
        yield client


def second_release(cli: CliRunner, seed: Path) -> None:
    probiotics = seed / "snippets/probiotics.en-US.md"
    probiotics.write_text(probiotics.read_text() + "\nA sentence added in release 2.\n")
    assert invoke(cli, "seed", str(seed), "--approve").exit_code == 0
    assert "Published release 2" in invoke(cli, "publish", "--note", "two").output


def test_a_get_carries_a_strong_etag_and_a_match_is_304_without_running_anything(
    app_client: TestClient,
) -> None:
    first = product_page(app_client)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    assert first.headers["cache-control"] == (
        "public, max-age=60, stale-while-revalidate=300, stale-if-error=86400"
    )
    assert {"Accept", "Authorization"} <= {
        part.strip() for part in first.headers["vary"].split(",")
    }
    assert "release-1" in first.headers["surrogate-key"].split()
    assert "release-1" in first.headers["cache-tag"].split(",")
    assert first.headers["cache-status"] == "contentapi; fwd=miss"  # asked once: not kept
    kept = product_page(app_client)
    assert kept.headers["cache-status"] == "contentapi; fwd=miss; stored"

    statements = Statements(app_client)
    again = product_page(app_client)
    assert again.headers["cache-status"] == "contentapi; hit"
    assert again.content == first.content
    assert again.headers["etag"] == etag
    revalidated = product_page(app_client, **{"if-none-match": etag})
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    assert revalidated.headers["etag"] == etag
    assert revalidated.headers["cache-control"] == first.headers["cache-control"]
    assert revalidated.headers["vary"] == first.headers["vary"]
    # what updates the stored answer, not its cache tags, which the CDN keeps from the 200
    assert "surrogate-key" not in revalidated.headers
    assert "cache-tag" not in revalidated.headers
    assert len(statements) == 0, statements.seen

    other = product_page(app_client, {**PRODUCT, "market": "GB"})
    assert other.status_code == 200
    assert other.headers["etag"] != etag  # other variables, another answer


def test_the_answer_names_the_entries_it_shows_so_a_cdn_can_purge_them(
    app_client: TestClient,
) -> None:
    answer = product_page(app_client)
    keys = {snippet["key"] for snippet in answer.json()["data"]["productPage"]["snippets"]}
    assert keys
    tags = set(answer.headers["surrogate-key"].split())
    assert {f"entry-{key}" for key in keys} <= tags


def test_answers_with_errors_are_never_stored_or_tagged(app_client: TestClient) -> None:
    for _ in range(2):
        wrong = product_page(app_client, {**PRODUCT, "market": "XX"})
        assert wrong.json()["errors"]
        assert "etag" not in wrong.headers
        assert "cache-status" not in wrong.headers or "hit" not in wrong.headers["cache-status"]


@pytest.mark.parametrize(
    "accept", ["application/json", "application/graphql-response+json, application/json;q=0.9"]
)
def test_a_get_the_gate_runs_itself_is_answered_as_the_endpoint_answers_a_post(
    app_client: TestClient, accept: str
) -> None:
    """A planned GET's operation is run by the delivery gate, past FastAPI's routing and
    Strawberry's HTTP view: its answer is the endpoint's, byte for byte, whatever the outcome."""
    cases = [
        PRODUCT,  # data
        {**PRODUCT, "market": "XX"},  # a field's error, with a path: executed
        {"market": "US"},  # a variable missing: never run (400 in the newer media type)
        {**PRODUCT, "release": "one"},  # a variable that does not coerce
    ]
    for variables in cases:
        got = product_page(app_client, variables, accept=accept)
        posted = app_client.post(
            "/graphql",
            json={"query": PRODUCT_PAGE, "variables": variables},
            headers={"accept": accept},
        )
        assert (got.status_code, got.headers["content-type"]) == (
            posted.status_code,
            posted.headers["content-type"],
        ), variables
        # each error names its own request's id
        assert got.content.replace(got.headers["x-request-id"].encode(), b"ID") == (
            posted.content.replace(posted.headers["x-request-id"].encode(), b"ID")
        ), variables
        assert "Accept" in got.headers["vary"]
    # the answer with data is one to keep: computed, not yet stored
    assert (
        product_page(app_client, PRODUCT, accept=accept).headers["cache-status"]
        == "contentapi; fwd=miss; stored"
    )


def test_a_pinned_answer_is_immutable_and_latest_follows_a_publish_at_once(
    cli: CliRunner, fresh: Settings, seed_copy: Path
) -> None:
    with TestClient(create_app(fresh)) as client:
        pinned = product_page(client, {**PRODUCT, "release": 1})
        product_page(client, {**PRODUCT, "release": 1})  # asked twice: kept
        latest = product_page(client)
        assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert latest.headers["cache-control"].startswith("public, max-age=60")

        second_release(cli, seed_copy)

        pinned_after = product_page(client, {**PRODUCT, "release": 1})
        latest_after = product_page(client)
        assert pinned_after.headers["etag"] == pinned.headers["etag"]
        assert pinned_after.headers["cache-status"] == "contentapi; hit"
        assert latest_after.headers["etag"] != latest.headers["etag"]
        assert latest_after.json()["data"]["productPage"]["release"]["number"] == 2
        assert "release-2" in latest_after.headers["surrogate-key"].split()
        # the old ETag no longer matches: a client revalidating gets the new answer
        stale = product_page(client, **{"if-none-match": latest.headers["etag"]})
        assert stale.status_code == 200


def test_a_release_not_published_yet_is_not_pinned(app_client: TestClient) -> None:
    future = product_page(app_client, {**PRODUCT, "release": 9})
    assert "etag" not in future.headers
    assert future.json()["errors"]


def test_another_instance_sees_a_publish_within_one_poll(
    cli: CliRunner, fresh: Settings, seed_copy: Path
) -> None:
    async def watch() -> list[int | None]:
        engine = create_engine_for(fresh.database_url)
        sessions = create_sessionmaker(engine)
        freshness = Freshness(KeyCache(), interval=0.25)
        stop = asyncio.Event()
        polling = asyncio.create_task(freshness.run(sessions, stop))
        seen = [await freshness.latest_release(sessions)]
        # published by another process, as another instance would
        process = await asyncio.create_subprocess_exec(
            str(PROJECT_ROOT / ".venv/bin/contentapi"), "publish", "--note", "two",
            env={"CONTENT_API_DATABASE_URL": fresh.database_url, "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert await process.wait() == 0
        await asyncio.sleep(1.0)
        seen.append(freshness.latest)
        stop.set()
        await polling
        await engine.dispose()
        return seen

    probiotics = seed_copy / "snippets/probiotics.en-US.md"
    probiotics.write_text(probiotics.read_text() + "\nA sentence added in release 2.\n")
    assert invoke(cli, "seed", str(seed_copy), "--approve").exit_code == 0
    assert asyncio.run(watch()) == [1, 2]


@pytest.mark.parametrize(
    ("coding", "decode"), [("br", brotli.decompress), ("gzip", gzip.decompress)]
)
def test_answers_are_compressed_as_the_client_accepts(
    app_client: TestClient, coding: str, decode: Any
) -> None:
    plain = product_page(app_client, **{"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with app_client.stream(
        "GET",
        "/graphql",
        params={"query": PRODUCT_PAGE, "variables": json.dumps(PRODUCT)},
        headers={"accept-encoding": coding},
    ) as compressed:
        raw = b"".join(compressed.iter_raw())
        assert compressed.headers["content-encoding"] == coding
        assert compressed.headers["etag"] != plain.headers["etag"]  # another representation
        assert int(compressed.headers["content-length"]) == len(raw) < len(plain.content) / 2
    assert decode(raw) == plain.content
    # the 304 of a compressed representation: its own ETag matches
    revalidated = product_page(
        app_client,
        **{"accept-encoding": coding, "if-none-match": compressed.headers["etag"]},
    )
    assert revalidated.status_code == 304


def test_a_small_answer_is_sent_as_it_is(app_client: TestClient) -> None:
    small = app_client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"accept-encoding": "br, gzip"}
    )
    assert small.json() == {"data": {"__typename": "Query"}}
    assert "content-encoding" not in small.headers


def test_posts_are_compressed_too(app_client: TestClient) -> None:
    with app_client.stream(
        "POST",
        "/graphql",
        json={"query": PRODUCT_PAGE, "variables": PRODUCT},
        headers={"accept-encoding": "gzip"},
    ) as response:
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["vary"]
    assert json.loads(gzip.decompress(raw))["data"]["productPage"]["snippets"]


def test_over_the_rate_limit_is_429_and_cached_answers_cost_less(fresh: Settings) -> None:
    limited = fresh.model_copy(update={"rate_limit": "40/minute"})
    with TestClient(create_app(limited)) as client:
        first = product_page(client)  # executed: 10
        assert first.headers["ratelimit-policy"] == '"partner";q=40;w=60'
        assert first.headers["ratelimit"].startswith('"partner";r=30;')
        product_page(client)  # executed again, and kept: 10
        etag = first.headers["etag"]
        for _ in range(10):  # 304s: 1 each
            assert product_page(client, **{"if-none-match": etag}).status_code == 304
        assert product_page(client).headers["ratelimit"].startswith('"partner";r=8;')  # hit: 2
        refused = client.post("/graphql", json={"query": "{ __typename }"})  # would cost 10
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["cache-control"] == "no-store"
    (problem,) = refused.json()["errors"]
    assert problem["extensions"]["code"] == "RATE_LIMITED"
    assert "Retry after" in problem["message"]


@pytest.fixture
def shared_redis() -> Iterator[str]:
    connection = redis.Redis.from_url(REDIS)
    connection.flushdb()
    yield REDIS
    connection.flushdb()
    connection.close()


def test_instances_share_answers_and_rate_limits_through_redis(
    fresh: Settings, shared_redis: str
) -> None:
    shared = fresh.model_copy(update={"redis_url": shared_redis, "rate_limit": "35/minute"})
    with TestClient(create_app(shared)) as one, TestClient(create_app(shared)) as two:
        product_page(one)
        computed = product_page(one)
        assert computed.headers["cache-status"] == "contentapi; fwd=miss; stored"
        statements = Statements(two)
        from_redis = product_page(two)
        assert from_redis.headers["cache-status"] == "contentapi; hit"
        assert from_redis.content == computed.content
        assert from_redis.headers["etag"] == computed.headers["etag"]
        assert len(statements) == 0
        # 10 + 10 + 2 spent; the same caller's executed operation elsewhere takes the rest
        assert one.post("/graphql", json={"query": "{ __typename }"}).status_code == 200
        assert two.post("/graphql", json={"query": "{ __typename }"}).status_code == 429


def test_redis_going_away_never_fails_a_request(fresh: Settings) -> None:
    nowhere = fresh.model_copy(
        update={"redis_url": "redis://127.0.0.1:9/0", "rate_limit": "600/minute"}
    )
    with TestClient(create_app(nowhere)) as client:
        first = product_page(client)
        product_page(client)
        second = product_page(client)
    assert first.status_code == second.status_code == 200
    assert second.headers["cache-status"] == "contentapi; hit"  # from this process's cache


def partner_key(cli: CliRunner, markets: str, locales: str) -> str:
    created = invoke(
        cli, "keys", "create", "--partner", f"Shop {uuid.uuid4().hex[:6]}",
        "--markets", markets, "--locales", locales,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    return str(created.stdout).strip().splitlines()[-1]


def test_partner_answers_are_kept_apart_and_a_revoked_key_is_refused_at_once(
    cli: CliRunner, app_client: TestClient
) -> None:
    us = partner_key(cli, "US", "en-US")
    us_and_gb = partner_key(cli, "US,GB", "en-US")
    as_us = product_page(app_client, authorization=f"Bearer {us}")
    as_both = product_page(app_client, authorization=f"Bearer {us_and_gb}")
    assert as_us.status_code == as_both.status_code == 200
    assert as_us.headers["etag"] != as_both.headers["etag"]  # another scope, another answer
    assert "Authorization" in as_us.headers["vary"]
    product_page(app_client, authorization=f"Bearer {us}")  # asked twice: kept
    assert product_page(app_client, authorization=f"Bearer {us}").headers["cache-status"] == (
        "contentapi; hit"
    )
    assert invoke(cli, "keys", "revoke", us[:14]).exit_code == 0
    refused = product_page(app_client, authorization=f"Bearer {us}")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["errors"][0]["message"]
    outside = product_page(app_client, {**PRODUCT, "market": "GB"}, authorization=f"Bearer {us}")
    assert outside.status_code == 401


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The GETs the delivery gate planned: those the fast lane did not answer."""
    from service.delivery.gate import DeliveryGate

    seen: list[str] = []
    original = DeliveryGate._get

    async def counted(self: DeliveryGate, scope: Any, *args: Any) -> None:
        seen.append(scope["path"])
        await original(self, scope, *args)

    monkeypatch.setattr(DeliveryGate, "_get", counted)
    return seen


def test_a_repeated_get_is_answered_before_the_application_runs(
    app_client: TestClient, planned: list[str]
) -> None:
    first = product_page(app_client)  # computed once: not kept
    second = product_page(app_client)  # asked again: kept, and the fast lane learns it
    assert len(planned) == 2
    repeats = [product_page(app_client, **{"x-request-id": f"repeat-{n}"}) for n in range(3)]
    revalidated = product_page(app_client, **{"if-none-match": first.headers["etag"]})
    assert len(planned) == 2  # neither FastAPI nor the gate ran for these
    for number, repeat in enumerate(repeats):
        assert repeat.content == first.content
        assert repeat.headers["etag"] == first.headers["etag"]
        assert repeat.headers["cache-status"] == "contentapi; hit"
        assert repeat.headers["x-request-id"] == f"repeat-{number}"
        assert repeat.headers["x-content-type-options"] == "nosniff"
        assert repeat.headers["cache-control"] == second.headers["cache-control"]
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    assert (
        "content-length" not in revalidated.headers or revalidated.headers["content-length"] == "0"
    )
    assert revalidated.headers["etag"] == first.headers["etag"]
    assert "surrogate-key" not in revalidated.headers
    # a browser's request (with an Origin) goes through CORS, so never by the fast lane
    product_page(app_client, origin="https://shop.example.com")
    assert len(planned) == 3


def test_the_fast_lane_relearns_an_answer_once_its_lifetime_is_over(
    app_client: TestClient, planned: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.delivery import fastlane

    monkeypatch.setattr(fastlane, "LIFETIME", 0.0)
    product_page(app_client)
    product_page(app_client)  # kept, and learned
    product_page(app_client)  # too old at once: planned again, and learned again
    assert len(planned) == 3
    monkeypatch.setattr(fastlane, "LIFETIME", 60.0)
    product_page(app_client)  # learned with the new lifetime
    product_page(app_client)
    assert len(planned) == 4
