"""The webhook delivery worker: claims due outbox rows, sends each as a signed POST to a
checked public address, and records the outcome with back-off. Safe on several instances."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import socket
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.config import Settings
from service.content.models import utcnow
from service.db import create_engine_for, create_sessionmaker, is_unavailable
from service.delivery.models import ERROR_LENGTH, DeliveryStatus
from service.delivery.webhook_repository import ClaimedDelivery, WebhookRepository
from service.delivery.webhooks import REMOVED, Address, is_public, literal_address, sign

logger = logging.getLogger("service.webhooks")

USER_AGENT = "gut-skin-content-api-webhooks/1"


class Refused(Exception):
    """A delivery the worker will not attempt as addressed (a non-public address)."""


@dataclass(frozen=True)
class Outcome:
    status: int | None = None  # the receiver's HTTP status, when it answered
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class PassReport:
    """What one pass over the due deliveries did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    lost_claims: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed + self.lost_claims

    def add(self, other: PassReport) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed
        self.lost_claims += other.lost_claims
        self.errors += other.errors


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from the base up to the maximum,
    each wait between half and all of that, so retries from many deliveries spread out."""
    ceiling = min(
        settings.webhook_retry_base * 2 ** min(attempts - 1, 32), settings.webhook_retry_max
    )
    # jitter spreads load; it protects no secret
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))  # noqa: S311


async def resolve(host: str, port: int) -> list[Address]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    found = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = literal_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


async def checked_address(url: httpx.URL, settings: Settings) -> Address:
    """The address to connect to: the host resolved once, and every address it resolves to
    checked, so a name that also points somewhere private is refused as a whole."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = await resolve(url.host, port)
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve {url.host}: {exc.strerror or exc}") from exc
    if not addresses:
        raise Refused(f"{url.host} resolves to no address")
    if not settings.webhook_allow_private:
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise Refused(
                f"refused: {url.host} resolves to {private[0]}, which is not a public address"
            )
    return addresses[0]


async def send(client: httpx.AsyncClient, delivery: ClaimedDelivery, settings: Settings) -> Outcome:
    """One signed POST. The connection goes to the address that was checked, never to a
    second lookup of the name (which a rebinding DNS server could point elsewhere); the
    Host header and TLS (SNI and certificate) still use the name."""
    url = httpx.URL(delivery.url)
    try:
        async with asyncio.timeout(settings.webhook_timeout):
            address = await checked_address(url, settings)
            timestamp = int(time.time())
            request = client.build_request(
                "POST",
                url.copy_with(host=str(address)),
                content=delivery.body.encode(),
                headers={
                    "host": url.netloc.decode("ascii"),
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                    "webhook-id": delivery.message_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign(
                        delivery.secret, delivery.message_id, timestamp, delivery.body
                    ),
                },
                extensions={"sni_hostname": url.host} if url.scheme == "https" else {},
            )
            # the answer's body is not read: only its status matters
            response = await client.send(request, stream=True)
            await response.aclose()
    except Refused as exc:
        return Outcome(error=str(exc))
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(error=f"timed out after {settings.webhook_timeout:g} s")
    except httpx.HTTPError as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if 200 <= response.status_code < 300:
        return Outcome(status=response.status_code)
    return Outcome(status=response.status_code, error=f"HTTP {response.status_code}")


def new_client(settings: Settings) -> httpx.AsyncClient:
    # no proxy from the environment: the connection must go to the checked address;
    # no redirects: a 3xx could point anywhere, and is a failure to deliver; no kept-alive
    # connections: the pool knows them by address, so two host names on one address would
    # share a connection whose TLS certificate was checked for only one of them
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout),
        limits=httpx.Limits(max_keepalive_connections=0),
        follow_redirects=False,
        trust_env=False,
    )


def _outcome_values(
    delivery: ClaimedDelivery,
    outcome: Outcome,
    settings: Settings,
    *,
    attempted_at: datetime,
    now: datetime,
) -> tuple[dict[str, Any], DeliveryStatus]:
    values: dict[str, Any] = {
        "last_status": outcome.status,
        "last_error": outcome.error[:ERROR_LENGTH] if outcome.error else None,
    }
    if outcome.delivered:
        return values | {
            "status": DeliveryStatus.DELIVERED.value,
            "delivered_at": now,
        }, DeliveryStatus.DELIVERED
    give_up = _aware(delivery.queued_at) + timedelta(seconds=settings.webhook_retry_window)
    # failed once an attempt that began after the window fails too: so it is retried for
    # the whole window, and the last retry falls on its end
    if attempted_at >= give_up:
        return values | {"status": DeliveryStatus.FAILED.value}, DeliveryStatus.FAILED
    next_attempt = min(now + backoff(delivery.attempts, settings), give_up)
    return values | {"next_attempt_at": next_attempt}, DeliveryStatus.PENDING


async def deliver_due(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    *,
    due_by: datetime | None = None,
) -> PassReport:
    """Claim one batch of deliveries due by `due_by` (now), send them at once, record each."""
    now = utcnow()
    due_by = due_by or now
    report = PassReport()
    async with sessionmaker() as session, session.begin():
        if not await WebhookRepository(session).any_due(due_by, now):
            return report
    claim = secrets.token_hex(16)
    lease_until = now + timedelta(seconds=settings.webhook_lease)
    async with sessionmaker() as session, session.begin():
        repository = WebhookRepository(session)
        ids = await repository.claim_due(
            due_by=due_by,
            now=now,
            lease_until=lease_until,
            claim=claim,
            limit=settings.webhook_batch,
        )
        claimed = await repository.claimed(ids)

    async def attempt(delivery: ClaimedDelivery) -> Outcome:
        if delivery.webhook_removed:
            return Outcome(error=REMOVED)
        return await send(client, delivery, settings)

    try:
        outcomes = await asyncio.gather(*(attempt(delivery) for delivery in claimed))
    except asyncio.CancelledError:
        # stopped mid-send: the claims go back now, not when the lease ends, and a receiver
        # that got the request meanwhile sees the same webhook-id again
        async with sessionmaker() as session, session.begin():
            await WebhookRepository(session).release_claims(ids, claim)
        raise
    finished = utcnow()
    async with sessionmaker() as session, session.begin():
        repository = WebhookRepository(session)
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            values, status = _outcome_values(
                delivery, outcome, settings, attempted_at=now, now=finished
            )
            if delivery.webhook_removed:
                values, status = (
                    values | {"status": DeliveryStatus.FAILED.value},
                    DeliveryStatus.FAILED,
                )
            if not await repository.record_attempt(delivery.id, claim, values):
                # the lease lapsed and another worker took the delivery over: its outcome stands
                logger.warning("webhook delivery %s: claim lapsed before its outcome", delivery.id)
                report.lost_claims += 1
                continue
            if status == DeliveryStatus.DELIVERED:
                report.delivered += 1
            elif status == DeliveryStatus.FAILED:
                report.failed += 1
            else:
                report.retrying += 1
            if outcome.error:
                report.errors.append(f"delivery {delivery.id} to {delivery.url}: {outcome.error}")
    return report


async def deliver_once(settings: Settings) -> PassReport:
    """Everything due now, batch after batch, and nothing that falls due meanwhile (a retry
    scheduled during the pass waits for the next one): `contentapi webhooks worker --once`."""
    engine = create_engine_for(settings.database_url, echo=settings.log_sql)
    sessionmaker = create_sessionmaker(engine)
    started = utcnow()
    total = PassReport()
    try:
        async with new_client(settings) as client:
            while True:
                report = await deliver_due(settings, sessionmaker, client, due_by=started)
                total.add(report)
                if not report.attempted:
                    return total
    finally:
        await engine.dispose()


async def run_worker(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Deliver until `stop` is set: at once while work waits, then every poll interval. Once
    stopped it claims nothing more; the batch in hand is sent and recorded first."""
    stop = stop or asyncio.Event()
    async with new_client(settings) as client:
        while not stop.is_set():
            attempted = 0
            try:
                report = await deliver_due(settings, sessionmaker, client)
                attempted = report.attempted
                for line in report.errors:
                    logger.info("webhook %s", line)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # a database that is briefly away must not end the worker; the next poll retries
                if is_unavailable(exc):
                    logger.warning("webhook worker: the database did not answer; retrying")
                else:
                    logger.exception("webhook worker pass failed")
            if not attempted:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.webhook_poll_interval)
