"""A database outage under load: answered 503 in bounded time, never a hang or a 500, and over
by itself once the database is back. PostgreSQL only: SQLite is a file inside the process,
which no network can take away from it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from service.cli import app as cli_app
from service.config import Settings
from service.content.operations import bootstrap_development
from tests.conftest import postgres_database
from tests.helpers import free_port, start_serve, wait_until_up

DATABASE_TIMEOUT = 2  # seconds: CONTENT_API_DATABASE_TIMEOUT for this server
# the longest an answer may take while the database is away: a connection attempt times out
# after DATABASE_TIMEOUT, and one request may meet two (a pooled connection found dead first)
ANSWER_BOUND = 2 * DATABASE_TIMEOUT + 1.5
RECOVERY_BOUND = 5.0  # seconds from the database's return to the first good answer
SNIPPET = "query Snippet($key: String!) { snippet(key: $key) { title version } }"
# a staff read needs the database on every request; partner reads of a release held in memory
# need none, and keep being answered through an outage like cached answers
WEBHOOKS = "query Webhooks($all: Boolean!) { webhooks(includeRemoved: $all) { url } }"
KEYS = ["probiotics", "gut-skin-axis", "prebiotics", "secretome", "gut-barrier"]


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of PostgreSQL that the test cuts and restores. Cut,
    it drops every open connection and accepts new ones without ever answering, as a database
    host that went away looks from the network; restored, it forwards again."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.is_cut = False
        self.open: set[asyncio.StreamWriter] = set()
        self.held: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    def __enter__(self) -> CuttableProxy:
        self.thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._restore())

    def _call(self, coroutine: Any) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        await self._cut()
        await self._restore()
        if self.server is not None:
            self.server.close()

    async def _cut(self) -> None:
        self.is_cut = True
        for writer in self.open:
            writer.transport.abort()
        self.open.clear()

    async def _restore(self) -> None:
        self.is_cut = False
        for writer in self.held:
            writer.transport.abort()
        self.held.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.held.add(writer)  # never read, never answered
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.open |= {writer, upstream}
        await asyncio.gather(self._pump(reader, upstream), self._pump(upstream_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65_536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()
            self.open.discard(writer)


@dataclass
class Answer:
    started: float  # seconds since the load began
    took: float
    status: int
    body: dict[str, Any]
    headers: httpx.Headers


@pytest.fixture
def published_postgres(postgres_template: str) -> Iterator[str]:
    with postgres_database(template=postgres_template) as url:
        asyncio.run(bootstrap_development(Settings(database_url=url)))
        yield url


@pytest.mark.postgres
def test_an_outage_is_answered_503_in_bounded_time_and_ends_without_a_restart(
    published_postgres: str, tmp_path: Path
) -> None:
    added = CliRunner().invoke(
        cli_app,
        ["staff", "add", "ada", "--role", "admin"],
        env={"CONTENT_API_DATABASE_URL": published_postgres, "CONTENT_API_ENV": "development"},
    )
    assert added.exit_code == 0, added.output
    staff_key = added.stdout.strip().splitlines()[-1]
    with CuttableProxy() as proxy, (tmp_path / "serve.log").open("w") as log:
        through_proxy = published_postgres.replace(":5432/", f":{proxy.port}/")
        port = free_port()
        process = start_serve(
            through_proxy,
            "development",
            port,
            env={
                "CONTENT_API_DATABASE_TIMEOUT": str(DATABASE_TIMEOUT),
                "CONTENT_API_READINESS_TIMEOUT": "0.5",
                # nine clients from one address, without pause: not what this test is about
                "CONTENT_API_RATE_LIMIT": "off",
            },
            log=log,
        )
        try:
            wait_until_up(process, port)
            answers, cached, probes, timeline = asyncio.run(
                _load(proxy, f"http://127.0.0.1:{port}", staff_key)
            )
            process.terminate()
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    # each change of the proxy happened somewhere between its two moments
    cutting, cut = timeline["cutting"], timeline["cut"]
    restoring, restored = timeline["restoring"], timeline["restored"]

    # never a 500 nor a hang: every answer a 200 or a 503, each within the bound
    assert {answer.status for answer in answers} <= {200, 503}
    assert max(answer.took for answer in answers) < ANSWER_BOUND
    before = [a for a in answers if a.started + a.took < cutting]
    # asked while the database was away (the last of them answered when it returned)
    during = [a for a in answers if cut + 0.2 < a.started < restoring - 0.5]
    assert before, [(a.started, a.took, a.status) for a in answers[:5]]
    assert all(a.status == 200 for a in before)
    assert len(during) >= 8
    for answer in during:
        assert answer.status == 503, answer.body
        (error,) = answer.body["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["requestId"] == answer.headers["x-request-id"]
        assert int(answer.headers["retry-after"]) > 0
        assert answer.headers["cache-control"] == "no-store"

    # answers already in the response cache keep flowing the whole time (stale-if-error), at
    # once: neither the keys nor the latest release wait for the database
    cached_during = [a for a in cached if cut + 0.2 < a.started < restoring - 0.5]
    assert len(cached_during) >= 8
    for answer in cached_during:
        assert answer.status == 200, answer.body
        assert answer.headers["cache-status"] == "contentapi; hit"
        assert answer.took < 1.0
        assert answer.body["data"]["snippet"]["title"]

    # the process lives (health) but takes no traffic (readiness) while the database is away
    assert probes["outage"] == {"healthz": 200, "readyz": 503}
    # CONTENT_API_READINESS_TIMEOUT is 0.5 s: sooner than a connection attempt gives up (2 s)
    assert probes["outage_readyz_took"] < 1.8
    assert probes["after"] == {"healthz": 200, "readyz": 200}

    # back by itself: the first good answer soon after the database returns, and from then on
    # nothing but good answers
    after = sorted((a for a in answers if a.started >= restored), key=lambda a: a.started)
    first_good = next(a for a in after if a.status == 200)
    assert first_good.started + first_good.took - restoring < RECOVERY_BOUND
    settled = [a for a in after if a.started > first_good.started + first_good.took]
    assert settled
    assert all(a.status == 200 for a in settled)


async def _load(
    proxy: CuttableProxy, base: str, staff_key: str
) -> tuple[list[Answer], list[Answer], dict[str, Any], dict[str, float]]:
    """Eight clients asking questions that need the database without pause while it is cut
    and restored, one asking questions whose answers are cached; the health and readiness
    probes as an orchestrator sends them."""
    answers: list[Answer] = []
    cached: list[Answer] = []
    timeline: dict[str, float] = {}
    probes: dict[str, Any] = {}
    stop = asyncio.Event()
    began = time.monotonic()

    def answered(started: float, response: httpx.Response) -> Answer:
        return Answer(
            started=started - began,
            took=time.monotonic() - started,
            status=response.status_code,
            body=response.json(),
            headers=response.headers,
        )

    async def client(number: int, http: httpx.AsyncClient) -> None:
        asked = number
        while not stop.is_set():
            asked += 1
            started = time.monotonic()
            response = await http.post(
                "/graphql",
                json={"query": WEBHOOKS, "variables": {"all": asked % 2 == 0}},
                headers={"authorization": f"Bearer {staff_key}"},
            )
            answers.append(answered(started, response))

    async def cached_client(http: httpx.AsyncClient) -> None:
        asked = 0
        while not stop.is_set():
            asked += 1
            started = time.monotonic()
            variables = f'{{"key": "{KEYS[asked % 3]}"}}'
            response = await http.get("/graphql", params={"query": SNIPPET, "variables": variables})
            cached.append(answered(started, response))
            await asyncio.sleep(0.05)

    async def probe(http: httpx.AsyncClient) -> dict[str, int]:
        return {path: (await http.get(f"/{path}")).status_code for path in ("healthz", "readyz")}

    async def conductor(http: httpx.AsyncClient) -> None:
        await asyncio.sleep(1.0)
        timeline["cutting"] = time.monotonic() - began
        await asyncio.to_thread(proxy.cut)
        timeline["cut"] = time.monotonic() - began
        await asyncio.sleep(1.5)
        started = time.monotonic()
        probes["outage"] = await probe(http)
        probes["outage_readyz_took"] = time.monotonic() - started
        await asyncio.sleep(max(0.0, timeline["cut"] + 4.0 - (time.monotonic() - began)))
        timeline["restoring"] = time.monotonic() - began
        await asyncio.to_thread(proxy.restore)
        timeline["restored"] = time.monotonic() - began
        # long enough to see the recovery and a second of good answers after it
        deadline = time.monotonic() + RECOVERY_BOUND + 1.5
        while time.monotonic() < deadline:
            recovered = [a for a in answers if a.started >= timeline["restored"]]
            good = [a for a in recovered if a.status == 200]
            if good and time.monotonic() - began > good[0].started + 1.5:
                break
            await asyncio.sleep(0.1)
        stop.set()
        probes["after"] = await probe(http)

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for key in KEYS[:3] * 2:  # in the response cache before the outage: asked twice
            variables = f'{{"key": "{key}"}}'
            warm = await http.get("/graphql", params={"query": SNIPPET, "variables": variables})
            assert warm.status_code == 200, warm.text
        await asyncio.gather(
            conductor(http), cached_client(http), *(client(n, http) for n in range(8))
        )
    return answers, cached, probes, timeline
