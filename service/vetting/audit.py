"""Appending to the audit log: who did what, when, why, and what it changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principal import Principal
from service.content.models import utcnow
from service.vetting.models import AuditEvent


def event(
    actor: Principal | str,
    action: str,
    *,
    entry_key: str | None = None,
    locale: str | None = None,
    revision_id: int | None = None,
    release_id: int | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    name, prefix = (actor.name, actor.key_prefix) if isinstance(actor, Principal) else (actor, None)
    return {
        "at": utcnow(),
        "actor": name,
        "key_prefix": prefix,
        "action": action,
        "entry_key": entry_key,
        "locale": locale,
        "revision_id": revision_id,
        "release_id": release_id,
        "reason": reason,
        "before": before,
        "after": after,
    }


async def record(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """Append events in the transaction of the action they describe: both or neither."""
    if events:
        await session.execute(insert(AuditEvent), list(events))
