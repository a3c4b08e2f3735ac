"""The compliance findings of stored revisions: the rules engine fed from the database."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.content.models import Citation, Entry, EntryKind, Revision
from service.content.repository import LiveRepository
from service.vetting.compliance import Finding, Reviewable, TextPart, check


async def reviewables(
    session: AsyncSession, revisions: Sequence[tuple[Revision, Entry]]
) -> dict[int, Reviewable]:
    """What the rules read of each revision, in a fixed number of statements."""
    ids = [revision.id for revision, _ in revisions]
    links = LiveRepository(session)
    citations = await links.attached_citations(ids)
    categories = await links.attached_categories(ids)
    markets = await links.attached_markets(ids)
    conditions = await links.attached_conditions(ids)
    disclaimers = await links.attached_disclaimers(ids)
    # every catalog citation has a DOI or a PMID (a check constraint), so each one substantiates
    substantiated = frozenset((await session.scalars(select(Citation.key))).all())
    kinds = await _disclaimer_kinds(session, {key for keys in disclaimers.values() for key in keys})
    found: dict[int, Reviewable] = {}
    for revision, entry in revisions:
        kind = EntryKind(entry.kind)
        parts: tuple[TextPart, ...]
        if kind == EntryKind.TAKEAWAY:
            parts = (TextPart("text", revision.body_markdown),)
        else:
            parts = tuple(
                TextPart(name, text)
                for name, text in (
                    ("title", revision.title),
                    ("summary", revision.summary),
                    ("body", revision.body_markdown),
                )
                if text
            )
        found[revision.id] = Reviewable(
            kind=kind,
            locale=revision.locale,
            parts=parts,
            evidence=revision.evidence,
            citations=tuple(citations.get(revision.id, [])),
            substantiated_citations=substantiated,
            categories=tuple(categories.get(revision.id, [])),
            markets=tuple(markets.get(revision.id, [])),
            conditions=tuple(conditions.get(revision.id, [])),
            disclaimer_kinds=frozenset(
                kinds[key] for key in disclaimers.get(revision.id, []) if key in kinds
            ),
        )
    return found


async def _disclaimer_kinds(session: AsyncSession, keys: set[str]) -> dict[str, str]:
    """The kind of each disclaimer entry, from its newest revision (an entry keeps its kind)."""
    if not keys:
        return {}
    newest = (
        select(Revision.entry_id, func.max(Revision.id).label("revision_id"))
        .group_by(Revision.entry_id)
        .subquery()
    )
    result = await session.execute(
        select(Entry.key, Revision.disclaimer_kind)
        .join(newest, newest.c.entry_id == Entry.id)
        .join(Revision, Revision.id == newest.c.revision_id)
        .where(Entry.key.in_(sorted(keys)))
    )
    return {key: kind for key, kind in result if kind is not None}


async def findings_of(
    session: AsyncSession, revisions: Sequence[tuple[Revision, Entry]]
) -> dict[int, list[Finding]]:
    items = await reviewables(session, revisions)
    return {revision_id: check(item) for revision_id, item in items.items()}
