"""Admins' webhook field and mutations: thin, over the webhook service where every rule lives.

A webhook has a `number`, not an `id`: ids in this schema name immutable versions for client
caches, and a webhook changes (it can be removed).
"""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from service.access.principal import Permission
from service.content.errors import NotFound
from service.delivery.models import Webhook as WebhookRow
from service.delivery.webhooks import WebhookService
from service.graphql.context import Info


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:  # SQLite hands back naive datetimes
        return moment.replace(tzinfo=UTC)
    return moment


@strawberry.type(description="A partner's endpoint that gets a signed POST for each event.")
class Webhook:
    number: int = strawberry.field(
        description="The webhook's number, as `contentapi webhooks list` shows it."
    )
    url: str
    events: list[str] = strawberry.field(description="release.published, entry.withdrawn")
    markets: list[str] | None = strawberry.field(
        description="Only releases changing content cleared for these markets; null for all."
    )
    created_by: str
    created_at: datetime
    removed_at: datetime | None

    @classmethod
    def of(cls, row: WebhookRow) -> Webhook:
        return cls(
            number=row.id,
            url=row.url,
            events=list(row.events),
            markets=list(row.markets) if row.markets is not None else None,
            created_by=row.created_by,
            created_at=_utc(row.created_at) or row.created_at,
            removed_at=_utc(row.removed_at),
        )


@strawberry.type(description="A new webhook and its signing secret, which is shown only here.")
class NewWebhook:
    webhook: Webhook
    secret: str = strawberry.field(
        description="whsec_<base64>: the key receivers verify `webhook-signature` with."
    )


def _service(info: Info) -> WebhookService:
    if info.context.session is None:
        raise NotFound("no database session")
    return WebhookService(info.context.session, info.context.settings)


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Admins: the webhooks, oldest first (never their secrets).")
    async def webhooks(self, info: Info, include_removed: bool = False) -> list[Webhook]:
        by = await info.context.staff(Permission.MANAGE_WEBHOOKS)
        rows = await _service(info).webhooks(by=by, include_removed=include_removed)
        return [Webhook.of(row) for row in rows]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Admins: add a webhook; without `secret`, one is generated and returned."
    )
    async def add_webhook(
        self,
        info: Info,
        url: str,
        events: list[str],
        markets: list[str] | None = None,
        secret: str | None = None,
    ) -> NewWebhook:
        by = await info.context.staff(Permission.MANAGE_WEBHOOKS)
        service = _service(info)
        async with service.session.begin_nested():
            row, signing = await service.add(
                url, events=events, markets=markets, secret=secret, by=by
            )
        return NewWebhook(webhook=Webhook.of(row), secret=signing)

    @strawberry.mutation(description="Admins: remove a webhook; nothing more is sent to it.")
    async def remove_webhook(self, info: Info, number: int) -> Webhook:
        by = await info.context.staff(Permission.MANAGE_WEBHOOKS)
        service = _service(info)
        async with service.session.begin_nested():
            row, _ = await service.remove(number, by=by)
        return Webhook.of(row)
