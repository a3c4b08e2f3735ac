"""Stopping the real server with SIGTERM, as an orchestrator does: requests in flight are
answered, the webhook delivery in hand is finished, the process exits 0; and its log, JSON a
line, names callers by key prefix only."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from service.access.keys import prefix_of
from service.config import Settings
from tests.helpers import free_port, invoke, query, start_serve, wait_until_up
from tests.vetting_helpers import add_staff, small_seed

IN_FLIGHT = 50
DELAY = 1.5  # seconds each GraphQL request is held (CONTENT_API_REQUEST_DELAY)
OPERATION = "query Titles { snippets(first: 5) { edges { node { title } } } }"


class HeldReceiver:
    """A partner's webhook endpoint on 127.0.0.1 that holds each delivery until released."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.received: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.received.append(self.rfile.read(int(self.headers["content-length"])))
                receiver.arrived.set()
                receiver.release.wait(timeout=20)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_receiver() -> Iterator[HeldReceiver]:
    receiver = HeldReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


def test_sigterm_answers_every_request_in_flight_and_finishes_the_webhook_in_hand(
    cli: CliRunner,
    settings: Settings,
    tmp_path: Path,
    held_receiver: HeldReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTENT_API_WEBHOOK_ALLOW_PRIVATE", "true")
    key = add_staff(cli, "ada", "admin")
    assert invoke(cli, "webhooks", "add", held_receiver.url, "--key", key).exit_code == 0
    seed = small_seed(tmp_path / "seed")
    assert invoke(cli, "seed", str(seed), "--approve").exit_code == 0
    assert invoke(cli, "publish", "--note", "first").exit_code == 0  # owes one delivery

    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        process = start_serve(
            settings.database_url,
            "development",
            port,
            env={
                "CONTENT_API_REQUEST_DELAY": str(DELAY),
                "CONTENT_API_WEBHOOK_POLL_INTERVAL": "0.1",
            },
            log=log,
        )
        try:
            wait_until_up(process, port)
            answers = asyncio.run(_stop_under_load(process, port, key, held_receiver))
            exit_code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    failed = [a for a in answers if isinstance(a, BaseException) or a.status_code != 200]
    assert failed == []
    assert all(isinstance(a, httpx.Response) and "errors" not in a.json() for a in answers)
    assert exit_code == 0

    # the delivery that was in flight when the signal came was finished, not dropped
    assert len(held_receiver.received) == 1
    assert json.loads(held_receiver.received[0])["data"]["release"] == 1
    assert query(
        settings.database_url, "SELECT status, attempts, claim FROM webhook_deliveries"
    ) == [("delivered", 1, None)]

    # the log: a JSON object a line, each request once, the key's prefix and never the key
    text = (tmp_path / "serve.log").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    graphql = [line for line in lines if line.get("path") == "/graphql"]
    assert len(graphql) == IN_FLIGHT
    assert {line["status"] for line in graphql} == {200}
    assert {line["operation"] for line in graphql} == {"Titles"}
    assert all(line["duration_ms"] >= DELAY * 1000 for line in graphql)
    assert {line["caller"] for line in graphql} == {prefix_of(key), "anonymous"}
    assert key not in text
    assert key[len(prefix_of(key)) :] not in text


async def _stop_under_load(
    process: subprocess.Popen[str], port: int, key: str, receiver: HeldReceiver
) -> list[httpx.Response | BaseException]:
    limits = httpx.Limits(max_connections=IN_FLIGHT + 5)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
    ) as http:
        requests = [
            asyncio.create_task(
                http.post(
                    "/graphql",
                    json={"query": OPERATION},
                    headers={"authorization": f"Bearer {key}"} if number % 2 else {},
                )
            )
            for number in range(IN_FLIGHT)
        ]
        deadline = time.monotonic() + 20
        # every request held inside the service (the scrape itself is one more), and the
        # webhook worker waiting on the partner's answer
        while await _in_flight(http) < IN_FLIGHT + 1 or not receiver.arrived.is_set():
            assert time.monotonic() < deadline, "the requests never were all in flight"
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        answers = await asyncio.gather(*requests, return_exceptions=True)
    # the partner answers only once the requests are drained and the application is stopping
    await asyncio.sleep(0.5)
    assert process.poll() is None, "the server exited before its webhook delivery finished"
    receiver.release.set()
    return answers


async def _in_flight(http: httpx.AsyncClient) -> float:
    metrics = (await http.get("/metrics")).text
    for line in metrics.splitlines():
        if line.startswith("contentapi_http_requests_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no in-flight gauge in /metrics")
