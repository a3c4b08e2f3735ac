"""Webhooks: partners' endpoints, the outbox written with each release, Standard Webhooks
signatures, and the delivery log. Sending is `webhook_worker`'s job."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principal import Permission, Principal
from service.config import Settings
from service.content.errors import BadInput, Conflict, NotFound
from service.content.models import Release, utcnow
from service.content.repository import ContentRepository, LiveRepository
from service.delivery.models import (
    URL_LENGTH,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from service.delivery.webhook_repository import ReleaseChange, WebhookRepository
from service.vetting import audit

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the format's prefix, not a secret
# the Standard Webhooks specification: secrets of 24 to 64 random bytes
SECRET_BYTES = 32
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64
MESSAGE_PREFIX = "msg_"
REMOVED = "webhook removed before delivery"


# --- secrets and signatures (Standard Webhooks) -------------------------------------------------


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_<base64>` secret stands for; BadInput for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise BadInput(
            f"a webhook secret looks like {SECRET_PREFIX}<base64>; leave it out to get one"
        )
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise BadInput(f"the webhook secret after {SECRET_PREFIX} is not base64") from exc
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise BadInput(
            f"a webhook secret holds {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes "
            f"(this one {len(key)}); leave it out to get one"
        )
    return key


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: v1, then the base64 HMAC-SHA256 of id.timestamp.body."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def new_message_id() -> str:
    return MESSAGE_PREFIX + secrets.token_urlsafe(18)


# --- addresses ----------------------------------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64)
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: Address) -> bool:
    """Whether a webhook may call this address: globally routable, unicast, and not an IPv4
    address that is not, dressed as IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast and not address.is_unspecified


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, settings: Settings) -> str:
    """A URL a webhook may be sent to, or BadInput saying why not. A host name is resolved
    and checked again before every delivery, since what it points at can change."""
    url = url.strip()
    if len(url) > URL_LENGTH:
        raise BadInput(f"the URL has {len(url)} characters; at most {URL_LENGTH}")
    parts = urlsplit(url)
    allowed = {"https"} if settings.is_production else {"http", "https"}
    if parts.scheme not in allowed:
        raise BadInput(
            f"a webhook URL starts with {' or '.join(sorted(s + '://' for s in allowed))}: {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise BadInput("a webhook URL carries no user name or password: sign with the secret")
    if parts.fragment:
        raise BadInput("a webhook URL has no #fragment: receivers never see one")
    try:
        host, _ = parts.hostname, parts.port
    except ValueError as exc:
        raise BadInput(f"not a valid URL: {url!r} ({exc})") from exc
    if not host:
        raise BadInput(f"a webhook URL names a host: {url!r}")
    literal = literal_address(host)
    if literal is not None and not settings.webhook_allow_private and not is_public(literal):
        raise BadInput(
            f"{host} is not a public address: webhooks reach public addresses only "
            "(CONTENT_API_WEBHOOK_ALLOW_PRIVATE=true allows others in development)"
        )
    return url


# --- payloads -----------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ChangedEntry:
    change: ReleaseChange
    markets: list[str]  # the markets it was and is cleared for: who must hear of it

    @property
    def kind_of_change(self) -> str:
        if self.change.revision_id is None:
            return "withdrawn"
        return "created" if self.change.previous_revision_id is None else "updated"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.change.key,
            "kind": self.change.kind,
            "locale": self.change.locale,
            "change": self.kind_of_change,
            "revision": self.change.revision,
            "previous_revision": self.change.previous_revision,
            "markets": self.markets,
        }


def payload(event: WebhookEvent, release: Release, entries: Sequence[ChangedEntry]) -> str:
    """The body, in the Standard Webhooks shape: type, timestamp, data."""
    published_at = _iso(release.created_at)
    document = {
        "type": event.value,
        "timestamp": published_at,
        "data": {
            "release": release.id,
            "note": release.note,
            "published_at": published_at,
            "entries": [entry.as_json() for entry in entries],
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


async def enqueue_release(session: AsyncSession, release: Release) -> int:
    """Write the outbox rows for a new release, in its own transaction: delivered once it
    commits, and never if it rolls back. The number of deliveries written."""
    repository = WebhookRepository(session)
    webhooks = await repository.webhooks()
    if not webhooks:
        return 0
    changes = await repository.release_changes(release.id)
    revision_ids = {
        rid for c in changes for rid in (c.revision_id, c.previous_revision_id) if rid is not None
    }
    markets = await LiveRepository(session).attached_markets(sorted(revision_ids))
    entries = [
        ChangedEntry(
            change,
            sorted(
                {
                    code
                    for rid in (change.revision_id, change.previous_revision_id)
                    if rid is not None
                    for code in markets.get(rid, [])
                }
            ),
        )
        for change in changes
    ]
    by_event = {
        WebhookEvent.RELEASE_PUBLISHED: entries,
        WebhookEvent.ENTRY_WITHDRAWN: [e for e in entries if e.change.revision_id is None],
    }
    now = utcnow()
    rows = []
    for webhook in webhooks:
        for event, candidates in by_event.items():
            if event.value not in webhook.events:
                continue
            wanted = set(webhook.markets) if webhook.markets is not None else None
            matching = [e for e in candidates if wanted is None or wanted & set(e.markets)]
            if not matching:
                continue
            rows.append(
                {
                    "message_id": new_message_id(),
                    "webhook_id": webhook.id,
                    "event": event.value,
                    "release_id": release.id,
                    "body": payload(event, release, matching),
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "created_at": now,
                    "queued_at": now,
                    "next_attempt_at": now,
                }
            )
    await repository.insert_deliveries(rows)
    return len(rows)


# --- managing webhooks --------------------------------------------------------------------------


def parse_events(names: Sequence[str]) -> list[str]:
    known = [event.value for event in WebhookEvent]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadInput(f"unknown event {', '.join(map(repr, unknown))}; events: {', '.join(known)}")
    if not names:
        raise BadInput(f"a webhook needs at least one event: {', '.join(known)}")
    return list(dict.fromkeys(names))


class WebhookService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.repository = WebhookRepository(session)

    async def add(
        self,
        url: str,
        *,
        events: Sequence[str],
        markets: Sequence[str] | None,
        secret: str | None,
        by: Principal,
    ) -> tuple[Webhook, str]:
        """A new webhook and its signing secret (generated when not given), returned once."""
        by.require(Permission.MANAGE_WEBHOOKS)
        url = check_url(url, self.settings)
        chosen = parse_events(events)
        if markets is not None:
            markets = await self._known_markets(markets)
        if secret is None:
            secret = generate_secret()
        else:
            secret_key(secret)
        if await self.repository.active_with_url(url) is not None:
            raise Conflict(f"a webhook for {url} exists already; remove it first to change it")
        webhook = Webhook(
            url=url,
            events=chosen,
            markets=markets,
            secret=secret,
            created_by=by.name,
            created_at=utcnow(),
        )
        self.session.add(webhook)
        await self.session.flush()
        await audit.record(
            self.session,
            [
                audit.event(
                    by,
                    "webhook.add",
                    after={"webhook": webhook.id, "url": url, "events": chosen, "markets": markets},
                )
            ],
        )
        return webhook, secret

    async def _known_markets(self, markets: Sequence[str]) -> list[str]:
        if not markets:
            raise BadInput("--markets names at least one market, or leave it out for all")
        return await ContentRepository(self.session).require_markets(markets)

    async def webhooks(self, *, by: Principal, include_removed: bool = False) -> list[Webhook]:
        by.require(Permission.MANAGE_WEBHOOKS)
        return await self.repository.webhooks(include_removed=include_removed)

    async def remove(self, webhook_id: int, *, by: Principal) -> tuple[Webhook, int]:
        """Stop a webhook: nothing more is sent to it, and what waited is marked failed. Its
        secret is forgotten; the row stays for the delivery log."""
        by.require(Permission.MANAGE_WEBHOOKS)
        webhook = await self._webhook(webhook_id)
        if webhook.removed_at is not None:
            raise Conflict(f"webhook {webhook_id} was removed already")
        now = utcnow()
        webhook.removed_at = now
        webhook.secret = ""
        cancelled = await self.repository.cancel_pending(webhook.id, now=now, reason=REMOVED)
        await audit.record(
            self.session,
            [
                audit.event(
                    by,
                    "webhook.remove",
                    before={"webhook": webhook.id, "url": webhook.url},
                    after={"cancelled_deliveries": cancelled},
                )
            ],
        )
        return webhook, cancelled

    async def _webhook(self, webhook_id: int) -> Webhook:
        webhook = await self.repository.webhook(webhook_id)
        if webhook is None:
            raise NotFound(f"no webhook {webhook_id}; `contentapi webhooks list` shows them")
        return webhook

    async def deliveries(
        self, *, by: Principal, failed_only: bool = False, limit: int = 100
    ) -> list[tuple[WebhookDelivery, str]]:
        by.require(Permission.MANAGE_WEBHOOKS)
        return await self.repository.deliveries(failed_only=failed_only, limit=limit)

    async def redeliver(self, delivery_id: int, *, by: Principal) -> WebhookDelivery:
        """Queue a delivery again, due now, with a fresh retry window. It keeps its
        `webhook-id`: it is the same event, and a receiver that has it already may skip it."""
        by.require(Permission.MANAGE_WEBHOOKS)
        delivery = await self.repository.delivery(delivery_id)
        if delivery is None:
            raise NotFound(
                f"no delivery {delivery_id}; `contentapi webhooks deliveries` lists them"
            )
        webhook = await self._webhook(delivery.webhook_id)
        if webhook.removed_at is not None:
            raise Conflict(
                f"delivery {delivery_id} went to webhook {webhook.id}, which was removed"
            )
        before = delivery.status
        now = utcnow()
        delivery.status = DeliveryStatus.PENDING.value
        delivery.queued_at = now
        delivery.next_attempt_at = now
        await self.session.flush()
        await audit.record(
            self.session,
            [
                audit.event(
                    by,
                    "webhook.redeliver",
                    release_id=delivery.release_id,
                    before={"delivery": delivery.id, "status": before},
                    after={"delivery": delivery.id, "status": delivery.status},
                )
            ],
        )
        return delivery
