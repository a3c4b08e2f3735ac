"""Per-request DataLoaders: one lookup per batch of fields, never one per item; from the
release held in memory, or one SQL statement per batch when it is not held."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from strawberry.dataloader import DataLoader

from service.content.models import Revision
from service.content.reading import Reader, ReleaseView
from service.content.repository import LiveEntry, LocalePreference

K = TypeVar("K")
V = TypeVar("V")

# (release, locale preference, market, disclaimer key)
DisclaimerKey = tuple[int, LocalePreference, str, str]


def _by_revision(
    fetch: Callable[[Sequence[int]], Awaitable[dict[int, list[str]]]],
) -> DataLoader[int, list[str]]:
    async def load(ids: list[int]) -> list[list[str]]:
        found = await fetch(ids)
        return [found.get(revision_id, []) for revision_id in ids]

    return DataLoader(load_fn=load)


@dataclass
class Loaders:
    revision_by_id: DataLoader[int, Revision]
    release_by_id: DataLoader[int, ReleaseView]
    topics_by_revision: DataLoader[int, list[str]]
    conditions_by_revision: DataLoader[int, list[str]]
    tags_by_revision: DataLoader[int, list[str]]
    citations_by_revision: DataLoader[int, list[str]]
    markets_by_revision: DataLoader[int, list[str]]
    disclaimer_keys_by_revision: DataLoader[int, list[str]]
    live_disclaimer_by_key: DataLoader[DisclaimerKey, LiveEntry | None]
    # (revision, the release's time): when the revision was last approved as of that release
    approved_at_by_revision: DataLoader[tuple[int, datetime], datetime | None]

    @classmethod
    def for_reader(cls, reader: Reader) -> Loaders:
        live = reader.live

        async def revisions(ids: list[int]) -> list[Revision]:
            found = await live.revisions(ids)
            return [found[revision_id] for revision_id in ids]

        async def releases(ids: list[int]) -> list[ReleaseView]:
            found = await reader.releases_by_id(ids)
            return [found.get(rid) or await reader.require_release(rid) for rid in ids]

        async def disclaimers(keys: list[DisclaimerKey]) -> list[LiveEntry | None]:
            groups: dict[tuple[int, LocalePreference, str], set[str]] = {}
            for release_id, locales, market, key in keys:
                groups.setdefault((release_id, locales, market), set()).add(key)
            found: dict[DisclaimerKey, LiveEntry] = {}
            for (release_id, locales, market), wanted in groups.items():
                release = await reader.require_release(release_id)
                for entry in await reader.disclaimers(
                    release, locales, market, tuple(sorted(wanted))
                ):
                    found[(release_id, locales, market, entry.key)] = entry
            return [found.get(key) for key in keys]

        async def approvals(keys: list[tuple[int, datetime]]) -> list[datetime | None]:
            found: dict[tuple[int, datetime], datetime] = {}
            for until in {until for _, until in keys}:
                ids = [revision_id for revision_id, at in keys if at == until]
                for revision_id, at in (await live.approved_at(ids, until=until)).items():
                    found[(revision_id, until)] = at
            return [found.get(key) for key in keys]

        return cls(
            revision_by_id=DataLoader(load_fn=revisions),
            release_by_id=DataLoader(load_fn=releases),
            topics_by_revision=_by_revision(live.attached_topics),
            conditions_by_revision=_by_revision(live.attached_conditions),
            tags_by_revision=_by_revision(live.attached_tags),
            citations_by_revision=_by_revision(live.attached_citations),
            markets_by_revision=_by_revision(live.attached_markets),
            disclaimer_keys_by_revision=_by_revision(live.attached_disclaimers),
            live_disclaimer_by_key=DataLoader(load_fn=disclaimers),
            approved_at_by_revision=DataLoader(load_fn=approvals),
        )
