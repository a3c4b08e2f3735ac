"""Webhooks: an outbox row in the release's own transaction, a signed POST per event that a
receiver verifies on its own, retries with back-off, restarts, concurrent workers, SSRF
refusals, redelivery and the delivery log; against real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from service.app import create_app
from service.config import Settings
from service.content.models import utcnow
from service.db import create_engine_for, create_sessionmaker, create_sync_engine
from service.delivery import webhook_worker
from service.delivery.webhook_repository import WebhookRepository
from service.delivery.webhook_worker import PassReport, backoff, deliver_once
from service.delivery.webhooks import is_public
from tests.helpers import invoke, query, scalar
from tests.vetting_helpers import make_team, small_seed

TIMEOUT = 0.4  # seconds a receiver has to answer, in these tests


# --- a receiver, as a partner runs one ----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers as planned: a status
    code per request ("slow" answers after the worker stopped waiting), then 200."""

    port: int = 0
    plan: list[int | str] = field(default_factory=list)
    delay: float = 0.0  # seconds before every answer
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_answer(self, request: Received) -> int | str:
        with self.lock:
            self.received.append(request)
            self.arrived.set()
            return self.plan.pop(0) if self.plan else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = state.next_answer(Received(self.path, headers, body))
            time.sleep(state.delay)
            if answer == "slow":
                time.sleep(TIMEOUT * 3)
                answer = 200
            try:
                self.send_response(int(answer))
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the worker stopped waiting

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def quick_webhooks(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Milliseconds instead of minutes, and receivers on loopback allowed."""
    for name, value in {
        "ALLOW_PRIVATE": "true",
        "TIMEOUT": str(TIMEOUT),
        "LEASE": "1",
        "RETRY_BASE": "0.2",
        "RETRY_MAX": "0.4",
        "RETRY_WINDOW": "60",
        "POLL_INTERVAL": "0.05",
        "WORKER": "false",
    }.items():
        monkeypatch.setenv(f"CONTENT_API_WEBHOOK_{name}", value)


def verify(secret: str, received: Received) -> bool:
    """A receiver's check, written from the Standard Webhooks specification alone."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = (
        received.headers["webhook-id"].encode()
        + b"."
        + received.headers["webhook-timestamp"].encode()
        + b"."
        + received.body
    )
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = received.headers["webhook-signature"].split(" ")
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected)
        for sig in offered
        if sig.startswith("v1,")
    )


# --- helpers ------------------------------------------------------------------------------------


def add_webhook(cli: CliRunner, url: str, *args: str) -> tuple[int, str]:
    result = invoke(cli, "webhooks", "add", url, *args)
    assert result.exit_code == 0, result.output
    number = int(result.stdout.split("Added webhook ", 1)[1].split(":", 1)[0])
    return number, result.stdout.strip().splitlines()[-1]


def seed_and_publish(cli: CliRunner, seed: Path, note: str = "first") -> None:
    """Development shortcut: approve every change as the development reviewer, publish it."""
    assert invoke(cli, "seed", str(seed), "--approve").exit_code == 0
    result = invoke(cli, "publish", "--note", note)
    assert result.exit_code == 0, result.output
    assert "Published release" in result.output


def work(cli: CliRunner) -> str:
    result = invoke(cli, "webhooks", "worker", "--once")
    assert result.exit_code == 0, result.output
    return result.output


def deliveries(settings: Settings) -> list[tuple[Any, ...]]:
    return query(
        settings.database_url,
        "SELECT id, webhook_id, event, release_id, status, attempts, last_status, last_error "
        "FROM webhook_deliveries ORDER BY id",
    )


def update(settings: Settings, sql: str, **params: Any) -> None:
    engine = create_sync_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


def time_passes(settings: Settings) -> None:
    """The clock moves on until every waiting retry is due, without waiting for it."""
    update(
        settings,
        "UPDATE webhook_deliveries SET next_attempt_at = :now WHERE status = 'pending'",
        now=utcnow(),
    )


def wait_before_next_attempt(settings: Settings) -> float:
    last, due = query(
        settings.database_url, "SELECT last_attempt_at, next_attempt_at FROM webhook_deliveries"
    )[0]
    return (aware(due) - aware(last)).total_seconds()


def deliver_now() -> PassReport:
    return asyncio.run(deliver_once(Settings()))


def aware(moment: Any) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return small_seed(tmp_path / "seed")


# --- delivery and signature ---------------------------------------------------------------------


def test_a_publish_is_delivered_once_signed_per_standard_webhooks(
    cli: CliRunner, settings: Settings, receiver: Receiver, small: Path
) -> None:
    number, secret = add_webhook(cli, f"{receiver.url}/hooks", "--events", "release.published")
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    seed_and_publish(cli, small, "Gut–skin basics")
    assert receiver.received == []  # the outbox row waits for a worker

    assert "Delivered 1, retrying 0, failed 0." in work(cli)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.path == "/hooks"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"].startswith("msg_")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert verify(secret, got)
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), got)
    body = got.json()
    assert body["type"] == "release.published"
    assert body["data"]["release"] == 1
    assert body["data"]["note"] == "Gut–skin basics"
    assert aware(body["data"]["published_at"]) <= datetime.now(UTC)
    assert {
        "key": "gut-skin-axis",
        "kind": "snippet",
        "locale": "en-US",
        "change": "created",
        "revision": 1,
        "previous_revision": None,
        "markets": ["EU", "FR", "GB", "US"],
    } in body["data"]["entries"]
    assert len(body["data"]["entries"]) == 4

    assert "Delivered 0, retrying 0, failed 0." in work(cli)
    assert len(receiver.received) == 1
    log = invoke(cli, "webhooks", "deliveries").output
    assert (
        f"webhook {number} ({receiver.url}/hooks)  release.published  release 1  delivered" in log
    )
    assert "attempts 1  last HTTP 200  next -" in log
    assert got.headers["webhook-id"] in log


def test_withdrawal_and_rollback_are_releases_and_a_withdrawal_is_also_its_own_event(
    cli: CliRunner, settings: Settings, receiver: Receiver, small: Path
) -> None:
    add_webhook(cli, f"{receiver.url}/all", "--events", "release.published,entry.withdrawn")
    add_webhook(cli, f"{receiver.url}/withdrawn", "--events", "entry.withdrawn")
    seed_and_publish(cli, small)
    snippet = small / "snippets" / "gut-skin-axis.en-US.md"
    snippet.write_text(snippet.read_text().replace("two-way connection", "two-way link"))
    seed_and_publish(cli, small, "second wording")
    rollback = invoke(
        cli, "rollback", "gut-skin-axis", "--to-revision", "1", "--reason", "back to the first"
    )
    assert rollback.exit_code == 0, rollback.output
    withdraw = invoke(cli, "withdraw", "gut-skin-axis", "--reason", "under review")
    assert withdraw.exit_code == 0, withdraw.output

    work(cli)

    seen = [(r.path, r.json()["type"], r.json()["data"]["release"]) for r in receiver.received]
    assert sorted(seen) == sorted(
        [
            ("/all", "release.published", 1),
            ("/all", "release.published", 2),
            ("/all", "release.published", 3),
            ("/all", "release.published", 4),
            ("/all", "entry.withdrawn", 4),
            ("/withdrawn", "entry.withdrawn", 4),
        ]
    )
    by_release = {
        r.json()["data"]["release"]: r.json()["data"]["entries"]
        for r in receiver.received
        if r.json()["type"] == "release.published"
    }
    changed = {3: ("updated", 1, 2), 4: ("withdrawn", None, 1), 2: ("updated", 2, 1)}
    for release, (change, revision, previous) in changed.items():
        [entry] = by_release[release]
        assert (entry["key"], entry["change"]) == ("gut-skin-axis", change)
        assert (entry["revision"], entry["previous_revision"]) == (revision, previous)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 6


def test_markets_limit_a_webhook_to_releases_that_change_their_content(
    cli: CliRunner, settings: Settings, receiver: Receiver, small: Path
) -> None:
    invoke(cli, "seed", str(small))  # the markets catalog
    add_webhook(cli, f"{receiver.url}/us", "--markets", "US")
    add_webhook(cli, f"{receiver.url}/uk", "--markets", "GB")
    seed_and_publish(cli, small)
    fda = small / "disclaimers" / "fda-structure-function.en-US.md"  # cleared for US only
    fda.write_text(fda.read_text().replace("Food and Drug", "Food & Drug"))
    seed_and_publish(cli, small, "FDA wording")

    work(cli)

    releases = {
        path: sorted(r.json()["data"]["release"] for r in receiver.received if r.path == path)
        for path in ("/us", "/uk")
    }
    assert releases == {"/us": [1, 2], "/uk": [1]}
    [uk] = [r.json() for r in receiver.received if r.path == "/uk"]
    assert "fda-structure-function" not in {e["key"] for e in uk["data"]["entries"]}

    unknown = invoke(cli, "webhooks", "add", f"{receiver.url}/x", "--markets", "UK,XX")
    assert unknown.exit_code == 1
    assert (
        "unknown markets 'UK' (ISO 3166-1 writes it 'GB'), 'XX'; known markets: EU, FR, GB, US"
        in unknown.output
    )


# --- the outbox: transactions, restarts, concurrent workers ---------------------------------


def test_a_refused_publish_writes_no_outbox_row(
    cli: CliRunner, settings: Settings, receiver: Receiver, small: Path
) -> None:
    team = make_team(cli)
    add_webhook(cli, receiver.url, "--key", team.admin)
    assert invoke(cli, "seed", str(small), "--key", team.editor).exit_code == 0
    assert invoke(cli, "review", "submit", "--all", "--key", team.editor).exit_code == 0
    approve = ["review", "approve", "gut-skin-axis", "--note", "ok", "--key", team.reviewer]
    assert invoke(cli, *approve).exit_code == 0  # the snippet, not the disclaimers it needs

    refused = invoke(cli, "publish", "--note", "too early", "--key", team.publisher)

    assert refused.exit_code == 1
    assert "these disclaimers would not be live" in refused.output
    assert scalar(settings.database_url, "SELECT count(*) FROM releases") == 0
    assert deliveries(settings) == []
    assert "Delivered 0, retrying 0, failed 0." in work(cli)
    assert receiver.received == []


def test_a_delivery_outlives_a_restart_and_a_crashed_worker(
    cli: CliRunner, settings: Settings, receiver: Receiver, small: Path
) -> None:
    add_webhook(cli, receiver.url)
    seed_and_publish(cli, small)
    # nothing ran: a new process finds the outbox row and sends it
    result = subprocess.run(
        [str(Path(sys.executable).parent / "contentapi"), "webhooks", "worker", "--once"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Delivered 1" in result.stdout
    assert len(receiver.received) == 1

    # a worker claims the next delivery and dies before sending it
    snippet = small / "snippets" / "gut-skin-axis.en-US.md"
    snippet.write_text(snippet.read_text().replace("two-way connection", "two-way link"))
    seed_and_publish(cli, small, "second")

    async def claim_and_crash() -> list[int]:
        engine = create_engine_for(settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                now = utcnow()
                return await WebhookRepository(session).claim_due(
                    due_by=now, now=now, lease_until=now + timedelta(minutes=5),
                    claim="crashed", limit=10,
                )  # fmt: skip
        finally:
            await engine.dispose()

    claimed = asyncio.run(claim_and_crash())
    assert len(claimed) == 1
    assert "Delivered 0" in work(cli)  # its lease still holds
    update(
        settings,
        "UPDATE webhook_deliveries SET locked_until = :past",
        past=utcnow() - timedelta(seconds=1),
    )
    assert "Delivered 1" in work(cli)  # the lease lapsed: another worker retries it
    assert [r.json()["data"]["release"] for r in receiver.received] == [1, 2]
    assert deliveries(settings)[1][4:6] == ("delivered", 2)


def test_two_workers_at_once_deliver_each_event_exactly_once(
    cli: CliRunner,
    settings: Settings,
    receiver: Receiver,
    small: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for path in "abcdef":
        add_webhook(cli, f"{receiver.url}/{path}")
    seed_and_publish(cli, small)
    monkeypatch.setenv("CONTENT_API_WEBHOOK_BATCH", "2")
    receiver.delay = 0.2  # slow enough that the workers overlap
    reports: list[PassReport] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        reports.append(deliver_now())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 6
    assert len(set(ids)) == 6
    assert sorted(r.path for r in receiver.received) == [f"/{p}" for p in "abcdef"]
    assert sorted(report.delivered for report in reports) != [0, 6]  # both took a share
    assert sum(report.delivered for report in reports) == 6
    assert {row[4:6] for row in deliveries(settings)} == {("delivered", 1)}


# --- failures, retries, give-up, redelivery ----------------------------------------------------


def test_a_failing_receiver_is_retried_with_back_off_until_it_answers(
    cli: CliRunner,
    settings: Settings,
    receiver: Receiver,
    small: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTENT_API_WEBHOOK_RETRY_BASE", "10")
    monkeypatch.setenv("CONTENT_API_WEBHOOK_RETRY_MAX", "60")
    _, secret = add_webhook(cli, receiver.url)
    seed_and_publish(cli, small)
    receiver.plan = [500, "slow"]

    first = work(cli)
    assert f"delivery 1 to {receiver.url}: HTTP 500" in first
    assert "Delivered 0, retrying 1, failed 0." in first
    [(_, _, _, _, status, attempts, last_status, _)] = deliveries(settings)
    assert (status, attempts, last_status) == ("pending", 1, 500)
    assert 5 <= wait_before_next_attempt(settings) <= 10 + 1  # the base, jittered
    log = invoke(cli, "webhooks", "deliveries").output
    assert "pending  attempts 1  last HTTP 500  next 20" in log
    assert "Delivered 0, retrying 0" in work(cli)  # not due yet: no attempt before its time

    time_passes(settings)
    second = work(cli)
    assert f"timed out after {TIMEOUT:g} s" in second
    # doubled, counted from the end of an attempt that itself waited out the timeout
    assert 10 <= wait_before_next_attempt(settings) <= 20 + TIMEOUT + 1

    time_passes(settings)
    assert "Delivered 1, retrying 0, failed 0." in work(cli)
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one event
    assert all(verify(secret, r) for r in receiver.received)
    assert deliveries(settings)[0][4:7] == ("delivered", 3, 200)


def test_back_off_doubles_with_jitter_up_to_its_maximum() -> None:
    settings = Settings(webhook_retry_base=30, webhook_retry_max=3600)
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (60, 3600)]:
        waits = {backoff(attempts, settings).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(waits) > 1  # jittered


def test_after_the_retry_window_a_delivery_is_failed_and_can_be_redelivered(
    cli: CliRunner,
    settings: Settings,
    receiver: Receiver,
    small: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTENT_API_WEBHOOK_RETRY_WINDOW", "0.5")
    monkeypatch.setenv("CONTENT_API_WEBHOOK_RETRY_BASE", "0.05")
    monkeypatch.setenv("CONTENT_API_WEBHOOK_RETRY_MAX", "0.1")
    add_webhook(cli, f"{receiver.url}/down")
    add_webhook(cli, f"{receiver.url}/up")
    seed_and_publish(cli, small)
    receiver.plan = [500] * 100  # /down and /up share it: /up succeeds on its second try

    started = time.monotonic()
    while any(row[4] == "pending" for row in deliveries(settings)):
        assert time.monotonic() - started < 20
        deliver_now()
        time.sleep(0.05)

    down, up = deliveries(settings)
    assert down[4] == "failed"
    assert down[5] >= 3
    assert down[7] == "HTTP 500"
    created, last = query(
        settings.database_url,
        "SELECT created_at, last_attempt_at FROM webhook_deliveries WHERE id = 1",
    )[0]
    assert (aware(last) - aware(created)).total_seconds() >= 0.5  # tried for the whole window
    assert up[4] == "failed"  # the plan answered 500 to both
    failed = invoke(cli, "webhooks", "deliveries", "--failed").output
    assert f"1  webhook 1 ({receiver.url}/down)  release.published  release 1  failed" in failed

    receiver.plan = []
    redelivered = invoke(cli, "webhooks", "redeliver", "1")
    assert redelivered.exit_code == 0, redelivered.output
    assert "Queued delivery 1 (release.published, release 1) again" in redelivered.output
    before = len(receiver.received)
    assert "Delivered 1, retrying 0, failed 0." in work(cli)
    assert receiver.received[-1].path == "/down"
    assert len(receiver.received) == before + 1
    first_down = next(r for r in receiver.received if r.path == "/down")
    assert receiver.received[-1].headers["webhook-id"] == first_down.headers["webhook-id"]
    assert f"{receiver.url}/down" not in invoke(cli, "webhooks", "deliveries", "--failed").output

    again = invoke(cli, "webhooks", "redeliver", "1")  # a delivered one may be sent again too
    assert again.exit_code == 0
    work(cli)
    assert len(receiver.received) == before + 2
    missing = invoke(cli, "webhooks", "redeliver", "99")
    assert missing.exit_code == 1
    assert "no delivery 99" in missing.output


def test_removing_a_webhook_stops_its_deliveries(
    cli: CliRunner, settings: Settings, receiver: Receiver, small: Path
) -> None:
    number, _ = add_webhook(cli, receiver.url)
    seed_and_publish(cli, small)

    removed = invoke(cli, "webhooks", "remove", str(number))

    assert removed.exit_code == 0, removed.output
    assert "1 waiting deliveries will not be sent" in removed.output
    assert "Delivered 0, retrying 0, failed 0." in work(cli)
    assert receiver.received == []
    assert (
        "failed  attempts 0  last webhook removed before delivery"
        in invoke(cli, "webhooks", "deliveries", "--failed").output
    )
    assert scalar(settings.database_url, "SELECT secret FROM webhooks") == ""
    assert "No webhook yet" in invoke(cli, "webhooks", "list").output
    assert "removed 20" in invoke(cli, "webhooks", "list", "--all").output
    refused = invoke(cli, "webhooks", "redeliver", "1")
    assert refused.exit_code == 1
    assert "webhook 1, which was removed" in refused.output
    assert invoke(cli, "webhooks", "remove", str(number)).output.count("removed already") == 1


# --- who may, what is refused, what is recorded -------------------------------------------------


def test_only_admins_manage_webhooks_and_every_change_is_audited(
    cli: CliRunner, settings: Settings, receiver: Receiver, small: Path
) -> None:
    team = make_team(cli)
    refused = invoke(cli, "webhooks", "add", receiver.url, "--key", team.editor)
    assert refused.exit_code == 1
    assert "eve may not manage partners' webhooks: that needs the admin role" in refused.output
    assert invoke(cli, "webhooks", "list", "--key", team.publisher).exit_code == 1
    assert scalar(settings.database_url, "SELECT count(*) FROM webhooks") == 0

    given = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    added = invoke(cli, "webhooks", "add", receiver.url, "--secret", given, "--key", team.admin)
    assert added.exit_code == 0, added.output
    assert given not in added.output
    listing = invoke(cli, "webhooks", "list", "--key", team.admin).output
    assert f"1  {receiver.url}  events release.published  markets all  added" in listing
    assert "whsec_" not in listing
    duplicate = invoke(cli, "webhooks", "add", receiver.url, "--key", team.admin)
    assert "a webhook for" in duplicate.output
    assert "exists already" in duplicate.output

    invoke(cli, "seed", str(small), "--approve")
    assert invoke(cli, "publish", "--note", "one").exit_code == 0
    work(cli)
    assert verify(given, receiver.received[0])
    assert invoke(cli, "webhooks", "redeliver", "1", "--key", team.admin).exit_code == 0
    assert invoke(cli, "webhooks", "remove", "1", "--key", team.admin).exit_code == 0

    events = json.loads(invoke(cli, "audit", "--format", "json", "--api-key", team.admin).stdout)
    webhook_events = [
        (e["actor"], e["action"]) for e in events if e["action"].startswith("webhook")
    ]
    assert webhook_events == [
        ("ada", "webhook.add"),
        ("ada", "webhook.redeliver"),
        ("ada", "webhook.remove"),
    ]
    assert given not in json.dumps(events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://partner.example/x"], "a webhook URL starts with http:// or https://"),
        (["https://user:pw@partner.example/x"], "carries no user name or password"),
        (["https://partner.example/x", "--events", "release.made"], "unknown event 'release.made'"),
        (["https://partner.example/x", "--secret", "hunter2"], "looks like whsec_<base64>"),
        (["https://partner.example/x", "--secret", "whsec_c2hvcnQ="], "24 to 64 random bytes"),
    ],
)
def test_bad_webhooks_are_refused_and_nothing_is_stored(
    cli: CliRunner, settings: Settings, args: list[str], message: str
) -> None:
    result = invoke(cli, "webhooks", "add", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert scalar(settings.database_url, "SELECT count(*) FROM webhooks") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:192.168.0.1]/hook",
    ],
)
def test_non_public_addresses_are_refused_unless_development_allows_them(
    cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("CONTENT_API_WEBHOOK_ALLOW_PRIVATE", "false")
    result = invoke(cli, "webhooks", "add", url)
    assert result.exit_code == 1
    assert "is not a public address: webhooks reach public addresses only" in result.output
    assert scalar(settings.database_url, "SELECT count(*) FROM webhooks") == 0


def test_every_address_is_checked_again_when_sending(
    cli: CliRunner,
    settings: Settings,
    receiver: Receiver,
    small: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_webhook(cli, f"http://localhost:{receiver.port}/named")  # a name: checked when sent
    add_webhook(cli, f"{receiver.url}/literal")  # allowed when added, in development
    seed_and_publish(cli, small)
    monkeypatch.setenv("CONTENT_API_WEBHOOK_ALLOW_PRIVATE", "false")

    output = work(cli)

    assert "refused: localhost resolves to " in output
    assert "refused: 127.0.0.1 resolves to 127.0.0.1, which is not a public address" in output
    assert "Delivered 0, retrying 2, failed 0." in output
    assert receiver.received == []


def test_the_post_goes_to_the_address_that_was_checked(
    cli: CliRunner,
    settings: Settings,
    receiver: Receiver,
    small: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name is resolved once; the connection goes to that address, and the name travels
    in Host. (partner.example resolves nowhere: a second lookup would fail.)"""
    looked_up: list[str] = []

    async def resolve(host: str, port: int) -> list[Any]:
        looked_up.append(host)
        return [ip_address("127.0.0.1")]

    monkeypatch.setattr(webhook_worker, "resolve", resolve)
    add_webhook(cli, f"http://partner.example:{receiver.port}/hook")
    seed_and_publish(cli, small)

    assert deliver_now().delivered == 1
    assert looked_up == ["partner.example"]
    assert receiver.received[0].headers["host"] == f"partner.example:{receiver.port}"


def test_address_rules() -> None:
    public = ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"]
    private = [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.251",  # noqa: S104 -- an address to check, not to bind "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
        "64:ff9b::a00:1", "2002:a00:1::1", "::",
    ]  # fmt: skip
    assert all(is_public(ip_address(a)) for a in public)
    assert not any(is_public(ip_address(a)) for a in private)


def test_settings_keep_a_claim_longer_than_a_delivery_and_private_addresses_out_of_production(
    cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENT_API_WEBHOOK_LEASE", "0.2")
    result = invoke(cli, "webhooks", "list")
    assert result.exit_code == 2
    assert "CONTENT_API_WEBHOOK_LEASE: must be longer than" in result.output
    monkeypatch.setenv("CONTENT_API_WEBHOOK_LEASE", "1")
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    result = invoke(cli, "webhooks", "list")
    assert result.exit_code == 2
    assert "CONTENT_API_WEBHOOK_ALLOW_PRIVATE: is for development only" in result.output


def test_production_sends_webhooks_over_https_only(
    cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make_team(cli)
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    monkeypatch.setenv("CONTENT_API_WEBHOOK_ALLOW_PRIVATE", "false")
    result = invoke(cli, "webhooks", "add", "http://partner.example/x", "--key", team.admin)
    assert result.exit_code == 1
    assert "a webhook URL starts with https://" in result.output


# --- over GraphQL, with the worker inside the service --------------------------------------------

ADD = """mutation ($url: String!, $events: [String!]!, $markets: [String!]) {
  addWebhook(url: $url, events: $events, markets: $markets) {
    secret webhook { number url events markets createdBy removedAt } } }"""


def ask(client: TestClient, document: str, key: str | None, **variables: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.post(
        "/graphql", json={"query": document, "variables": variables}, headers=headers
    )
    body: dict[str, Any] = response.json()
    return body


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


def test_admins_manage_webhooks_over_graphql_and_the_service_delivers(
    cli: CliRunner,
    settings: Settings,
    receiver: Receiver,
    small: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    team = make_team(cli)
    assert invoke(cli, "seed", str(small), "--approve").exit_code == 0
    monkeypatch.setenv("CONTENT_API_WEBHOOK_WORKER", "true")
    with TestClient(create_app(Settings())) as client:
        url = f"{receiver.url}/gql"
        assert code(ask(client, ADD, None, url=url, events=["release.published"])) == (
            "UNAUTHENTICATED"
        )
        assert code(ask(client, ADD, team.editor, url=url, events=["release.published"])) == (
            "FORBIDDEN"
        )
        bad = ask(client, ADD, team.admin, url=url, events=["release.made"])
        assert code(bad) == "BAD_USER_INPUT"
        assert scalar(settings.database_url, "SELECT count(*) FROM webhooks") == 0

        added = ask(client, ADD, team.admin, url=url, events=["release.published"], markets=["US"])
        assert "errors" not in added, added
        new = added["data"]["addWebhook"]
        assert new["webhook"] == {
            "number": 1, "url": url, "events": ["release.published"], "markets": ["US"],
            "createdBy": "ada", "removedAt": None,
        }  # fmt: skip
        listed = ask(client, "{ webhooks { number url } }", team.admin)
        assert listed["data"]["webhooks"] == [{"number": 1, "url": url}]
        assert "secret" not in json.dumps(listed)

        published = ask(
            client, 'mutation { publishRelease(note: "over GraphQL") { number } }', team.publisher
        )
        assert published["data"]["publishRelease"]["number"] == 1
        assert receiver.arrived.wait(timeout=20), "the service's worker never delivered"
        assert verify(new["secret"], receiver.received[0])
        assert receiver.received[0].json()["data"]["note"] == "over GraphQL"

        removed = ask(
            client, "mutation { removeWebhook(number: 1) { number removedAt } }", team.admin
        )
        assert removed["data"]["removeWebhook"]["removedAt"] is not None
        again = ask(client, "mutation { removeWebhook(number: 1) { number } }", team.admin)
        assert code(again) == "CONFLICT"
        assert ask(client, "{ webhooks { number } }", team.admin)["data"]["webhooks"] == []
