"""What operators see: request ids, one structured log line per request with the caller's key
prefix and never the key, Prometheus metrics (protected in production), security headers on
every response, settings refused at start-up with one message per bad value."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from structlog.testing import capture_logs
from typer.testing import CliRunner

from service.access.keys import prefix_of
from service.app import create_app
from service.config import Environment, Settings
from service.content.operations import bootstrap_development
from service.content.reading import Reader
from service.observability import _redact_keys, fresh_request_id, note_cache
from tests.helpers import invoke
from tests.vetting_helpers import add_staff, small_seed

TITLES = "query Titles { snippets(first: 2) { edges { node { title } } } }"


# `published` and `client` (tests/conftest.py) share one published database per module and
# kind; the tests that write through the command line get a fresh one


@pytest.fixture
def fresh(settings: Settings) -> Settings:
    asyncio.run(bootstrap_development(settings))
    return settings


def metric(client: TestClient, name: str, **labels: str) -> float:
    """One sample of /metrics, by name and labels; 0 when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in client.get("/metrics").text.splitlines():
        sample, _, value = line.rpartition(" ")
        if not labels and sample == name:
            return float(value)
        if sample.startswith(name + "{"):
            found = ",".join(sorted(sample[len(name) + 1 : -1].split(",")))
            if found == wanted:
                return float(value)
    return 0.0


# --- request ids --------------------------------------------------------------------------------


def test_a_sane_request_id_is_kept_and_anything_else_replaced(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"x-request-id": "lb-7f3a.1:2"})
    made = client.get("/healthz")
    forged = client.get("/healthz", headers={"x-request-id": "x" * 200})
    injected = client.get("/healthz", headers={"x-request-id": 'a" level=error'})
    assert kept.headers["x-request-id"] == "lb-7f3a.1:2"
    for response in (made, forged, injected):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert len({made.headers["x-request-id"], forged.headers["x-request-id"]}) == 2


def test_request_ids_made_in_two_processes_differ(client: TestClient) -> None:
    """Workers forked from one process hand out ids of their own, never their parent's."""
    before = client.get("/healthz").headers["x-request-id"]
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports its next id
        os.write(writing, fresh_request_id().encode())
        os._exit(0)
    os.close(writing)
    made_by_child = os.read(reading, 64).decode()
    os.close(reading)
    os.waitpid(child, 0)
    after = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made_by_child)
    assert made_by_child[:16] != before[:16]
    assert made_by_child not in {before, after}


def test_graphql_errors_and_refusals_carry_the_request_id(client: TestClient) -> None:
    failed = client.post(
        "/graphql", json={"query": "{ nope }"}, headers={"x-request-id": "req-graphql-1"}
    )
    refused = client.post(
        "/graphql",
        json={"query": "{ release { number } }"},
        headers={"authorization": "Bearer nonsense", "x-request-id": "req-refused-1"},
    )
    assert failed.json()["errors"][0]["extensions"] == {
        "code": "GRAPHQL_VALIDATION_FAILED",
        "requestId": "req-graphql-1",
    }
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["requestId"] == "req-refused-1"


# --- logs ---------------------------------------------------------------------------------------


def test_each_request_is_logged_once_with_the_key_prefix_and_never_the_key(
    cli: CliRunner, fresh: Settings
) -> None:
    key = add_staff(cli, "ada", "admin")
    with TestClient(create_app(fresh)) as client, capture_logs() as logs:
        answered = client.post(
            "/graphql",
            json={"query": TITLES},
            headers={"authorization": f"Bearer {key}", "x-request-id": "req-log-1"},
        )
        client.get("/graphql", params={"query": "{ nope }"})
    assert answered.status_code == 200
    requests = [entry for entry in logs if entry["event"] == "request"]
    assert len(requests) == 2
    first = requests[0]
    assert first["request_id"] == "req-log-1"
    assert first["caller"] == prefix_of(key)
    assert first["operation"] == "Titles"
    assert first["status"] == 200
    assert first["route"] == "/graphql"
    assert first["method"] == "POST"
    assert first["duration_ms"] > 0
    assert "cache" in first
    assert requests[1]["caller"] == "anonymous"
    assert key not in repr(logs)


def test_a_key_that_reaches_a_log_line_by_another_way_keeps_its_prefix_only() -> None:
    key = "gsk_s_" + "A" * 30 + "b" * 6
    event = {"event": "failed", "exception": f"ValueError: bad header Bearer {key}\n"}
    scrubbed = _redact_keys(None, "error", event)
    assert key not in repr(scrubbed)
    assert prefix_of(key) + "…" in scrubbed["exception"]


def test_the_cache_layer_reports_hits_to_the_log_line_and_the_counter(
    published: Settings,
) -> None:
    app = create_app(published)

    @app.get("/answered-from-cache")
    async def from_cache() -> dict[str, str]:
        note_cache("hit")
        return {}

    with TestClient(app) as client, capture_logs() as logs:
        before = metric(client, "contentapi_response_cache_lookups_total", result="hit")
        client.get("/answered-from-cache")
        after = metric(client, "contentapi_response_cache_lookups_total", result="hit")
    assert after == before + 1
    (line,) = [entry for entry in logs if entry.get("path") == "/answered-from-cache"]
    assert line["cache"] == "hit"


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_count_requests_by_route_status_and_operation(
    cli: CliRunner, fresh: Settings, tmp_path: Path
) -> None:
    with TestClient(create_app(fresh)) as client:
        _count_requests_and_deliveries(client, cli, tmp_path)


def _count_requests_and_deliveries(client: TestClient, cli: CliRunner, tmp_path: Path) -> None:
    labels = {"route": "/graphql", "method": "POST", "status": "200", "operation": "Titles"}
    before = metric(client, "contentapi_http_requests_total", **labels)
    for _ in range(3):
        assert client.post("/graphql", json={"query": TITLES}).status_code == 200
    assert metric(client, "contentapi_http_requests_total", **labels) == before + 3
    assert (
        metric(
            client,
            "contentapi_http_request_duration_seconds_count",
            route="/graphql",
            method="POST",
            operation="Titles",
        )
        >= 3
    )
    # a GET the delivery gate runs itself counts under the same route
    labels = {**labels, "method": "GET"}
    before = metric(client, "contentapi_http_requests_total", **labels)
    for variables in ('{"a": 1}', '{"a": 2}', '{"a": 3}'):
        params = {"query": TITLES, "variables": variables}
        assert client.get("/graphql", params=params).status_code == 200
    assert metric(client, "contentapi_http_requests_total", **labels) == before + 3
    client.get("/bundles/1/en-US.json")
    assert (
        metric(
            client,
            "contentapi_http_requests_total",
            route="/bundles/{release}/{locale}.json",
            method="GET",
            status="200",
            operation="",
        )
        >= 1
    )
    assert metric(client, "contentapi_db_pool_size") >= 1
    assert metric(client, "contentapi_db_pool_checked_out") == 0

    # a webhook owed a delivery: the queue depth says so
    assert metric(client, "contentapi_webhook_deliveries_pending") == 0
    assert invoke(cli, "webhooks", "add", "https://hooks.example.com/content").exit_code == 0
    seed = small_seed(tmp_path / "seed")
    path = seed / "snippets" / "gut-skin-axis.en-US.md"
    path.write_text(path.read_text() + "\nOne more sentence.\n")
    assert invoke(cli, "seed", str(seed), "--approve").exit_code == 0
    assert invoke(cli, "publish", "--note", "second").exit_code == 0
    assert metric(client, "contentapi_webhook_deliveries_pending") == 1


def test_answers_from_the_fast_lane_are_counted_in_the_metrics_and_logged(
    client: TestClient,
) -> None:
    """The fast lane's answers are counted in batches: /metrics shows every one of them, with
    its latency, as soon as it is read."""
    params = {"query": TITLES, "variables": '{"lane": 1}'}
    labels = {"route": "/graphql", "method": "GET", "operation": "Titles"}
    assert client.get("/graphql", params=params).status_code == 200
    assert client.get("/graphql", params=params).status_code == 200  # kept, and learned
    etag = client.get("/graphql", params=params).headers["etag"]

    def counts() -> tuple[float, ...]:
        return (
            metric(client, "contentapi_http_requests_total", **labels, status="200"),
            metric(client, "contentapi_http_requests_total", **labels, status="304"),
            metric(client, "contentapi_http_request_duration_seconds_count", **labels),
            metric(client, "contentapi_http_request_duration_seconds_bucket", **labels, le="+Inf"),
            metric(client, "contentapi_response_cache_lookups_total", result="hit"),
        )

    before = counts()
    with capture_logs() as logs:
        for _ in range(5):
            assert (
                client.get("/graphql", params=params).headers["cache-status"] == "contentapi; hit"
            )
        for _ in range(3):
            assert (
                client.get("/graphql", params=params, headers={"if-none-match": etag}).status_code
                == 304
            )
    after = counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [5, 3, 8, 8, 8]
    lines = [line for line in logs if line.get("event") == "request"]
    assert [line["status"] for line in lines] == [200] * 5 + [304] * 3
    assert {line["cache"] for line in lines} == {"hit"}
    assert {line["operation"] for line in lines} == {"Titles"}


def test_metrics_in_production_are_for_allowed_networks_only(published: Settings) -> None:
    production = published.model_copy(update={"env": Environment.PRODUCTION})
    app = create_app(production)
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
    with TestClient(app, client=("203.0.113.9", 40000)) as outside:
        refused = outside.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    monitoring = production.model_copy(
        update={
            "metrics_allow": Settings(
                metrics_allow=["10.0.0.0/8"]  # type: ignore[list-item]
            ).metrics_allow
        }
    )
    with TestClient(create_app(monitoring), client=("10.9.8.7", 40000)) as scraper:
        assert scraper.get("/metrics").status_code == 200


# --- headers ------------------------------------------------------------------------------------


def test_every_response_has_the_security_headers_and_the_console_keeps_its_own(
    client: TestClient, published: Settings
) -> None:
    for response in (
        client.post("/graphql", json={"query": TITLES}),
        client.get("/healthz"),
        client.get("/no-such-page"),
        client.options(
            "/graphql",
            headers={"origin": "https://a.example", "access-control-request-method": "POST"},
        ),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in response.headers  # development: plain HTTP
        assert "x-request-id" in response.headers
    console = client.get("/console/sign-in")
    assert console.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in console.headers["content-security-policy"]
    production = published.model_copy(update={"env": Environment.PRODUCTION})
    with TestClient(create_app(production)) as secure:
        assert secure.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


# --- a statement the database does not finish in time ------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("published", ["postgresql"], indirect=True)
def test_a_statement_past_the_database_timeout_is_answered_503(
    published: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL only: the server's statement_timeout (SQLite has no statement timeout)."""

    async def slow(self: Reader, *_: Any, **__: Any) -> None:
        await self.live.session.execute(text("SELECT pg_sleep(5)"))

    monkeypatch.setattr(Reader, "snippet", slow)
    timed = published.model_copy(update={"database_timeout": 1.0})
    with TestClient(create_app(timed)) as client:
        response = client.post("/graphql", json={"query": '{ snippet(key: "probiotics") { key } }'})
        assert client.get("/healthz").status_code == 200
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


# --- settings -----------------------------------------------------------------------------------


def test_bad_production_settings_are_refused_at_start_with_one_message_each(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    monkeypatch.setenv("CONTENT_API_CORS_ORIGINS", '["*"]')
    monkeypatch.setenv("CONTENT_API_REQUEST_DELAY", "2")
    monkeypatch.setenv("CONTENT_API_WORKERS", "0")
    monkeypatch.setenv("CONTENT_API_METRICS_ALLOW", '["not-a-network"]')
    result = invoke(cli, "serve")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 4
    assert any(
        line.startswith("error: CONTENT_API_CORS_ORIGINS:") and "development only" in line
        for line in lines
    )
    assert any(line.startswith("error: CONTENT_API_REQUEST_DELAY:") for line in lines)
    assert any(line.startswith("error: CONTENT_API_WORKERS:") for line in lines)
    assert (
        "error: CONTENT_API_METRICS_ALLOW (item 1): value is not a valid IPv4 or IPv6 network"
        in lines
    )


def test_an_origin_must_be_an_origin(monkeypatch: pytest.MonkeyPatch, cli: CliRunner) -> None:
    monkeypatch.setenv("CONTENT_API_CORS_ORIGINS", '["https://shop.example.com/path"]')
    result = invoke(cli, "serve")
    assert result.exit_code == 2
    assert "is not an origin: write scheme://host[:port]" in result.stderr


def test_production_allows_only_the_listed_origins(published: Settings) -> None:
    production = published.model_copy(
        update={"env": Environment.PRODUCTION, "cors_origins": ["https://shop.example.com"]}
    )
    with TestClient(create_app(production)) as client:
        listed = client.options(
            "/graphql",
            headers={"origin": "https://shop.example.com", "access-control-request-method": "GET"},
        )
        other = client.options(
            "/graphql",
            headers={"origin": "https://other.example", "access-control-request-method": "GET"},
        )
    assert listed.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "access-control-allow-origin" not in other.headers
    unlisted = published.model_copy(update={"env": Environment.PRODUCTION})
    assert unlisted.allowed_origins == []
